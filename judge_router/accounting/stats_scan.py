"""The questions the daily rollups cannot answer (a group or filter on api_key or metadata.KEY):
the decisions since `since` read once, in chunks, into a small temporary table of facts shaped
like the rollups, which stats.py then sums exactly as it sums the rollups.

Chunks, not one statement: a read that holds one snapshot for seconds keeps SQLite from
checkpointing the WAL while requests go on writing, and the first commit after it (on the event
loop's connection) catches up on all of it at once: ~100 ms on a million-row ledger under load.
So the rows are read in rowid ranges, each its own statement, up to the last row there is when
the read begins: a row written meanwhile (a stream's final row replacing its first included) is
in the next answer, not this one. PostgreSQL (no WAL to hold back, no rowid) reads them in one
statement under a statement_timeout.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager

from judge_router.accounting.read_connection import Interrupted, ReadConnection, TimeLimited
from judge_router.accounting.stats_view import StatsView, conditions, expression

SCAN_LIMIT_S = 30.0  # a question that reads the decisions gives up after this (ScanTooLong)
SCAN_CHUNK_ROWS = 20_000  # decisions read per statement

# Each chunk's decisions added up into rollup-shaped facts plus the group's value (grp; '' with
# grp_none 1 when the row has none). No rule column: no breakdown reads it, and a grouping by rule
# has it as grp. Facts of one key from two chunks are two rows; every figure is a SUM over them.
_SCAN_TABLE = """
    CREATE TEMP TABLE stats_facts (day TEXT, tier TEXT, model TEXT, source TEXT, status TEXT,
        arm TEXT, grp TEXT, grp_none INTEGER, requests INTEGER, cache_hits INTEGER,
        judge_cost_usd REAL, cost_usd REAL, baseline_cost_usd REAL, estimated_cost_usd REAL,
        estimated_baseline_cost_usd REAL)
"""
_SCAN = """
    INSERT INTO temp.stats_facts
    SELECT substr(created_at, 1, 10), tier, model, source, status, arm, COALESCE({group}, ''),
        CASE WHEN {group} IS NULL THEN 1 ELSE 0 END, COUNT(*), SUM(cached), SUM(judge_cost_usd),
        COALESCE(SUM(cost_usd), 0), COALESCE(SUM(baseline_cost_usd), 0),
        SUM(estimated_cost_usd), SUM(estimated_baseline_cost_usd)
    FROM decisions {where} GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
"""
SCANNED_FACTS = "WITH facts AS (SELECT * FROM temp.stats_facts)"


class ScanTooLong(Exception):
    """A question that reads the decisions took longer than its limit (ask for a later `since`)."""


def _too_long(limit_s: float) -> ScanTooLong:
    return ScanTooLong(
        f"reading the ledger's rows for this question took over {limit_s:g} s "
        "(group_by api_key or metadata.KEY, or a filter on them, reads every row since "
        "`since`): ask for a later since"
    )


@contextmanager
def scanned(
    conn: ReadConnection, since: str | None, view: StatsView, limit_s: float
) -> Iterator[None]:
    """temp.stats_facts filled from the decisions, for as long as the block runs."""
    params: dict[str, str] = {}
    group = "NULL" if view.group_by is None else expression(view.group_by, True, params)
    wanted = conditions(view, True, params)
    conn.execute("DROP TABLE IF EXISTS temp.stats_facts")
    conn.execute(_SCAN_TABLE)
    try:
        if isinstance(conn, sqlite3.Connection):
            _scan_sqlite(conn, since, group, wanted, params, limit_s)
        else:
            _scan_at_once(conn, since, group, wanted, params, limit_s)
        yield
    finally:
        conn.execute("DROP TABLE IF EXISTS temp.stats_facts")


def _scan_sqlite(
    conn: sqlite3.Connection,
    since: str | None,
    group: str,
    wanted: list[str],
    params: dict[str, str],
    limit_s: float,
) -> None:
    wanted = ["rowid >= :lo", "rowid < :hi", *wanted]
    if since is not None:
        wanted.append("+created_at >= :since")  # `+`: a filter on each row, not an index scan
        params["since"] = since
    scan = _SCAN.format(group=group, where=f"WHERE {' AND '.join(wanted)}")
    deadline = time.monotonic() + limit_s
    # Checked every 100k SQLite instructions (a few hundred times a second): cheap, and a thread
    # of the pool is never held for longer than the limit.
    conn.set_progress_handler(lambda: time.monotonic() > deadline, 100_000)
    try:
        for lo, hi in _chunks(conn, since):
            conn.execute(scan, {**params, "lo": lo, "hi": hi})
    except sqlite3.OperationalError as exc:
        if "interrupt" not in str(exc):
            raise
        raise _too_long(limit_s) from None
    finally:
        conn.set_progress_handler(None, 0)


def _scan_at_once(
    conn: ReadConnection,
    since: str | None,
    group: str,
    wanted: list[str],
    params: dict[str, str],
    limit_s: float,
) -> None:
    """PostgreSQL: one statement (a long read holds no lock a writer waits for there), cancelled
    by the server past the limit."""
    if since is not None:
        wanted = [*wanted, "created_at >= :since"]
        params["since"] = since
    where = f"WHERE {' AND '.join(wanted)}" if wanted else ""
    assert isinstance(conn, TimeLimited)
    try:
        with conn.time_limit(limit_s):
            conn.execute(_SCAN.format(group=group, where=where), params)
    except Interrupted:
        raise _too_long(limit_s) from None


def _chunks(conn: sqlite3.Connection, since: str | None) -> Iterator[tuple[int, int]]:
    """[lo, hi) rowid ranges of SCAN_CHUNK_ROWS, read in table order, from the first row written
    since `since` to the last row there is now."""
    first = (
        conn.execute("SELECT MIN(rowid) FROM decisions WHERE created_at >= ?", (since,))
        if since is not None
        else conn.execute("SELECT MIN(rowid) FROM decisions")
    ).fetchone()[0]
    last = conn.execute("SELECT MAX(rowid) FROM decisions").fetchone()[0]
    if first is None or last is None:
        return
    for lo in range(first, last + 1, SCAN_CHUNK_ROWS):
        yield lo, min(lo + SCAN_CHUNK_ROWS, last + 1)
