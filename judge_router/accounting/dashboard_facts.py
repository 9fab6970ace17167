"""The facts a dashboard view adds up: rows shaped like the daily rollups (a time bucket, the policy
keys, the group, the sums), for a window of time and a StatsView, read from the cheapest tables
that answer it exactly.

- Filters and groups on the rollups' keys (tier, model, day, rule, arm): the daily rollups for
  whole days, the hourly rollups for the hours at either end (and for hourly buckets). The window
  is widened to whole hours.
- One row-only key (api_key or a top-level metadata.KEY) in the group or the filters: the group
  rollups of that key for whole days, the decisions for the hours either side (and for hourly
  buckets: at most 72 hours of rows); the requests without a value (the `(none)` group) are the
  daily rollups' less the group rollups'. The window is widened to whole hours.
- Anything else (two row-only keys, a nested metadata key): the decisions themselves, exactly as
  asked, in a thread, within the reader's time limit. A PostgreSQL ledger (no dashboard rollups,
  only its daily `decision_rollups`) always reads the decisions, of the window widened to whole
  hours, so its figures are SQLite's.

The dashboard's rollups are added up in the background (dashboard_rollups.py); what they do not
hold yet is read from the decisions (`_pending`), so every answer is exact.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from judge_router.accounting.dashboard_schema import CHANGE_COLUMNS
from judge_router.accounting.stats_view import COLUMNS, StatsView, expression

HOURLY_SPAN = timedelta(hours=72)  # a window up to this long is drawn by the hour
SUMS = (
    "requests, cache_hits, judge_cost_usd, cost_usd, baseline_cost_usd, estimated_cost_usd, "
    "estimated_baseline_cost_usd"
)
_ROW_SUMS = """{sign} AS requests, {sign} * cached AS cache_hits,
    {sign} * judge_cost_usd AS judge_cost_usd, {sign} * COALESCE(cost_usd, 0) AS cost_usd,
    {sign} * COALESCE(baseline_cost_usd, 0) AS baseline_cost_usd,
    {sign} * estimated_cost_usd AS estimated_cost_usd,
    {sign} * estimated_baseline_cost_usd AS estimated_baseline_cost_usd"""
_KEYS = "tier, model, source, status, rule, arm"
_ROLLED_UP = "(SELECT rolled_up_to FROM dashboard_rollup_state)"
_COMPACT_KEYS = "grp, grp_none, model, source, status"
_SUMMED = ", ".join(f"SUM({name.strip()}) AS {name.strip()}" for name in SUMS.split(","))
_NEGATED = ", ".join(f"-{name.strip()} AS {name.strip()}" for name in SUMS.split(","))


@dataclass(frozen=True, slots=True)
class Window:
    """[since, until) in UTC; None: open at that end."""

    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Facts:
    sql: str  # "WITH facts AS (…)": every figure is a SUM over it
    params: dict[str, Any]
    bucket: str  # hour | day
    since: str | None  # the window read, ISO (widened to whole hours or days)
    until: str | None
    read: str  # rollups | rows


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def ceil_hour(moment: datetime) -> datetime:
    floored = floor_hour(moment)
    return floored if floored == moment else floored + timedelta(hours=1)


def floor_day(moment: datetime) -> datetime:
    return floor_hour(moment).replace(hour=0)


def ceil_day(moment: datetime) -> datetime:
    floored = floor_day(moment)
    return floored if floored == moment else floored + timedelta(days=1)


def row_only_keys(view: StatsView | None) -> set[str]:
    """The keys of `view` that only the decisions (or the group rollups) hold."""
    if view is None:
        return set()
    keys = {key for key, _ in view.where} | ({view.group_by} if view.group_by else set())
    return {key for key in keys if key not in COLUMNS or COLUMNS[key][0] is None}


def rolled_up_dimension(view: StatsView | None) -> str | None:
    """The one row-only key the group rollups answer `view` by, if that is how it is answered."""
    keys = row_only_keys(view)
    if len(keys) != 1:
        return None
    (key,) = keys
    return key if key == "api_key" or "." not in key.removeprefix("metadata.") else None


def needs_rows(view: StatsView | None) -> bool:
    return bool(row_only_keys(view)) and rolled_up_dimension(view) is None


def bucket_for(window: Window, first_day: str | None, now: datetime) -> str:
    """hour for a window of up to HOURLY_SPAN, else day (`first_day`: the ledger's first)."""
    start = window.since or (
        datetime.fromisoformat(first_day).replace(tzinfo=UTC) if first_day else now
    )
    return "hour" if (window.until or now) - start <= HOURLY_SPAN else "day"


class _Builder:
    """Collects the facts' parts and their bound parameters."""

    def __init__(self, view: StatsView | None, bucket: str):
        self.view = view
        self.bucket = bucket
        self.params: dict[str, Any] = {}
        self.parts: list[str] = []

    def bind(self, value: Any) -> str:
        name = f"f{len(self.params)}"
        self.params[name] = value
        return f":{name}"

    def key(self, key: str, kind: str, dim: str | None = None) -> str:
        """`key`'s expression over a source: `rollup` (the daily or group rollups), `hourly`,
        or `rows` (decisions, or pending changes)."""
        if key == dim and kind != "rows":
            return "value"
        if key == "day":
            return {"rows": "substr(created_at, 1, 10)", "hourly": "substr(hour, 1, 10)"}.get(
                kind, "day"
            )
        return expression(key, kind == "rows", self.params)

    def conditions(self, kind: str, dim: str | None = None, skip: str | None = None) -> str:
        found = ["1 = 1"]
        for key, values in self.view.where if self.view is not None else ():
            if key != skip:
                names = ", ".join(self.bind(value) for value in values)
                found.append(f"{self.key(key, kind, dim)} IN ({names})")
        return " AND ".join(found)

    def group(self, kind: str, dim: str | None = None) -> str:
        group_by = self.view.group_by if self.view is not None else None
        if group_by is None:
            return "'' AS grp, 1 AS grp_none"
        value = self.key(group_by, kind, dim)
        return (
            f"COALESCE({value}, '') AS grp, CASE WHEN {value} IS NULL THEN 1 ELSE 0 END AS grp_none"
        )

    def time_bucket(self, column: str) -> str:
        return f"substr({column}, 1, {13 if self.bucket == 'hour' else 10})"

    # -- the sources ------------------------------------------------------------------------

    def rollups(self, table: str, lo: str | None, hi: str | None, grouped: bool = True) -> str:
        """A range of the daily rollups (`decision_rollups`, by day) or the hourly ones;
        not `grouped`: every row in no group."""
        kind, column = (
            ("hourly", "hour") if table == "decision_hourly_rollups" else ("rollup", "day")
        )
        where = [self.conditions(kind), "requests <> 0"]
        where += [f"{column} >= {self.bind(lo)}"] if lo is not None else []
        where += [f"{column} < {self.bind(hi)}"] if hi is not None else []
        group = self.group(kind) if grouped else "'' AS grp, 1 AS grp_none"
        return (
            f"SELECT {self.time_bucket(column)} AS bucket, {_KEYS}, {group}, {SUMS} "
            f"FROM {table} WHERE {' AND '.join(where)}"
        )

    def group_rollups(self, dim: str, lo: str | None, hi: str | None, compact: bool = False) -> str:
        """A range of days of `dim`'s group rollups; `compact`: added up by group, model,
        source and status (grouped by `dim` itself: in the index's order, with no sort)."""
        where = [f"dim = {self.bind(dim)}", self.conditions("rollup", dim), "requests <> 0"]
        where += [f"day >= {self.bind(lo)}"] if lo is not None else []
        where += [f"day < {self.bind(hi)}"] if hi is not None else []
        wanted = " AND ".join(where)
        if not compact:
            return (
                f"SELECT day AS bucket, {_KEYS}, {self.group('rollup', dim)}, {SUMS} "
                f"FROM decision_group_rollups WHERE {wanted}"
            )
        grouped_by_dim = self.view is not None and self.view.group_by == dim
        if grouped_by_dim:
            group, keys = "value AS grp, 0 AS grp_none", "value, model, source, status"
        else:
            group, keys = self.group("rollup", dim), "grp, grp_none, model, source, status"
        return (
            f"SELECT {group}, model, source, status, {_SUMMED} "
            f"FROM decision_group_rollups WHERE {wanted} GROUP BY {keys}"
        )

    def rows(self, lo: str | None, hi: str | None, pending: bool, valued: str | None = None) -> str:
        """Decisions in [lo, hi) (ISO datetimes): all of them, or (`pending`) only those not
        rolled up yet, less the rolled-up ones deleted since; `valued`: only rows with a value of
        that key (the group rollups' rows)."""
        where = [self.conditions("rows")]
        where += [f"created_at >= {self.bind(lo)}"] if lo is not None else []
        where += [f"created_at < {self.bind(hi)}"] if hi is not None else []
        if valued is not None:
            where.append(f"{self.key(valued, 'rows')} IS NOT NULL")
        wanted = " AND ".join(where)
        group = self.group("rows")

        def select(sign: int) -> str:
            return (
                f"SELECT {self.time_bucket('created_at')} AS bucket, tier, model, source, status, "
                f"COALESCE(rule, '') AS rule, arm, {group}, {_ROW_SUMS.format(sign=sign)}"
            )

        if not pending:
            return f"{select(1)} FROM decisions WHERE {wanted}"
        return pending_rows(select, wanted)

    def facts(self) -> str:
        return "WITH facts AS (" + " UNION ALL ".join(self.parts) + ")"


Span = tuple[datetime | None, datetime | None]


def split_days(since: datetime | None, until: datetime | None) -> tuple[Span | None, list[Span]]:
    """[since, until) (whole hours) as its whole days (None: there are none) and the hours
    before and after them."""
    first = None if since is None else ceil_day(since)
    last = None if until is None else floor_day(until)
    if first is not None and last is not None and first >= last:
        return None, [(since, until)]
    edges: list[Span] = []
    if since is not None and first is not None and since < first:
        edges.append((since, first))
    if until is not None and last is not None and last < until:
        edges.append((last, until))
    return (first, last), edges


def facts(
    window: Window,
    view: StatsView | None,
    bucket: str,
    compact: bool = False,
    rollups: bool = True,
) -> Facts:
    """The facts of `view` over `window` (widened to whole hours), by `bucket` (hour | day): see
    the module's docstring. `compact` (for groups, which need no time): the facts keep the group,
    model, source and status only. Not `rollups` (a PostgreSQL ledger, which has none of the
    dashboard's): the decisions of the widened window themselves."""
    since = None if window.since is None else floor_hour(window.since)
    until = None if window.until is None else ceil_hour(window.until)
    dim = rolled_up_dimension(view)
    # A row-only key by the hour: the group rollups are by day, so the rows (72 h at most).
    if needs_rows(view) or not rollups or (dim is not None and bucket == "hour"):
        exact = (window.since, window.until) if needs_rows(view) else (since, until)
        builder = _Builder(view, bucket)
        builder.parts.append(builder.rows(iso(exact[0]), iso(exact[1]), pending=False))
        sql = builder.facts()
        return Facts(sql, builder.params, bucket, iso(exact[0]), iso(exact[1]), "rows")
    if dim is not None:
        assert view is not None
        return _by_dimension(since, until, view, dim, compact)
    builder = _Builder(view, bucket)
    edges: list[Span] = [(since, until)]
    if bucket == "day":
        middle, edges = split_days(since, until)
        if middle is not None:
            first, last = middle
            builder.parts.append(builder.rollups("decision_rollups", _day(first), _day(last)))
    for lo, hi in edges:
        builder.parts.append(builder.rollups("decision_hourly_rollups", _hour(lo), _hour(hi)))
        builder.parts.append(builder.rows(iso(lo), iso(hi), pending=True))
    if not builder.parts:  # a window of no time at all
        builder.parts.append(builder.rollups("decision_rollups", "", ""))
    return Facts(builder.facts(), builder.params, bucket, iso(since), iso(until), "rollups")


def pending_rows(select: Callable[[int], str], wanted: str) -> str:
    """`select(sign)` over the rows the background roll-up has not added yet (sign 1) and the
    rolled-up ones deleted since (sign -1), each filtered by `wanted` (over decisions' columns)."""
    return (
        f"{select(1)} FROM decisions WHERE rowid > {_ROLLED_UP} AND {wanted} "
        f"UNION ALL {select(1)} FROM decisions "
        f"WHERE rowid IN (SELECT rid FROM dashboard_late_rows) AND {wanted} "
        f"UNION ALL {select(-1)} FROM (SELECT {CHANGE_COLUMNS} FROM dashboard_retracted) "
        f"WHERE {wanted}"
    )


def _hour(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%dT%H")


def _day(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%d")


_SHAPED = "SELECT '' AS bucket, '' AS tier, model, source, status, '' AS rule, '' AS arm"


def _by_dimension(
    since: datetime | None, until: datetime | None, view: StatsView, dim: str, compact: bool
) -> Facts:
    """The whole days from the group rollups of `dim` and its pending rows, the hours either
    side from the decisions; with `dim` the group and not a filter, the whole days' requests
    without a value are every request's less the valued ones."""
    builder = _Builder(view, "day")
    middle, edges = split_days(since, until)
    lo, hi = (None, None) if middle is None else (_day(middle[0]), _day(middle[1]))
    days = None if middle is None else (iso(middle[0]), iso(middle[1]))
    hours = [builder.rows(iso(a), iso(b), pending=False) for a, b in edges]
    if not compact:
        if days is not None:
            builder.parts.append(builder.group_rollups(dim, lo, hi))
            builder.parts.append(builder.rows(*days, pending=True, valued=dim))
        builder.parts.extend(hours)
        if not builder.parts:
            builder.parts.append(builder.group_rollups(dim, "", ""))
        return Facts(builder.facts(), builder.params, "day", iso(since), iso(until), "rollups")
    # Added up by group and model before anything else reads them: the group rollups in their
    # index's order, with no sort, and the rest of the work is over a few rows a group.
    # MATERIALIZED: computed once, though the groups and the (none) rows both read it.
    rolled = builder.group_rollups(dim, lo if days else "", hi if days else "", compact=True)
    pending = builder.rows(*(days or ("", "")), pending=True, valued=dim)
    cte = (
        f"WITH valued AS MATERIALIZED (SELECT {_COMPACT_KEYS}, {_SUMMED} FROM ("
        f"{rolled} UNION ALL SELECT {_COMPACT_KEYS}, {SUMS} FROM ({pending})"
        f") GROUP BY {_COMPACT_KEYS})"
    )
    parts = [f"{_SHAPED}, grp, grp_none, {SUMS} FROM valued"]
    parts += [f"{_SHAPED}, grp, grp_none, {SUMS} FROM ({part})" for part in hours]
    if days is not None and view.group_by == dim and dim not in {k for k, _ in view.where}:
        base = builder.rollups("decision_rollups", lo, hi, grouped=False)
        parts.append(
            f"{_SHAPED}, '' AS grp, 1 AS grp_none, {_SUMMED} FROM ("
            f"SELECT model, source, status, {SUMS} FROM ({base}) "
            f"UNION ALL SELECT model, source, status, {_NEGATED} FROM valued) "
            "GROUP BY model, source, status HAVING SUM(requests) <> 0"
        )
    sql = f"{cte}, facts AS ({' UNION ALL '.join(parts)})"
    return Facts(sql, builder.params, "day", iso(since), iso(until), "rollups")
