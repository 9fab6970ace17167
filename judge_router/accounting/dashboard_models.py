"""The model comparison: within one group (or all traffic), each model's realised cost per proxied
request as a distribution (a histogram by cost to one significant digit, its median and 90th
percentile) beside the mean score its answers got (outcome rows), by whole UTC days.

The cost histogram rollup (dashboard_schema.py) answers a group of tier, arm, rule, api_key or a
top-level metadata key, a day or a model; the `(none)` group, a nested metadata key or a filter
other than `model` read the decisions themselves, as every view does on a PostgreSQL ledger (it
has no histogram rollup; its costs are put in buckets by to_char, which rounds an exact tie such
as 2.5 to even where SQLite's printf rounds it up).
"""

from __future__ import annotations

from typing import Any

from judge_router.accounting.dashboard_facts import (
    Window,
    ceil_day,
    floor_day,
    iso,
    pending_rows,
    rolled_up_dimension,
)
from judge_router.accounting.dashboard_figures import first_day
from judge_router.accounting.dashboard_quality import outcome_facts
from judge_router.accounting.dashboard_rollups import COST_BUCKET
from judge_router.accounting.quality_stats import NONE, OTHER, by_source
from judge_router.accounting.read_connection import ReadConnection, is_sqlite
from judge_router.accounting.stats_view import StatsView, conditions, expression
from judge_router.types import round_usd

MAX_MODELS = 100
_ROLLED_UP_GROUPS = ("tier", "arm", "rule", "api_key")
# COST_BUCKET in PostgreSQL's words: the same text for every cost but an exact tie.
_PG_COST_BUCKET = (
    "CASE WHEN COALESCE(cost_usd, 0) <= 0 THEN '0' ELSE trim(to_char(cost_usd, '9EEEE')) END"
)


class UnknownGroup(ValueError):
    """A group the comparison cannot be drawn for (the message says why)."""


def _histogram_key(group_by: str | None, group: str | None) -> tuple[str, str] | None:
    """The histogram's (dim, value) for a group, or None when the rows must be read."""
    if group_by is None:
        return "", ""
    if group_by in ("day", "model"):
        return "", ""  # every request, narrowed by day or model below
    if group_by in _ROLLED_UP_GROUPS or rolled_up_dimension(StatsView(group_by)) == group_by:
        return group_by, group or ""
    return None


def model_costs(
    conn: ReadConnection,
    window: Window,
    group_by: str | None,
    group: str | None,
    filters: StatsView | None,
) -> dict[str, Any]:
    """Each model's cost distribution and scores within `group` of `group_by` (None: all)."""
    if group == OTHER:
        raise UnknownGroup(f"{OTHER} adds up many groups: pick one of them")
    if group_by is not None and group is None:
        raise UnknownGroup(f"group_by={group_by} needs a group (one of its values, or {NONE})")
    since = None if window.since is None else floor_day(window.since)
    until = None if window.until is None else ceil_day(window.until)
    lo, hi = iso(since), iso(until)
    models_only = filters is None or all(key == "model" for key, _ in filters.where)
    key = _histogram_key(group_by, group) if models_only and is_sqlite(conn) else None
    if group == NONE and group_by in ("day", "model"):
        key = None  # never without a value: the rows say so (none)
    params: dict[str, Any] = {}
    # What the rows must satisfy: the window, proxied, the filters, the group.
    wanted = ["status <> 'routed'"]
    wanted += conditions(filters, True, params) if filters is not None else []
    if lo is not None:
        params["m_since"] = lo
        wanted.append("created_at >= :m_since")
    if hi is not None:
        params["m_until"] = hi
        wanted.append("created_at < :m_until")
    if group_by is not None:
        value = expression(group_by, True, params)
        if group == NONE:
            wanted.append(f"{value} IS NULL")
        else:
            params["m_group"] = group
            wanted.append(f"{value} = :m_group")
    rows_wanted = " AND ".join(wanted)

    cost_bucket = COST_BUCKET.format(c="") if is_sqlite(conn) else _PG_COST_BUCKET

    def select(sign: int) -> str:
        return (
            f"SELECT model, {cost_bucket} AS bucket, {sign} AS requests, "
            f"{sign} * COALESCE(cost_usd, 0) AS cost_usd"
        )

    if key is None:
        source, read = f"{select(1)} FROM decisions WHERE {rows_wanted}", "rows"
    else:
        params["m_dim"], params["m_value"] = key
        rolled = ["requests <> 0"]
        rolled += ["day >= substr(:m_since, 1, 10)"] if lo is not None else []
        rolled += ["day < substr(:m_until, 1, 10)"] if hi is not None else []
        if group_by == "day":
            rolled.append("day = :m_group")
        if group_by == "model":
            rolled.append("model = :m_group")
        rolled += conditions(filters, False, params) if filters is not None else []
        histogram = (
            "SELECT model, bucket, {sign} * requests AS requests, {sign} * cost_usd AS cost_usd "
        )
        histogram += "FROM "
        histogram += "decision_cost_histogram WHERE {which} AND " + " AND ".join(rolled)
        if group == NONE:  # every request's, less those with a value of the key
            parts = [
                histogram.format(sign=1, which="dim = '' AND value = ''"),
                histogram.format(sign=-1, which="dim = :m_dim"),
            ]
        else:
            parts = [histogram.format(sign=1, which="dim = :m_dim AND value = :m_value")]
        source = " UNION ALL ".join([*parts, pending_rows(select, rows_wanted)])
        read = "rollups"
    found: dict[str, dict[str, Any]] = {}
    for model, bucket, requests, cost in conn.execute(
        f"SELECT model, bucket, SUM(requests), SUM(cost_usd) FROM ({source}) AS costs "
        "GROUP BY model, bucket HAVING SUM(requests) <> 0",
        params,
    ):
        entry = found.setdefault(model, {"model": model, "requests": 0, "cost": 0.0, "bins": []})
        entry["requests"] += requests
        entry["cost"] += cost
        entry["bins"].append((float(bucket), requests))
    view = StatsView(group_by, filters.where if filters is not None else ())
    scores = _scores(conn, lo, hi, view, group)
    models = sorted(found.values(), key=lambda entry: (-entry["requests"], entry["model"]))
    return {
        "window": {"since": lo, "until": hi, "bucket": "day", "read": read},
        "ledger_first_day": first_day(conn),
        "group_by": group_by,
        "group": group,
        "models": [_figures(entry, scores) for entry in models[:MAX_MODELS]],
        "models_folded": max(0, len(models) - MAX_MODELS),
    }


def _percentile(bins: list[tuple[float, int]], share: float) -> float:
    total, running = sum(count for _, count in bins), 0
    for value, count in bins:
        running += count
        if running >= share * total:
            return value
    return bins[-1][0]


def _figures(entry: dict[str, Any], scores: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    bins = sorted(entry["bins"])
    requests = entry["requests"]
    quality = by_source(scores.get(entry["model"], []))
    scored = sum(figures["scored"] for figures in quality.values())
    mean = (
        sum(
            figures["mean_score"] * figures["scored"]
            for figures in quality.values()
            if figures["scored"]
        )
        / scored
        if scored
        else None
    )
    return {
        "model": entry["model"],
        "requests": requests,
        "realised_spend_usd": round_usd(entry["cost"]),
        "mean_cost_usd": round_usd(entry["cost"] / requests),
        "p50_cost_usd": _percentile(bins, 0.5),
        "p90_cost_usd": _percentile(bins, 0.9),
        "histogram": [{"cost_usd": value, "requests": count} for value, count in bins],
        "scored": scored,
        "mean_score": None if mean is None else round(mean, 6),
        "quality": quality,
    }


def _scores(
    conn: ReadConnection,
    since: str | None,
    until: str | None,
    view: StatsView,
    group: str | None,
) -> dict[str, list[dict[str, Any]]]:
    """The group's outcome rows (added up) by the model whose answer was scored."""
    facts = outcome_facts(conn, since, until, view if view.group_by or view.where else None)
    wanted = None if view.group_by is None else (("", 1) if group == NONE else (group, 0))
    found: dict[str, list[dict[str, Any]]] = {}
    for row in facts.rows:
        if wanted is None or (row["grp"], row["grp_none"]) == wanted:
            found.setdefault(row["o_model"], []).append(row)
    return found
