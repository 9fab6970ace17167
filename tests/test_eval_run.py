"""The eval runner: bounded concurrency, order kept, and a row that fails is reported, not fatal."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from judge_router.config import Settings
from judge_router.evaluation.report import build_report, row_records
from judge_router.evaluation.rows import Dataset, EvalRow
from judge_router.evaluation.run import called_the_judge, evaluate
from judge_router.routing.judges.base import JudgeError
from judge_router.routing.request import RoutingRequest
from judge_router.service.factory import build_engine
from judge_router.types import Decision, Source, Tier, Verdict

from fakes import JUDGE_PRICE, FakeJudge


def _rows(n: int) -> list[EvalRow]:
    tiers = (Tier.LOW, Tier.MEDIUM, Tier.HIGH)
    return [
        EvalRow(
            id=f"r{i}", messages=[{"role": "user", "content": f"prompt {i}"}], tier=tiers[i % 3]
        )
        for i in range(n)
    ]


class FakeDecide:
    """Answers "medium" after a short wait, remembering how many calls ran at once."""

    def __init__(self, fail_on: str | None = None):
        self.running = 0
        self.most = 0
        self.fail_on = fail_on

    async def __call__(self, request: RoutingRequest) -> Decision:
        messages = request.messages
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await asyncio.sleep(0.001)
            if messages[0]["content"] == self.fail_on:
                raise RuntimeError("judge exploded")
            verdict = Verdict(
                tier=Tier.MEDIUM, reason="fake", source=Source.LLM, cost_usd=0.5, latency_ms=2.0
            )
            return Decision(
                request_id="x", prompt_hash="h", verdict=verdict, cached=False, models=["m"],
                prompt_tokens=2,
            )  # fmt: skip
        finally:
            self.running -= 1


async def test_concurrency_is_bounded_and_order_kept() -> None:
    decide = FakeDecide()
    done: list[str] = []
    results = await evaluate(
        _rows(12), decide, concurrency=3, on_row_done=lambda r: done.append(r.row.id)
    )
    assert decide.most == 3
    assert [r.row.id for r in results] == [f"r{i}" for i in range(12)]
    assert sorted(done) == sorted(r.row.id for r in results)
    assert all(r.verdict is Tier.MEDIUM and r.prompt_tokens == 2 for r in results)
    with pytest.raises(ValueError):
        await evaluate(_rows(1), decide, concurrency=0)


async def test_a_row_that_fails_is_marked_and_left_out_of_the_metrics() -> None:
    rows = _rows(4)
    results = await evaluate(rows, FakeDecide(fail_on="prompt 1"), concurrency=2)
    failed = results[1]
    assert failed.verdict is None and failed.error == "RuntimeError: judge exploded"
    report = build_report(Dataset(Path("d.jsonl"), "jsonl", rows), results, "fake", 1.0)
    assert report["judged_rows"] == 3
    assert report["row_errors"] == [{"id": "r1", "error": "RuntimeError: judge exploded"}]
    assert report["verdicts"]["judge"]["n"] == 3
    assert report["operations"]["judge_spend_usd"] == pytest.approx(1.5)
    assert report["operations"]["latency_ms"] == {"p50": 2.0, "p95": 2.0}
    records = row_records(results)
    assert records[1]["error"] == "RuntimeError: judge exploded" and records[1]["verdict"] == ""
    assert [r["length_tier"] for r in records].count("") == 1


async def test_real_router_marks_unusable_messages_as_a_row_error(
    make_settings: Callable[..., Settings],
) -> None:
    engine = build_engine(make_settings(judge={"model": "heuristic"}))
    bad = EvalRow(id="bad", messages=[{"role": "wizard", "content": "x"}], tier=Tier.LOW)
    try:
        bad_result, good_result = await evaluate([bad, *_rows(1)], engine.decide)
    finally:
        await engine.aclose()
    assert bad_result.error is not None and "messages[0].role is 'wizard'" in bad_result.error
    assert good_result.source == "heuristic" and good_result.prompt_tokens


async def test_judge_calls_are_the_calls_the_judge_received(
    make_settings: Callable[..., Settings],
) -> None:
    """A row error, a cache hit and rows skipped by an open breaker are not calls; failures are."""
    fake = FakeJudge(Tier.LOW, JudgeError("timeout", "slow"), JudgeError("provider_error", "500"))
    settings = make_settings(judge={"circuit_breaker": {"failures": 2}})
    engine = build_engine(settings, judges=[fake])

    def row(prompt: str, role: str = "user") -> EvalRow:
        return EvalRow(id=prompt, messages=[{"role": role, "content": prompt}], tier=Tier.LOW)

    rows = [row("bad", role="wizard"), row("p1"), row("p1"), row("p2"), row("p3")]
    rows += [row("p4"), row("p5")]  # the breaker is open after p2 and p3 failed in a row
    try:
        results = await evaluate(rows, engine.decide, concurrency=1)
    finally:
        await engine.aclose()
    assert len(fake.seen) == 3  # p1, p2, p3
    assert [r.called_judge for r in results] == [False, True, False, True, True, False, False]
    assert results[2].cached and results[5].judge_error.startswith("circuit_open")  # type: ignore[union-attr]
    ops = build_report(Dataset(Path("d.jsonl"), "jsonl", rows), results, "fake", 1.0)["operations"]
    assert (ops["judge_calls"], ops["cache_hits"], ops["judge_failures"]) == (3, 1, 4)
    assert ops["latency_ms"]["p50"] is not None  # over the three calls only


async def test_heuristic_answers_and_missing_credentials_are_not_calls(
    make_settings: Callable[..., Settings],
) -> None:
    unset_key = {"api_key": "os.environ/JUDGE_ROUTER_TEST_UNSET_KEY", **JUDGE_PRICE}
    for judge in ({"model": "heuristic"}, {"litellm_params": unset_key}):
        engine = build_engine(make_settings(judge=judge))
        try:
            results = await evaluate(_rows(4), engine.decide)
        finally:
            await engine.aclose()
        assert all(r.judged and not r.called_judge for r in results), judge
        ops = build_report(Dataset(Path("d"), "jsonl", _rows(4)), results, "j", 1.0)["operations"]
        assert ops["judge_calls"] == 0 and ops["latency_ms"] == {"p50": None, "p95": None}


def test_called_the_judge_reads_the_decision() -> None:
    def decision(source: Source, cached: bool = False, error: str | None = None) -> Decision:
        verdict = Verdict(tier=Tier.LOW, reason="r", source=source, judge_error=error)
        return Decision(
            request_id="x", prompt_hash="h", verdict=verdict, cached=cached, models=["m"],
            prompt_tokens=1,
        )  # fmt: skip

    assert called_the_judge(decision(Source.LLM))
    assert called_the_judge(decision(Source.FALLBACK, error="timeout: 2 s"))  # made, then failed
    assert not called_the_judge(decision(Source.CACHE, cached=True))
    assert not called_the_judge(decision(Source.HEURISTIC))
    assert not called_the_judge(decision(Source.HEURISTIC, error="no credentials: KEY not set"))
    assert not called_the_judge(decision(Source.FALLBACK, error="circuit_open: cooling down"))
    assert not called_the_judge(decision(Source.FORCED))
