"""The LLM judge: asks a (nano-tier) model for a verdict with a strict JSON-schema response format."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Awaitable, Callable
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from judge_router.config import ConfigError, JudgeConfig, ModelEntry
from judge_router.routing.conversation import JudgedView
from judge_router.routing.judges.base import JudgeError
from judge_router.types import Source, Tier, Verdict
from judge_router.upstream.judge_call import JudgeReply, UpstreamError
from judge_router.validation import describe_errors

VERDICT_SCHEMA: dict[str, object] = {
    "type": "json_schema",
    "json_schema": {
        "name": "difficulty_verdict",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {
                "tier": {"type": "string", "enum": ["low", "medium", "high"]},
                "reason": {"type": "string"},
            },
            "required": ["tier", "reason"],
            "additionalProperties": False,
        },
    },
}
MAX_REASON_CHARS = 300

# entry, messages, response format, timeout, max tokens -> the model's reply (UpstreamError if none)
StructuredCall = Callable[
    [ModelEntry, list[dict[str, str]], dict[str, Any], float, int], Awaitable[JudgeReply]
]


class _JudgeOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tier: Tier
    reason: str


def prompts_dir() -> Path:
    """prompts/ inside an installed wheel, else the repository's top-level prompts/."""
    package = Path(__file__).parents[2]
    packaged = package / "prompts"
    return packaged if packaged.is_dir() else package.parent / "prompts"


@cache
def load_prompt(name: str, directory: Path | None = None, key: str = "judge.prompt") -> str:
    """The prompt file `name`.md; ConfigError naming the config `key` if there is none."""
    folder = (directory or prompts_dir()).expanduser()
    path = folder / f"{name}.md"
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        available = sorted(p.stem for p in folder.glob("*.md"))
        raise ConfigError(f"{key}: no prompt file {path}; available: {available}") from None


def render_conversation(view: JudgedView, nonce: str) -> str:
    """The user message for the judge: the conversation as a JSON array between nonce-tagged markers.

    JSON escaping keeps the user's text inside one string, and the random nonce means text that
    imitates the markers cannot close them.
    """
    payload = json.dumps(
        [{"role": turn.role, "content": turn.text} for turn in view.turns], ensure_ascii=False
    )
    return (
        f"Rate the difficulty of the conversation below.\n"
        f"<conversation-{nonce}>\n{payload}\n</conversation-{nonce}>"
    )


def parse_verdict(content: str) -> _JudgeOutput:
    try:
        data = json.loads(content)
    except json.JSONDecodeError:
        # Only the length: the answer may quote the user's prompt, which must not reach the logs.
        raise JudgeError(
            "invalid_json", f"judge answered {len(content)} characters of non-JSON"
        ) from None
    try:
        return _JudgeOutput.model_validate(data)
    except ValidationError as exc:
        first = describe_errors(exc.errors()[:1], root="(root)")[0]
        raise JudgeError("wrong_schema", first) from None


class LLMJudge:
    cacheable = True

    def __init__(self, config: JudgeConfig, call: StructuredCall):
        self.name = config.model
        self._config = config
        self._call = call
        self.system_prompt = load_prompt(config.prompt, config.prompt_dir)
        # Name and content both: an edited prompt file invalidates cached verdicts even unrenamed.
        digest = hashlib.blake2b(self.system_prompt.encode("utf-8"), digest_size=6).hexdigest()
        self.version = f"{config.prompt}@{digest}"

    async def rate(self, view: JudgedView) -> Verdict:
        messages = [
            {"role": "system", "content": self.system_prompt},
            {"role": "user", "content": render_conversation(view, secrets.token_hex(8))},
        ]
        config = self._config
        try:
            reply = await self._call(
                config.entry, messages, VERDICT_SCHEMA, config.timeout_s, config.max_output_tokens
            )
        except UpstreamError as exc:
            raise JudgeError(exc.kind, exc.message) from exc
        output = parse_verdict(reply.content)
        return Verdict(
            tier=output.tier,
            reason=output.reason.strip()[:MAX_REASON_CHARS] or "(no reason given)",
            source=Source.LLM,
            cost_usd=reply.cost_usd,
            latency_ms=reply.latency_ms,
            judge_model=self.name,
        )
