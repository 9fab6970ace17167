"""`strategy: cascade`: answer with a cheap tier, check the answer, climb one tier when it fails.

Each step asks one tier's models (a provider error falls back within the tier, as `direct` does)
and runs `cascade.checks` on the answer, then the grader when `cascade.grader_min_score` is set.
The first answer that passes is the client's. When every tier up to the decision's ceiling (a
rule's `max_tier`, a budget's cap, else `high`) fails, the last answer is sent and flagged
`cascade_exhausted`. Every answer bought is paid for: the rejected ones are in the request's cost.

A streamed request is answered whole and then relayed (`cascade.stream: buffer`), since an
answer cannot be checked before it ends; `refuse` turns such requests away instead.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from judge_router.accounting.outcome_row import OutcomeRow, grade_score
from judge_router.config import Settings
from judge_router.quality.answer_text import answer_text
from judge_router.quality.checks import AnswerChecks, Failed
from judge_router.quality.grader import Grade, Grader
from judge_router.service.buffered import replayed_stream
from judge_router.service.direct import ModelsFor, Trail
from judge_router.types import Decision, Tier, round_usd
from judge_router.upstream.model_chain import (
    AllAttemptsFailed,
    Attempt,
    Completed,
    ModelChain,
    StreamStarted,
)
from judge_router.upstream.prices import Pricer
from judge_router.upstream.sendable import UnsendableRequest

EXHAUSTED = "cascade_exhausted"  # the ledger's quality_flag when no answer passed
FLAG_ERROR = "error"  # a step's failed_check when none of its tier's models answered
GRADER_CHECK = "grader_min_score"


@dataclass(slots=True)
class CascadeStep:
    """One tier tried: which model answered, whether the answer passed, what it cost."""

    model: str
    tier: str
    passed: bool
    failed_check: str | None = None
    detail: str | None = None  # what the failed check found, or why no model answered
    cost_usd: float = 0.0  # the answer's price (0 when no model answered)
    grade: Grade | None = None  # with cascade.grader_min_score

    def public(self) -> dict[str, Any]:
        """The step as `router.cascade` and the ledger's `cascade` column show it."""
        shown: dict[str, Any] = {
            "model": self.model,
            "tier": self.tier,
            "passed": self.passed,
            "failed_check": self.failed_check,
            "cost_usd": round_usd(self.cost_usd),
            # The grader's 1-10 (cascade.grader_min_score); null when not graded or it failed.
            "grade": self.grade.score if self.grade is not None else None,
        }
        return shown

    def outcome(self, request_id: str) -> OutcomeRow | None:
        """The step as an outcome row (a label for the learned judge); None when no model
        answered, since there is no answer to score."""
        if self.failed_check == FLAG_ERROR:
            return None
        grade = self.grade
        return OutcomeRow(
            request_id=request_id,
            source="cascade",
            model=self.model,
            tier=self.tier,
            score=grade_score(grade.score) if grade and grade.score is not None else None,
            grade=grade.score if grade else None,
            passed=self.passed,
            failed_check=self.failed_check,
            reason=(grade.reason if grade and grade.score is not None else None) or self.detail,
            grader_model=grade.grader_model if grade else None,
            grader_prompt=grade.prompt if grade else None,
            grader_cost_usd=round_usd(grade.cost_usd) if grade else 0.0,
            error=grade.error if grade else None,
        )


@dataclass(slots=True)
class CascadeTrail:
    """A cascade's steps in order; the answer sent is `steps[chosen]`."""

    steps: list[CascadeStep] = field(default_factory=list)
    chosen: int = -1
    exhausted: bool = False

    @property
    def strategy(self) -> str:
        return "cascade"

    @property
    def rejected_cost_usd(self) -> float:
        """What the answers that were not sent cost: part of the request's realised cost."""
        return sum(s.cost_usd for i, s in enumerate(self.steps) if i != self.chosen)

    @property
    def grader_cost_usd(self) -> float:
        return sum(s.grade.cost_usd for s in self.steps if s.grade is not None)

    @property
    def quality_flag(self) -> str | None:
        return EXHAUSTED if self.exhausted else None

    def public(self) -> list[dict[str, Any]]:
        return [step.public() for step in self.steps]

    def outcomes(self, request_id: str) -> list[OutcomeRow]:
        found = (step.outcome(request_id) for step in self.steps)
        return [outcome for outcome in found if outcome is not None]


def climb(start: Tier, ceiling: Tier) -> list[Tier]:
    """The tiers a cascade may try: from `start` up to `ceiling` (at least `start` itself)."""
    tiers, tier = [start], start.next_up()
    while tier is not None and tier.rank <= ceiling.rank:
        tiers.append(tier)
        tier = tier.next_up()
    return tiers


class CascadeStrategy:
    def __init__(
        self,
        settings: Settings,
        models: ModelChain,
        models_for: ModelsFor,
        pricer: Pricer,
        grader: Grader | None,
    ):
        cascade = settings.cascade
        self.checks = AnswerChecks(cascade.checks, cascade.refusal_patterns)
        self.min_score = cascade.grader_min_score
        self.grader = grader if self.min_score is not None else None
        self.refuse_streams = cascade.stream == "refuse"
        self.timeout_s = settings.routing.upstream_timeout_s
        self.models = models
        self.models_for = models_for
        self.pricer = pricer

    async def complete(
        self, decision: Decision, params: dict[str, Any]
    ) -> tuple[Completed, Trail | None]:
        """The first answer that passes, or the last one (flagged); raises AllAttemptsFailed
        when no model of any tier answered, or when every provider refused the request."""
        # Every step is a whole answer, also for a streamed request (it is relayed afterwards).
        sent = {k: v for k, v in params.items() if k not in ("stream", "stream_options")}
        trail, attempts = CascadeTrail(), list[Attempt]()
        tried: set[str] = set()
        answered: Completed | None = None
        for tier in climb(decision.tier, decision.ceiling):
            first = tier is decision.tier
            chain = [
                m for m in (decision.models if first else self.models_for(tier)) if m not in tried
            ]
            if not chain:
                continue
            tried.update(chain)
            try:
                done = await self.models.complete(chain, sent, self.timeout_s)
            except AllAttemptsFailed as failure:
                attempts.extend(failure.attempts)
                if failure.all_bad_requests:  # the request is at fault: no tier will take it
                    raise AllAttemptsFailed(attempts) from None
                why = "; ".join(f"{a.model}: {a.error}" for a in failure.attempts)[:300]
                trail.steps.append(CascadeStep(chain[0], tier.value, False, FLAG_ERROR, why))
                continue
            attempts.extend(done.attempts)
            step = await self._judge_answer(done, tier, sent)
            trail.steps.append(step)
            trail.chosen, answered = len(trail.steps) - 1, done
            if step.passed:
                break
        if answered is None:
            raise AllAttemptsFailed(attempts)
        trail.exhausted = not trail.steps[trail.chosen].passed
        answered.attempts = attempts
        return answered, trail

    async def _judge_answer(
        self, done: Completed, tier: Tier, params: dict[str, Any]
    ) -> CascadeStep:
        cost = self.pricer.cost(done.model, done.prompt_tokens, done.completion_tokens)
        failed = self.checks.first_failure(done.response, params)
        grade = None
        if failed is None and self.grader is not None and self.min_score is not None:
            grade = await self.grader.grade(
                params.get("messages") or [], answer_text(done.response)
            )
            # A grader that fails passes the answer: our grader's trouble is not the answer's.
            if grade.score is not None and grade.score < self.min_score:
                failed = Failed(GRADER_CHECK, f"graded {grade.score}, below {self.min_score}")
        return CascadeStep(
            done.model,
            tier.value,
            failed is None,
            failed.check if failed else None,
            failed.detail if failed else None,
            cost,
            grade,
        )

    async def stream(
        self, decision: Decision, params: dict[str, Any]
    ) -> tuple[StreamStarted, Trail | None]:
        if self.refuse_streams:
            raise UnsendableRequest(
                "stream: true cannot be answered by a cascade here (cascade.stream: refuse): an "
                "answer is checked only once it is whole; send stream: false, or ask for "
                '"strategy": "direct"'
            )
        started = time.perf_counter()
        done, trail = await self.complete(decision, params)
        return replayed_stream(done, (time.perf_counter() - started) * 1000), trail
