"""Savings summaries over the ledger: totals and breakdowns by tier, model, day and rollout arm,
and, for a StatsView (stats_view.py), filtered figures and groups by any key; answer quality and
its cost from the outcome rows (quality_stats.py); the local judge's verdicts and the LLM judge
spend they spared (judge_stats.py).

Plain SQL that SQLite and PostgreSQL both accept: conditional counts use COUNT(CASE ...), not SUM
of a boolean, which only SQLite takes (the metadata expression is SQLite's JSON functions; a
PostgreSQL ledger would give its own).
"""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta
from typing import Any

from judge_router.accounting.dashboard_quality import outcome_facts
from judge_router.accounting.judge_stats import (
    LLM_VERDICT_COST,
    LOCAL_AGGREGATES,
    add_local_figures,
    mean_llm_verdict_cost,
)
from judge_router.accounting.quality_stats import IN_AN_ARM, NONE, OTHER, OutcomeFacts
from judge_router.accounting.read_connection import ReadConnection
from judge_router.accounting.stats_scan import SCAN_LIMIT_S, SCANNED_FACTS, scanned
from judge_router.accounting.stats_view import StatsView, conditions, expression
from judge_router.types import round_usd

# Columns a breakdown may group by (never user text in SQL).
GROUPINGS = {"tier": "tier", "model": "model", "day": "day"}
MAX_GROUPS = 100  # a grouping's largest groups by spend; the rest are added up as one, OTHER

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
_AGGREGATES = f"""
    COALESCE(SUM(requests), 0) AS requests,
    COALESCE(SUM(cache_hits), 0) AS cache_hits,
    COALESCE(SUM(CASE WHEN source NOT IN ('forced', 'passthrough', 'rule', 'budget', 'cascade')
        THEN requests END), 0) AS judged,
    -- a cached verdict that a rule or budget then changed is a hit, but not a judged request
    COALESCE(SUM(CASE WHEN source NOT IN ('forced', 'passthrough', 'rule', 'budget', 'cascade')
        THEN cache_hits END), 0) AS judged_cache_hits,
    COALESCE(SUM(CASE WHEN status <> 'routed' THEN requests END), 0) AS proxied,
    COALESCE(SUM(CASE WHEN status = 'error' THEN requests END), 0) AS errors,
    COALESCE(SUM(CASE WHEN status = 'incomplete' THEN requests END), 0) AS incomplete,
    COALESCE(SUM(judge_cost_usd), 0.0) AS judge_spend_usd,
    COALESCE(SUM(cost_usd), 0.0) AS realised_spend_usd,
    COALESCE(SUM(baseline_cost_usd), 0.0) AS baseline_spend_usd,
    COALESCE(SUM(estimated_cost_usd), 0.0) AS estimated_spend_usd,
    COALESCE(SUM(estimated_baseline_cost_usd), 0.0) AS estimated_baseline_spend_usd,
    {LOCAL_AGGREGATES}
"""
# What a per-request estimate divides: the estimates of the requests no model was called for.
_ROUTED_ESTIMATE = """
    COALESCE(SUM(CASE WHEN status = 'routed' THEN estimated_cost_usd END), 0.0)
        AS routed_estimated_spend_usd
"""
_MODEL_AGGREGATES = f"""
    COALESCE(SUM(requests), 0) AS requests,
    COALESCE(SUM(CASE WHEN status <> 'routed' THEN requests END), 0) AS proxied,
    COALESCE(SUM(cost_usd), 0.0) AS realised_spend_usd, {_ROUTED_ESTIMATE}
"""


def _facts(since: str | None, view: StatsView | None) -> tuple[str, dict[str, str]]:
    """The CTE every figure is summed over, and its parameters (from the rollups)."""
    params: dict[str, str] = {"first_whole_day": ""}
    union = _ROLLUP_FACTS
    if since is not None:
        day = since[:10]
        params["first_whole_day"] = day if since <= f"{day}T00:00:00+00:00" else _next_day(day)
        params["since"] = since
        union = f"{_ROLLUP_FACTS} UNION ALL {_ROW_FACTS}"
    if view is None:
        return f"WITH facts AS ({union})", params
    group = "NULL" if view.group_by is None else expression(view.group_by, False, params)
    where = " AND ".join(conditions(view, False, params)) or "1 = 1"
    return (
        f"WITH facts AS (SELECT u.*, COALESCE({group}, '') AS grp, "
        f"CASE WHEN {group} IS NULL THEN 1 ELSE 0 END AS grp_none FROM ({union}) AS u "
        f"WHERE {where})",
        params,
    )


def _next_day(day: str) -> str:
    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()


def _derive(row: dict[str, Any]) -> dict[str, Any]:
    """Add the savings and ratios, rounded to what they mean; a ratio is None when its denominator
    is zero rather than a made-up 0. Net: after the judge and the quality loop (grades, shadow
    answers: `quality_spend_usd`, set on the row before)."""
    gross = row["baseline_spend_usd"] - row["realised_spend_usd"]
    net = gross - row["judge_spend_usd"] - row["quality_spend_usd"]
    baseline, judge, judged = row["baseline_spend_usd"], row["judge_spend_usd"], row["judged"]
    row["gross_savings_usd"] = gross
    row["net_savings_usd"] = net
    for name, value in row.items():
        if name.endswith("_usd") and isinstance(value, float):
            row[name] = round_usd(value)
    row["savings_pct"] = round(100 * net / baseline, 4) if baseline else None
    row["judge_roi"] = round(gross / judge, 4) if judge else None
    hits = row.pop("judged_cache_hits", row["cache_hits"])
    row["cache_hit_rate"] = round(hits / judged, 6) if judged else None  # at most 1
    return row


def _per_request(row: dict[str, Any], derive: bool = True) -> dict[str, Any]:
    """`row`'s figures (derived, unless not `derive`) and its spend per request: realised spend
    per proxied request, and the /route estimate per request no model was called for."""
    estimated = row.pop("routed_estimated_spend_usd")
    if derive:
        _derive(row)
    proxied, routed_only = row["proxied"], row["requests"] - row["proxied"]
    spend = row["realised_spend_usd"]
    row["spend_per_request_usd"] = round_usd(spend / proxied) if proxied else None
    row["estimated_spend_per_request_usd"] = (
        round_usd(estimated / routed_only) if routed_only else None
    )
    return row


def summarise(
    conn: ReadConnection,
    since: str | None = None,
    view: StatsView | None = None,
    scan_limit_s: float = SCAN_LIMIT_S,
    max_groups: int = MAX_GROUPS,
) -> dict[str, Any]:
    """Totals, verdicts by source, and breakdowns by tier, model, day and arm, from `since` on (an
    ISO datetime in UTC, as the ledger writes them); with a `view`, over its filtered rows, plus
    its groups. Raises stats_scan.ScanTooLong when a view that reads the decisions takes over
    `scan_limit_s`."""
    if isinstance(conn, sqlite3.Connection):
        conn.row_factory = sqlite3.Row
    if view is not None and view.needs_rows:
        with scanned(conn, since, view, scan_limit_s):
            return _summary(conn, SCANNED_FACTS, {}, since, view, max_groups)
    facts, params = _facts(since, view)
    return _summary(conn, facts, params, since, view, max_groups)


def _summary(
    conn: ReadConnection,
    facts: str,
    params: dict[str, str],
    since: str | None,
    view: StatsView | None,
    max_groups: int,
) -> dict[str, Any]:
    # From the outcome rollups the dashboard keeps, and the outcomes they do not hold yet.
    quality = outcome_facts(conn, since, None, view)
    total = dict(
        conn.execute(
            f"{facts} SELECT {_AGGREGATES}, {LLM_VERDICT_COST} FROM facts", params
        ).fetchone()
    )
    llm_verdict_cost = mean_llm_verdict_cost(total)  # for every row's judge_spend_avoided_usd
    by_source = {
        row[0]: row[1]
        for row in conn.execute(
            f"{facts} SELECT source, SUM(requests) FROM facts GROUP BY source "
            "HAVING SUM(requests) > 0 ORDER BY source",
            params,
        )
    }
    breakdowns: dict[str, list[dict[str, Any]]] = {}
    for name, column in GROUPINGS.items():
        rows = conn.execute(
            f"{facts} SELECT {column} AS {name}, {_AGGREGATES} FROM facts "
            f"GROUP BY {column} HAVING SUM(requests) > 0 ORDER BY {column}",
            params,
        )
        breakdowns[name] = [_derive(quality.with_spend(dict(row), name)) for row in rows]
    arms = conn.execute(
        f"{facts} SELECT arm, {_AGGREGATES}, {_ROUTED_ESTIMATE} FROM facts WHERE {IN_AN_ARM} "
        "GROUP BY arm HAVING SUM(requests) > 0 ORDER BY CASE arm WHEN 'routed' THEN 0 ELSE 1 END",
        params,
    )
    answer: dict[str, Any] = {
        "since": since,
        "totals": _derive(quality.with_spend(total, None)),
        "verdicts_by_source": by_source,
        "by_tier": breakdowns["tier"],
        "by_model": breakdowns["model"],
        "by_day": breakdowns["day"],
        "by_arm": [
            {
                **_per_request(quality.with_spend(dict(row), "arm")),
                "quality": quality.of("arm", row["arm"]),
            }
            for row in arms
        ],
    }
    if view is not None:
        answer["group_by"] = view.group_by
        answer["where"] = view.where_json()
        answer["groups"], answer["groups_folded"] = (
            ([], 0) if view.group_by is None else _groups(conn, facts, params, max_groups, quality)
        )
    # The local judge's figures, at the mean LLM verdict cost of the whole summary (judge_stats).
    figures = [answer["totals"], *answer["by_tier"], *answer["by_model"], *answer["by_day"]]
    figures += [*answer["by_arm"], *answer.get("groups", [])]
    add_local_figures(figures, llm_verdict_cost)
    shown = None if view is None else [group["group"] for group in answer["groups"]]
    answer["quality"] = quality.block(shown)
    return answer


# Spend as groups and models are ordered by: to the nano-dollar, so two sums that differ only in
# the last bits of a float (SQLite and PostgreSQL add in different orders) tie, and the next key
# decides, the same on both.
_SPENT = "ROUND(SUM(cost_usd) * 1e9)"


def _groups(
    conn: ReadConnection,
    facts: str,
    params: dict[str, str],
    max_groups: int,
    quality: OutcomeFacts,
) -> tuple[list[dict[str, Any]], int]:
    """The `max_groups` groups that spent most (then the busiest), each with its figures and its
    spend by model, and the rest added up as one OTHER group; and how many groups that holds.

    The facts are labelled with their group (OTHER: folded 1) and added up by group, model,
    source and status once, into temp.stats_groups, which both answers read."""
    labelled = (
        f"{facts}, top AS (SELECT grp AS key, grp_none AS key_none FROM facts "
        f"GROUP BY grp, grp_none ORDER BY {_SPENT} DESC, SUM(requests) DESC, grp "
        f"LIMIT {int(max_groups)}), "
        "labelled AS (SELECT facts.*, CASE WHEN top.key IS NULL THEN 1 ELSE 0 END AS folded, "
        "CASE WHEN top.key IS NULL THEN '' ELSE facts.grp END AS g, "
        "CASE WHEN top.key IS NULL THEN 0 ELSE facts.grp_none END AS g_none "
        "FROM facts LEFT JOIN top ON facts.grp = top.key AND facts.grp_none = top.key_none)"
    )
    keys = "folded, g, g_none"
    conn.execute("DROP TABLE IF EXISTS temp.stats_groups")
    conn.execute(
        f"CREATE TEMP TABLE stats_groups AS {labelled} SELECT {keys}, model, source, status, "
        "SUM(requests) AS requests, SUM(cache_hits) AS cache_hits, "
        "SUM(judge_cost_usd) AS judge_cost_usd, SUM(cost_usd) AS cost_usd, "
        "SUM(baseline_cost_usd) AS baseline_cost_usd, "
        "SUM(estimated_cost_usd) AS estimated_cost_usd, "
        "SUM(estimated_baseline_cost_usd) AS estimated_baseline_cost_usd "
        f"FROM labelled GROUP BY {keys}, model, source, status",
        params,
    )
    try:
        models: dict[tuple[int, str, int], list[dict[str, Any]]] = {}
        for row in conn.execute(
            f"SELECT {keys}, model, {_MODEL_AGGREGATES} FROM temp.stats_groups "
            f"GROUP BY {keys}, model ORDER BY {_SPENT} DESC, SUM(requests) DESC, model"
        ):
            figures = dict(row)
            key = (figures.pop("folded"), figures.pop("g"), figures.pop("g_none"))
            figures["realised_spend_usd"] = round_usd(figures["realised_spend_usd"])
            models.setdefault(key, []).append(_per_request(figures, derive=False))
        rows = [
            dict(row)
            for row in conn.execute(
                f"SELECT {keys}, {_AGGREGATES}, {_ROUTED_ESTIMATE} FROM temp.stats_groups "
                f"GROUP BY {keys} ORDER BY folded, {_SPENT} DESC, SUM(requests) DESC, g"
            )
        ]
        shown = {(row["g"], row["g_none"]) for row in rows if not row["folded"]}
        groups = []
        for figures in rows:
            key = (figures.pop("folded"), figures.pop("g"), figures.pop("g_none"))
            name = OTHER if key[0] else NONE if key[2] else key[1]
            spent = quality.unkept_spend(shown) if key[0] else quality.spend("group", key[1:])
            figures["quality_spend_usd"] = spent
            groups.append({"group": name, **_per_request(figures), "by_model": models[key]})
        kept = len(shown)
    finally:
        conn.execute("DROP TABLE IF EXISTS temp.stats_groups")
    count = conn.execute(
        f"{facts} SELECT COUNT(*) FROM (SELECT grp FROM facts GROUP BY grp, grp_none) AS g", params
    ).fetchone()[0]
    return groups, count - kept
