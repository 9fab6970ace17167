"""The outcome rows of a dashboard window: what measuring quality cost (net savings subtract it) and
the scores, added up by every key /stats breaks them down by (quality_stats.py), between `since`
and `until`.

Whole days come from the outcome rollups (dashboard_outcome_schema.py) of the view's one row-only
key ('' with none), the outcomes not rolled up yet from the outcomes joined to their decisions,
and the hours either side of the whole days from those joins too. A view with two row-only keys,
or a nested metadata key, reads every outcome of the window joined, as /stats does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from judge_router.accounting.dashboard_facts import (
    needs_rows,
    rolled_up_dimension,
    split_days,
)
from judge_router.accounting.dashboard_outcome_schema import (
    OUTCOME_COLUMNS,
    OUTCOME_SELECT,
    OUTCOMES_ROLLED_UP,
)
from judge_router.accounting.quality_stats import _FACTS, IN_AN_ARM, OutcomeFacts
from judge_router.accounting.read_connection import ReadConnection, is_sqlite
from judge_router.accounting.stats_view import StatsView, conditions, expression

_KEYS = "o_source, o_tier, o_model, tier, model, o_day, in_arm, grp, grp_none"
_TALLIES = ("outcomes", "scored", "score_sum", "graded", "grade_sum", "checked", "passed",
            "errors", "spend")  # fmt: skip
_SUMMED = ", ".join(f"SUM({name}) AS {name}" for name in _TALLIES)
_NEGATED = ", ".join(f"-{name} AS {name}" for name in _TALLIES)
_ROW_TALLIES = """sign AS outcomes, sign * (score IS NOT NULL) AS scored,
    sign * COALESCE(score, 0.0) AS score_sum, sign * (grade IS NOT NULL) AS graded,
    sign * COALESCE(grade, 0) AS grade_sum, sign * (passed IS NOT NULL) AS checked,
    sign * (CASE WHEN passed = 1 THEN 1 ELSE 0 END) AS passed,
    sign * (error IS NOT NULL) AS errors, sign * spend AS spend"""
_JOINED = "FROM outcomes AS o LEFT JOIN decisions AS d ON d.request_id = o.request_id"


def _range(since: str | None, until: str | None, params: dict[str, Any], column: str) -> str:
    found = []
    if since is not None:
        params["q_since"] = since
        found.append(f"{column} >= :q_since")
    if until is not None:
        params["q_until"] = until
        found.append(f"{column} < :q_until")
    return " AND ".join(found)


def _every_outcome(
    conn: ReadConnection, since: str | None, until: str | None, view: StatsView | None
) -> OutcomeFacts:
    """quality_stats.outcome_facts with an end: every outcome of [since, until) joined."""
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


class _Query:
    """The parts of one outcome-facts statement and their bound parameters."""

    def __init__(self, view: StatsView | None, dim: str):
        self.view = view
        self.dim = dim  # '' or the view's one row-only key
        self.params: dict[str, Any] = {}
        self.parts: list[str] = []

    def bind(self, value: Any) -> str:
        name = f"q{len(self.params)}"
        self.params[name] = value
        return f":{name}"

    def _key(self, key: str, rows: bool) -> str:
        return "value" if key == self.dim and not rows else expression(key, rows, self.params)

    def _where(self, rows: bool) -> list[str]:
        found = []
        for key, values in self.view.where if self.view is not None else ():
            names = ", ".join(self.bind(value) for value in values)
            found.append(f"{self._key(key, rows)} IN ({names})")
        return found

    def _group(self, rows: bool) -> str:
        group_by = None if self.view is None else self.view.group_by
        if group_by is None:
            return "'' AS grp, 1 AS grp_none"
        if group_by == self.dim and not rows:
            return "value AS grp, 0 AS grp_none"
        value = self._key(group_by, rows)
        return (
            f"COALESCE({value}, '') AS grp, CASE WHEN {value} IS NULL THEN 1 ELSE 0 END AS grp_none"
        )

    def rows(self, which: str, lo: str | None, hi: str | None, sign: int = 1) -> None:
        """Outcomes joined to their decisions (`which`: a condition over outcomes AS o; '': the
        retracted ones, subtracted), created in [lo, hi)."""
        time = [f"o.created_at >= {self.bind(lo)}"] if lo is not None else []
        time += [f"o.created_at < {self.bind(hi)}"] if hi is not None else []
        if which:
            base = f"SELECT {OUTCOME_SELECT}, {sign} AS sign {_JOINED} WHERE " + " AND ".join(
                [which, *time]
            )
        else:
            where = " AND ".join(time).replace("o.created_at", "o_created_at") or "1 = 1"
            base = (
                f"SELECT {OUTCOME_COLUMNS}, {sign} AS sign FROM dashboard_outcomes_retracted "
                f"WHERE {where}"
            )
        wanted = " AND ".join(self._where(True)) or "1 = 1"
        self.parts.append(
            f"SELECT o_source, o_tier, o_model, tier, model, substr(o_created_at, 1, 10) AS o_day, "
            f"CASE WHEN {IN_AN_ARM} THEN arm END AS in_arm, {self._group(True)}, {_ROW_TALLIES} "
            f"FROM ({base}) WHERE {wanted}"
        )

    def _rollups(self, dim: str, lo: str | None, hi: str | None, group: str, negate: bool) -> str:
        where = [f"dim = {self.bind(dim)}", "outcomes <> 0", *self._where(False)]
        where += [f"o_day >= {self.bind(lo)}"] if lo is not None else []
        where += [f"o_day < {self.bind(hi)}"] if hi is not None else []
        tallies = _NEGATED if negate else ", ".join(_TALLIES)
        return (
            f"SELECT o_source, o_tier, o_model, tier, model, o_day, "
            f"CASE WHEN {IN_AN_ARM} THEN arm END AS in_arm, {group}, {tallies} "
            f"FROM outcome_rollups WHERE {' AND '.join(where)}"
        )

    def rollups(self, lo: str | None, hi: str | None) -> None:
        """Whole days [lo, hi) of the rollups; grouped by their own dimension, the outcomes
        without a value are every outcome's less the valued ones."""
        self.parts.append(self._rollups(self.dim, lo, hi, self._group(False), negate=False))
        view = self.view
        if view is not None and self.dim and view.group_by == self.dim:
            if self.dim not in {key for key, _ in view.where}:
                none = "'' AS grp, 1 AS grp_none"
                self.parts.append(self._rollups("", lo, hi, none, negate=False))
                self.parts.append(self._rollups(self.dim, lo, hi, none, negate=True))

    def statement(self) -> str:
        return (
            f"SELECT {_KEYS}, {_SUMMED} FROM ({' UNION ALL '.join(self.parts)}) "
            f"GROUP BY {_KEYS} HAVING SUM(outcomes) <> 0"
        )


def _day(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%d")


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def outcome_facts(
    conn: ReadConnection, since: str | None, until: str | None, view: StatsView | None
) -> OutcomeFacts:
    """The outcomes created in [since, until) (ISO; None: open) of the requests `view` keeps,
    added up as quality_stats.outcome_facts adds them (see the module's docstring). A PostgreSQL
    ledger has no outcome rollups: every outcome of the window is joined there."""
    if needs_rows(view) or not is_sqlite(conn):
        return _every_outcome(conn, since, until, view)
    query = _Query(view, rolled_up_dimension(view) or "")
    start = None if since is None else datetime.fromisoformat(since)
    end = None if until is None else datetime.fromisoformat(until)
    middle, edges = split_days(start, end)
    for lo, hi in edges:
        query.rows("1 = 1", _iso(lo), _iso(hi))
    if middle is not None:
        first, last = middle
        query.rollups(_day(first), _day(last))
        # What the rollups do not hold (yet): the outcomes since the last batch and the late
        # ones, joined here, less the retracted ones.
        days = _iso(first), _iso(last)
        query.rows(f"o.rowid > {OUTCOMES_ROLLED_UP}", *days)
        query.rows("o.rowid IN (SELECT rid FROM dashboard_outcomes_late)", *days)
        query.rows("", *days, sign=-1)
    if not query.parts:  # a window of no time at all
        return OutcomeFacts([])
    return OutcomeFacts([dict(row) for row in conn.execute(query.statement(), query.params)])


def quality_spend_by_bucket(
    conn: ReadConnection,
    since: str | None,
    until: str | None,
    view: StatsView | None,
    bucket: str,
) -> dict[str, float]:
    """Grading and shadow spend per hour or day of the outcome's own time, as by_day has it,
    from every outcome of the window (the hourly charts' windows are of 72 hours at most)."""
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
        + ") AS joined"
        + (f" WHERE {' AND '.join(wanted)}" if wanted else "")
        + " GROUP BY 1"
    )
    return {row[0]: float(row[1] or 0.0) for row in conn.execute(query, params)}
