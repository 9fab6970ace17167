"""Rolling the outcomes up for the dashboard (dashboard_outcome_schema.py), inside the decisions'
batch transaction (dashboard_rollups.catch_up): the outcomes written since the last batch and the
late ones that now have a decision are added with their decision's columns, the retracted ones
subtracted; the ones still without a decision stay late, for readers to join themselves."""

from __future__ import annotations

import sqlite3

from judge_router.accounting.dashboard_outcome_schema import OUTCOME_COLUMNS, OUTCOME_SELECT
from judge_router.accounting.dashboard_schema import row_dimensions

_CHANGES = f"""CREATE TEMP TABLE IF NOT EXISTS dashboard_outcome_changes (
    sign INTEGER, {OUTCOME_COLUMNS})"""
_DIMENSIONS = """CREATE TEMP TABLE IF NOT EXISTS dashboard_outcome_dims (
    cid INTEGER, dim TEXT, value TEXT)"""
_JOINED = "FROM outcomes AS o JOIN decisions AS d ON d.request_id = o.request_id"
_COLLECT = [
    f"""INSERT INTO temp.dashboard_outcome_changes SELECT 1, {OUTCOME_SELECT} {_JOINED}
        WHERE o.rowid > :lo AND o.rowid <= :hi""",
    f"""INSERT INTO temp.dashboard_outcome_changes SELECT 1, {OUTCOME_SELECT} {_JOINED}
        WHERE o.rowid IN (SELECT rid FROM dashboard_outcomes_late)""",
    f"""INSERT INTO temp.dashboard_outcome_changes SELECT -1, {OUTCOME_COLUMNS}
        FROM dashboard_outcomes_retracted""",
]
# After the changes are collected: the late outcomes are those, old or new, with no decision.
_STILL_LATE = [
    """DELETE FROM dashboard_outcomes_late WHERE rid IN (
        SELECT o.rowid FROM outcomes AS o JOIN decisions AS d ON d.request_id = o.request_id
        WHERE o.rowid IN (SELECT rid FROM dashboard_outcomes_late))""",
    """INSERT OR IGNORE INTO dashboard_outcomes_late SELECT o.rowid FROM outcomes AS o
        WHERE o.rowid > :lo AND o.rowid <= :hi
            AND NOT EXISTS (SELECT 1 FROM decisions AS d WHERE d.request_id = o.request_id)""",
]
_KEYS = """substr(o_created_at, 1, 10), o_source, o_tier, o_model, tier, model, source,
    COALESCE(rule, ''), arm, substr(created_at, 1, 10)"""
_SIGNED_SUMS = """SUM(sign), SUM(sign * (score IS NOT NULL)), SUM(sign * COALESCE(score, 0.0)),
    SUM(sign * (grade IS NOT NULL)), SUM(sign * COALESCE(grade, 0)),
    SUM(sign * (passed IS NOT NULL)), SUM(sign * (CASE WHEN passed = 1 THEN 1 ELSE 0 END)),
    SUM(sign * (error IS NOT NULL)), SUM(sign * spend)"""
_ADD = ", ".join(
    f"{name} = {name} + excluded.{name}"
    for name in (
        "outcomes",
        "scored",
        "score_sum",
        "graded",
        "grade_sum",
        "checked",
        "passed",
        "errors",
        "spend",
    )  # fmt: skip
)
# Each upsert's SELECT has a WHERE: without one, SQLite reads its ON CONFLICT as a join's ON.
_ADD_UP = f"""INSERT INTO outcome_rollups
    SELECT g.dim, g.value, {_KEYS}, {_SIGNED_SUMS}
    FROM (SELECT cid, dim, value FROM temp.dashboard_outcome_dims
          UNION ALL SELECT rowid, '', '' FROM temp.dashboard_outcome_changes) AS g
    JOIN temp.dashboard_outcome_changes AS c ON c.rowid = g.cid
    WHERE true GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12
    ON CONFLICT (dim, value, o_day, o_source, o_tier, o_model, tier, model, source, rule, arm,
        day) DO UPDATE SET {_ADD}"""


def catch_up_outcomes(conn: sqlite3.Connection, max_rows: int) -> int:
    """Within the caller's write transaction: add up to `max_rows` outcomes not rolled up yet
    (and the late and retracted ones); how far it got, as dashboard_rollups.catch_up counts."""
    conn.execute(_CHANGES)
    conn.execute(_DIMENSIONS)
    lo = conn.execute("SELECT rolled_up_to FROM dashboard_outcome_state").fetchone()[0]
    last = conn.execute("SELECT MAX(rowid) FROM outcomes").fetchone()[0] or 0
    hi = min(last, lo + max_rows)
    bounds = {"lo": lo, "hi": hi}
    conn.execute("DELETE FROM temp.dashboard_outcome_changes")
    for statement in _COLLECT:
        conn.execute(statement, bounds)
    changed = conn.execute("SELECT COUNT(*) FROM temp.dashboard_outcome_changes").fetchone()[0]
    for statement in _STILL_LATE:
        conn.execute(statement, bounds)
    if changed:
        conn.execute(
            "INSERT INTO temp.dashboard_outcome_dims "
            + row_dimensions("temp.dashboard_outcome_changes")
        )
        conn.execute(_ADD_UP)
        conn.execute("DELETE FROM dashboard_outcomes_retracted")
        conn.execute("DELETE FROM temp.dashboard_outcome_changes")
        conn.execute("DELETE FROM temp.dashboard_outcome_dims")
    if hi != lo:
        conn.execute("UPDATE dashboard_outcome_state SET rolled_up_to = ?", (hi,))
    return max(int(changed), int(hi) - int(lo))
