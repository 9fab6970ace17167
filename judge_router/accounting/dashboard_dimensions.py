"""What the dashboard's controls offer: the keys a view can group or filter by, and their values.

tier, model, rule and arm come with their requests in the window (the busiest first), from one
pass over the daily rollups. api_key and the metadata keys come from the group rollups' index, a
seek per value (SQLite has no skip scan without statistics: the recursive query is one), so a
key with a million values costs as little as one with five: the first MAX_VALUES of each in
alphabetical order, over the whole ledger as the background roll-up has added it so far.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from judge_router.accounting.dashboard_facts import Window, ceil_day, floor_day

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


def _days(window: Window, params: dict[str, Any]) -> str:
    found = ["requests <> 0"]
    if window.since is not None:
        params["d_since"] = floor_day(window.since).strftime("%Y-%m-%d")
        found.append("day >= :d_since")
    if window.until is not None:
        params["d_until"] = ceil_day(window.until).strftime("%Y-%m-%d")
        found.append("day < :d_until")
    return " AND ".join(found)


def dimensions(conn: sqlite3.Connection, window: Window) -> dict[str, Any]:
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
    keys = conn.execute(_NEXT.format(column="dim", where="1 = 1"), {"limit": MAX_KEYS + 1})
    row_only = [key for (key,) in keys.fetchall()]
    row_only = (["api_key"] if "api_key" in row_only else []) + sorted(
        key for key in row_only if key.startswith("metadata.")
    )[:MAX_KEYS]
    for key in row_only:
        query = _NEXT.format(column="value", where="dim = :dim")
        values = conn.execute(query, {"dim": key, "limit": MAX_VALUES})
        listed[key] = [{"value": value, "requests": None} for (value,) in values]
    return {"group_by": ["tier", "model", "day", "rule", "arm", *row_only], "values": listed}
