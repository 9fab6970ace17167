"""Quality sampling: the share is what was asked, sampled answers are graded in the background into
outcome rows, rolling means reach /metrics, and a falling tier is warned about once per crossing."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from judge_router.accounting.outcome_row import grade_score
from judge_router.quality.sampling import RollingScores, sampled
from judge_router.testing.fake_upstream import FakeUpstream
from judge_router.types import Tier

from quality_setup import GRADER, loopback_settings, served

TIERS = {
    "low": "openai/quality-3-low",
    "medium": "openai/quality-6-mid",
    "high": "openai/quality-9-big",
}
ALERTS = "judge_router.quality.sampling"


@pytest.mark.parametrize("pct", [1, 5, 10, 33.3, 50, 90])
def test_the_sampled_share_is_within_one_and_a_half_points_of_the_target(pct: float) -> None:
    keys = [f"jr-{index:032x}" for index in range(10_000)]
    share = 100 * sum(sampled(key, pct) for key in keys) / len(keys)
    assert abs(share - pct) <= 1.5


def test_sampling_is_a_pure_function_of_the_request_id() -> None:
    keys = [f"jr-{index}" for index in range(2000)]
    assert [sampled(k, 10) for k in keys] == [sampled(k, 10) for k in keys]
    assert not any(sampled(k, 0) for k in keys) and all(sampled(k, 100) for k in keys)
    # A larger share keeps every request a smaller one picked.
    assert all(sampled(k, 20) for k in keys if sampled(k, 10))


def test_rolling_means_per_tier_and_model_over_the_window() -> None:
    scores = RollingScores(window=3, alert_below=None)
    for grade in (2, 4, 6, 8):
        scores.add("high", "a", grade)
    scores.add("high", "b", 10)
    assert scores.by_model() == {("high", "a"): (6.0, 3), ("high", "b"): (10.0, 1)}
    assert scores.by_tier() == {"high": (8.0, 3)}  # 6, 8 and 10: the last three of the tier


def test_the_alert_is_logged_once_per_crossing(caplog: pytest.LogCaptureFixture) -> None:
    scores = RollingScores(window=4, alert_below=5)

    def alerts() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == ALERTS]

    with caplog.at_level(logging.WARNING, logger=ALERTS):
        for grade in (9, 9, 9, 9, 1, 1, 1):  # the mean falls below 5 at the third 1 (3.0)
            scores.add("low", "m", grade)
        assert len(alerts()) == 1 and "quality alert: tier low" in alerts()[0]
        for grade in (1, 1, 2):  # still below: no new warning
            scores.add("low", "m", grade)
        assert len(alerts()) == 1
        for grade in (9, 9, 9):  # back above: said once
            scores.add("low", "m", grade)
        assert len(alerts()) == 2 and "quality recovered: tier low" in alerts()[1]
        for grade in (1, 1, 1):  # falls again: warned again
            scores.add("low", "m", grade)
        assert len(alerts()) == 3 and alerts()[2].startswith("quality alert: tier low")
        scores.add("high", "m", 1)  # another tier's window is still short
    assert len(alerts()) == 3


def test_the_alert_waits_for_enough_grades() -> None:
    scores = RollingScores(window=100, alert_below=5)
    for _ in range(9):
        scores.add("low", "m", 1)
    assert scores.alerting == set()
    scores.add("low", "m", 1)
    assert scores.alerting == {"low"}


async def test_sampled_answers_become_outcome_rows_and_the_gauge(
    tmp_path: Path, fake_provider: FakeUpstream
) -> None:
    settings = loopback_settings(tmp_path, fake_provider.base_url, tiers=TIERS,
                                 quality={"sample_pct": 100})  # fmt: skip
    for tier in Tier:
        async with served(settings, tier=tier) as app:
            response = await app.chat(f"a {tier.value} question")
            assert response.status_code == 200
            request_id = response.json()["router"]["request_id"]
            await app.engine.quality.idle()  # type: ignore[union-attr]

            model = TIERS[tier.value]
            row = app.outcomes("sample")[(request_id, model)]
            expected = int(model.split("-")[1])  # quality-N answers carry [[grade:N]]
            assert (row.grade, row.score, row.tier) == (expected, grade_score(expected), tier.value)
            assert row.grader_model == GRADER and row.grader_cost_usd > 0 and row.error is None
            assert row.answer_cost_usd == 0  # the client's request paid for the answer

            metrics = (await app.client.get("/metrics")).text
            labels = f'model="{model}",tier="{tier.value}"'
            assert f"judge_router_quality_score{{{labels}}} {float(expected)}" in metrics
            assert f"judge_router_quality_grades{{{labels}}} 1.0" in metrics
            assert (
                f'judge_router_quality_tier_score{{tier="{tier.value}"}} {float(expected)}'
                in metrics
            )
            assert 'judge_router_background_done_total{work="sample"} 1.0' in metrics


async def test_only_the_sampled_share_is_graded(tmp_path: Path, fake_provider: FakeUpstream) -> None:
    settings = loopback_settings(tmp_path, fake_provider.base_url, quality={"sample_pct": 30})
    async with served(settings) as app:
        ids = []
        for index in range(20):
            response = await app.chat(f"question {index}")
            ids.append(response.json()["router"]["request_id"])
        await app.engine.quality.idle()  # type: ignore[union-attr]
        graded = {request_id for request_id, _ in app.outcomes("sample")}
        assert graded == {request_id for request_id in ids if sampled(request_id, 30)}


async def test_a_grader_that_times_out_is_an_outcome_row_with_an_error(
    tmp_path: Path, fake_provider: FakeUpstream
) -> None:
    grader = {"model": "openai/slow-3000-grader", "timeout_s": 0.2, "litellm_params": {
        "api_base": fake_provider.base_url, "api_key": "sk-test-upstream",
        "input_cost_per_token": 1e-7, "output_cost_per_token": 4e-7}}  # fmt: skip
    settings = loopback_settings(tmp_path, fake_provider.base_url,
                                 quality={"sample_pct": 100, "grader": grader})  # fmt: skip
    async with served(settings) as app:
        response = await app.chat("a question")
        assert response.status_code == 200
        assert response.json()["choices"][0]["message"]["content"] == "echo: a question"
        request_id = response.json()["router"]["request_id"]
        await app.engine.quality.idle()  # type: ignore[union-attr]
        (row,) = app.outcomes("sample").values()
        assert row.request_id == request_id and row.grader_model == "openai/slow-3000-grader"
        assert (
            row.score is None and row.error is not None and row.error.startswith("grader timeout")
        )
        assert app.engine.quality_readings().model_scores == {}  # no grade, no mean
        assert app.ledger.stored[request_id].status == "ok"


async def test_a_grader_that_answers_garbage_is_an_outcome_row_with_an_error(
    tmp_path: Path, fake_provider: FakeUpstream
) -> None:
    settings = loopback_settings(tmp_path, fake_provider.base_url, quality={"sample_pct": 100})
    async with served(settings) as app:
        response = await app.chat("a question [[grader:invalid-json]]")
        assert response.status_code == 200
        await app.engine.quality.idle()  # type: ignore[union-attr]
        (row,) = app.outcomes("sample").values()
        assert row.score is None and row.error is not None
        assert row.error.startswith("grader invalid_json") and row.grader_cost_usd > 0


async def test_a_tier_falling_below_the_line_is_logged(
    tmp_path: Path, fake_provider: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    settings = loopback_settings(tmp_path, fake_provider.base_url, tiers={"low": "openai/quality-2-low"},
                                 quality={"sample_pct": 100, "alert_below": 5, "window": 1})  # fmt: skip
    with caplog.at_level(logging.WARNING, logger=ALERTS):
        async with served(settings, tier=Tier.LOW) as app:
            for question in ("one", "two"):
                assert (await app.chat(question)).status_code == 200
                await app.engine.quality.idle()  # type: ignore[union-attr]
    warnings = [r.getMessage() for r in caplog.records if r.name == ALERTS]
    assert len(warnings) == 1  # once per crossing, not once per grade
    assert "tier low rolling mean score 2.00" in warnings[0] and "alert_below 5" in warnings[0]


async def test_the_daily_grader_limit_stops_sampling(
    tmp_path: Path, fake_provider: FakeUpstream
) -> None:
    settings = loopback_settings(tmp_path, fake_provider.base_url,
                                 quality={"sample_pct": 100, "max_usd_per_day": 1e-9})  # fmt: skip
    async with served(settings) as app:
        for question in ("one", "two", "three"):
            assert (await app.chat(question)).status_code == 200
            await app.engine.quality.idle()  # type: ignore[union-attr]
        assert len(app.outcomes("sample")) == 1
        metrics = (await app.client.get("/metrics")).text
        assert (
            'judge_router_background_dropped_total{reason="daily_limit",work="sample"} 2.0'
            in metrics
        )


async def test_no_quality_loop_without_shadow_tests_or_sampling(
    tmp_path: Path, fake_provider: FakeUpstream
) -> None:
    async with served(loopback_settings(tmp_path, fake_provider.base_url)) as app:
        assert app.engine.quality is None
        metrics = (await app.client.get("/metrics")).text
        assert "judge_router_quality_score" in metrics  # declared, with no series
        assert "judge_router_quality_score{" not in metrics


async def test_a_grade_marker_in_the_prompt_is_the_recorded_grade(
    tmp_path: Path, fake_provider: FakeUpstream
) -> None:
    settings = loopback_settings(tmp_path, fake_provider.base_url, quality={"sample_pct": 100})
    async with served(settings, tier=Tier.MEDIUM) as app:
        ids = {}
        for grade in (2, 7):
            response = await app.chat(f"answer this well [[grade:{grade}]]")
            ids[response.json()["router"]["request_id"]] = grade
        await app.engine.quality.idle()  # type: ignore[union-attr]
        rows = app.outcomes("sample")
        assert {request_id: row.grade for (request_id, _), row in rows.items()} == ids
        assert app.engine.quality_readings().model_scores == {("medium", "openai/mid-a"): (4.5, 2)}
