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
from judge_router.accounting.stats_view import expression

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


# PostgreSQL's: the top-level keys of the metadata objects, as row_dimensions names them.
_PG_KEYS = """
    SELECT DISTINCT ('metadata.' || j.key) COLLATE "C" AS dim
    FROM decisions AS d, jsonb_each(CASE WHEN jsonb_typeof(jr_json(d.metadata)) = 'object'
        THEN jr_json(d.metadata) END) AS j
    WHERE d.metadata IS NOT NULL AND jsonb_typeof(j.value) <> 'null'
        AND length(j.key) BETWEEN 1 AND 64 AND j.key !~ '[^A-Za-z0-9_-]' AND {where}
    ORDER BY dim LIMIT :limit
"""


def _days(window: Window, params: dict[str, Any], column: str = "day") -> str:
    """The window's whole days, over `column` (a day, or an ISO time that starts with one)."""
    found = ["requests <> 0"] if column == "day" else ["1 = 1"]
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
    if is_sqlite(conn):
        keys = conn.execute(_NEXT.format(column="dim", where="1 = 1"), {"limit": MAX_KEYS + 1})
        names = [key for (key,) in keys.fetchall()]
    else:
        params: dict[str, Any] = {"limit": MAX_KEYS}
        where = _days(window, params, "d.created_at")
        names = [key for (key,) in conn.execute(_PG_KEYS.format(where=where), params)]
        params = {}
        where = _days(window, params, "created_at")
        if conn.execute(
            f"SELECT 1 FROM decisions WHERE api_key_id IS NOT NULL AND {where} LIMIT 1", params
        ).fetchone():
            names.append("api_key")
    row_only = (["api_key"] if "api_key" in names else []) + sorted(
        key for key in names if key.startswith("metadata.")
    )[:MAX_KEYS]
    found = {}
    for key in row_only:
        if is_sqlite(conn):
            query = _NEXT.format(column="value", where="dim = :dim")
            values = conn.execute(query, {"dim": key, "limit": MAX_VALUES})
        else:
            params = {"limit": MAX_VALUES}
            value = expression(key, True, params)
            where = _days(window, params, "created_at")
            values = conn.execute(
                f'SELECT DISTINCT ({value}) COLLATE "C" AS value FROM decisions '
                f"WHERE {value} IS NOT NULL AND {where} ORDER BY value LIMIT :limit",
                params,
            )
        found[key] = [value for (value,) in values]
    return found


def dimensions(conn: ReadConnection, window: Window) -> dict[str, Any]:
    params: dict[str, Any] = {}
    counted: dict[str, dict[str, int]] = {key: {} for key in POLICY_KEYS}
    for *values, requests in conn.execute(
        f"SELECT tier, model, NULLIF(rule, ''), arm, SUM(requests) FROM decision_rollups "
        f"WHERE {_days(window, params)} GROUP BY tier, model, rule, arm",
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
