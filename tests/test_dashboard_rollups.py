"""The dashboard's rollups: added up in the background, exact before and after, through replaced
rows and reused rowids, with metadata read as /stats reads it."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from judge_router.accounting import dashboard_rollups
from judge_router.accounting.dashboard_rollups import RollupKeeper, catch_up, catch_up_all
from judge_router.accounting.ledger_row import LedgerRow
from judge_router.accounting.migrations import connect, migrate

from dashboard_seed import seeded_rows
from fakes import ledger_row

NAMES = list(LedgerRow.__dataclass_fields__)
INSERT = f"INSERT INTO decisions ({', '.join(NAMES)}) VALUES ({', '.join(':' + n for n in NAMES)})"
REPLACE = INSERT.replace("INSERT", "INSERT OR REPLACE")


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    found = connect(tmp_path / "l.sqlite")
    migrate(found)
    return found


def insert(conn: sqlite3.Connection, rows: list[LedgerRow], replace: bool = False) -> None:
    for row in rows:
        conn.execute(REPLACE if replace else INSERT, row.as_params())


def hourly(conn: sqlite3.Connection) -> dict[tuple[str, str, str], tuple[int, float]]:
    found = conn.execute(
        "SELECT hour, tier, model, SUM(requests), ROUND(SUM(cost_usd), 9) FROM "
        "decision_hourly_rollups GROUP BY 1, 2, 3 HAVING SUM(requests) <> 0"
    )
    return {(h, t, m): (n, c) for h, t, m, n, c in found}


def hourly_from_rows(conn: sqlite3.Connection) -> dict[tuple[str, str, str], tuple[int, float]]:
    found = conn.execute(
        "SELECT substr(created_at, 1, 13), tier, model, COUNT(*), "
        "ROUND(SUM(COALESCE(cost_usd, 0)), 9) FROM decisions GROUP BY 1, 2, 3"
    )
    return {(h, t, m): (n, c) for h, t, m, n, c in found}


def groups(conn: sqlite3.Connection, dim: str) -> dict[str, int]:
    found = conn.execute(
        "SELECT value, SUM(requests) FROM decision_group_rollups WHERE dim = ? GROUP BY value "
        "HAVING SUM(requests) <> 0",
        (dim,),
    )
    return dict(found.fetchall())


def test_the_rollups_add_up_every_row_once_in_batches(conn: sqlite3.Connection) -> None:
    rows, _ = seeded_rows(1200)
    insert(conn, rows)
    assert catch_up(conn, max_rows=500) == 500  # one batch, then the rest
    assert catch_up_all(conn) == 700
    assert catch_up(conn) == 0
    assert hourly(conn) == hourly_from_rows(conn)
    teams = conn.execute(
        "SELECT json_extract(metadata, '$.team'), COUNT(*) FROM decisions GROUP BY 1"
    ).fetchall()
    assert groups(conn, "metadata.team") == dict(teams)
    keys = conn.execute(
        "SELECT api_key_id, COUNT(*) FROM decisions WHERE api_key_id IS NOT NULL GROUP BY 1"
    ).fetchall()
    assert groups(conn, "api_key") == dict(keys)
    histogram = conn.execute(
        "SELECT model, SUM(requests), ROUND(SUM(cost_usd), 9) FROM decision_cost_histogram "
        "WHERE dim = '' GROUP BY model"
    ).fetchall()
    direct = conn.execute(
        "SELECT model, COUNT(*), ROUND(SUM(COALESCE(cost_usd, 0)), 9) FROM decisions "
        "WHERE status <> 'routed' GROUP BY model"
    ).fetchall()
    assert sorted(map(tuple, histogram)) == sorted(map(tuple, direct))


def test_a_replaced_row_is_subtracted_and_a_reused_rowid_is_added(conn: sqlite3.Connection) -> None:
    rows, _ = seeded_rows(20)
    insert(conn, rows)
    catch_up_all(conn)
    # A stream's final row replaces its first (INSERT OR REPLACE): the rolled-up row is retracted.
    final = LedgerRow(
        **{**{n: getattr(rows[3], n) for n in NAMES}, "cost_usd": 1.0, "tier": "high"}
    )
    insert(conn, [final], replace=True)
    assert conn.execute("SELECT COUNT(*) FROM dashboard_retracted").fetchone()[0] == 1
    catch_up_all(conn)
    assert hourly(conn) == hourly_from_rows(conn)
    assert not conn.execute("SELECT * FROM dashboard_retracted").fetchall()
    # The largest rowid deleted, then a new row: SQLite gives it that rowid again, at or below
    # what is rolled up, so it is listed as late and added all the same.
    top = conn.execute("SELECT MAX(rowid) FROM decisions").fetchone()[0]
    conn.execute("DELETE FROM decisions WHERE rowid = ?", (top,))
    insert(conn, [LedgerRow(**{**{n: getattr(final, n) for n in NAMES}, "request_id": "new"})])
    assert [tuple(r) for r in conn.execute("SELECT rid FROM dashboard_late_rows")] == [(top,)]
    catch_up_all(conn)
    assert hourly(conn) == hourly_from_rows(conn)
    # A late row deleted before it is rolled up is only forgotten, never subtracted.
    conn.execute("DELETE FROM decisions WHERE rowid = ?", (top,))
    insert(conn, [LedgerRow(**{**{n: getattr(final, n) for n in NAMES}, "request_id": "newer"})])
    conn.execute("DELETE FROM decisions WHERE request_id = 'newer'")
    assert not conn.execute("SELECT * FROM dashboard_late_rows").fetchall()
    catch_up_all(conn)
    assert hourly(conn) == hourly_from_rows(conn)


def test_metadata_values_are_read_as_stats_reads_them(conn: sqlite3.Connection) -> None:
    values = [
        {"team": "search"}, {"team": 5}, {"team": 1.5}, {"team": True}, {"team": None},
        {"team": {"a": 1}}, {"other": "x"}, {"a.b": "dotted"}, {"": "empty"}, None,
    ]  # fmt: skip
    rows = []
    for index, metadata in enumerate(values):
        row = ledger_row(f"r{index}")
        row.metadata = metadata
        rows.append(row)
    insert(conn, rows)
    # NaN is written by Python's json and refused by SQLite's: such a row has no value here,
    # and its insert (and the roll-up) must not fail.
    conn.execute(
        "UPDATE decisions SET metadata = ? WHERE request_id = 'r9'",
        (json.dumps({"t": float("nan")}),),
    )
    catch_up_all(conn)
    assert groups(conn, "metadata.team") == {"search": 1, "5": 1, "1.5": 1, "true": 1, '{"a":1}': 1}
    assert groups(conn, "metadata.other") == {"x": 1}
    dims = {row[0] for row in conn.execute("SELECT DISTINCT dim FROM decision_group_rollups")}
    assert dims == {"metadata.team", "metadata.other"}  # no dotted or empty keys


def test_the_keeper_catches_up_in_the_background(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    conn = connect(path)
    migrate(conn)
    insert(conn, seeded_rows(300)[0])
    keeper = RollupKeeper(path, interval_s=0.05, pause_s=0.0)
    keeper.start()
    try:
        deadline = time.monotonic() + 10
        while conn.execute("SELECT rolled_up_to FROM dashboard_rollup_state").fetchone()[0] < 300:
            assert time.monotonic() < deadline, "the keeper did not catch up"
            time.sleep(0.02)  # polling the keeper's progress, bounded by the deadline
    finally:
        keeper.stop()
    assert hourly(conn) == hourly_from_rows(conn)
    assert keeper.failures == 0


def test_the_keeper_adds_a_backlog_at_once_and_leaves_the_trickle_for_its_next_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = connect(tmp_path / "l.sqlite")
    migrate(conn)
    rows = seeded_rows(1_300)[0]
    insert(conn, rows[:1_200])  # a backlog
    batches: list[int] = []

    def batch_then_a_trickle(target: sqlite3.Connection) -> int:
        found = catch_up(target)
        batches.append(found)
        insert(conn, rows[1_200 + 10 * (len(batches) - 1) :][:10])  # requests meanwhile
        return found

    monkeypatch.setattr(dashboard_rollups, "catch_up", batch_then_a_trickle)
    added = dashboard_rollups.catch_up_backlog(conn, 0.0, threading.Event())
    # The backlog in one batch, then the ten rows that came meanwhile in a second, small one:
    # done until the next interval, though ten more have come since.
    assert batches == [1_200, 10] and added == 1_210
    rolled = conn.execute("SELECT rolled_up_to FROM dashboard_rollup_state").fetchone()[0]
    assert rolled == 1_210 < conn.execute("SELECT MAX(rowid) FROM decisions").fetchone()[0]


def test_the_keeper_says_once_when_it_cannot_catch_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "blocked").write_text("a file where the ledger's directory should be")
    keeper = RollupKeeper(tmp_path / "blocked" / "l.sqlite", interval_s=0.01)
    keeper.start()
    deadline = time.monotonic() + 10
    while keeper.failures < 3:
        assert time.monotonic() < deadline
        time.sleep(0.01)  # waiting for retries, bounded by the deadline
    keeper.stop()
    assert sum("cannot catch up" in r.message for r in caplog.records) == 1
