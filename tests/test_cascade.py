"""`strategy: cascade` on the loopback fake provider: escalation and its cost, the flag when every
tier fails, where the strategy comes from, the ceiling, the grader's floor, and the outcome rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from judge_router.accounting.outcome_row import grade_score
from judge_router.evaluation.rows import EvalRow
from judge_router.evaluation.run import judge_row
from judge_router.testing.fake_upstream import FakeUpstream
from judge_router.types import Tier, round_usd

from quality_setup import GRADER, loopback_settings, served

EMPTY, REFUSES, FINE = "openai/answers-empty-low", "openai/answers-refusal-mid", "openai/good-big"


def called(fake_provider: FakeUpstream) -> list[str]:
    """The models the fake was asked, in order (litellm sends the name without `openai/`)."""
    return [
        f"openai/{r.body['model']}"
        for r in fake_provider.requests
        if r.path.endswith("/chat/completions") and isinstance(r.body, dict)
    ]


def cascade_settings(
    tmp_path: Path,
    fake_provider: FakeUpstream,
    tiers: dict[str, str] | None = None,
    **overrides: Any,
) -> Any:
    chosen = {"low": EMPTY, "medium": REFUSES, "high": FINE, **(tiers or {})}
    overrides.setdefault("routing", {"strategy": "cascade"})
    return loopback_settings(tmp_path, fake_provider.base_url, tiers=chosen, **overrides)


async def test_a_cascade_climbs_past_each_failed_check_and_pays_for_every_answer(
    tmp_path: Path, fake_provider: FakeUpstream
) -> None:
    async with served(cascade_settings(tmp_path, fake_provider)) as app:
        reply = await app.chat("What is the capital of France?")
        assert reply.status_code == 200
        body = reply.json()
        router = body["router"]
        steps = router["cascade"]
        assert [(s["model"], s["tier"], s["passed"], s["failed_check"]) for s in steps] == [
            (EMPTY, "low", False, "not_empty"),
            (REFUSES, "medium", False, "not_refusal"),
            (FINE, "high", True, None),
        ]
        assert router["model"] == FINE and router["strategy"] == "cascade"
        assert router["source"] == "cascade" and "quality_flag" not in router
        assert body["choices"][0]["message"]["content"]  # the passing answer is the one sent
        assert all(step["cost_usd"] > 0 for step in steps)
        # The client's cost is every answer bought, the rejected ones included.
        assert router["cost_usd"] == pytest.approx(sum(s["cost_usd"] for s in steps), abs=1e-9)
        (row,) = app.ledger.stored.values()
        assert (row.strategy, row.model, row.quality_flag) == ("cascade", FINE, None)
        assert row.cascade == steps and row.cost_usd == router["cost_usd"]
        assert row.saved_usd == round_usd(row.baseline_cost_usd - row.cost_usd - row.judge_cost_usd)
        # Each answer is an outcome: the labels a learned judge trains on.
        outcomes = app.outcomes("cascade")
        assert {model: o.passed for (_, model), o in outcomes.items()} == {
            EMPTY: False, REFUSES: False, FINE: True,
        }  # fmt: skip
        assert outcomes[(row.request_id, REFUSES)].failed_check == "not_refusal"
        assert all(o.answer_cost_usd == 0 and o.score is None for o in outcomes.values())
    assert called(fake_provider) == [EMPTY, REFUSES, FINE]


async def test_cascade_start_cheapest_asks_no_judge(
    tmp_path: Path, fake_provider: FakeUpstream
) -> None:
    settings = cascade_settings(tmp_path, fake_provider, tiers={"low": "openai/good-low"})
    async with served(settings, tier=Tier.HIGH) as app:
        router = (await app.chat("hello")).json()["router"]
        assert (router["tier"], router["model"], router["judge_cost_usd"]) == (
            "low", "openai/good-low", 0,
        )  # fmt: skip
        assert [s["passed"] for s in router["cascade"]] == [True]
        judge = app.engine.judges.judges[0]
        assert judge.seen == []  # type: ignore[attr-defined]


async def test_cascade_start_judged_begins_at_the_judges_tier(
    tmp_path: Path, fake_provider: FakeUpstream
) -> None:
    settings = cascade_settings(tmp_path, fake_provider, cascade={"start": "judged"})
    async with served(settings, tier=Tier.MEDIUM) as app:
        router = (await app.chat("hello")).json()["router"]
        assert [s["tier"] for s in router["cascade"]] == ["medium", "high"]
        assert router["source"] != "cascade"
    assert EMPTY not in called(fake_provider)


async def test_every_tier_failing_sends_the_last_answer_flagged(
    tmp_path: Path, fake_provider: FakeUpstream
) -> None:
    tiers = {"low": "openai/answers-truncated-a", "medium": "openai/answers-truncated-b",
             "high": "openai/answers-truncated-c"}  # fmt: skip
    async with served(cascade_settings(tmp_path, fake_provider, tiers)) as app:
        reply = await app.chat("Tell me a long story")
        assert reply.status_code == 200
        router = reply.json()["router"]
        assert router["quality_flag"] == "cascade_exhausted"
        assert router["model"] == "openai/answers-truncated-c"
        assert [s["failed_check"] for s in router["cascade"]] == ["not_truncated"] * 3
        (row,) = app.ledger.stored.values()
        assert row.quality_flag == "cascade_exhausted" and row.status == "ok"
        assert row.cost_usd == pytest.approx(sum(s["cost_usd"] for s in router["cascade"]))


async def test_a_rules_max_tier_is_the_cascades_ceiling(
    tmp_path: Path, fake_provider: FakeUpstream
) -> None:
    rules = [{"name": "cheap-only", "max_tier": "medium", "strategy": "cascade"}]
    settings = cascade_settings(
        tmp_path, fake_provider, routing={"strategy": "direct"}, rules=rules
    )
    async with served(settings) as app:
        router = (await app.chat("hello")).json()["router"]
        assert router["rule"] == "cheap-only" and router["strategy"] == "cascade"
        assert router["model"] == REFUSES and router["quality_flag"] == "cascade_exhausted"
    assert FINE not in called(fake_provider)


async def test_the_request_chooses_its_strategy_over_the_config(
    tmp_path: Path, fake_provider: FakeUpstream
) -> None:
    settings = cascade_settings(tmp_path, fake_provider, routing={"strategy": "direct"})
    async with served(settings, tier=Tier.LOW) as app:
        direct = (await app.chat("hello")).json()["router"]
        assert direct["strategy"] == "direct" and "cascade" not in direct
        assert direct["model"] == EMPTY  # direct sends what the tier answered, empty or not
        cascaded = (await app.chat("hello", strategy="cascade")).json()["router"]
        assert cascaded["strategy"] == "cascade" and cascaded["model"] == FINE
        # And the other way round: a cascade configured, a request that wants none.
        rows = {row.strategy for row in app.ledger.stored.values()}
        assert rows == {"direct", "cascade"}
        bad = await app.chat("hello", strategy="fastest")
        assert bad.status_code == 400 and "strategy" in bad.json()["error"]["message"]


async def test_a_request_that_names_a_model_is_answered_by_it_alone(
    tmp_path: Path, fake_provider: FakeUpstream
) -> None:
    async with served(cascade_settings(tmp_path, fake_provider)) as app:
        reply = await app.client.post(
            "/v1/chat/completions",
            json={"model": EMPTY, "messages": [{"role": "user", "content": "hi"}]},
        )
        router = reply.json()["router"]
        assert (router["source"], router["strategy"], router["model"]) == (
            "passthrough", "direct", EMPTY,
        )  # fmt: skip


async def test_a_tier_whose_models_all_fail_is_a_step_and_the_cascade_goes_on(
    tmp_path: Path, fake_provider: FakeUpstream
) -> None:
    tiers = {"low": "openai/fail-500-low"}
    async with served(cascade_settings(tmp_path, fake_provider, tiers)) as app:
        router = (await app.chat("hello")).json()["router"]
        first = router["cascade"][0]
        assert (first["model"], first["failed_check"], first["cost_usd"]) == (
            "openai/fail-500-low", "error", 0,
        )  # fmt: skip
        assert router["model"] == FINE
        assert [a["model"] for a in router["attempts"]] == ["openai/fail-500-low", REFUSES, FINE]
        # No answer, no outcome: the failed tier is in the row's steps only.
        assert "openai/fail-500-low" not in {model for _, model in app.outcomes("cascade")}


async def test_the_graders_floor_escalates_and_its_cost_is_recorded(
    tmp_path: Path, fake_provider: FakeUpstream
) -> None:
    tiers = {"low": "openai/quality-3-low", "medium": "openai/quality-9-mid"}
    settings = cascade_settings(tmp_path, fake_provider, tiers, cascade={"grader_min_score": 7})
    async with served(settings) as app:
        router = (await app.chat("Explain recursion")).json()["router"]
        steps = router["cascade"]
        assert [(s["grade"], s["passed"], s["failed_check"]) for s in steps] == [
            (3, False, "grader_min_score"), (9, True, None),
        ]  # fmt: skip
        (row,) = app.ledger.stored.values()
        assert row.grader_cost_usd > 0
        outcomes = app.outcomes("cascade")
        low = outcomes[(row.request_id, "openai/quality-3-low")]
        assert (low.grade, low.score, low.grader_model) == (3, grade_score(3), GRADER)
        assert sum(o.grader_cost_usd for o in outcomes.values()) == pytest.approx(
            row.grader_cost_usd
        )
        # The grader's cost is not the answer's: cost_usd is the answers alone.
        assert row.cost_usd == pytest.approx(sum(s["cost_usd"] for s in steps))


async def test_a_failing_grader_lets_the_answer_stand_and_says_why(
    tmp_path: Path, fake_provider: FakeUpstream
) -> None:
    tiers = {"low": "openai/good-low"}
    settings = cascade_settings(tmp_path, fake_provider, tiers, cascade={"grader_min_score": 7})
    async with served(settings) as app:
        router = (await app.chat("hello [[grader:invalid-json]]")).json()["router"]
        (step,) = router["cascade"]
        assert (step["passed"], step["grade"]) == (True, None)
        ((_, outcome),) = app.outcomes("cascade").items()
        assert outcome.error is not None and outcome.error.startswith("invalid_json")


async def test_route_says_a_cascade_would_start_at_the_cheapest_tier(
    tmp_path: Path, fake_provider: FakeUpstream
) -> None:
    async with served(cascade_settings(tmp_path, fake_provider)) as app:
        answer = (await app.client.post("/route", json={"prompt": "hello"})).json()
        assert (answer["tier"], answer["strategy"], answer["source"]) == (
            "low",
            "cascade",
            "cascade",
        )
        held = await app.client.post("/route", json={"prompt": "hello", "strategy": "direct"})
        assert held.json()["strategy"] == "direct" and held.json()["source"] != "cascade"


async def test_eval_measures_the_judge_even_when_cascades_are_the_default(
    tmp_path: Path, fake_provider: FakeUpstream
) -> None:
    row = EvalRow("r1", [{"role": "user", "content": "prove it"}], Tier.HIGH)
    async with served(cascade_settings(tmp_path, fake_provider), tier=Tier.HIGH) as app:
        result = await judge_row(row, app.engine.decide)
    assert (result.verdict, result.source) == (Tier.HIGH, "llm")
