"""/stats's query string: `since`, `group_by`, and any other parameter is a filter (`metadata.team=
search`, `api_key=ops`, `arm=holdout`); a parameter that is neither is a 400, never ignored, so a
mistyped filter cannot pass for the whole ledger's figures."""

from __future__ import annotations

from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException as StarletteHTTPException

from judge_router.accounting.stats_view import StatsView, ViewError, stats_view

NOT_FILTERS = ("since", "group_by")


def view_of(query: QueryParams) -> StatsView | None:
    """The view the query asks for (None: the plain summary); a bad one is a 400 saying why."""
    group_by = query.getlist("group_by")
    if len(group_by) > 1:
        raise StarletteHTTPException(400, "group_by given more than once; /stats groups by one key")
    try:
        return stats_view(
            group_by[0] if group_by else None,
            [(key, value) for key, value in query.multi_items() if key not in NOT_FILTERS],
        )
    except ViewError as exc:
        raise StarletteHTTPException(400, str(exc)) from None
