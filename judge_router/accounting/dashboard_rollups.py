"""Rolling the decisions (and their outcomes) up for the dashboard, in batches, in the background
(dashboard_schema.py, dashboard_outcome_schema.py).

catch_up adds the rows written since the last batch (and the late rows, and subtracts the retracted
ones) to the hourly rollups, the group rollups and the cost histogram, in one short transaction of
at most `max_rows` rows; RollupKeeper runs it every few seconds in a thread of its own. Readers
never wait for it: what it has not added yet, they read from the decisions (dashboard_facts.py).
Several workers may each run a keeper: the transaction takes the write lock first, so each batch
is added once.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path

from judge_router.accounting.dashboard_outcome_rollups import catch_up_outcomes
from judge_router.accounting.dashboard_schema import CHANGE_COLUMNS, row_dimensions
from judge_router.accounting.migrations import connect, migrate
from judge_router.thread_priority import lower_this_thread

log = logging.getLogger(__name__)

BATCH_ROWS = 5_000  # rows per transaction: the write lock is held ~10-20 ms, not longer
# Outcomes per transaction: each costs ~35 µs (the join to its decision, its dimensions, a
# wider key), so a backlog holds the lock ~40 ms a batch; new outcomes are a few a second.
OUTCOME_BATCH_ROWS = 1_000
INTERVAL_S = 5.0

# Each change's dimensions, listed once (json_each parses each metadata object once) for both
# the group rollups and the histogram; the histogram has the policy's keys too, '' for all.
_DIMENSIONS = "CREATE TEMP TABLE IF NOT EXISTS dashboard_dims (cid INTEGER, dim TEXT, value TEXT)"
_LIST_DIMENSIONS = f"INSERT INTO temp.dashboard_dims {row_dimensions('temp.dashboard_changes')}"
_HISTOGRAM_DIMENSIONS = """SELECT cid, dim, value FROM temp.dashboard_dims
    UNION ALL SELECT rowid, '', '' FROM temp.dashboard_changes
    UNION ALL SELECT rowid, 'tier', tier FROM temp.dashboard_changes
    UNION ALL SELECT rowid, 'arm', arm FROM temp.dashboard_changes
    UNION ALL SELECT rowid, 'rule', rule FROM temp.dashboard_changes WHERE rule IS NOT NULL
"""
COST_BUCKET = (
    "CASE WHEN COALESCE({c}cost_usd, 0) <= 0 THEN '0' ELSE printf('%.0e', {c}cost_usd) END"
)

_KEYS = "tier, model, source, status, COALESCE(rule, ''), arm"
_SIGNED_SUMS = """SUM(sign), SUM(sign * cached), SUM(sign * judge_cost_usd),
    SUM(sign * COALESCE(cost_usd, 0)), SUM(sign * COALESCE(baseline_cost_usd, 0)),
    SUM(sign * estimated_cost_usd), SUM(sign * estimated_baseline_cost_usd)"""
_ADD = """requests = requests + excluded.requests,
    cache_hits = cache_hits + excluded.cache_hits,
    judge_cost_usd = judge_cost_usd + excluded.judge_cost_usd,
    cost_usd = cost_usd + excluded.cost_usd,
    baseline_cost_usd = baseline_cost_usd + excluded.baseline_cost_usd,
    estimated_cost_usd = estimated_cost_usd + excluded.estimated_cost_usd,
    estimated_baseline_cost_usd = estimated_baseline_cost_usd + excluded.estimated_baseline_cost_usd"""
_PK = "tier, model, source, status, rule, arm"

_CHANGES = f"CREATE TEMP TABLE IF NOT EXISTS dashboard_changes (sign INTEGER, {CHANGE_COLUMNS})"
_COLLECT = [
    f"""INSERT INTO temp.dashboard_changes SELECT 1, {CHANGE_COLUMNS} FROM decisions
        WHERE rowid > :lo AND rowid <= :hi""",
    f"""INSERT INTO temp.dashboard_changes SELECT 1, {CHANGE_COLUMNS} FROM decisions
        WHERE rowid IN (SELECT rid FROM dashboard_late_rows)""",
    f"""INSERT INTO temp.dashboard_changes SELECT -1, {CHANGE_COLUMNS}
        FROM dashboard_retracted""",
]
# Each upsert's SELECT has a WHERE: without one, SQLite reads its ON CONFLICT as a join's ON.
_ADD_UP = [
    f"""INSERT INTO decision_hourly_rollups
        SELECT substr(created_at, 1, 13), {_KEYS}, {_SIGNED_SUMS} FROM temp.dashboard_changes
        WHERE true GROUP BY 1, 2, 3, 4, 5, 6, 7
        ON CONFLICT (hour, {_PK}) DO UPDATE SET {_ADD}""",
    f"""INSERT INTO decision_group_rollups
        SELECT g.dim, substr(created_at, 1, 10), g.value, {_KEYS}, {_SIGNED_SUMS}
        FROM temp.dashboard_dims AS g JOIN temp.dashboard_changes AS c ON c.rowid = g.cid
        WHERE true GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9
        ON CONFLICT (dim, value, model, source, status, day, tier, rule, arm)
        DO UPDATE SET {_ADD}""",
    f"""INSERT INTO decision_cost_histogram
        SELECT g.dim, substr(created_at, 1, 10), g.value, model, {COST_BUCKET.format(c="")},
            SUM(sign), SUM(sign * COALESCE(cost_usd, 0))
        FROM ({_HISTOGRAM_DIMENSIONS}) AS g JOIN temp.dashboard_changes AS c ON c.rowid = g.cid
        WHERE status <> 'routed' GROUP BY 1, 2, 3, 4, 5
        ON CONFLICT (dim, value, model, bucket, day) DO UPDATE SET
            requests = requests + excluded.requests, cost_usd = cost_usd + excluded.cost_usd""",
]


def catch_up(
    conn: sqlite3.Connection, max_rows: int = BATCH_ROWS, max_outcomes: int = OUTCOME_BATCH_ROWS
) -> int:
    """Add up to `max_rows` rows not rolled up yet (and every late or retracted one), and up to
    `max_outcomes` outcomes; returns how far it got (rowids passed, or rows changed if more, of both; 0: the
    rollups were up to date)."""
    conn.execute(_CHANGES)
    conn.execute(_DIMENSIONS)
    conn.execute("BEGIN IMMEDIATE")
    try:
        lo = conn.execute("SELECT rolled_up_to FROM dashboard_rollup_state").fetchone()[0]
        last = conn.execute("SELECT MAX(rowid) FROM decisions").fetchone()[0] or 0
        hi = min(last, lo + max_rows)
        conn.execute("DELETE FROM temp.dashboard_changes")
        for statement in _COLLECT:
            conn.execute(statement, {"lo": lo, "hi": hi})
        changed = conn.execute("SELECT COUNT(*) FROM temp.dashboard_changes").fetchone()[0]
        if changed:
            conn.execute(_LIST_DIMENSIONS)
            for statement in _ADD_UP:
                conn.execute(statement)
            conn.execute("DELETE FROM dashboard_late_rows")
            conn.execute("DELETE FROM dashboard_retracted")
            conn.execute("DELETE FROM temp.dashboard_changes")
            conn.execute("DELETE FROM temp.dashboard_dims")
        if hi != lo:
            conn.execute("UPDATE dashboard_rollup_state SET rolled_up_to = ?", (hi,))
        outcomes = catch_up_outcomes(conn, max_outcomes)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return max(int(changed), int(hi) - int(lo)) + outcomes


def catch_up_all(conn: sqlite3.Connection, pause_s: float = 0.0) -> int:
    """Batches until the rollups are up to date, `pause_s` apart (so request writes get the lock
    between them); returns the sum of catch_up's answers."""
    total = 0
    while changed := catch_up(conn):
        total += changed
        if pause_s:
            time.sleep(pause_s)
    return total


def catch_up_backlog(conn: sqlite3.Connection, pause_s: float, stop: threading.Event) -> int:
    """Batches while each finds a backlog (a batch's worth: a new ledger, a long pause), `pause_s`
    apart; the trickle that arrives meanwhile waits for the next interval. Chasing it batch after
    batch would add up a few rows per transaction, each paying the transaction's fixed cost and
    taking the write lock from the request path: 6-8% of a busy router's CPU, by the profile in
    benchmarks/README.md, where one batch every interval costs ~2 µs a row."""
    total = 0
    while changed := catch_up(conn):
        total += changed
        if changed < OUTCOME_BATCH_ROWS or stop.wait(pause_s):
            break
    return total


class RollupKeeper:
    """A thread that runs catch_up every `interval_s` on its own connection to the ledger."""

    def __init__(self, path: Path, interval_s: float = INTERVAL_S, pause_s: float = 0.02):
        self.path = path
        self.interval_s = interval_s
        self.pause_s = pause_s
        self.failures = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="dashboard-rollups", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        lower_this_thread()  # adding up is never more urgent than a request
        conn: sqlite3.Connection | None = None
        failing = False
        while not self._stop.is_set():
            try:
                if conn is None:
                    conn = connect(self.path)
                    migrate(conn)
                started = time.monotonic()
                rows = catch_up_backlog(conn, self.pause_s, self._stop)
                if rows > BATCH_ROWS:  # a backlog: a new ledger, or a long pause
                    log.info("dashboard rollups: %d rows added in %.1f s", rows,
                             time.monotonic() - started)  # fmt: skip
                if failing:
                    log.warning("dashboard rollups: catching up again")
                    failing = False
            except (sqlite3.Error, OSError) as exc:
                self.failures += 1
                if not failing:  # one line per change of state, not one per attempt
                    log.error("dashboard rollups: cannot catch up (%s); retried every %g s, "
                              "readers add the rows themselves meanwhile", exc, self.interval_s)  # fmt: skip
                    failing = True
                if conn is not None:
                    conn.close()
                    conn = None
            self._stop.wait(self.interval_s)
        if conn is not None:
            conn.close()
