"""/stats from daily rollups: the same figures as adding up every row, and fast at a million rows."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from judge_router.accounting.ledger_row import LedgerRow
from judge_router.accounting.migrations import MIGRATIONS, connect, migrate, statements
from judge_router.accounting.sqlite_ledger import SqliteLedger
from judge_router.accounting.stats import summarise
from judge_router.config import Settings
from judge_router.service.factory import build_engine
from judge_router.serving.app import create_app

COSTS = ("judge_cost_usd", "cost_usd", "baseline_cost_usd", "estimated_cost_usd")


BASE: dict[str, Any] = {
    "endpoint": "chat", "prompt_hash": "h", "tier": "low", "model": "m1", "source": "llm",
    "cached": False, "reason": "r", "judge_model": "j", "judge_error": None,
    "judge_cost_usd": 0.001, "judge_latency_ms": 1.0, "prompt_tokens": 10,
    "estimated_cost_usd": 0.01, "baseline_model": "b", "estimated_baseline_cost_usd": 0.1,
    "latency_ms": 2.0, "status": "ok", "cost_usd": 0.02, "baseline_cost_usd": 0.2,
}  # fmt: skip


def row(request_id: str, at: str, **fields: Any) -> LedgerRow:
    return LedgerRow(**{**BASE, "request_id": request_id, "created_at": at, **fields})


ROWS = [
    row("a", "2026-11-29T08:00:00+00:00"),
    row("b", "2026-11-29T23:59:59+00:00", tier="high", model="m2", cost_usd=None,
        baseline_cost_usd=None, status="error"),
    row("c", "2026-11-30T09:00:00+00:00", source="cache", cached=True, judge_cost_usd=0.0),
    row("d", "2026-11-30T15:30:00+00:00", source="forced", status="routed", cost_usd=None,
        baseline_cost_usd=None),
    row("e", "2026-11-30T16:00:00+00:00", status="incomplete", cost_usd=0.005),
    row("f", "2026-12-01T01:00:00+00:00", tier="medium", source="heuristic", judge_cost_usd=0.0),
]  # fmt: skip


def reference(rows: list[LedgerRow], since: str | None) -> dict[str, Any]:
    """The figures added up from every row, the way the first /stats did."""
    kept = [r for r in rows if since is None or r.created_at >= since]

    def totals(group: list[LedgerRow]) -> dict[str, Any]:
        return {
            "requests": len(group),
            "cache_hits": sum(r.cached for r in group),
            "judged": sum(r.source not in ("forced", "passthrough") for r in group),
            "proxied": sum(r.status != "routed" for r in group),
            "errors": sum(r.status == "error" for r in group),
            "incomplete": sum(r.status == "incomplete" for r in group),
            "judge_spend_usd": sum(r.judge_cost_usd for r in group),
            "realised_spend_usd": sum(r.cost_usd or 0 for r in group),
            "baseline_spend_usd": sum(r.baseline_cost_usd or 0 for r in group),
        }

    def by(key: Callable[[LedgerRow], str]) -> dict[str, dict[str, Any]]:
        return {k: totals([r for r in kept if key(r) == k]) for k in sorted({key(r) for r in kept})}

    return {
        "totals": totals(kept),
        "by_tier": by(lambda r: r.tier),
        "by_model": by(lambda r: r.model),
        "by_day": by(lambda r: r.created_at[:10]),
        "sources": {k: v["requests"] for k, v in by(lambda r: r.source).items()},
    }


def figures(summary: dict[str, Any]) -> dict[str, Any]:
    keys = reference([], None)["totals"].keys()

    def pick(values: dict[str, Any]) -> dict[str, Any]:
        return {k: pytest.approx(values[k]) if k.endswith("_usd") else values[k] for k in keys}

    def groups(name: str, column: str) -> dict[str, Any]:
        return {g[column]: pick(g) for g in summary[name]}

    return {
        "totals": pick(summary["totals"]),
        "by_tier": groups("by_tier", "tier"),
        "by_model": groups("by_model", "model"),
        "by_day": groups("by_day", "day"),
        "sources": summary["verdicts_by_source"],
    }


async def write(ledger: SqliteLedger, rows: list[LedgerRow]) -> None:
    for item in rows:
        assert await ledger.record(item)


@pytest.mark.parametrize(
    "since",
    [None, "2026-11-30T00:00:00+00:00", "2026-11-30T12:00:00+00:00", "2026-12-02T00:00:00+00:00"],
)
async def test_rollups_give_the_figures_of_every_row(tmp_path: Path, since: str | None) -> None:
    ledger = SqliteLedger(tmp_path / "l.sqlite")
    provisional = row("s", "2026-11-30T20:00:00+00:00", status="incomplete", stream=True)
    final = row("s", "2026-11-30T20:00:00+00:00", status="ok", stream=True, cost_usd=0.03)
    await write(ledger, [*ROWS, provisional])
    assert await ledger.record(final, replace=True)  # the stream's final row replaces it
    summary = await ledger.summary(since)
    await ledger.close()
    assert figures(summary) == reference([*ROWS, final], since)


def test_an_existing_ledger_gets_its_rollups_filled_in(tmp_path: Path) -> None:
    conn = connect(tmp_path / "l.sqlite")
    conn.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    for name, sql in MIGRATIONS[:3]:  # a ledger written before the rollups (migration 004)
        for statement in statements(sql):
            conn.execute(statement)
        conn.execute("INSERT INTO _migrations VALUES (?, 'then')", (name,))
    later = ("rule", "arm", "budget", "strategy", "cascade", "grader_cost_usd", "quality_flag",
             "features")  # fmt: skip
    old_columns = [c for c in LedgerRow.__dataclass_fields__ if c not in later]
    insert = (
        f"INSERT INTO decisions ({', '.join(old_columns)}) "
        f"VALUES ({', '.join('?' * len(old_columns))})"
    )
    for item in ROWS:
        params = item.as_params()
        conn.execute(insert, [params[c] for c in old_columns])
    assert migrate(conn) == [
        "004_daily_rollups",
        "005_policy",
        "006_quality",
        "007_learning",
        "008_dashboard_rollups",
        "009_dashboard_outcome_rollups",
    ]
    assert figures(summarise(conn)) == reference(ROWS, None)
    arms = [tuple(r) for r in conn.execute("SELECT DISTINCT arm, rule FROM decision_rollups")]
    assert arms == [("routed", "")]  # old rows: routed, no rule
    conn.close()


MILLION = """
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 999999)
INSERT INTO decisions (request_id, created_at, endpoint, prompt_hash, tier, model, source, cached,
    reason, judge_model, judge_cost_usd, judge_latency_ms, prompt_tokens, estimated_cost_usd,
    baseline_model, estimated_baseline_cost_usd, latency_ms, status, cost_usd, baseline_cost_usd)
SELECT 'r' || i, '2026-' || printf('%02d', 1 + i % 11) || '-' || printf('%02d', 1 + i % 28)
        || 'T12:00:00+00:00',
    'chat', 'h', CASE i % 3 WHEN 0 THEN 'low' WHEN 1 THEN 'medium' ELSE 'high' END,
    'model-' || (i % 7), CASE WHEN i % 4 = 0 THEN 'llm' ELSE 'cache' END, i % 4 <> 0, 'r', 'j',
    0.0001, 1.0, 100, 0.001, 'b', 0.01, 5.0, 'ok', 0.002, 0.02
FROM n
"""


@pytest.mark.slow
async def test_stats_on_a_million_rows_is_fast_and_delays_no_route(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(judge={"model": "heuristic"})
    conn = connect(settings.ledger.path)
    migrate(conn)
    conn.execute(MILLION)
    conn.close()
    engine = build_engine(settings)
    ledger = engine.ledger
    started = time.perf_counter()
    summary = await ledger.summary()
    alone_s = time.perf_counter() - started
    assert summary["totals"]["requests"] == 1_000_000
    assert alone_s <= 0.2, f"/stats took {alone_s * 1000:.0f} ms on a million rows"
    transport = httpx.ASGITransport(app=create_app(settings, engine))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        await client.post("/route", json={"prompt": "warm up"})
        quiet = []
        for _ in range(20):
            begun = time.perf_counter()
            await client.post("/route", json={"prompt": "hello"})
            quiet.append(time.perf_counter() - begun)
        stats = [asyncio.create_task(client.get("/stats")) for _ in range(5)]
        during = []
        while not all(task.done() for task in stats):
            begun = time.perf_counter()
            await client.post("/route", json={"prompt": "hello"})
            during.append(time.perf_counter() - begun)
            await asyncio.sleep(0)  # an in-process client never waits on a socket: let /stats run
        assert all(task.result().status_code == 200 for task in stats)
    await engine.aclose()
    assert during and max(during) - sorted(quiet)[len(quiet) // 2] <= 0.05


def test_a_partial_first_day_is_read_through_the_index(tmp_path: Path) -> None:
    conn = connect(tmp_path / "l.sqlite")
    migrate(conn)
    plan = " ".join(
        str(step[-1])
        for step in conn.execute(
            "EXPLAIN QUERY PLAN SELECT * FROM decisions WHERE created_at >= ? AND created_at < ?",
            ("a", "b"),
        )
    )
    conn.close()
    assert "decisions_created_at" in plan
