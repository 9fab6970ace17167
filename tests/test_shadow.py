"""Shadow tests against the loopback fake provider: the candidate answers in the background, after
the client has its answer, and never delays, fails or changes it; the pair is graded and recorded;
the day's limit and the queue bound stop the work (counted)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from judge_router.accounting.outcome_row import OutcomeRow, grade_score
from judge_router.quality.background import DAILY_LIMIT, QUEUE_FULL, SHUTDOWN
from judge_router.quality.shadow import in_shadow_share
from judge_router.testing.fake_upstream import FakeUpstream
from judge_router.types import Tier

from quality_setup import GRADER, Served, loopback_settings, served, shadow_test

PRIMARY = "openai/quality-9-big"
CANDIDATE = "openai/quality-4-cand"
DEADLINE_S = 10


def shadowed(
    tmp_path: Path, fake_provider: FakeUpstream, candidate: str = CANDIDATE, **test: Any
) -> Any:
    base = fake_provider.base_url
    return loopback_settings(
        tmp_path, base, tiers={"high": PRIMARY}, shadow=[shadow_test(candidate, base, **test)]
    )


def requests_to(fake_provider: FakeUpstream, model: str) -> list[dict[str, Any]]:
    """The bodies the fake received for `model` (litellm sends the name without `openai/`)."""
    name = model.removeprefix("openai/")
    return [
        r.body
        for r in fake_provider.requests
        if isinstance(r.body, dict) and r.body.get("model") == name
    ]


async def until(condition: Any, what: str) -> None:
    """Wait for `condition()` (polled, bounded): e.g. the fake having received a request."""
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def public_row(app: Served, request_id: str) -> dict[str, Any]:
    row = app.ledger.stored[request_id].as_params()
    return {k: v for k, v in row.items() if k not in ("request_id", "created_at", "latency_ms",
                                                      "upstream_latency_ms")}  # fmt: skip


async def test_the_pair_is_graded_and_recorded_as_two_outcome_rows(
    tmp_path: Path, fake_provider: FakeUpstream
) -> None:
    async with served(shadowed(tmp_path, fake_provider)) as app:
        answer = await app.chat("what is the capital of France?")
        assert answer.status_code == 200
        request_id = answer.json()["router"]["request_id"]
        await app.engine.quality.idle()  # type: ignore[union-attr]

        rows = app.outcomes("shadow")
        primary, candidate = rows[(request_id, PRIMARY)], rows[(request_id, CANDIDATE)]
        # The fake models' answers carry [[grade:N]] (quality-N); the fake grader reads it.
        assert (primary.grade, candidate.grade) == (9, 4)
        assert (primary.score, candidate.score) == (grade_score(9), grade_score(4))
        assert primary.tier == candidate.tier == "high"
        assert primary.error is None and candidate.error is None
        assert primary.grader_model == candidate.grader_model == GRADER
        # The candidate's row carries what the pair cost: its answer, and both grades.
        assert primary.grader_cost_usd == 0 and primary.answer_cost_usd == 0
        sent = requests_to(fake_provider, CANDIDATE)
        assert len(sent) == 1 and "stream" not in sent[0]
        assert sent[0]["messages"] == [
            {"role": "user", "content": "what is the capital of France?"}
        ]
        assert candidate.answer_cost_usd > 0
        graders = len(requests_to(fake_provider, GRADER))
        assert graders == 2 and candidate.grader_cost_usd > 0
        readings = app.engine.quality_readings().work[0]
        assert readings.done == 1
        assert readings.spent_usd == pytest.approx(
            candidate.answer_cost_usd + candidate.grader_cost_usd
        )


async def test_a_streamed_answer_is_shadowed_by_a_plain_call(
    tmp_path: Path, fake_provider: FakeUpstream
) -> None:
    async with served(shadowed(tmp_path, fake_provider)) as app:
        answer = await app.chat("stream me a story", stream=True)
        assert answer.status_code == 200 and answer.text.rstrip().endswith("data: [DONE]")
        await app.engine.quality.idle()  # type: ignore[union-attr]
        (sent,) = requests_to(fake_provider, CANDIDATE)
        assert "stream" not in sent and "stream_options" not in sent
        grades = {model: row.grade for (_, model), row in app.outcomes("shadow").items()}
        assert grades == {PRIMARY: 9, CANDIDATE: 4}


async def test_a_slow_candidate_is_not_asked_until_the_answer_is_complete(
    tmp_path: Path, fake_provider: FakeUpstream
) -> None:
    slow = "openai/slow-30000-cand"
    async with served(shadowed(tmp_path, fake_provider, slow)) as app:
        engine = app.engine
        assert engine.quality is not None
        (work,) = engine.quality.works
        work.grace_s = 0.05  # the candidate never answers within the test: cut it at the end
        decision = await engine.decide(_ask("a question for the big model"))
        answer = await engine.answering.complete(decision, {"messages": _messages("q")})

        # The answer is complete and its row written while the comparison has not even begun:
        # the candidate's call cannot have added to its latency.
        assert answer.model == PRIMARY and decision.request_id in app.ledger.stored
        assert work.queued == 1 and work.in_flight == 0 and requests_to(fake_provider, slow) == []

        # Through HTTP: the client has its answer while the candidate's call is still open.
        response = await app.chat("another question")
        assert response.status_code == 200
        await until(lambda: len(requests_to(fake_provider, slow)) == 2, "both candidate calls")
        assert work.in_flight == 2 and work.done == 0 and app.outcomes("shadow") == {}
        await engine.aclose()
        assert work.dropped[SHUTDOWN] == 2  # both cut short at shutdown


async def test_the_primary_answer_and_row_are_the_same_with_and_without_a_shadow_test(
    tmp_path: Path, fake_provider: FakeUpstream
) -> None:
    plain = loopback_settings(tmp_path / "plain", fake_provider.base_url, tiers={"high": PRIMARY})
    results = []
    for settings in (plain, shadowed(tmp_path, fake_provider, "openai/fail-500-cand")):
        async with served(settings) as app:
            response = await app.chat("the same question")
            body = response.json()
            request_id = body["router"].pop("request_id")
            body.pop("id"), body.pop("created")
            results.append((response.status_code, body, public_row(app, request_id)))
    assert results[0] == results[1]


async def test_a_failing_candidate_gives_an_outcome_row_with_its_error(
    tmp_path: Path, fake_provider: FakeUpstream
) -> None:
    failing = "openai/fail-500-cand"
    async with served(shadowed(tmp_path, fake_provider, failing)) as app:
        response = await app.chat("a question")
        assert response.status_code == 200
        assert response.json()["choices"][0]["message"]["content"].startswith("echo: a question")
        request_id = response.json()["router"]["request_id"]
        await app.engine.quality.idle()  # type: ignore[union-attr]

        rows = app.outcomes("shadow")
        assert list(rows) == [(request_id, failing)]  # no comparison, so the primary is not graded
        row = rows[(request_id, failing)]
        assert row.score is None and row.error is not None
        assert (
            row.error.startswith("candidate provider_error") and "server had an error" in row.error
        )
        assert requests_to(fake_provider, GRADER) == []
        assert app.ledger.stored[request_id].status == "ok"


async def test_a_grader_that_answers_garbage_is_recorded_as_an_error(
    tmp_path: Path, fake_provider: FakeUpstream
) -> None:
    async with served(shadowed(tmp_path, fake_provider)) as app:
        response = await app.chat("grade this [[grader:invalid-json]]")
        assert response.status_code == 200
        request_id = response.json()["router"]["request_id"]
        await app.engine.quality.idle()  # type: ignore[union-attr]
        rows = app.outcomes("shadow")
        for model in (PRIMARY, CANDIDATE):
            row = rows[(request_id, model)]
            assert row.score is None and row.grade is None
            assert row.error is not None and row.error.startswith("grader invalid_json")
        assert rows[(request_id, CANDIDATE)].answer_cost_usd > 0  # the candidate was still paid


class MovableClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def test_the_daily_limit_stops_shadow_calls_until_the_next_day(
    tmp_path: Path, fake_provider: FakeUpstream
) -> None:
    clock = MovableClock()
    settings = shadowed(tmp_path, fake_provider, max_usd_per_day=1e-9)  # one comparison costs more
    async with served(settings, clock=clock) as app:
        quality = app.engine.quality
        assert quality is not None
        (work,) = quality.works
        for question in ("first", "second"):
            assert (await app.chat(question)).status_code == 200
            await quality.idle()
        assert work.done == 1 and work.dropped[DAILY_LIMIT] == 1
        assert len(requests_to(fake_provider, CANDIDATE)) == 1

        clock.now += timedelta(days=1)
        assert (await app.chat("third")).status_code == 200
        await quality.idle()
        assert work.done == 2 and len(requests_to(fake_provider, CANDIDATE)) == 2
        metrics = (await app.client.get("/metrics")).text
        work_label = f'work="shadow:{CANDIDATE}"'
        assert (
            f'judge_router_background_dropped_total{{reason="daily_limit",{work_label}}} 1.0'
            in metrics
        )
        assert f"judge_router_background_done_total{{{work_label}}} 2.0" in metrics


async def test_todays_spend_is_read_from_the_ledger_at_start(
    tmp_path: Path, fake_provider: FakeUpstream
) -> None:
    clock = MovableClock()
    settings = shadowed(tmp_path, fake_provider, max_usd_per_day=0.5)
    async with served(settings, clock=clock) as app:
        yesterday = (clock.now - timedelta(days=1)).isoformat()
        for request_id, created_at in (("jr-old", yesterday), ("jr-today", clock.now.isoformat())):
            row = OutcomeRow(request_id, "shadow", CANDIDATE, "high", answer_cost_usd=0.3,
                             grader_cost_usd=0.2, created_at=created_at)  # fmt: skip
            await app.ledger.record_outcome(row)
        await app.engine.start()  # as the app's lifespan does

        (work,) = app.engine.quality.works  # type: ignore[union-attr]
        assert work.limit.spent_today == pytest.approx(0.5)  # today's row only
        assert (await app.chat("a question")).status_code == 200
        assert work.dropped[DAILY_LIMIT] == 1 and requests_to(fake_provider, CANDIDATE) == []


async def test_the_queue_is_bounded_and_drops_are_counted(
    tmp_path: Path, fake_provider: FakeUpstream
) -> None:
    slow = "openai/slow-30000-cand"
    settings = shadowed(tmp_path, fake_provider, slow, max_queued=1, max_concurrent=1)
    async with served(settings) as app:
        (work,) = app.engine.quality.works  # type: ignore[union-attr]
        work.grace_s = 0.05
        assert (await app.chat("one")).status_code == 200
        await until(lambda: work.in_flight == 1, "the first comparison to start")
        for question in ("two", "three", "four"):
            assert (await app.chat(question)).status_code == 200  # every answer still served
        assert work.queued == 1 and work.dropped[QUEUE_FULL] == 2
        metrics = (await app.client.get("/metrics")).text
        dropped = (
            f'judge_router_background_dropped_total{{reason="queue_full",work="shadow:{slow}"}}'
        )
        assert f"{dropped} 2.0" in metrics
        assert f'judge_router_background_queued{{work="shadow:{slow}"}} 1.0' in metrics


def test_two_shadow_tests_pick_different_requests() -> None:
    hashes = [f"{i:016x}" for i in range(4000)]
    picked = {name: {h for h in hashes if in_shadow_share(h, name, 50)} for name in ("a", "b")}
    for chosen in picked.values():
        assert abs(len(chosen) / len(hashes) - 0.5) < 0.03
    overlap = len(picked["a"] & picked["b"]) / len(hashes)
    assert abs(overlap - 0.25) < 0.03  # independent draws, not the same half


async def test_requests_that_make_no_comparison_are_not_shadowed(
    tmp_path: Path, fake_provider: FakeUpstream
) -> None:
    base = fake_provider.base_url
    # The second test's candidate is the low tier's own model: nothing to compare.
    tests = [shadow_test(CANDIDATE, base, tiers=["high"]),
             shadow_test("openai/cheap-a", base, tiers=["low"])]  # fmt: skip
    held_back = {"high": 0}  # every judged high request goes to the baseline (holdout)
    settings = loopback_settings(tmp_path, base, tiers={"high": PRIMARY}, shadow=tests,
                                 rollout=held_back)  # fmt: skip
    async with served(settings, tier=Tier.LOW) as app:
        low = await app.chat("a low question")  # tier not in the first test's `tiers`
        assert low.json()["router"]["model"] == "openai/cheap-a"
        await app.engine.quality.idle()  # type: ignore[union-attr]
        untouched = app.engine.quality.works  # type: ignore[union-attr]
    async with served(settings, tier=Tier.HIGH) as app:
        holdout = await app.chat("held back")
        assert holdout.json()["router"]["arm"] == "holdout"
        passthrough = await app.chat("named model", model=PRIMARY)
        assert passthrough.json()["router"]["source"] == "passthrough"
        await app.engine.quality.idle()  # type: ignore[union-attr]
        untouched += app.engine.quality.works  # type: ignore[union-attr]
    assert requests_to(fake_provider, CANDIDATE) == [] and requests_to(fake_provider, GRADER) == []
    assert all(work.done == 0 and not work.dropped for work in untouched)


def _messages(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def _ask(text: str) -> Any:
    from fakes import ask

    return ask(text)
