"""Budgets: soft and hard limits (caps and refusals), scopes, spend read back from the ledger
across a restart, no judge call in vain, the month boundary, /stats and invalid budgets."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from judge_router.accounting.budgets import SpendScope, month_bounds, row_spend
from judge_router.accounting.ledger_row import LedgerRow
from judge_router.accounting.sqlite_ledger import SqliteLedger
from judge_router.config import ConfigError, Settings, load_settings
from judge_router.routing.budget_limits import BudgetExceeded
from judge_router.service.engine import Engine
from judge_router.service.factory import build_engine
from judge_router.serving.app import create_app
from judge_router.types import Source, Tier

from fakes import FakeJudge, FakeLedger, ask, settings_data

TEAM = {"scope": {"metadata": "team"}, "value": "search"}
KEYS = {"api_keys": [{"id": "team-a", "key": "a-service-key-of-enough-length"},
                     {"id": "team-b", "key": "b-service-key-of-enough-length"}]}  # fmt: skip


def budget(name: str = "b", usd: float = 3.0, **fields: Any) -> dict[str, Any]:
    return {"name": name, "usd_per_month": usd, **fields}


def spent_row(cost: float, created_at: str | None = None, **fields: Any) -> LedgerRow:
    """A row that spent `cost` on its answer (judge free), created now unless told otherwise."""
    values: dict[str, Any] = {
        "request_id": f"jr-{uuid.uuid4().hex}", "endpoint": "chat", "prompt_hash": "h",
        "tier": "high", "model": "openai/big-a", "source": "llm", "cached": False, "reason": "r",
        "judge_model": "j", "judge_error": None, "judge_cost_usd": 0.0, "judge_latency_ms": 1.0,
        "prompt_tokens": 10, "estimated_cost_usd": 0.5, "baseline_model": "openai/big-a",
        "estimated_baseline_cost_usd": 0.5, "latency_ms": 1.0, "status": "ok", "cost_usd": cost,
    }  # fmt: skip
    if created_at is not None:
        values["created_at"] = created_at
    return LedgerRow(**{**values, **fields})


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def budgeted(
    make_settings: Callable[..., Settings],
) -> AsyncIterator[Callable[..., Awaitable[tuple[Engine, FakeJudge, FakeLedger]]]]:
    """Makes engines whose judge says high for $1 a verdict, on a fake ledger; closes them."""
    engines: list[Engine] = []

    async def make(
        budgets: list[dict[str, Any]],
        ledger: FakeLedger | None = None,
        clock: Clock | None = None,
        **overrides: Any,
    ) -> tuple[Engine, FakeJudge, FakeLedger]:
        judge = FakeJudge(default=Tier.HIGH, cost_usd=1.0)
        ledger = ledger or FakeLedger()
        settings = make_settings(budgets=budgets, **overrides)
        kwargs = {"clock": clock} if clock else {}
        engines.append(build_engine(settings, judges=[judge], ledger=ledger, **kwargs))
        return engines[-1], judge, ledger

    yield make
    for engine in engines:
        await engine.aclose()


async def test_soft_then_hard_limit_caps_then_refuses_before_the_judge(budgeted: Any) -> None:
    engine, judge, ledger = await budgeted([budget(
        "team-search", 3.0, **TEAM, soft_pct=50, over_soft="max_tier_medium")])  # fmt: skip
    search = {"metadata": {"team": "search"}}
    first = await engine.route(ask("one", **search))  # $0: ok
    second = await engine.route(ask("two", **search))  # $1.003: ok (soft from $1.50)
    third = await engine.route(ask("three", **search))  # $2.006: soft, capped
    assert (first.tier, second.tier, first.budget) == (Tier.HIGH, Tier.HIGH, None)
    assert (third.tier, third.source, third.budget) == (Tier.MEDIUM, Source.BUDGET, "team-search")
    assert "was high; budget team-search past its soft limit (50% of $3/month" in third.reason
    assert third.judge_cost_usd == 1.0 and len(judge.seen) == 3  # judged, then capped
    assert ledger.stored[third.request_id].budget == "team-search"
    with pytest.raises(BudgetExceeded) as refused:  # $3.006: spent, refused with no judge call
        await engine.route(ask("four", **search))
    assert len(judge.seen) == 3 and len(ledger.stored) == 3  # no judge call, no row
    next_month = month_bounds(datetime.now(UTC))[1].isoformat()
    assert str(refused.value) == (
        "budget 'team-search' (metadata team = search) is spent: $3.01 of $3 this month; "
        f"requests in its scope are refused until it resets at {next_month}"
    )
    other = await engine.route(ask("four", metadata={"team": "ads"}))  # out of scope
    assert (other.tier, other.budget) == (Tier.HIGH, None)


async def test_a_hard_cap_instead_of_a_refusal_and_forced_or_passthrough_are_not_capped(
    budgeted: Any,
) -> None:
    ledger = FakeLedger()
    await ledger.record(spent_row(5.0))
    engine, judge, _ = await budgeted(
        [budget("everyone", 4.0, over_hard="max_tier_medium")], ledger=ledger
    )
    routed = await engine.decide(ask("prove it"))
    forced = await engine.decide(ask("prove it", tier=Tier.HIGH))
    passthrough = await engine.decide(ask("prove it", model="openai/big-b"))
    assert (routed.tier, routed.verdict.source, routed.budget) == (
        Tier.MEDIUM, Source.BUDGET, "everyone")  # fmt: skip
    assert routed.models == ["openai/mid-a"] and len(judge.seen) == 1
    assert (forced.tier, forced.verdict.source, forced.budget) == (Tier.HIGH, Source.FORCED, None)
    assert (passthrough.models, passthrough.budget) == (["openai/big-b"], None)


async def test_a_refusal_applies_to_forced_and_passthrough_requests_too(budgeted: Any) -> None:
    ledger = FakeLedger()
    await ledger.record(spent_row(5.0))
    engine, judge, _ = await budgeted([budget("everyone", 4.0)], ledger=ledger)
    for request in (ask("x", tier=Tier.LOW), ask("x", model="openai/cheap-a"), ask("x")):
        with pytest.raises(BudgetExceeded):
            await engine.decide(request)
    assert judge.seen == []
    assert (await engine.budget_report())[0]["rejected"] == 3


async def test_a_cap_to_the_lowest_tier_never_asks_the_judge(budgeted: Any) -> None:
    engine, judge, _ = await budgeted(
        [budget("tight", 100.0, soft_pct=0, over_soft="max_tier_low")]
    )
    decision = await engine.decide(ask("design a distributed database"))
    assert (decision.tier, decision.verdict.source, decision.budget) == (
        Tier.LOW, Source.BUDGET, "tight")  # fmt: skip
    assert decision.models == ["openai/cheap-a"] and decision.verdict.cost_usd == 0
    assert "caps it to low: no judge needed" in decision.verdict.reason
    assert judge.seen == []


async def test_a_rule_that_leaves_one_tier_never_asks_the_judge(budgeted: Any) -> None:
    rules = [{"name": "free", "match": {"metadata": {"plan": "free"}}, "max_tier": "low"},
             {"name": "vip", "match": {"metadata": {"plan": "vip"}}, "min_tier": "high"}]  # fmt: skip
    engine, judge, _ = await budgeted([], rules=rules)
    free = await engine.decide(ask("hard question", metadata={"plan": "free"}))
    vip = await engine.decide(ask("easy question", metadata={"plan": "vip"}))
    assert (free.tier, free.verdict.source, free.rule) == (Tier.LOW, Source.RULE, "free")
    assert (vip.tier, vip.verdict.source, vip.rule) == (Tier.HIGH, Source.RULE, "vip")
    assert judge.seen == []


async def test_a_cap_below_a_rules_floor_wins_and_a_rules_model_is_capped(budgeted: Any) -> None:
    rules = [{"name": "vip", "match": {"metadata": {"plan": "vip"}}, "min_tier": "high"},
             {"name": "big-b", "match": {"metadata": {"plan": "big"}}, "model": "openai/big-b"}]  # fmt: skip
    caps = [budget("tight", 100.0, soft_pct=0, over_soft="max_tier_medium")]
    engine, judge, _ = await budgeted(caps, rules=rules)
    vip = await engine.decide(ask("q", metadata={"plan": "vip"}))
    big = await engine.decide(ask("q", metadata={"plan": "big"}))
    assert (vip.tier, vip.verdict.source, vip.budget) == (Tier.MEDIUM, Source.BUDGET, "tight")
    assert (big.tier, big.models, big.rule, big.budget) == (
        Tier.MEDIUM, ["openai/mid-a"], "big-b", "tight")  # fmt: skip
    assert judge.seen == []


async def test_a_request_under_a_cap_is_never_held_back_on_the_baseline(budgeted: Any) -> None:
    caps = [budget("tight", 100.0, soft_pct=0, over_soft="max_tier_medium")]
    engine, _, _ = await budgeted(caps, rollout={"medium": 0, "high": 0})
    decisions = [await engine.decide(ask(f"question {i}")) for i in range(20)]
    assert {d.arm for d in decisions} == {"exempt"}  # in neither arm of the comparison
    assert {d.model for d in decisions} == {"openai/mid-a"}


async def test_scope_by_api_key(budgeted: Any) -> None:
    ledger = FakeLedger()
    await ledger.record(spent_row(5.0, api_key_id="team-a"))
    caps = [budget("team-a", 4.0, scope={"api_key_id": "team-a"})]
    engine, _, _ = await budgeted(caps, ledger=ledger, server=KEYS)
    with pytest.raises(BudgetExceeded, match="'team-a' \\(api key team-a\\)"):
        await engine.decide(ask("x", api_key_id="team-a"))
    assert (await engine.decide(ask("x", api_key_id="team-b"))).tier is Tier.HIGH
    assert (await engine.decide(ask("x"))).tier is Tier.HIGH


async def test_several_budgets_the_strictest_applies(budgeted: Any) -> None:
    ledger = FakeLedger()
    await ledger.record(spent_row(5.0, metadata={"team": "search"}))
    caps = [budget("everyone", 1000.0, soft_pct=0, over_soft="max_tier_medium"),
            budget("team-search", 4.0, **TEAM, over_hard="max_tier_low")]  # fmt: skip
    engine, _, _ = await budgeted(caps, ledger=ledger)
    search = await engine.decide(ask("x", metadata={"team": "search"}))
    ads = await engine.decide(ask("x", metadata={"team": "ads"}))
    assert (search.tier, search.budget) == (Tier.LOW, "team-search")
    assert (ads.tier, ads.budget) == (Tier.MEDIUM, "everyone")


async def test_spend_is_read_back_from_the_ledger_across_a_restart(
    make_settings: Callable[..., Settings],
) -> None:
    caps = [budget("team-search", 2.0, **TEAM, soft_pct=50, over_soft="max_tier_medium")]
    settings = make_settings(budgets=caps)
    search = {"metadata": {"team": "search"}}
    engine = build_engine(settings, judges=[FakeJudge(default=Tier.HIGH, cost_usd=1.0)])
    assert (await engine.route(ask("one", **search))).tier is Tier.HIGH  # the SQLite ledger
    await engine.aclose()

    judge = FakeJudge(default=Tier.HIGH, cost_usd=1.0)
    restarted = build_engine(settings, judges=[judge])  # $1.003 spent: soft, read back
    capped = await restarted.route(ask("two", **search))
    assert (capped.tier, capped.budget) == (Tier.MEDIUM, "team-search")
    (report,) = await restarted.budget_report()
    assert report["state"] == "hard" and report["spent_usd"] == pytest.approx(2.0036, abs=1e-3)
    await restarted.aclose()

    judge = FakeJudge(default=Tier.HIGH, cost_usd=1.0)
    again = build_engine(settings, judges=[judge])
    with pytest.raises(BudgetExceeded):
        await again.route(ask("three", **search))
    assert judge.seen == []
    await again.aclose()


async def test_rows_are_counted_once_between_and_across_reads(budgeted: Any) -> None:
    engine, _, ledger = await budgeted([budget("everyone", 100.0)])
    tracker = engine.budgets
    assert tracker is not None
    for prompt in ("a", "b", "c"):
        await engine.route(ask(prompt))
    counted = tracker.spent(0)
    assert counted == pytest.approx(sum(row_spend(row) for row in ledger.stored.values()))
    assert await tracker.refresh() and tracker.spent(0) == pytest.approx(counted)
    provisional = spent_row(7.0, stream=True)
    tracker.observe(provisional, True, True)  # a stream's first row: its final row counts
    assert tracker.spent(0) == pytest.approx(counted)

    # A row recorded while a read is running is counted once, whether or not the read saw it.
    gate = asyncio.Event()
    real_spend = ledger.spend

    async def slow_spend(*args: Any) -> list[float]:
        await gate.wait()
        return await real_spend(*args)

    ledger.spend = slow_spend  # type: ignore[method-assign]
    reading = asyncio.create_task(tracker.refresh())
    await asyncio.sleep(0)  # the read has taken its cutoff and waits
    await engine.route(ask("d"))  # created after the cutoff, and in the ledger the read sees
    gate.set()
    assert await reading
    assert tracker.spent(0) == pytest.approx(sum(row_spend(r) for r in ledger.stored.values()))


async def test_the_month_boundary_resets_every_budget(budgeted: Any) -> None:
    ledger = FakeLedger()
    await ledger.record(spent_row(5.0, created_at="2031-01-20T10:00:00+00:00"))
    clock = Clock(datetime(2031, 1, 31, 23, 59, 0, tzinfo=UTC))
    engine, _, _ = await budgeted([budget("everyone", 4.0)], ledger=ledger,
                                     clock=clock)  # fmt: skip
    with pytest.raises(BudgetExceeded) as refused:
        await engine.decide(ask("x"))
    assert refused.value.limit.retry_after_s == 60
    assert refused.value.limit.resets_at == datetime(2031, 2, 1, tzinfo=UTC)
    clock.now += timedelta(minutes=1)  # 2031-02-01T00:00: a new month, before any read
    assert (await engine.decide(ask("x"))).tier is Tier.HIGH
    assert engine.budgets is not None and await engine.budgets.refresh()
    (report,) = await engine.budget_report()
    assert (report["spent_usd"], report["state"], report["resets_at"]) == (
        0.0, "ok", "2031-03-01T00:00:00+00:00")  # fmt: skip


async def test_a_failing_ledger_read_keeps_the_figures_in_memory(budgeted: Any) -> None:
    engine, _, ledger = await budgeted([budget("everyone", 100.0)])
    await engine.route(ask("a"))
    assert engine.budgets is not None
    before = engine.budgets.spent(0)
    ledger.failing = True
    assert not await engine.budgets.refresh()
    assert engine.budgets.spent(0) == before > 0


async def test_eval_runs_are_not_budgeted(budgeted: Any) -> None:
    ledger = FakeLedger()
    await ledger.record(spent_row(5.0))
    engine, _, _ = await budgeted([budget("everyone", 4.0)], ledger=ledger)
    assert (await engine.decide(ask("x", endpoint="eval"))).tier is Tier.HIGH


async def test_the_ledgers_sql_and_the_trackers_arithmetic_agree(tmp_path: Path) -> None:
    ledger, fake = SqliteLedger(tmp_path / "ledger.sqlite"), FakeLedger()
    rows = [
        spent_row(1.0, metadata={"team": "search"}, judge_cost_usd=0.25),
        spent_row(2.0, metadata={"team": "ads", "vip": True}, api_key_id="team-a"),
        spent_row(0.0, status="routed", cost_usd=None, estimated_cost_usd=0.125,
                  metadata={"team": "search", "n": 3}),
        spent_row(0.0, status="error", cost_usd=None, judge_cost_usd=0.5),  # no answer: verdict
        spent_row(8.0, created_at="2020-01-01T00:00:00+00:00", metadata={"team": "search"}),
    ]  # fmt: skip
    for row in rows:
        assert await ledger.record(row) and await fake.record(row)
    scopes = [SpendScope(), SpendScope("team", "search"), SpendScope("vip", True),
              SpendScope("n", 3), SpendScope(api_key_id="team-a"), SpendScope("team", "mail")]  # fmt: skip
    start, end = (m.isoformat() for m in month_bounds(datetime.now(UTC)))
    expected = [3.875, 1.375, 2.0, 0.125, 2.0, 0.0]
    assert await ledger.spend(scopes, start, end) == pytest.approx(expected)
    assert await fake.spend(scopes, start, end) == pytest.approx(expected)
    await ledger.close()


async def test_429_names_the_budget_and_when_it_resets_and_stats_lists_budgets(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(budgets=[
        budget("team-search", 1.0, **TEAM), budget("everyone", 20000.0, over_hard="max_tier_low"),
    ])  # fmt: skip
    seed = SqliteLedger(settings.ledger.path)
    await seed.record(spent_row(1.5, metadata={"team": "search"}))
    await seed.close()
    engine = build_engine(settings, judges=[FakeJudge(default=Tier.HIGH)])
    transport = httpx.ASGITransport(app=create_app(settings, engine))
    async with httpx.AsyncClient(transport=transport, base_url="http://router.test") as client:
        body = {"prompt": "hello", "metadata": {"team": "search"}}
        refused = await client.post("/route", json=body)
        chat = {"model": "auto", "messages": [{"role": "user", "content": "hi"}],
                "metadata": {"team": "search"}}  # fmt: skip
        refused_chat = await client.post("/v1/chat/completions", json=chat)
        allowed = await client.post("/route", json={"prompt": "hello"})
        stats = (await client.get("/stats")).json()
    next_month = month_bounds(datetime.now(UTC))[1]
    for answer in (refused, refused_chat):
        assert answer.status_code == 429
        error = answer.json()["error"]
        assert set(answer.json()) == {"error"} and error["type"] == "budget_exceeded"
        assert "'team-search'" in error["message"] and "$1.50 of $1" in error["message"]
        assert next_month.isoformat() in error["message"]
        wait = int(answer.headers["retry-after"])
        left = (next_month - datetime.now(UTC)).total_seconds()
        assert left - 5 <= wait <= left + 5
    assert allowed.status_code == 200 and allowed.json()["budget"] is None
    search, everyone = stats["budgets"]
    assert search == {
        "name": "team-search", "scope": {"metadata": "team", "value": "search"},
        "usd_per_month": 1.0, "soft_pct": 80.0, "spent_usd": 1.5, "share_pct": 150.0,
        "state": "hard", "resets_at": next_month.isoformat(), "rejected": 2,
    }  # fmt: skip
    assert (everyone["scope"], everyone["state"]) == ({}, "ok")


@pytest.mark.parametrize(
    ("budgets", "fragment"),
    [
        ([budget("zero", 0)], "budget 'zero': usd_per_month: Input should be greater than 0"),
        ([budget("pct", soft_pct=120)], "budget 'pct': soft_pct: Input should be less than"),
        ([budget("act", over_hard="shout")], "budget 'act': over_hard: Input should be"),
        ([budget("soft", over_soft="reject")], "budget 'soft': over_soft: Input should be"),
        ([budget("extra", colour="red")], "budget 'extra': colour: Extra inputs"),
        ([budget("half", scope={"metadata": "team"})],
         "budget 'half': scope {metadata: team} needs `value`"),
        ([budget("both", scope={"metadata": "team", "api_key_id": "team-a"}, value="x")],
         "budget 'both': scope: give `metadata: KEY` (with `value`) or `api_key_id: ID`"),
        ([budget("stray", value="search")], "budget 'stray': `value` goes with"),
        ([budget("loose", over_soft="max_tier_low", over_hard="max_tier_medium")],
         "budget 'loose': over_hard (max_tier_medium) is looser than over_soft (max_tier_low)"),
        ([budget("twice"), budget("twice")], "budgets[1]: the name 'twice' is used twice"),
        ([budget("nokey", scope={"api_key_id": "team-z"})],
         "budgets[0] (nokey): api_key_id 'team-z' is not a key of server.api_keys"),
    ],
)  # fmt: skip
def test_an_invalid_budget_stops_start_up_naming_it(
    tmp_path: Path, budgets: list[dict[str, Any]], fragment: str
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(settings_data(tmp_path, budgets=budgets, server=KEYS)))
    with pytest.raises(ConfigError) as refused:
        load_settings(config)
    assert fragment in str(refused.value)


def test_the_issues_example_is_a_valid_config(make_settings: Callable[..., Settings]) -> None:
    example = yaml.safe_load("""
budgets:
  - {name: team-search, scope: {metadata: team}, value: search, usd_per_month: 500, soft_pct: 80,
     over_soft: max_tier_medium, over_hard: reject}
  - {name: everyone, usd_per_month: 20000, over_hard: max_tier_low}
""")
    search, everyone = make_settings(**example).budgets
    assert (search.value, search.over_soft, everyone.over_soft, everyone.soft_pct) == (
        "search", "max_tier_medium", None, 80)  # fmt: skip


async def test_a_row_whose_metadata_sqlite_cannot_parse_does_not_fail_the_refresh(
    make_settings: Callable[..., Settings],
) -> None:
    caps = [budget("team-search", 5.0, **TEAM)]
    settings = make_settings(budgets=caps)
    engine = build_engine(settings, judges=[FakeJudge(default=Tier.LOW, cost_usd=1.0)])
    await engine.route(ask("nan", metadata={"team": "search", "score": float("nan")}))
    await engine.route(ask("fine", metadata={"team": "search"}))
    await engine.aclose()
    restarted = build_engine(settings, judges=[FakeJudge(default=Tier.LOW)])
    tracker = restarted.budgets
    assert tracker is not None and await tracker.refresh()  # the NaN row is out of scope
    assert 1.0 <= tracker.spent(0) < 2.0  # the readable row counted, the other not
    await restarted.aclose()


async def test_exempt_requests_are_in_neither_arm_of_stats(
    make_settings: Callable[..., Settings],
) -> None:
    caps = [budget("tight", 100.0, soft_pct=0, over_soft="max_tier_medium")]
    engine = build_engine(  # the judge says low: under the cap, left alone (source llm)
        make_settings(budgets=caps, rollout={"low": 50}),
        judges=[FakeJudge(default=Tier.LOW, cost_usd=1.0)],
    )
    for i in range(6):
        await engine.route(ask(f"question {i}"))
    summary = await engine.ledger.summary()
    await engine.aclose()
    assert summary["totals"]["requests"] == 6  # counted everywhere else
    assert summary["by_arm"] == []  # but not in the comparison of the arms
