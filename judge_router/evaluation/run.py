"""Run a judge over labelled rows with bounded concurrency; one row's failure never stops the run."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from judge_router.evaluation.rows import EvalRow
from judge_router.routing.request import RoutingRequest
from judge_router.types import Decision, Source, Tier

Decide = Callable[[RoutingRequest], Awaitable[Decision]]

# Failure kinds of verdicts on which the judge chain never asked the judge: it had no credentials,
# or its circuit breaker was open (see routing/judges/chain.py). Every other kind is a call that failed.
NOT_ASKED = frozenset({"no credentials", "circuit_open"})


@dataclass(frozen=True, slots=True)
class RowResult:
    """What the judge said about one row. `error` set means no verdict at all (the row is left out
    of the metrics); `judge_error` set means the judge failed and `judge.on_failure` answered."""

    row: EvalRow
    prompt_tokens: int | None = None
    verdict: Tier | None = None
    source: str | None = None
    reason: str = ""
    cached: bool = False
    cost_usd: float = 0.0
    latency_ms: float = 0.0  # the judge's own latency; 0 for cached verdicts
    judge_error: str | None = None
    error: str | None = None
    called_judge: bool = False  # a call went to the judge model (answered or failed)

    @property
    def judged(self) -> bool:
        return self.verdict is not None


def called_the_judge(decision: Decision) -> bool:
    """Whether deciding made a call to the judge model. A cache hit (a verdict another row's call
    is sharing included) and the heuristic judge's answer are not calls; a call that failed, leaving
    the answer to judge.on_failure, is one: it was made, and may have been paid for.

    One case reads as a call that was not: a row that shared another row's *failed* call, which is
    only possible when two rows with the same prompt are judged at once and the judge fails.
    """
    verdict = decision.verdict
    if decision.cached or verdict.source in (Source.FORCED, Source.PASSTHROUGH):
        return False
    if verdict.source is Source.LLM:
        return True
    kind = (verdict.judge_error or "").split(":")[0]
    return bool(kind) and kind not in NOT_ASKED


async def judge_row(row: EvalRow, decide: Decide) -> RowResult:
    try:
        # direct: `eval` measures the judge, which a cascade starting at the cheapest tier skips.
        decision = await decide(RoutingRequest(row.messages, "eval", strategy="direct"))
    except Exception as exc:  # a row the judge cannot take is reported, not fatal to the run
        return RowResult(row=row, error=f"{type(exc).__name__}: {exc}"[:300])
    verdict = decision.verdict
    return RowResult(
        row=row,
        prompt_tokens=decision.prompt_tokens,  # the whole conversation's, before truncation
        verdict=verdict.tier,
        source=verdict.source.value,
        reason=verdict.reason,
        cached=decision.cached,
        cost_usd=verdict.cost_usd,
        latency_ms=verdict.latency_ms,
        judge_error=verdict.judge_error,
        called_judge=called_the_judge(decision),
    )


async def evaluate(
    rows: Sequence[EvalRow],
    decide: Decide,
    concurrency: int = 8,
    on_row_done: Callable[[RowResult], None] | None = None,
) -> list[RowResult]:
    """Judge every row, at most `concurrency` at a time; results come back in the rows' order."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    gate = asyncio.Semaphore(concurrency)

    async def one(row: EvalRow) -> RowResult:
        async with gate:
            result = await judge_row(row, decide)
        if on_row_done is not None:
            on_row_done(result)
        return result

    return list(await asyncio.gather(*(one(row) for row in rows)))
