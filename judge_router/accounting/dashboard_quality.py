"""The outcome rows of a dashboard window: what measuring quality cost (net savings subtract it) and
the scores, as /stats adds them up (quality_stats.py), between `since` and `until`."""

from __future__ import annotations

import sqlite3
from typing import Any

from judge_router.accounting.quality_stats import _FACTS, IN_AN_ARM, OutcomeFacts
from judge_router.accounting.stats_view import StatsView, conditions, expression


def _range(since: str | None, until: str | None, params: dict[str, Any], column: str) -> str:
    found = []
    if since is not None:
        params["q_since"] = since
        found.append(f"{column} >= :q_since")
    if until is not None:
        params["q_until"] = until
        found.append(f"{column} < :q_until")
    return " AND ".join(found)


def outcome_facts(
    conn: sqlite3.Connection, since: str | None, until: str | None, view: StatsView | None
) -> OutcomeFacts:
    """quality_stats.outcome_facts with an end: the outcomes created in [since, until) of the
    requests `view` keeps, added up by every key /stats breaks them down by."""
    params: dict[str, Any] = {}
    group = "NULL"
    if view is not None and view.group_by is not None:
        group = expression(view.group_by, True, params)
    wanted = [] if view is None else conditions(view, True, params)
    window = _range(since, until, params, "o.created_at")
    query = _FACTS.format(
        since=f"WHERE {window}" if window else "",
        in_an_arm=IN_AN_ARM,
        group=group,
        where=f"WHERE {' AND '.join(wanted)}" if wanted else "",
    )
    return OutcomeFacts([dict(row) for row in conn.execute(query, params)])


def quality_spend_by_bucket(
    conn: sqlite3.Connection,
    since: str | None,
    until: str | None,
    view: StatsView | None,
    bucket: str,
) -> dict[str, float]:
    """Grading and shadow spend per hour or day of the outcome's own time, as by_day has it."""
    params: dict[str, Any] = {}
    wanted = [] if view is None else conditions(view, True, params)
    window = _range(since, until, params, "o.created_at")
    length = 13 if bucket == "hour" else 10
    # The decision's columns under their own names, for the filters (as quality_stats does).
    query = (
        f"SELECT substr(o_created_at, 1, {length}) AS bucket, SUM(spend) FROM ("
        "SELECT o.created_at AS o_created_at, o.grader_cost_usd + o.answer_cost_usd AS spend, "
        "d.tier, d.model, d.rule, d.arm, d.api_key_id, d.metadata, d.created_at "
        "FROM outcomes AS o LEFT JOIN decisions AS d ON d.request_id = o.request_id"
        + (f" WHERE {window}" if window else "")
        + ")"
        + (f" WHERE {' AND '.join(wanted)}" if wanted else "")
        + " GROUP BY 1"
    )
    return {row[0]: float(row[1] or 0.0) for row in conn.execute(query, params)}
