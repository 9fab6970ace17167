"""Judges rate a conversation's difficulty: the LLM judge, and the policy for when it cannot answer."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from functools import cache
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from judge_router.config import ConfigError, JudgeConfig
from judge_router.routing.conversation import JudgedView
from judge_router.routing.judges.heuristic import HeuristicJudge
from judge_router.types import Source, Tier, Verdict
from judge_router.upstream.breaker import CircuitBreaker
from judge_router.upstream.completion import Completions, UpstreamError

log = logging.getLogger(__name__)

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


class Judge(Protocol):
    """Rates one conversation. Implementations may raise JudgeError; the router never lets it out."""

    name: str

    async def rate(self, view: JudgedView) -> Verdict: ...


class JudgeError(Exception):
    """The judge gave no usable verdict; `kind` is short and goes into the ledger."""

    def __init__(self, kind: str, detail: str):
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


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
def load_prompt(name: str, directory: Path | None = None) -> str:
    folder = (directory or prompts_dir()).expanduser()
    path = folder / f"{name}.md"
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        available = sorted(p.stem for p in folder.glob("*.md"))
        raise ConfigError(f"judge.prompt: no prompt file {path}; available: {available}") from None


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
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(root)"
        raise JudgeError("wrong_schema", f"{where}: {first['msg']}") from None


class LLMJudge:
    """Asks a (nano-tier) model for a verdict with a JSON-schema response format."""

    def __init__(self, config: JudgeConfig, completions: Completions):
        self.name = config.model
        self._config = config
        self._completions = completions
        self.system_prompt = load_prompt(config.prompt, config.prompt_dir)
        # Name and content both: an edited prompt file invalidates cached verdicts even unrenamed.
        digest = hashlib.blake2b(self.system_prompt.encode("utf-8"), digest_size=6).hexdigest()
        self.prompt_version = f"{config.prompt}@{digest}"

    async def rate(self, view: JudgedView) -> Verdict:
        messages = [
            {"role": "system", "content": self.system_prompt},
            {"role": "user", "content": render_conversation(view, secrets.token_hex(8))},
        ]
        try:
            reply = await self._completions.judge_call(
                self._config.entry,
                messages,
                VERDICT_SCHEMA,
                timeout_s=self._config.timeout_s,
                max_tokens=self._config.max_output_tokens,
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


class GuardedJudge:
    """Runs the primary judge and turns any failure into the configured safe verdict, never an error.

    `on_failure: heuristic` answers with the local judge; a tier name answers with that tier. Either
    way the verdict records why the primary judge did not answer.
    """

    def __init__(
        self,
        primary: Judge | None,
        on_failure: str,
        unavailable_reason: str | None,
        breaker: CircuitBreaker | None = None,
    ):
        self.primary = primary
        self.breaker = breaker or CircuitBreaker(failures=3, cooldown_s=30)
        self.name = primary.name if primary else HeuristicJudge.name
        self._on_failure = on_failure
        self._unavailable_reason = unavailable_reason
        self._heuristic = HeuristicJudge()
        self.failures = 0

    @property
    def calls_llm(self) -> bool:
        return self.primary is not None

    @property
    def prompt_version(self) -> str:
        return self.primary.prompt_version if isinstance(self.primary, LLMJudge) else "none"

    async def rate(self, view: JudgedView) -> Verdict:
        if self.primary is None:
            if self._unavailable_reason is None:  # the heuristic judge was chosen outright
                return self._heuristic.rate_now(view)
            return self.fallback(view, self._unavailable_reason)
        if not self.breaker.allows(self.name):
            return self.fallback(
                view, "circuit_open: the judge failed repeatedly; retried after cooldown"
            )
        try:
            verdict = await self.primary.rate(view)
        except JudgeError as exc:
            self.failures += 1
            self.breaker.failure(self.name)
            log.warning(
                "judge %s failed (%s); answering with %s", self.name, exc.kind, self._on_failure
            )
            return self.fallback(view, f"{exc.kind}: {exc.detail}"[:300])
        self.breaker.success(self.name)
        return verdict

    def fallback(self, view: JudgedView, why: str) -> Verdict:
        if self._on_failure == "heuristic":
            return self._heuristic.rate_now(view, judge_error=why)
        return Verdict(
            tier=Tier(self._on_failure),
            reason=f"judge unavailable; judge.on_failure is {self._on_failure}",
            source=Source.FALLBACK,
            judge_model=self.name,
            judge_error=why,
        )


def build_judge(config: JudgeConfig, completions: Completions) -> GuardedJudge:
    """The judge the config asks for, or the heuristic one (saying why) when it cannot be called."""
    if config.is_heuristic:
        return GuardedJudge(None, config.on_failure, unavailable_reason=None)
    missing = completions.missing_credentials(config.entry)
    if missing:
        reason = f"no credentials: {', '.join(missing)} not set"
        return GuardedJudge(None, config.on_failure, unavailable_reason=reason)
    breaker = CircuitBreaker(config.circuit_breaker.failures, config.circuit_breaker.cooldown_s)
    return GuardedJudge(LLMJudge(config, completions), config.on_failure, None, breaker)
