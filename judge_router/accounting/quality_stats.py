"""Answer quality for /stats: the outcome rows (cascade checks, shadow tests, sampled grades,
feedback) added up per source, overall and by tier, model, arm and group, and what producing them
cost (the quality spend, which net savings subtract).

One plain SQL statement over the outcomes in range, joined to their decisions for the filters and
the group, adds them up by every key at once; the breakdowns are then sums over its few rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from operator import itemgetter
from typing import Any

from judge_router.accounting.outcome_row import OUTCOME_SOURCES
from judge_router.accounting.read_connection import ReadConnection
from judge_router.accounting.stats_view import StatsView, conditions, expression
from judge_router.types import round_usd

# Rows the rollout puts in an arm: it never holds back a forced tier or a passthrough model (the
# client chose) or a budget-capped request, so those would only blur the comparison.
IN_AN_ARM = "source NOT IN ('forced', 'passthrough', 'budget') AND arm IN ('routed', 'holdout')"
NONE, OTHER = "(none)", "(other)"  # a group of the requests without a value; the folded groups

# `scored` gives the decision's columns their own names (what stats_view's row expressions read)
# and the outcome's a prefix. An outcome counts from its own created_at: when its cost was spent.
_FACTS = """
    WITH scored AS (
        SELECT o.source AS o_source, o.tier AS o_tier, o.model AS o_model, o.score, o.grade,
            o.passed, o.error, o.grader_cost_usd + o.answer_cost_usd AS spend,
            substr(o.created_at, 1, 10) AS o_day, d.tier, d.model, d.created_at, d.source,
            d.rule, d.arm, d.api_key_id, d.metadata
        FROM outcomes AS o LEFT JOIN decisions AS d ON d.request_id = o.request_id {since}
    )
    SELECT o_source, o_tier, o_model, tier, model, o_day,
        CASE WHEN {in_an_arm} THEN arm END AS in_arm,
        COALESCE({group}, '') AS grp, CASE WHEN {group} IS NULL THEN 1 ELSE 0 END AS grp_none,
        COUNT(*) AS outcomes, COUNT(score) AS scored, COALESCE(SUM(score), 0.0) AS score_sum,
        COUNT(grade) AS graded, COALESCE(SUM(grade), 0) AS grade_sum,
        COUNT(passed) AS checked, COUNT(CASE WHEN passed = 1 THEN 1 END) AS passed,
        COUNT(error) AS errors, COALESCE(SUM(spend), 0.0) AS spend
    FROM scored {where}
    GROUP BY o_source, o_tier, o_model, tier, model, o_day, in_arm, grp, grp_none
"""
# What each breakdown is keyed by. Spend follows the request (its tier, the model that answered,
# its arm and group) as its other costs do, and the day it was spent; quality follows the answer
# scored (the tier it stands for, the model that gave it).
_SPEND_KEYS = {"tier": "tier", "model": "model", "day": "o_day", "arm": "in_arm"}
_QUALITY_KEYS = {"tier": "o_tier", "model": "o_model", "arm": "in_arm"}


@dataclass(slots=True)
class Tally:
    """Sums over outcome rows; the means are taken from them at the end."""

    outcomes: int = 0
    scored: int = 0
    score_sum: float = 0.0
    graded: int = 0
    grade_sum: float = 0.0
    checked: int = 0
    passed: int = 0
    errors: int = 0
    spend: float = 0.0

    def add(self, row: dict[str, Any]) -> None:
        for name in _TALLIED:
            setattr(self, name, getattr(self, name) + row[name])

    def public(self, source: str) -> dict[str, Any]:
        """The figures of one source: feedback has a score only; a grader's sources say more."""
        mean_score = round(self.score_sum / self.scored, 6) if self.scored else None
        if source == "feedback":
            return {"scored": self.scored, "mean_score": mean_score}
        figures = {
            "outcomes": self.outcomes,
            "scored": self.scored,
            "mean_score": mean_score,
            "graded": self.graded,
            "mean_grade": round(self.grade_sum / self.graded, 4) if self.graded else None,
            "errors": self.errors,
            "spend_usd": round_usd(self.spend),
        }
        if source == "cascade":
            figures["pass_rate"] = round(self.passed / self.checked, 6) if self.checked else None
        return figures


_TALLIED = tuple(field.name for field in fields(Tally))


def by_source(rows: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every source's figures over `rows` (zeros and nulls for a source with none)."""
    tallies = {source: Tally() for source in OUTCOME_SOURCES}
    for row in rows:
        if row["o_source"] in tallies:
            tallies[row["o_source"]].add(row)
    return {source: tally.public(source) for source, tally in tallies.items()}


def outcome_facts(conn: ReadConnection, since: str | None, view: StatsView | None) -> OutcomeFacts:
    """The outcomes created since `since`, of the requests `view` keeps, added up by every key."""
    params: dict[str, str] = {}
    group = (
        "NULL" if view is None or view.group_by is None else expression(view.group_by, True, params)
    )
    wanted = [] if view is None else conditions(view, True, params)
    if since is not None:
        params["since"] = since
    query = _FACTS.format(
        since="" if since is None else "WHERE o.created_at >= :since",
        in_an_arm=IN_AN_ARM,
        group=group,
        where=f"WHERE {' AND '.join(wanted)}" if wanted else "",
    )
    return OutcomeFacts([dict(row) for row in conn.execute(query, params)])


def _sum(values: Iterable[float]) -> float:
    return sum(values, 0.0)


def _spent(rows: list[dict[str, Any]], key: Callable[[dict[str, Any]], Any]) -> dict[Any, float]:
    """The rows' spend added up by `key`."""
    spent: dict[Any, float] = {}
    for row in rows:
        spent[key(row)] = spent.get(key(row), 0.0) + row["spend"]
    return spent


class OutcomeFacts:
    """The added-up outcome rows, and what /stats shows of them."""

    def __init__(self, rows: list[dict[str, Any]]):
        self.rows = rows
        self._spend = {by: _spent(rows, itemgetter(column)) for by, column in _SPEND_KEYS.items()}
        self._spend["group"] = _spent(rows, itemgetter("grp", "grp_none"))

    def spend(self, by: str | None = None, key: Any = None) -> float:
        """The quality spend: in all (`by` None), or of one key of a breakdown (tier, model, day,
        arm, or a group's (value, is-none))."""
        if by is None:
            return _sum(row["spend"] for row in self.rows)
        return self._spend[by].get(key, 0.0)

    def spend_by(self, by: str) -> dict[Any, float]:
        """The quality spend of every key of a breakdown (tier, model, day, arm)."""
        return dict(self._spend[by])

    def with_spend(self, figures: dict[str, Any], by: str | None) -> dict[str, Any]:
        """`figures` (a breakdown's row, keyed by its `by` column) with its quality spend."""
        figures["quality_spend_usd"] = self.spend(by, None if by is None else figures[by])
        return figures

    def unkept_spend(self, kept: set[tuple[str, int]]) -> float:
        """The spend of the groups not in `kept`: the (other) group's."""
        return _sum(spent for key, spent in self._spend["group"].items() if key not in kept)

    def of(self, by: str, key: Any) -> dict[str, dict[str, Any]]:
        """Every source's figures for one key of a breakdown (tier, model, arm)."""
        return by_source(row for row in self.rows if row[_QUALITY_KEYS[by]] == key)

    def block(self, groups: Sequence[str] | None) -> dict[str, Any]:
        """The /stats `quality` object; with `groups` (the names /stats shows, in its order), the
        same figures per group, the groups it folded into (other) added up as one."""
        answer: dict[str, Any] = by_source(self.rows)
        for by, column in _QUALITY_KEYS.items():
            keys = {row[column] for row in self.rows if row[column] is not None}
            # routed first, then holdout, as in by_arm; the others by name
            ordered = sorted(keys, key=lambda key: (by != "arm" or key != "routed", key))
            answer[f"by_{by}"] = [{by: key, **self.of(by, key)} for key in ordered]
        if groups is not None:  # none shown (no group_by, or no requests): none here either
            answer["groups"] = self._groups(groups) if groups else []
        return answer

    def _groups(self, names: Sequence[str]) -> list[dict[str, Any]]:
        shown = {("", 1) if name == NONE else (name, 0): name for name in names if name != OTHER}
        found: dict[str, list[dict[str, Any]]] = {}
        for row in self.rows:
            found.setdefault(shown.get((row["grp"], row["grp_none"]), OTHER), []).append(row)
        order = [name for name in [*shown.values(), OTHER] if name in found]
        return [{"group": name, **by_source(found[name])} for name in order]
