"""What the dashboard's controls offer: the keys a view can group or filter by, and their values.

tier, model, rule and arm come with their requests in the window (the busiest first), from one
pass over the daily rollups. api_key and the metadata keys come from the group rollups' index, a
seek per value (SQLite has no skip scan without statistics: the recursive query is one), so a
key with a million values costs as little as one with five: the first MAX_VALUES of each in
alphabetical order, over the whole ledger as the background roll-up has added it so far.

A PostgreSQL ledger has no group rollups: its row-only keys and their values are read from the
decisions of the window's days (the same whole days the policy keys count), within the reader's
time limit.
"""

from __future__ import annotations

from typing import Any

from judge_router.accounting.dashboard_facts import Window, ceil_day, floor_day
from judge_router.accounting.read_connection import ReadConnection, is_sqlite

MAX_VALUES = 100  # per key
MAX_KEYS = 50  # row-only keys offered
POLICY_KEYS = ("tier", "model", "rule", "arm")

# Each step finds the next distinct value by the index (dim, value, …): one seek, not a scan.
_NEXT = """
    WITH RECURSIVE found(value) AS (
        SELECT MIN({column}) FROM decision_group_rollups WHERE {where}
        UNION ALL
        SELECT (SELECT MIN({column}) FROM decision_group_rollups
                WHERE {where} AND {column} > found.value)
        FROM found WHERE found.value IS NOT NULL LIMIT :limit
    )
    SELECT value FROM found WHERE value IS NOT NULL
"""


# PostgreSQL's, in one pass over the window's rows: api_key's values and each top-level metadata
# key's (as row_dimensions names them, each value as stats_view reads it: a string as sent, anything
# else as JSON writes it; null is none), the first :limit of each in order.
_PG_VALUES = """
    SELECT dim, value FROM (
        SELECT dim, value, row_number() OVER (PARTITION BY dim ORDER BY value) AS n FROM (
            SELECT DISTINCT ('metadata.' || j.key) COLLATE "C" AS dim,
                (CASE WHEN jsonb_typeof(j.value) = 'string' THEN j.value #>> '{{}}'
                    ELSE j.value::text END) COLLATE "C" AS value
            FROM decisions AS d, LATERAL (SELECT jr_json(d.metadata) AS doc) AS m,
                jsonb_each(CASE WHEN jsonb_typeof(m.doc) = 'object' THEN m.doc END) AS j
            WHERE d.metadata IS NOT NULL AND jsonb_typeof(j.value) <> 'null'
                AND length(j.key) BETWEEN 1 AND 64 AND j.key !~ '[^A-Za-z0-9_-]' AND {rows}
            UNION ALL
            SELECT DISTINCT 'api_key' COLLATE "C", api_key_id COLLATE "C" FROM decisions AS d
            WHERE api_key_id IS NOT NULL AND {rows}
        ) AS found
    ) AS ranked WHERE n <= :limit
"""


def _days(window: Window, params: dict[str, Any], column: str) -> str:
    """The window's whole days, over `column` (a day, or an ISO time that starts with one)."""
    found = ["1 = 1"]
    if window.since is not None:
        params["d_since"] = floor_day(window.since).strftime("%Y-%m-%d")
        found.append(f"{column} >= :d_since")
    if window.until is not None:
        params["d_until"] = ceil_day(window.until).strftime("%Y-%m-%d")
        found.append(f"{column} < :d_until")
    return " AND ".join(found)


def _row_only_values(conn: ReadConnection, window: Window) -> dict[str, list[str]]:
    """api_key and each metadata key with its first values, from the group rollups' index
    (SQLite) or the window's decisions (PostgreSQL)."""
    if not is_sqlite(conn):
        params: dict[str, Any] = {"limit": MAX_VALUES}
        rows = _days(window, params, "d.created_at")
        pairs = conn.execute(_PG_VALUES.format(rows=rows), params).fetchall()
        by_key: dict[str, list[str]] = {}
        for dim, value in sorted(pairs):
            by_key.setdefault(dim, []).append(value)
        keys = sorted(key for key in by_key if key != "api_key")[:MAX_KEYS]
        return {key: by_key[key] for key in (["api_key"] if "api_key" in by_key else []) + keys}
    found = conn.execute(_NEXT.format(column="dim", where="1 = 1"), {"limit": MAX_KEYS + 1})
    names = [key for (key,) in found.fetchall()]
    row_only = (["api_key"] if "api_key" in names else []) + sorted(
        key for key in names if key.startswith("metadata.")
    )[:MAX_KEYS]
    listed = {}
    for key in row_only:
        query = _NEXT.format(column="value", where="dim = :dim")
        values = conn.execute(query, {"dim": key, "limit": MAX_VALUES})
        listed[key] = [value for (value,) in values]
    return listed


def dimensions(conn: ReadConnection, window: Window) -> dict[str, Any]:
    params: dict[str, Any] = {}
    counted: dict[str, dict[str, int]] = {key: {} for key in POLICY_KEYS}
    for *values, requests in conn.execute(
        f"SELECT tier, model, NULLIF(rule, ''), arm, SUM(requests) FROM decision_rollups "
        f"WHERE requests <> 0 AND {_days(window, params, 'day')} GROUP BY tier, model, rule, arm",
        params,
    ):
        for key, value in zip(POLICY_KEYS, values, strict=True):
            if value is not None and requests > 0:
                counted[key][value] = counted[key].get(value, 0) + requests
    listed: dict[str, list[dict[str, Any]]] = {
        key: [
            {"value": value, "requests": requests}
            for value, requests in sorted(found.items(), key=lambda item: (-item[1], item[0]))
        ][:MAX_VALUES]
        for key, found in counted.items()
        if found
    }
    row_only = _row_only_values(conn, window)
    for key, values in row_only.items():
        listed[key] = [{"value": value, "requests": None} for value in values]
    return {"group_by": ["tier", "model", "day", "rule", "arm", *row_only], "values": listed}
