"""The dashboard endpoints' query strings: `since` and `until` (ISO dates or datetimes, UTC when no
zone is given; `until` excluded), `group_by`, and any other parameter a filter, as /stats reads
them: a parameter that is neither is a 400, never ignored."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException as StarletteHTTPException

from judge_router.accounting.dashboard_facts import Window
from judge_router.accounting.stats_view import StatsView, ViewError, stats_view

WINDOW = ("since", "until")


def moment(name: str, value: str | None) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise StarletteHTTPException(
            400, f"{name}={value!r} is not an ISO date or datetime (e.g. 2026-11-01)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        parsed = parsed.astimezone(UTC)
    except OverflowError:
        parsed = datetime.min.replace(tzinfo=UTC)  # flagged as out of range below
    if not 1 < parsed.year < 9999:  # a window's days either side are computed too
        raise StarletteHTTPException(400, f"{name}={value!r} is out of range (years 2 to 9998)")
    return parsed


def window_of(query: QueryParams) -> Window:
    for name in WINDOW:
        if len(query.getlist(name)) > 1:
            raise StarletteHTTPException(400, f"{name} given more than once")
    window = Window(moment("since", query.get("since")), moment("until", query.get("until")))
    if window.since is not None and window.until is not None and window.until <= window.since:
        raise StarletteHTTPException(
            400,
            f"until ({window.until.isoformat()}) must be after since ({window.since.isoformat()})",
        )
    return window


def view_of(
    query: QueryParams, not_filters: tuple[str, ...], group_by: bool = True
) -> StatsView | None:
    """The group (when the endpoint takes one) and the filters: every parameter not in
    `not_filters` (nor `group_by`)."""
    grouped = query.getlist("group_by")
    if len(grouped) > 1:
        raise StarletteHTTPException(400, "group_by given more than once; a view has one group")
    if grouped and not group_by:
        raise StarletteHTTPException(400, "this endpoint takes no group_by")
    skipped = (*WINDOW, *not_filters, "group_by")
    try:
        return stats_view(
            grouped[0] if grouped else None,
            [(key, value) for key, value in query.multi_items() if key not in skipped],
        )
    except ViewError as exc:
        raise StarletteHTTPException(400, str(exc)) from None


def single(query: QueryParams, name: str) -> str | None:
    values = query.getlist(name)
    if len(values) > 1:
        raise StarletteHTTPException(400, f"{name} given more than once")
    return values[0] if values else None
