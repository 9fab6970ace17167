"""The judges in the order they are asked, and the safe answer when none of them can give one.

The first judge to answer wins. One that fails (JudgeError) counts against its circuit breaker and
the next is asked; one that abstains (None) passes without blame. When no judge answers,
`judge.on_failure` does: the heuristic judge, or a fixed tier (source: fallback). Either way the
verdict records why the judges did not answer. The chain never raises.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from judge_router.config import JudgeConfig
from judge_router.routing.conversation import JudgedView
from judge_router.routing.judges.base import Judge, JudgeError
from judge_router.routing.judges.heuristic import HeuristicJudge
from judge_router.routing.judges.llm import LLMJudge, StructuredCall
from judge_router.routing.judges.local import LocalJudge, ModelSlot
from judge_router.routing.judges.local_model import ModelFileError
from judge_router.types import Source, Tier, Verdict
from judge_router.upstream.breaker import Breaker
from judge_router.upstream.litellm_runtime import missing_credentials

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 300


@dataclass(frozen=True, slots=True)
class Judged:
    verdict: Verdict
    cacheable: bool  # whether the judge that answered wants its verdicts kept


class JudgeChain:
    def __init__(
        self,
        judges: Sequence[Judge],
        on_failure: str,
        breaker: Breaker,
        name: str,
        unavailable_reason: str | None = None,
        local_slot: ModelSlot | None = None,
    ):
        self.judges = tuple(judges)
        self.breaker = breaker
        self.name = name  # the configured judge: shown in the ledger when on_failure answers
        self.on_failure = on_failure
        # Why no judge can be asked at all (e.g. missing credentials), reported on every verdict.
        self.unavailable_reason = unavailable_reason
        self.failures = 0
        self._heuristic = HeuristicJudge()
        # A trained model, when there is one, answers in the heuristic's place on failure.
        self.local_slot = local_slot
        self._local = LocalJudge(local_slot) if local_slot is not None else None
        cached = [judge for judge in self.judges if judge.cacheable]
        self.may_cache = bool(cached)
        # The cache key's judge identity (and so the ledger's prompt_hash): the names and versions
        # of the judges whose verdicts are kept, in order (a local model's are not, so reloading
        # one keeps the cache); a chain that caches nothing keeps the heuristic's fixed identity.
        self.identity = (
            ("+".join(judge.name for judge in cached), "+".join(j.version for j in cached))
            if self.may_cache
            else (HeuristicJudge.name, "none")
        )

    @property
    def calls_llm(self) -> bool:
        return any(isinstance(judge, LLMJudge) for judge in self.judges)

    async def judge(self, view: JudgedView) -> Judged:
        # A judge that cannot be asked at all (no credentials) is a failure only when the answer
        # falls to judge.on_failure: a local model answering confidently in hybrid mode is not.
        why: str | None = None
        for judge in self.judges:
            if not await self.breaker.allows(judge.name):
                why = why or "circuit_open: the judge failed repeatedly; retried after cooldown"
                continue
            try:
                verdict = await judge.rate(view)
            except JudgeError as exc:
                self.failures += 1
                await self.breaker.failure(judge.name)
                log.warning(
                    "judge %s failed (%s); asking the next judge or judge.on_failure=%s",
                    judge.name, exc.kind, self.on_failure,
                )  # fmt: skip
                why = why or f"{exc.kind}: {exc.detail}"[:MAX_ERROR_CHARS]
                continue
            await self.breaker.success(judge.name)
            if verdict is not None:
                if why is not None:  # an earlier judge failed: say so on the answer that was given
                    verdict = verdict.model_copy(update={"judge_error": why})
                return Judged(verdict, judge.cacheable and why is None)
        return Judged(self.answer_on_failure(view, why or self.unavailable_reason), cacheable=False)

    def answer_on_failure(self, view: JudgedView, why: str | None) -> Verdict:
        if self.on_failure == "heuristic":
            if self._local is not None:
                local = self._local.rate_now(view, 0.0, judge_error=why)
                if local is not None:  # None: no model file could be loaded
                    return local
            return self._heuristic.rate_now(view, judge_error=why)
        return Verdict(
            tier=Tier(self.on_failure),
            reason=f"judge unavailable; judge.on_failure is {self.on_failure}",
            source=Source.FALLBACK,
            judge_model=self.name,
            judge_error=why,
        )


def local_slot(config: JudgeConfig) -> ModelSlot | None:
    """The configured model file, loaded; a file that cannot be used is logged and kept in the
    slot's state (/healthz), and the chain carries on without it."""
    if config.local_model is None:
        return None
    slot = ModelSlot(config.local_model)
    try:
        slot.load()
    except ModelFileError:  # logged by the slot; the LLM judge (or on_failure) answers instead
        pass
    return slot


def build_judges(
    config: JudgeConfig, call: StructuredCall, breaker: Breaker, slot: ModelSlot | None = None
) -> JudgeChain:
    """The chain the config asks for; without credentials the LLM judge is left out, saying why.

    `judge.mode`: `local` asks the trained model alone (the LLM judge only if the file cannot be
    used), `hybrid` asks it first, at `judge.local_threshold`, then the LLM judge.
    """
    slot = slot if slot is not None else local_slot(config)
    local: list[Judge] = []
    if slot is not None and config.mode == "local":
        local = [LocalJudge(slot)]
    elif slot is not None and config.mode == "hybrid":
        local = [LocalJudge(slot, config.local_threshold)]
    usable = slot is not None and slot.model is not None
    if config.is_heuristic or (config.mode == "local" and usable):
        return JudgeChain(local or [HeuristicJudge()], config.on_failure, breaker, config.model,
                          local_slot=slot)  # fmt: skip
    missing = missing_credentials(config.entry)
    if missing:
        reason = f"no credentials: {', '.join(missing)} not set"
        name = LocalJudge.name if usable else HeuristicJudge.name
        return JudgeChain(local, config.on_failure, breaker, name, reason, slot)
    llm = LLMJudge(config, call)
    return JudgeChain([*local, llm], config.on_failure, breaker, config.model, local_slot=slot)
