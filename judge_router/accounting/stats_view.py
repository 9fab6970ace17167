"""What a /stats question asks besides `since`: a grouping (`group_by`) and filters (`where`).

Nothing the caller sends becomes SQL text: keys are checked against fixed names or a strict pattern,
a metadata key becomes a quoted JSON path passed as a bound parameter, and values are bound too.

tier, model, day, rule and arm are keys of the daily rollups, so grouping or filtering by them reads
the rollups; api_key and metadata.KEY are only in the decisions themselves, so a question that names
one reads every row since `since` (stats.py does that once, into a small temporary table).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

KEY_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,64}")
MAX_FILTER_KEYS = 16
MAX_FILTER_VALUES = 64  # per key

# key: (the expression over the rollup facts, the one over a decisions row); None: not in the rollups.
# A request no rule matched has rule NULL in its row and '' in the rollups: both read as no value.
COLUMNS: dict[str, tuple[str | None, str]] = {
    "tier": ("tier", "tier"),
    "model": ("model", "model"),
    "day": ("day", "substr(created_at, 1, 10)"),
    "rule": ("NULLIF(rule, '')", "rule"),
    "arm": ("arm", "arm"),
    "api_key": (None, "api_key_id"),
}
GROUP_KEYS = (*COLUMNS, "metadata.KEY")
FILTER_KEYS = ("tier", "model", "rule", "arm", "api_key", "metadata.KEY")

# A metadata value as text: strings as they are, numbers as written, true/false, JSON null as no
# value, objects and arrays as JSON. So `metadata.priority=5` and `metadata.beta=true` match.
# json_valid first: Python's json writes NaN and Infinity, which SQLite's parser refuses with an
# error; such a row has no value here rather than failing every question (SQLite reuses the parse).
_METADATA = (
    "CASE WHEN json_valid(metadata) THEN CASE json_type(metadata, :{p}) "
    "WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' WHEN 'null' THEN NULL "
    "ELSE CAST(json_extract(metadata, :{p}) AS TEXT) END END"
)


class ViewError(ValueError):
    """A group_by or filter that cannot be answered; the message says what is accepted."""


@dataclass(frozen=True, slots=True)
class StatsView:
    group_by: str | None = None
    where: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (key, any of these values)

    @property
    def needs_rows(self) -> bool:
        """Whether the rollups cannot answer it: a key kept only in the decisions is named."""
        keys = [key for key, _ in self.where]
        return any(not _in_rollups(key) for key in [*keys, *filter(None, [self.group_by])])

    def where_json(self) -> dict[str, list[str]]:
        return {key: list(values) for key, values in self.where}


def _in_rollups(key: str) -> bool:
    return key in COLUMNS and COLUMNS[key][0] is not None


def _checked_key(key: str, allowed: tuple[str, ...], what: str) -> str:
    name = key.removeprefix("metadata.")
    if key.startswith("metadata."):
        if not KEY_PATTERN.fullmatch(name) or "" in name.split("."):
            raise ViewError(
                f"{what}={key!r}: a metadata key is 1-64 letters, digits, '_', '-' or '.' "
                "(a dot reads a nested key), e.g. metadata.team"
            )
        return key
    if key not in allowed:
        raise ViewError(f"{what}={key!r} is not one of {', '.join(allowed)}")
    return key


def stats_view(group_by: str | None, where: Iterable[tuple[str, str]] = ()) -> StatsView | None:
    """The view asked for, or None when nothing but `since` is (the plain /stats answer). `where`
    pairs with one key are alternatives (any of them); different keys must all hold."""
    grouping = None if group_by is None else _checked_key(group_by, GROUP_KEYS, "group_by")
    wanted: dict[str, list[str]] = {}
    for key, value in where:
        values = wanted.setdefault(_checked_key(key, FILTER_KEYS, "filter"), [])
        if value not in values:
            values.append(value)
    if len(wanted) > MAX_FILTER_KEYS:
        raise ViewError(f"{len(wanted)} filter keys; at most {MAX_FILTER_KEYS}")
    for key, values in wanted.items():
        if len(values) > MAX_FILTER_VALUES:
            raise ViewError(f"{key}: {len(values)} values; at most {MAX_FILTER_VALUES}")
    if grouping is None and not wanted:
        return None
    return StatsView(grouping, tuple((key, tuple(values)) for key, values in wanted.items()))


def json_path(key: str) -> str:
    """metadata.a.b → $."a"."b" (each part already checked: no quote can be in it)."""
    return "$" + "".join(f'."{part}"' for part in key.removeprefix("metadata.").split("."))


def expression(key: str, rows: bool, params: dict[str, str]) -> str:
    """The SQL expression for `key` over decisions rows (`rows`) or the rollup facts; a metadata
    key's path is added to `params` under a fresh name."""
    if key.startswith("metadata."):
        name = f"path{len(params)}"
        params[name] = json_path(key)
        return _METADATA.format(p=name)
    over_rollups, over_rows = COLUMNS[key]
    if rows:
        return over_rows
    assert over_rollups is not None, key
    return over_rollups


def conditions(view: StatsView, rows: bool, params: dict[str, str]) -> list[str]:
    """One `expression IN (:w0, …)` per filter key, its values bound in `params`."""
    found = []
    for key, values in view.where:
        names = []
        for value in values:
            names.append(f":w{len(params)}")
            params[names[-1][1:]] = value
        found.append(f"{expression(key, rows, params)} IN ({', '.join(names)})")
    return found
