"""The outcome rollups: the dashboard's quality figures equal /stats's (every outcome joined to its
decision) before a batch, after it, and through an outcome that comes before its decision, a
second grade replacing the first, a replaced decision and a reused rowid."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from judge_router.accounting import quality_stats
from judge_router.accounting.dashboard_quality import outcome_facts
from judge_router.accounting.dashboard_rollups import catch_up, catch_up_all
from judge_router.accounting.ledger_row import LedgerRow
from judge_router.accounting.migrations import connect, migrate
from judge_router.accounting.outcome_row import OutcomeRow
from judge_router.accounting.stats_view import StatsView, stats_view

from dashboard_seed import seeded_rows

NOW = datetime(2026, 12, 1, tzinfo=UTC)
NAMES = list(LedgerRow.__dataclass_fields__)
FIELDS = list(OutcomeRow.__dataclass_fields__)
DECISION = f"INSERT OR REPLACE INTO decisions ({', '.join(NAMES)}) VALUES ({', '.join(':' + n for n in NAMES)})"  # noqa: E501
OUTCOME = f"INSERT OR REPLACE INTO outcomes ({', '.join(FIELDS)}) VALUES ({', '.join(':' + n for n in FIELDS)})"  # noqa: E501
VIEWS = [
    None,
    stats_view("metadata.team"),
    stats_view("api_key"),
    stats_view("tier", [("metadata.team", "search")]),
    stats_view("metadata.team", [("metadata.team", "ads"), ("tier", "low")]),
    stats_view("rule", [("arm", "routed")]),
    stats_view("metadata.team", [("metadata.task_type", "code")]),  # two row-only keys
]


def add_decision(conn: sqlite3.Connection, row: LedgerRow) -> None:
    conn.execute(DECISION, row.as_params())


def add_outcome(conn: sqlite3.Connection, row: OutcomeRow) -> None:
    conn.execute(OUTCOME, {name: getattr(row, name) for name in FIELDS})


def facts(rows: list[dict[str, Any]]) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    keys = ("o_source", "o_tier", "o_model", "tier", "model", "o_day", "in_arm", "grp", "grp_none")
    tallies = ("outcomes", "scored", "graded", "grade_sum", "checked", "passed", "errors")
    return {
        tuple(row[k] for k in keys): (
            *(row[t] for t in tallies),
            round(row["score_sum"], 9),
            round(row["spend"], 12),
        )
        for row in rows
    }


def assert_exact(conn: sqlite3.Connection, since: datetime | None = None) -> None:
    """Every view's outcome facts, read through the rollups, are /stats's."""
    iso = None if since is None else since.isoformat()
    for view in VIEWS:
        mine = outcome_facts(conn, iso, None, view)
        theirs = quality_stats.outcome_facts(conn, iso, view)
        assert facts(mine.rows) == facts(theirs.rows), view
        assert mine.rows, view


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    found = connect(tmp_path / "l.sqlite")
    migrate(found)
    rows, outcomes = seeded_rows(400, now=NOW, days=4)
    for row in rows:
        add_decision(found, row)
    for outcome in outcomes:
        add_outcome(found, outcome)
    return found


def rolled_up_outcomes(conn: sqlite3.Connection) -> int:
    found = conn.execute("SELECT SUM(outcomes) FROM outcome_rollups WHERE dim = ''").fetchone()
    return int(found[0] or 0)


def test_the_figures_are_exact_before_between_and_after_batches(conn: sqlite3.Connection) -> None:
    total = conn.execute("SELECT COUNT(*) FROM outcomes").fetchone()[0]
    assert total > 50
    assert_exact(conn)
    assert_exact(conn, NOW - timedelta(days=2, hours=5))  # whole days and the hours before them
    catch_up(conn, max_rows=40, max_outcomes=40)  # part of them
    assert 0 < rolled_up_outcomes(conn) < total
    assert_exact(conn)
    assert_exact(conn, NOW - timedelta(days=2, hours=5))
    catch_up_all(conn)
    assert rolled_up_outcomes(conn) == total
    assert_exact(conn)
    assert_exact(conn, NOW - timedelta(days=2, hours=5))


def test_an_outcome_before_its_decision_waits_for_it(conn: sqlite3.Connection) -> None:
    catch_up_all(conn)
    rows, _ = seeded_rows(1, seed=99, now=NOW - timedelta(hours=30), days=0.01)
    decision = LedgerRow(**{**{n: getattr(rows[0], n) for n in NAMES}, "request_id": "jr-later"})
    early = OutcomeRow("jr-later", "feedback", decision.model, decision.tier, score=1.0,
                       created_at=(NOW - timedelta(hours=29)).isoformat())  # fmt: skip
    add_outcome(conn, early)
    catch_up_all(conn)
    late = conn.execute("SELECT rid FROM dashboard_outcomes_late").fetchall()
    assert len(late) == 1  # not rolled up without its decision's columns
    assert_exact(conn)  # the readers join it themselves meanwhile (no decision: no keys)
    add_decision(conn, decision)
    assert_exact(conn)
    catch_up_all(conn)
    assert not conn.execute("SELECT rid FROM dashboard_outcomes_late").fetchall()
    assert_exact(conn)


def test_a_second_grade_and_a_replaced_decision_are_subtracted(conn: sqlite3.Connection) -> None:
    catch_up_all(conn)
    outcome = dict(conn.execute("SELECT * FROM outcomes WHERE source = 'sample'").fetchone())
    regraded = OutcomeRow(**{**outcome, "score": 0.0, "grade": 1, "grader_cost_usd": 0.5})
    add_outcome(conn, regraded)  # INSERT OR REPLACE: the first grade's row is deleted
    assert conn.execute("SELECT COUNT(*) FROM dashboard_outcomes_retracted").fetchone()[0] == 1
    assert_exact(conn)
    catch_up_all(conn)
    assert_exact(conn)
    # The decision replaced (a stream's final row; here another tier and team): its rolled-up
    # outcomes are subtracted with the old columns and added again with the new ones.
    old = dict(conn.execute("SELECT * FROM decisions WHERE request_id = ?",
                            (outcome["request_id"],)).fetchone())  # fmt: skip
    new = {**{n: old[n] for n in NAMES}, "tier": "high", "metadata": {"team": "moved"}}
    add_decision(conn, LedgerRow(**new))
    assert conn.execute("SELECT COUNT(*) FROM dashboard_outcomes_late").fetchone()[0] >= 1
    assert_exact(conn)
    catch_up_all(conn)
    assert not conn.execute("SELECT * FROM dashboard_outcomes_retracted").fetchall()
    assert_exact(conn)
    moved = conn.execute(
        "SELECT SUM(outcomes) FROM outcome_rollups WHERE dim = 'metadata.team' AND value = 'moved'"
    ).fetchone()[0]
    assert (
        moved
        == conn.execute(
            "SELECT COUNT(*) FROM outcomes WHERE request_id = ?", (outcome["request_id"],)
        ).fetchone()[0]
    )


def test_a_reused_rowid_is_added_and_a_late_deleted_outcome_forgotten(
    conn: sqlite3.Connection,
) -> None:
    catch_up_all(conn)
    top = dict(conn.execute("SELECT rowid, * FROM outcomes ORDER BY rowid DESC").fetchone())
    conn.execute("DELETE FROM outcomes WHERE rowid = ?", (top.pop("rowid"),))
    again = OutcomeRow(**{**top, "source": "feedback" if top["source"] != "feedback" else "sample"})
    add_outcome(conn, again)  # SQLite hands out the deleted largest rowid again
    assert len(conn.execute("SELECT rid FROM dashboard_outcomes_late").fetchall()) == 1
    assert_exact(conn)
    conn.execute("DELETE FROM outcomes WHERE request_id = ? AND source = ?",
                 (again.request_id, again.source))  # fmt: skip
    assert not conn.execute("SELECT rid FROM dashboard_outcomes_late").fetchall()
    assert_exact(conn)
    catch_up_all(conn)
    assert_exact(conn)


def test_a_view_with_no_outcomes_reads_none(conn: sqlite3.Connection) -> None:
    catch_up_all(conn)
    view: StatsView = stats_view(None, [("metadata.team", "nobody")])
    assert outcome_facts(conn, None, None, view).rows == []
