"""Savings summaries over the ledger: totals and breakdowns by tier, model and day.

Plain SQL that SQLite and PostgreSQL both accept: conditional counts use COUNT(CASE ...), not SUM
of a boolean, which only SQLite takes.
"""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta
from typing import Any

from judge_router.types import round_usd

# Columns a breakdown may group by (never user text in SQL).
GROUPINGS = {"tier": "tier", "model": "model", "day": "day"}

# Whole days come from the rollups (migration 004); the first day of a `since` that starts within
# a day comes from the decisions themselves, read through the created_at index.
_ROLLUP_FACTS = """
    SELECT day, tier, model, source, status, rule, arm, requests, cache_hits, judge_cost_usd,
        cost_usd, baseline_cost_usd, estimated_cost_usd, estimated_baseline_cost_usd
    FROM decision_rollups WHERE requests > 0 AND day >= :first_whole_day
"""
_ROW_FACTS = """
    SELECT substr(created_at, 1, 10) AS day, tier, model, source, status,
        COALESCE(rule, '') AS rule, arm, 1 AS requests, cached AS cache_hits, judge_cost_usd,
        COALESCE(cost_usd, 0) AS cost_usd,
        COALESCE(baseline_cost_usd, 0) AS baseline_cost_usd, estimated_cost_usd,
        estimated_baseline_cost_usd
    FROM decisions WHERE created_at >= :since AND created_at < :first_whole_day
"""

_AGGREGATES = """
    COALESCE(SUM(requests), 0) AS requests,
    COALESCE(SUM(cache_hits), 0) AS cache_hits,
    COALESCE(SUM(CASE WHEN source NOT IN ('forced', 'passthrough', 'rule') THEN requests END), 0)
        AS judged,
    COALESCE(SUM(CASE WHEN status <> 'routed' THEN requests END), 0) AS proxied,
    COALESCE(SUM(CASE WHEN status = 'error' THEN requests END), 0) AS errors,
    COALESCE(SUM(CASE WHEN status = 'incomplete' THEN requests END), 0) AS incomplete,
    COALESCE(SUM(judge_cost_usd), 0.0) AS judge_spend_usd,
    COALESCE(SUM(cost_usd), 0.0) AS realised_spend_usd,
    COALESCE(SUM(baseline_cost_usd), 0.0) AS baseline_spend_usd,
    COALESCE(SUM(estimated_cost_usd), 0.0) AS estimated_spend_usd,
    COALESCE(SUM(estimated_baseline_cost_usd), 0.0) AS estimated_baseline_spend_usd
"""


def _facts(since: str | None) -> tuple[str, dict[str, str]]:
    """The CTE every figure is summed over, and its parameters."""
    if since is None:
        return f"WITH facts AS ({_ROLLUP_FACTS})", {"first_whole_day": ""}
    day = since[:10]
    first_whole_day = day if since <= f"{day}T00:00:00+00:00" else _next_day(day)
    sql = f"WITH facts AS ({_ROLLUP_FACTS} UNION ALL {_ROW_FACTS})"
    return sql, {"first_whole_day": first_whole_day, "since": since}


def _next_day(day: str) -> str:
    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()


def _derive(row: dict[str, Any]) -> dict[str, Any]:
    """Add the savings and ratios, rounded to what they mean; a ratio is None when its denominator
    is zero rather than a made-up 0."""
    gross = row["baseline_spend_usd"] - row["realised_spend_usd"]
    net = gross - row["judge_spend_usd"]
    baseline, judge, judged = row["baseline_spend_usd"], row["judge_spend_usd"], row["judged"]
    row["gross_savings_usd"] = gross
    row["net_savings_usd"] = net
    for name, value in row.items():
        if name.endswith("_usd") and isinstance(value, float):
            row[name] = round_usd(value)
    row["savings_pct"] = round(100 * net / baseline, 4) if baseline else None
    row["judge_roi"] = round(gross / judge, 4) if judge else None
    row["cache_hit_rate"] = round(row["cache_hits"] / judged, 6) if judged else None
    return row


def summarise(conn: sqlite3.Connection, since: str | None = None) -> dict[str, Any]:
    """Totals, verdicts by source, and breakdowns by tier, model and day, from `since` on (an ISO
    datetime in UTC, as the ledger writes them)."""
    facts, params = _facts(since)
    conn.row_factory = sqlite3.Row
    total = dict(conn.execute(f"{facts} SELECT {_AGGREGATES} FROM facts", params).fetchone())
    by_source = {
        row[0]: row[1]
        for row in conn.execute(
            f"{facts} SELECT source, SUM(requests) FROM facts GROUP BY source "
            "HAVING SUM(requests) > 0 ORDER BY source",
            params,
        )
    }
    breakdowns: dict[str, list[dict[str, Any]]] = {}
    for name, expression in GROUPINGS.items():
        rows = conn.execute(
            f"{facts} SELECT {expression} AS {name}, {_AGGREGATES} FROM facts "
            f"GROUP BY {expression} HAVING SUM(requests) > 0 ORDER BY {expression}",
            params,
        )
        breakdowns[name] = [_derive(dict(row)) for row in rows]
    return {
        "since": since,
        "totals": _derive(total),
        "verdicts_by_source": by_source,
        "by_tier": breakdowns["tier"],
        "by_model": breakdowns["model"],
        "by_day": breakdowns["day"],
    }
