"""Shadow tests: a candidate model answers a share of requests in the background, after the
client has its answer, and both answers are graded.

Which requests: those whose tier is in the test's `tiers`, chosen by their prompt hash salted
with the candidate's name (`in_shadow_share`), so a test sees the same prompts every time and two
tests do not pick the same ones. Requests that make no comparison are left out: the rollout's
holdout arm (the baseline answered), a passthrough model (the client chose it), and a candidate
that is the model that answered. A request whose models all failed never reaches a shadow test.

The candidate is called on its own model chain (own circuit breaker: a failing candidate cannot
open the circuit of a model live traffic uses), never streamed. The pair becomes two outcome rows
(source `shadow`): the answered model's, and the candidate's, which carries what the pair cost:
the candidate's answer (`answer_cost_usd`) and both grades (`grader_cost_usd`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from judge_router.accounting.outcome_row import OutcomeRow
from judge_router.config import ShadowTest
from judge_router.quality.answer_text import answer_text
from judge_router.quality.background import BackgroundWork
from judge_router.quality.grader import Grader
from judge_router.quality.sampling import graded_outcome, share_point
from judge_router.types import Decision, Source
from judge_router.upstream.model_chain import AllAttemptsFailed, ModelChain
from judge_router.upstream.prices import Pricer

RecordOutcome = Callable[[OutcomeRow], Awaitable[bool]]
SOURCE = "shadow"
# What made the client's call a stream; the candidate's call is a plain completion.
_STREAM_PARAMS = frozenset({"stream", "stream_options"})


def in_shadow_share(prompt_hash: str, candidate: str, pct: float) -> bool:
    """Whether a prompt is in a shadow test's share: its hash, salted by the candidate's name."""
    return share_point(f"shadow:{candidate}:{prompt_hash}") < pct * 100


class ShadowRunner:
    """One `shadow:` entry: picks its requests, calls the candidate, grades, records."""

    def __init__(
        self,
        test: ShadowTest,
        models: ModelChain,
        pricer: Pricer,
        grader: Grader | None,
        work: BackgroundWork,
        record: RecordOutcome,
        timeout_s: float,
    ):
        self.test = test
        self.candidate = test.candidate.model
        self.tiers = frozenset(tier.value for tier in test.tiers)
        self.models = models
        self.pricer = pricer
        self.grader = grader if test.grade else None
        self.work = work
        self.record = record
        self.timeout_s = timeout_s

    def wants(self, decision: Decision, model: str) -> bool:
        return (
            decision.tier.value in self.tiers
            and decision.arm != "holdout"
            and decision.verdict.source is not Source.PASSTHROUGH
            and model != self.candidate
            and in_shadow_share(decision.prompt_hash, self.test.name, self.test.share_pct)
        )

    def offer(self, decision: Decision, params: dict[str, Any], model: str, text: str) -> None:
        """Queue the comparison if the request is in this test's share; returns at once."""
        if not self.wants(decision, model):
            return
        sent = {key: value for key, value in params.items() if key not in _STREAM_PARAMS}
        request_id, tier = decision.request_id, decision.tier.value

        async def job() -> float:
            return await self.compare(request_id, tier, sent, model, text)

        self.work.submit(job)

    async def compare(
        self, request_id: str, tier: str, params: dict[str, Any], model: str, text: str
    ) -> float:
        """Ask the candidate, grade both answers, record the pair; the USD spent."""
        try:
            done = await self.models.complete([self.candidate], params, self.timeout_s)
        except Exception as exc:  # the candidate's failure is recorded, never raised
            await self.record(self._failed(request_id, tier, exc))
            return 0.0
        answer_cost = self.pricer.cost(done.model, done.prompt_tokens, done.completion_tokens)
        if self.grader is None:
            await self.record(OutcomeRow(request_id, SOURCE, model, tier))
            await self.record(OutcomeRow(request_id, SOURCE, self.candidate, tier,
                                         answer_cost_usd=answer_cost))  # fmt: skip
            return answer_cost
        messages = params.get("messages") or []
        primary = await self.grader.grade(messages, text)
        candidate = await self.grader.grade(messages, answer_text(done.response))
        graded = primary.cost_usd + candidate.cost_usd
        await self.record(graded_outcome(request_id, SOURCE, tier, model, primary, 0.0))
        await self.record(
            graded_outcome(request_id, SOURCE, tier, self.candidate, candidate, graded, answer_cost)
        )
        return answer_cost + graded

    def _failed(self, request_id: str, tier: str, exc: Exception) -> OutcomeRow:
        if isinstance(exc, AllAttemptsFailed):
            why = "; ".join(attempt.error or "" for attempt in exc.attempts)
        else:
            why = f"{type(exc).__name__}: {exc}"
        return OutcomeRow(request_id, SOURCE, self.candidate, tier, error=f"candidate {why}"[:300])
