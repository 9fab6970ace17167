"""The dashboard's JSON endpoints (GET /dashboard/api/…): each a thin edge over one accounting
function, run by the dashboard's reader off the event loop (accounting/dashboard_reader.py)."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from judge_router.accounting import dashboard_decisions, dashboard_figures, dashboard_models
from judge_router.accounting.dashboard_decisions import BadCursor
from judge_router.accounting.dashboard_dimensions import dimensions
from judge_router.accounting.dashboard_models import UnknownGroup
from judge_router.accounting.dashboard_reader import PooledReads
from judge_router.accounting.ledger import LedgerUnavailable
from judge_router.accounting.stats_scan import ScanTooLong
from judge_router.accounting.stats_view import StatsView
from judge_router.serving.dashboard.query import single, view_of, window_of
from judge_router.serving.errors import error_response
from judge_router.serving.json_response import FastJSONResponse as JSONResponse
from judge_router.serving.openapi import COMMON_ERRORS, errors

API = "/dashboard/api"
READS = errors(*COMMON_ERRORS, 400, 503)
NO_STORE = {"cache-control": "no-store"}  # the ledger's figures: never kept by a browser or proxy


def add_data_routes(
    router: APIRouter, reader: Callable[[], PooledReads], store_prompts: bool
) -> None:
    """Declare the data endpoints on `router`, reading the ledger through `reader`."""

    async def answer(read: Callable[..., Any], *args: Any) -> Response:
        try:
            figures = await reader().read(read, *args)
        except ScanTooLong as exc:
            raise StarletteHTTPException(503, str(exc)) from None
        except (BadCursor, UnknownGroup) as exc:
            raise StarletteHTTPException(400, str(exc)) from None
        except sqlite3.Error as exc:  # a locked or damaged file: say so, the service goes on
            raise StarletteHTTPException(
                503, f"the ledger cannot be read now ({type(exc).__name__}: {exc}); retry"
            ) from None
        except LedgerUnavailable as exc:  # PostgreSQL unreachable, or dropping the read
            raise StarletteHTTPException(503, f"{exc}; retry") from None
        if figures is None:
            return error_response(404, "no ledger row has this request id", "request_not_found")
        return JSONResponse(figures, headers=NO_STORE)

    def reading(
        path: str, summary: str
    ) -> Callable[[Callable[[Request], Awaitable[Response]]], Any]:
        return router.get(path, responses=READS, summary=summary)

    @reading(f"{API}/dimensions", "The keys a view groups or filters by, and their values")
    async def dimensions_api(request: Request) -> Response:
        """tier, model, day, rule, arm, api_key and the metadata keys seen, each key's values in
        the window, the busiest first (at most 100 per key)."""
        _window_only(request)
        return await answer(dimensions, window_of(request.query_params))

    @reading(f"{API}/spend", "Spend and net savings over time")
    async def spend_api(request: Request) -> Response:
        """Realised, baseline, judge and quality spend and net savings per hour (a window of up to
        72 h) or day, net savings cumulative, and the totals; filters as /stats."""
        query = request.query_params
        filters = _filters(view_of(query, ()))
        return await answer(dashboard_figures.spend, window_of(query), filters)

    @reading(f"{API}/mix", "The routing mix over time")
    async def mix_api(request: Request) -> Response:
        """Requests per tier and per model (the eight busiest) over time, verdicts by source,
        cache hit rate per bucket, and the totals (judge ROI)."""
        query = request.query_params
        filters = _filters(view_of(query, ()))
        return await answer(dashboard_figures.mix, window_of(query), filters)

    @reading(f"{API}/groups", "Spend by group")
    async def groups_api(request: Request) -> Response:
        """Per group of `group_by` (required): the /stats group figures with spend per request and
        spend by model, by whole UTC days."""
        query = request.query_params
        view = view_of(query, ())
        if view is None or view.group_by is None:
            raise StarletteHTTPException(
                400, "group_by is required: tier, model, day, rule, arm, api_key or metadata.KEY"
            )
        return await answer(dashboard_figures.groups, window_of(query), view)

    @reading(f"{API}/models", "Cost per request by model, within a group")
    async def models_api(request: Request) -> Response:
        """Each model's cost per proxied request (histogram, median, 90th percentile, mean) and
        mean score, within `group` of `group_by` (both optional: all traffic), by whole days."""
        query = request.query_params
        view = view_of(query, ("group",))
        group_by = None if view is None else view.group_by
        group = single(query, "group")
        if group is not None and group_by is None:
            raise StarletteHTTPException(400, "group needs group_by: the key it is a value of")
        filters = _filters(view)
        return await answer(
            dashboard_models.model_costs, window_of(query), group_by, group, filters
        )

    @reading(f"{API}/decisions", "The latest decisions, a page at a time")
    async def decisions_api(request: Request) -> Response:
        """The newest ledger rows in the window (filters as /stats), `limit` (1-200, 50) at a
        time; `before` is the `next` cursor of the page before."""
        query = request.query_params
        filters = _filters(view_of(query, ("limit", "before"), group_by=False))
        limit_text = single(query, "limit") or "50"
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= dashboard_decisions.MAX_PAGE:
            raise StarletteHTTPException(400, f"limit={limit_text!r}: a whole number, 1 to 200")
        before = single(query, "before")
        window = window_of(query)
        return await answer(dashboard_decisions.recent, window, filters, int(limit_text), before)

    @reading(f"{API}/decisions/{{request_id}}", "One decision's ledger row in full")
    async def decision_api(request: Request) -> Response:
        """Every column of the row (prompt text only with `ledger.store_prompts`) and its outcome
        rows; 404 `request_not_found` when there is none."""
        if request.query_params:
            raise StarletteHTTPException(400, "this endpoint takes no query parameters")
        request_id = request.path_params["request_id"]
        return await answer(dashboard_decisions.full_decision, request_id, store_prompts)


def _window_only(request: Request) -> None:
    extra = sorted(set(request.query_params) - {"since", "until"})
    if extra:
        raise StarletteHTTPException(400, f"{extra[0]}: this endpoint takes since and until only")


def _filters(view: StatsView | None) -> StatsView | None:
    """The filters of `view` alone (its group is not the endpoint's business)."""
    return None if view is None or not view.where else StatsView(None, view.where)
