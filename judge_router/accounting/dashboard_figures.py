"""The dashboard's spend, routing-mix and group figures over dashboard_facts, added up and derived
by the same SQL and code as /stats (stats.py), so the two never disagree."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from judge_router.accounting.dashboard_facts import Facts, Window, bucket_for, facts
from judge_router.accounting.dashboard_quality import outcome_facts, quality_spend_by_bucket
from judge_router.accounting.judge_stats import (
    LLM_VERDICT_COST,
    add_local_figures,
    mean_llm_verdict_cost,
)
from judge_router.accounting.quality_stats import OutcomeFacts
from judge_router.accounting.read_connection import ReadConnection, is_sqlite

# /stats's own aggregates and derivations, reused rather than copied (stats.py).
from judge_router.accounting.stats import _AGGREGATES, MAX_GROUPS, _derive, _groups
from judge_router.accounting.stats_view import StatsView
from judge_router.types import round_usd

MAX_MODELS = 8  # models drawn by name in the mix over time; the rest are "(other)"
MAX_BUCKETS = 3_660  # ten years of days: a wider window is drawn over its data's days only
SERIES_FIGURES = (
    "requests", "proxied", "realised_spend_usd", "baseline_spend_usd", "judge_spend_usd",
    "quality_spend_usd", "gross_savings_usd", "net_savings_usd", "savings_pct",
    "cache_hit_rate", "judge_roi",
)  # fmt: skip
OTHER = "(other)"


def first_day(conn: ReadConnection) -> str | None:
    """The ledger's first day with a request (the daily rollups' first key)."""
    found = conn.execute(
        "SELECT MIN(day) FROM decision_rollups WHERE requests > 0 AND day <> ''"
    ).fetchone()
    return None if found is None else found[0]


def _facts_for(conn: ReadConnection, window: Window, view: StatsView | None) -> Facts:
    """Facts over time: the view's filters count, its group does not."""
    filters = None if view is None or not view.where else StatsView(None, view.where)
    bucket = bucket_for(window, first_day(conn), datetime.now(UTC))
    return facts(window, filters, bucket, rollups=is_sqlite(conn))


def window_figures(conn: ReadConnection, found: Facts) -> dict[str, Any]:
    """What every answer says of its window: as read, and the ledger's first day (None: the
    ledger has no request at all, which the page says differently from an empty window)."""
    return {
        "window": {
            "since": found.since,
            "until": found.until,
            "bucket": found.bucket,
            "read": found.read,
        },
        "ledger_first_day": first_day(conn),
    }


def _totals(
    conn: ReadConnection, found: Facts, quality: OutcomeFacts
) -> tuple[dict[str, Any], float | None]:
    """The totals, and the mean LLM verdict cost their local-judge estimate is priced at."""
    total = dict(
        conn.execute(
            f"{found.sql} SELECT {_AGGREGATES}, {LLM_VERDICT_COST} FROM facts", found.params
        ).fetchone()
    )
    mean_cost = mean_llm_verdict_cost(total)
    _derive(quality.with_spend(total, None))
    add_local_figures([total], mean_cost)
    return total, mean_cost


def _buckets(first: str, last: str, bucket: str) -> list[str]:
    """Every bucket from `first` to `last` (at most MAX_BUCKETS), so a chart shows an empty hour
    or day as zero."""
    step, form = (timedelta(hours=1), "%Y-%m-%dT%H") if bucket == "hour" else (
        timedelta(days=1), "%Y-%m-%d")  # fmt: skip
    moment, end = datetime.strptime(first, form), datetime.strptime(last, form)
    found: list[str] = []
    while moment <= end and len(found) < MAX_BUCKETS:
        found.append(moment.strftime(form))
        moment += step
    return found


def _span(found: Facts, seen: list[str]) -> list[str]:
    """The buckets a chart spans: the window's where it has ends (the open end: now), else the
    data's; the data's alone when the window's would be over MAX_BUCKETS."""
    length = 13 if found.bucket == "hour" else 10
    now = datetime.now(UTC).isoformat()[:length]
    first = found.since[:length] if found.since is not None else min(seen, default=now)
    if found.until is not None:
        last = (datetime.fromisoformat(found.until) - timedelta(microseconds=1)).isoformat()
        last = last[:length]
    else:
        last = max([*seen, now])
    step = timedelta(hours=1) if found.bucket == "hour" else timedelta(days=1)
    form = "%Y-%m-%dT%H" if found.bucket == "hour" else "%Y-%m-%d"
    wide = datetime.strptime(last, form) - datetime.strptime(first, form) > step * MAX_BUCKETS
    if wide:
        if not seen:
            return []
        first, last = min(seen), max(seen)
    return _buckets(first, last, found.bucket) if first <= last else []


def _empty_figures() -> dict[str, Any]:
    zero = {"requests": 0, "cache_hits": 0, "judged": 0, "judged_cache_hits": 0, "proxied": 0,
            "errors": 0, "incomplete": 0, "judge_spend_usd": 0.0, "realised_spend_usd": 0.0,
            "baseline_spend_usd": 0.0, "estimated_spend_usd": 0.0,
            "estimated_baseline_spend_usd": 0.0, "local_verdicts": 0}  # fmt: skip
    return zero


def spend(conn: ReadConnection, window: Window, view: StatsView | None) -> dict[str, Any]:
    """Realised, baseline, judge and quality spend and net savings per bucket, net savings
    cumulative, and the totals."""
    found = _facts_for(conn, window, view)
    quality = outcome_facts(conn, found.since, found.until, view)
    # By the day: the outcome facts have it; by the hour (72 hours at most): from the outcomes.
    spent = (
        quality.spend_by("day")
        if found.bucket == "day"
        else quality_spend_by_bucket(conn, found.since, found.until, view, found.bucket)
    )
    rows = {
        row["bucket"]: dict(row)
        for row in conn.execute(
            f"{found.sql} SELECT bucket, {_AGGREGATES} FROM facts GROUP BY bucket "
            "HAVING SUM(requests) <> 0",
            found.params,
        )
    }
    series, cumulative = [], 0.0
    for bucket in _span(found, sorted({*rows, *spent})):
        figures = rows.get(bucket) or _empty_figures()
        figures.pop("bucket", None)
        figures["quality_spend_usd"] = spent.get(bucket, 0.0)
        _derive(figures)
        cumulative += figures["net_savings_usd"]
        point = {"bucket": bucket, **{name: figures[name] for name in SERIES_FIGURES}}
        point["cumulative_net_savings_usd"] = round_usd(cumulative)
        series.append(point)
    totals = _totals(conn, found, quality)[0]
    return {**window_figures(conn, found), "totals": totals, "series": series}


def mix(conn: ReadConnection, window: Window, view: StatsView | None) -> dict[str, Any]:
    """Requests per tier and per model over time, verdicts by source, and the totals (cache hit
    rate, judge ROI)."""
    found = _facts_for(conn, window, view)
    models = [
        row[0]
        for row in conn.execute(
            f"{found.sql} SELECT model FROM facts GROUP BY model HAVING SUM(requests) <> 0 "
            "ORDER BY SUM(requests) DESC, model",
            found.params,
        )
    ]
    shown = models[:MAX_MODELS] if len(models) <= MAX_MODELS else models[: MAX_MODELS - 1]
    by_tier: dict[str, dict[str, int]] = {}
    by_model: dict[str, dict[str, int]] = {}
    for bucket, tier, model, requests in conn.execute(
        f"{found.sql} SELECT bucket, tier, model, SUM(requests) FROM facts "
        "GROUP BY bucket, tier, model HAVING SUM(requests) <> 0",
        found.params,
    ):
        tiers = by_tier.setdefault(bucket, {})
        tiers[tier] = tiers.get(tier, 0) + requests
        name = model if model in shown else OTHER
        named = by_model.setdefault(bucket, {})
        named[name] = named.get(name, 0) + requests
    sources = {
        row[0]: row[1]
        for row in conn.execute(
            f"{found.sql} SELECT source, SUM(requests) FROM facts GROUP BY source "
            "HAVING SUM(requests) <> 0 ORDER BY SUM(requests) DESC, source",
            found.params,
        )
    }
    hit_rates = {
        row["bucket"]: _derive({**dict(row), "quality_spend_usd": 0.0})["cache_hit_rate"]
        for row in conn.execute(
            f"{found.sql} SELECT bucket, {_AGGREGATES} FROM facts GROUP BY bucket "
            "HAVING SUM(requests) <> 0",
            found.params,
        )
    }
    quality = outcome_facts(conn, found.since, found.until, view)
    series = [
        {
            "bucket": bucket,
            "by_tier": by_tier.get(bucket, {}),
            "by_model": by_model.get(bucket, {}),
            "cache_hit_rate": hit_rates.get(bucket),
        }
        for bucket in _span(found, sorted(by_tier))
    ]
    return {
        **window_figures(conn, found),
        "totals": _totals(conn, found, quality)[0],
        "models": shown + ([OTHER] if len(models) > len(shown) else []),
        "models_folded": len(models) - len(shown),
        "verdicts_by_source": sources,
        "series": series,
    }


def groups(
    conn: ReadConnection,
    window: Window,
    view: StatsView,
    max_groups: int = MAX_GROUPS,
) -> dict[str, Any]:
    """Spend by group (view.group_by), each with spend per request and its spend by model, as
    /stats's `groups`."""
    found = facts(window, view, "day", compact=True, rollups=is_sqlite(conn))
    quality = outcome_facts(conn, found.since, found.until, view)
    # Read once into a temporary table: the totals and the groups' three statements all read it.
    conn.execute("DROP TABLE IF EXISTS temp.dashboard_facts")
    conn.execute(
        f"CREATE TEMP TABLE dashboard_facts AS {found.sql} SELECT * FROM facts", found.params
    )
    try:
        kept = replace(found, sql="WITH facts AS (SELECT * FROM temp.dashboard_facts)", params={})
        totals, mean_cost = _totals(conn, kept, quality)
        found_groups, folded = _groups(conn, kept.sql, {}, max_groups, quality)
    finally:
        conn.execute("DROP TABLE IF EXISTS temp.dashboard_facts")
    add_local_figures(found_groups, mean_cost)
    return {
        **window_figures(conn, found),
        "group_by": view.group_by,
        "where": view.where_json(),
        "totals": totals,
        "groups": found_groups,
        "groups_folded": folded,
    }
