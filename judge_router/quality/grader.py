"""The grader: an LLM that scores one answer to one conversation from 1 to 10, with a reason.

It is asked like the judge: a versioned prompt, the conversation and the answer as JSON data
between nonce-tagged markers, and a strict JSON-schema response format. `grade` never raises: a
grader that times out or answers garbage gives a Grade with `error` set (and its cost, if any).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from judge_router.config import GraderConfig
from judge_router.routing.conversation import ConversationError, extract_turns, judged_view
from judge_router.routing.judges.llm import StructuredCall, load_prompt
from judge_router.routing.tokens import cut_middle
from judge_router.upstream.judge_call import UpstreamError
from judge_router.validation import describe_errors

GRADE_SCHEMA: dict[str, object] = {
    "type": "json_schema",
    "json_schema": {
        "name": "answer_grade",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {
                "score": {"type": "integer", "minimum": 1, "maximum": 10},
                "reason": {"type": "string"},
            },
            "required": ["score", "reason"],
            "additionalProperties": False,
        },
    },
}
MAX_REASON_CHARS = 300


class _GradeOutput(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    score: int = Field(ge=1, le=10)
    reason: str


@dataclass(frozen=True, slots=True)
class Grade:
    """A grader's verdict on one answer; `score` is None (and `error` says why) when it failed."""

    score: int | None
    reason: str
    grader_model: str
    prompt: str  # name@digest
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    error: str | None = None


class Grader:
    def __init__(self, config: GraderConfig, call: StructuredCall):
        self.config = config
        self._call = call
        self.system_prompt = load_prompt(config.prompt, config.prompt_dir, "grader.prompt")
        digest = hashlib.blake2b(self.system_prompt.encode("utf-8"), digest_size=6).hexdigest()
        self.version = f"{config.prompt}@{digest}"

    @property
    def model(self) -> str:
        return self.config.model

    def render(self, messages: list[dict[str, Any]], answer: str, nonce: str) -> str:
        """The grader's user message: the conversation and the answer, each cut to its share of
        `max_input_tokens` (the middle goes first), as JSON between nonce-tagged markers."""
        budget = self.config.max_input_tokens
        shown_answer, used = cut_middle(answer, budget // 2)
        try:
            view = judged_view(extract_turns(messages), budget - used)
            turns = [{"role": turn.role, "content": turn.text} for turn in view.turns]
        except ConversationError:
            turns = []
        conversation = json.dumps(turns, ensure_ascii=False)
        return (
            "Grade the answer to the conversation below.\n"
            f"<conversation-{nonce}>\n{conversation}\n</conversation-{nonce}>\n"
            f"<answer-{nonce}>\n{json.dumps(shown_answer, ensure_ascii=False)}\n</answer-{nonce}>"
        )

    def _failed(self, kind: str, detail: str, cost: float = 0.0, latency: float = 0.0) -> Grade:
        return Grade(
            None, "", self.model, self.version, cost, latency, f"{kind}: {detail}"[:300]
        )

    async def grade(self, messages: list[dict[str, Any]], answer: str) -> Grade:
        prompt = [
            {"role": "system", "content": self.system_prompt},
            {"role": "user", "content": self.render(messages, answer, secrets.token_hex(8))},
        ]
        config = self.config
        try:
            reply = await self._call(
                config.entry, prompt, GRADE_SCHEMA, config.timeout_s, config.max_output_tokens
            )
        except UpstreamError as exc:
            return self._failed(exc.kind, exc.message)
        except Exception as exc:  # never the request's problem: recorded, not raised
            return self._failed("error", f"{type(exc).__name__}: {exc}")
        cost, latency = reply.cost_usd, reply.latency_ms
        try:
            output = _GradeOutput.model_validate(json.loads(reply.content))
        except json.JSONDecodeError:
            # Only the length: the reply may quote the conversation, which must not reach logs.
            detail = f"grader answered {len(reply.content)} characters of non-JSON"
            return self._failed("invalid_json", detail, cost, latency)
        except ValidationError as exc:
            detail = describe_errors(exc.errors()[:1], root="(root)")[0]
            return self._failed("wrong_schema", detail, cost, latency)
        reason = output.reason.strip()[:MAX_REASON_CHARS] or "(no reason given)"
        return Grade(output.score, reason, self.model, self.version, cost, latency)
