"""The dashboard's figures against /stats (stats.summarise) and against the rows themselves: the
same numbers whichever tables answer, before the background roll-up and after it."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from judge_router.accounting import dashboard_decisions as decisions
from judge_router.accounting import dashboard_figures as figures
from judge_router.accounting.dashboard_decisions import BadCursor
from judge_router.accounting.dashboard_dimensions import dimensions
from judge_router.accounting.dashboard_facts import Window
from judge_router.accounting.dashboard_models import UnknownGroup, model_costs
from judge_router.accounting.dashboard_rollups import catch_up_all
from judge_router.accounting.migrations import connect
from judge_router.accounting.stats import summarise
from judge_router.accounting.stats_view import StatsView, stats_view

from dashboard_seed import seeded_rows, write

NOW = datetime(2026, 11, 30, 15, 20, tzinfo=UTC)
FIGURES = ("requests", "proxied", "cache_hits", "judged", "realised_spend_usd",
           "baseline_spend_usd", "judge_spend_usd", "quality_spend_usd", "net_savings_usd",
           "savings_pct", "cache_hit_rate", "judge_roi", "local_verdicts")  # fmt: skip


@pytest.fixture(scope="module")
def ledger_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dash") / "ledger.sqlite"
    rows, outcomes = seeded_rows(2500, now=NOW)
    asyncio.run(write(path, rows, outcomes))
    return path


@pytest.fixture(params=["pending", "rolled up"])
def conn(
    request: pytest.FixtureRequest, ledger_path: Path, tmp_path: Path
) -> Iterator[sqlite3.Connection]:
    """The ledger before any roll-up (readers add every row themselves) and after one."""
    copy = tmp_path / "ledger.sqlite"
    source = sqlite3.connect(ledger_path)
    target = sqlite3.connect(copy)
    source.backup(target)
    source.close()
    target.close()
    found = connect(copy)
    if request.param == "rolled up":
        catch_up_all(found)
    yield found
    found.close()


def picked(row: dict[str, Any]) -> dict[str, Any]:
    return {name: row[name] for name in FIGURES}


def close(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], float) and isinstance(b[key], float):
            assert a[key] == pytest.approx(b[key], rel=1e-9, abs=1e-9), key
        else:
            assert a[key] == b[key], key


def test_totals_are_the_stats_totals(conn: sqlite3.Connection) -> None:
    stats = summarise(conn)
    spend = figures.spend(conn, Window(), None)
    close(picked(spend["totals"]), picked(stats["totals"]))
    assert spend["window"]["bucket"] == "day" and spend["ledger_first_day"] == "2026-11-20"
    assert sum(p["requests"] for p in spend["series"]) == stats["totals"]["requests"]
    assert spend["series"][-1]["cumulative_net_savings_usd"] == pytest.approx(
        stats["totals"]["net_savings_usd"]
    )
    mix = figures.mix(conn, Window(), None)
    assert mix["verdicts_by_source"] == stats["verdicts_by_source"]
    tiers: dict[str, int] = {}
    for point in mix["series"]:
        for tier, count in point["by_tier"].items():
            tiers[tier] = tiers.get(tier, 0) + count
    assert tiers == {row["tier"]: row["requests"] for row in stats["by_tier"]}


def direct(conn: sqlite3.Connection, since: str, until: str, where: str = "1 = 1") -> tuple:
    return tuple(
        conn.execute(
            "SELECT COUNT(*), ROUND(COALESCE(SUM(cost_usd), 0), 9) FROM decisions "
            f"WHERE created_at >= ? AND created_at < ? AND {where}",
            (since, until),
        ).fetchone()
    )


@pytest.mark.parametrize(
    ("since", "until", "bucket"),
    [
        (
            datetime(2026, 11, 29, 7, 30, tzinfo=UTC),
            datetime(2026, 11, 30, 9, 5, tzinfo=UTC),
            "hour",
        ),
        (
            datetime(2026, 11, 21, 7, 30, tzinfo=UTC),
            datetime(2026, 11, 28, 13, 0, tzinfo=UTC),
            "day",
        ),
        (datetime(2026, 11, 22, tzinfo=UTC), datetime(2026, 11, 26, tzinfo=UTC), "day"),
    ],
)
def test_a_window_reads_its_whole_hours_exactly(
    conn: sqlite3.Connection, since: datetime, until: datetime, bucket: str
) -> None:
    spend = figures.spend(conn, Window(since, until), None)
    window = spend["window"]
    assert window["bucket"] == bucket and window["read"] == "rollups"
    # Widened to whole hours, and counted exactly over them.
    assert window["since"] == since.replace(minute=0).isoformat()
    wanted = direct(conn, window["since"], window["until"])
    totals = spend["totals"]
    assert (totals["requests"], round(totals["realised_spend_usd"], 9)) == wanted
    length = 13 if bucket == "hour" else 10
    assert spend["series"][0]["bucket"] == window["since"][:length]
    assert sum(p["requests"] for p in spend["series"]) == totals["requests"]


def test_filters_narrow_every_figure(conn: sqlite3.Connection) -> None:
    since = datetime(2026, 11, 25, 7, tzinfo=UTC)  # the hours to midnight come from the rows
    for view, where in (
        (stats_view(None, [("tier", "low")]), "tier = 'low'"),
        (stats_view(None, [("metadata.team", "ads")]), "json_extract(metadata, '$.team') = 'ads'"),
        (
            stats_view(None, [("api_key", "web"), ("arm", "holdout")]),
            "api_key_id = 'web' AND arm = 'holdout'",
        ),
    ):  # fmt: skip
        spend = figures.spend(conn, Window(since, None), view)
        stats = summarise(conn, since.isoformat(), view)
        assert spend["window"]["bucket"] == "day" and spend["window"]["read"] == "rollups"
        close(picked(spend["totals"]), picked(stats["totals"]))
        count = conn.execute(
            f"SELECT COUNT(*) FROM decisions WHERE created_at >= ? AND {where}",
            (since.isoformat(),),
        ).fetchone()[0]
        assert spend["totals"]["requests"] == count
    # By the hour (a short window), a row-only filter reads the rows: the same figures.
    recent = datetime(2026, 11, 29, 11, tzinfo=UTC)
    view = stats_view(None, [("metadata.team", "ads")])
    hourly = figures.spend(
        conn, Window(recent, NOW + timedelta(hours=1)), view
    )  # after the last row
    assert hourly["window"] == {**hourly["window"], "bucket": "hour", "read": "rows"}
    close(picked(hourly["totals"]), picked(summarise(conn, recent.isoformat(), view)["totals"]))


def group_figures(answer: dict[str, Any]) -> dict[str, Any]:
    return {
        g["group"]: (
            {**picked(g), "per_request": g["spend_per_request_usd"]},
            [(m["model"], m["requests"], m["spend_per_request_usd"]) for m in g["by_model"]],
        )
        for g in answer["groups"]
    }


@pytest.mark.parametrize(
    "view",
    [
        stats_view("tier"),
        stats_view("rule"),
        stats_view("arm"),
        stats_view("day"),
        stats_view("api_key"),
        stats_view("metadata.team"),
        stats_view("metadata.task_type"),
        stats_view("metadata.priority"),
        stats_view("model", [("metadata.team", "search")]),
        stats_view("metadata.team", [("metadata.team", "ads"), ("tier", "low")]),
        stats_view("metadata.team", [("metadata.task_type", "code")]),  # two row-only keys
    ],
    ids=str,
)
def test_groups_are_the_stats_groups(conn: sqlite3.Connection, view: StatsView) -> None:
    since = datetime(2026, 11, 21, 9, tzinfo=UTC)
    answer = figures.groups(conn, Window(since, None), view)
    stats = summarise(conn, since.isoformat(), view)
    mine, theirs = group_figures(answer), group_figures(stats)
    assert mine.keys() == theirs.keys()
    for name in mine:
        close(mine[name][0], theirs[name][0])
        assert mine[name][1] == theirs[name][1]
    close(picked(answer["totals"]), picked(stats["totals"]))
    two_row_only_keys = view.where and view.where[0][0] == "metadata.task_type"
    assert answer["window"]["read"] == ("rows" if two_row_only_keys else "rollups")


def test_the_model_comparison_counts_each_models_requests_and_scores(
    conn: sqlite3.Connection,
) -> None:
    answer = model_costs(conn, Window(), None, None, None)
    found = {m["model"]: m for m in answer["models"]}
    rows = conn.execute(
        "SELECT model, COUNT(*), AVG(COALESCE(cost_usd, 0)) FROM decisions "
        "WHERE status <> 'routed' GROUP BY model"
    ).fetchall()
    assert {m: (n, pytest.approx(mean)) for m, n, mean in rows} == {
        m: (f["requests"], f["mean_cost_usd"]) for m, f in found.items()
    }
    for entry in found.values():
        assert sum(b["requests"] for b in entry["histogram"]) == entry["requests"]
        assert entry["p50_cost_usd"] <= entry["p90_cost_usd"]
    scores = conn.execute(
        "SELECT model, AVG(score), COUNT(score) FROM outcomes WHERE source = 'sample' GROUP BY model"
    ).fetchall()
    for model, mean, count in scores:
        assert found[model]["quality"]["sample"]["scored"] == count
        assert found[model]["quality"]["sample"]["mean_score"] == pytest.approx(mean, abs=1e-6)


@pytest.mark.parametrize(
    ("group_by", "group", "where"),
    [
        ("metadata.team", "search", "json_extract(metadata, '$.team') = 'search'"),
        ("metadata.task_type", "(none)", "json_extract(metadata, '$.task_type') IS NULL"),
        ("rule", "(none)", "rule IS NULL"),
        ("tier", "high", "tier = 'high'"),
        ("day", "2026-11-25", "substr(created_at, 1, 10) = '2026-11-25'"),
        ("api_key", "batch", "api_key_id = 'batch'"),
    ],
)
def test_the_model_comparison_within_a_group(
    conn: sqlite3.Connection, group_by: str, group: str, where: str
) -> None:
    answer = model_costs(conn, Window(), group_by, group, None)
    assert answer["window"]["read"] == "rollups"
    rows = conn.execute(
        f"SELECT model, COUNT(*) FROM decisions WHERE status <> 'routed' AND {where} GROUP BY model"
    ).fetchall()
    assert {m["model"]: m["requests"] for m in answer["models"]} == dict(rows)
    # A filter besides the group reads the rows: the same figures.
    filtered = model_costs(conn, Window(), group_by, group, stats_view(None, [("arm", "routed")]))
    assert filtered["window"]["read"] == "rows"
    arm_rows = conn.execute(
        f"SELECT model, COUNT(*) FROM decisions WHERE status <> 'routed' AND {where} "
        "AND arm = 'routed' GROUP BY model"
    ).fetchall()
    assert {m["model"]: m["requests"] for m in filtered["models"]} == dict(arm_rows)


def test_a_comparison_needs_one_named_group(conn: sqlite3.Connection) -> None:
    with pytest.raises(UnknownGroup, match="pick one"):
        model_costs(conn, Window(), "metadata.team", "(other)", None)
    with pytest.raises(UnknownGroup, match="needs a group"):
        model_costs(conn, Window(), "metadata.team", None, None)


def test_pages_of_decisions_cover_the_window_once_newest_first(conn: sqlite3.Connection) -> None:
    window = Window(datetime(2026, 11, 29, tzinfo=UTC), NOW)
    seen: list[str] = []
    before = None
    while True:
        page = decisions.recent(conn, window, stats_view(None, [("tier", "low")]), 40, before)
        seen += [row["request_id"] for row in page["decisions"]]
        assert all(row["tier"] == "low" for row in page["decisions"])
        before = page["next"]
        if before is None:
            break
    expected = conn.execute(
        "SELECT request_id FROM decisions WHERE created_at >= ? AND created_at < ? AND tier = 'low' "
        "ORDER BY created_at DESC, rowid DESC",
        (window.since.isoformat(), NOW.isoformat()),  # type: ignore[union-attr]
    ).fetchall()
    assert seen == [row[0] for row in expected]
    with pytest.raises(BadCursor):
        decisions.recent(conn, window, None, 10, "not-a-cursor")


def test_a_full_row_hides_the_prompt_unless_prompts_are_stored(conn: sqlite3.Connection) -> None:
    hidden = decisions.full_decision(conn, "jr-seed000009", store_prompts=False)
    assert hidden is not None
    assert "prompt_text" not in hidden["decision"] and "features" not in hidden["decision"]
    assert hidden["decision"]["metadata"]["team"] in ("search", "ads", "support")
    assert [o["source"] for o in hidden["outcomes"]] == ["sample"]
    shown = decisions.full_decision(conn, "jr-seed000009", store_prompts=True)
    assert shown is not None and shown["decision"]["prompt_text"] == "a secret prompt"
    assert decisions.full_decision(conn, "jr-nothing", store_prompts=False) is None


def test_the_controls_are_offered_the_keys_and_values_seen(conn: sqlite3.Connection) -> None:
    catch_up_all(conn)  # row-only keys' values come from the rollups
    found = dimensions(conn, Window())
    assert found["group_by"] == ["tier", "model", "day", "rule", "arm", "api_key",
                                 "metadata.priority", "metadata.task_type", "metadata.team"]  # fmt: skip
    assert [v["value"] for v in found["values"]["metadata.team"]] == ["ads", "search", "support"]
    assert [v["value"] for v in found["values"]["tier"]] == ["low", "medium", "high"]
    assert found["values"]["api_key"] == [{"value": "batch", "requests": None},
                                          {"value": "web", "requests": None}]  # fmt: skip
    recent = dimensions(conn, Window(NOW - timedelta(hours=1), None))
    assert sum(v["requests"] for v in recent["values"]["tier"]) < sum(
        v["requests"] for v in found["values"]["tier"]
    )
