"""Savings summaries over the ledger: totals and breakdowns by tier, model and day.

Plain SQL that SQLite and PostgreSQL both accept: conditional counts use COUNT(CASE ...), not SUM
of a boolean, which only SQLite takes.
"""

from __future__ import annotations

import sqlite3
from typing import Any

# Columns a breakdown may group by (never user text in SQL).
GROUPINGS = {"tier": "tier", "model": "model", "day": "substr(created_at, 1, 10)"}

_AGGREGATES = """
    COUNT(*) AS requests,
    COALESCE(SUM(cached), 0) AS cache_hits,
    COUNT(CASE WHEN source NOT IN ('forced', 'passthrough') THEN 1 END) AS judged,
    COUNT(CASE WHEN status <> 'routed' THEN 1 END) AS proxied,
    COUNT(CASE WHEN status = 'error' THEN 1 END) AS errors,
    COUNT(CASE WHEN status = 'incomplete' THEN 1 END) AS incomplete,
    COALESCE(SUM(judge_cost_usd), 0.0) AS judge_spend_usd,
    COALESCE(SUM(cost_usd), 0.0) AS realised_spend_usd,
    COALESCE(SUM(baseline_cost_usd), 0.0) AS baseline_spend_usd,
    COALESCE(SUM(estimated_cost_usd), 0.0) AS estimated_spend_usd,
    COALESCE(SUM(estimated_baseline_cost_usd), 0.0) AS estimated_baseline_spend_usd
"""


def _derive(row: dict[str, Any]) -> dict[str, Any]:
    """Add the ratios; each is None when its denominator is zero rather than a made-up 0."""
    gross = row["baseline_spend_usd"] - row["realised_spend_usd"]
    net = gross - row["judge_spend_usd"]
    row["gross_savings_usd"] = gross
    row["net_savings_usd"] = net
    row["savings_pct"] = (
        100 * net / row["baseline_spend_usd"] if row["baseline_spend_usd"] else None
    )
    row["judge_roi"] = gross / row["judge_spend_usd"] if row["judge_spend_usd"] else None
    row["cache_hit_rate"] = row["cache_hits"] / row["judged"] if row["judged"] else None
    return row


def summarise(conn: sqlite3.Connection, since: str | None = None) -> dict[str, Any]:
    """Totals, verdicts by source, and breakdowns by tier, model and day, from `since` (ISO) on."""
    where, params = ("WHERE created_at >= ?", (since,)) if since else ("", ())
    conn.row_factory = sqlite3.Row
    total = dict(conn.execute(f"SELECT {_AGGREGATES} FROM decisions {where}", params).fetchone())
    by_source = {
        row[0]: row[1]
        for row in conn.execute(
            f"SELECT source, COUNT(*) FROM decisions {where} GROUP BY source ORDER BY source",
            params,
        )
    }
    breakdowns: dict[str, list[dict[str, Any]]] = {}
    for name, expression in GROUPINGS.items():
        rows = conn.execute(
            f"SELECT {expression} AS {name}, {_AGGREGATES} FROM decisions {where} "
            f"GROUP BY {expression} ORDER BY {expression}",
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
