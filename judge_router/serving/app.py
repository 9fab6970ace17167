"""The HTTP edge: create_app(settings) builds the FastAPI app; routes stay thin over the Engine."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from judge_router.accounting.ledger import LedgerUnavailable
from judge_router.accounting.stats_scan import ScanTooLong
from judge_router.config import Settings
from judge_router.routing.request import RoutingRequest, UnknownModel
from judge_router.service.engine import Engine, RouteAnswer
from judge_router.service.factory import build_engine
from judge_router.serving.access import AccessControl
from judge_router.serving.access_log import AccessLog
from judge_router.serving.admin_api import ModelReloader, add_reload_route
from judge_router.serving.answers import ClosingStreamingResponse, headers
from judge_router.serving.bodies import ChatCompletionRequest, RouteRequest
from judge_router.serving.body_limit import BodySizeLimit
from judge_router.serving.chat_api import ChatDialect
from judge_router.serving.dashboard.query import moment as parse_moment
from judge_router.serving.dashboard.routes import BODIES as DASHBOARD_BODIES
from judge_router.serving.dashboard.routes import add_dashboard
from judge_router.serving.dialect import Dialect
from judge_router.serving.errors import DeadlinePassed, error_response, install_error_handlers
from judge_router.serving.feedback_api import FeedbackRequest, add_feedback_route
from judge_router.serving.health import health
from judge_router.serving.hot_paths import HotPaths
from judge_router.serving.json_response import FastJSONResponse as JSONResponse
from judge_router.serving.messages_api import MessagesDialect, MessagesRequest
from judge_router.serving.openapi import (
    COMMON_ERRORS,
    COMPLETION_CONTENT,
    PROXY_ERRORS,
    READ_ERRORS,
    ROUTE_ERRORS,
    TEXT_CONTENT,
    errors,
    without_422,
)
from judge_router.serving.prometheus import Telemetry
from judge_router.serving.request_body import documented, read
from judge_router.serving.responses_api import ResponsesDialect, ResponsesRequest
from judge_router.serving.stats_query import view_of
from judge_router.types import Decision
from judge_router.upstream.dialects import UntranslatableAnswer

log = logging.getLogger(__name__)


def parse_since(since: str | None) -> str | None:
    """An ISO date or datetime (UTC when no zone is given), normalised for comparing with the ledger;
    a 400 when it is not one (the dashboard reads its windows the same way)."""
    moment = parse_moment("since", since)
    return None if moment is None else moment.isoformat()


def model_object(name: str) -> dict[str, Any]:
    """A model in OpenAI's list shape."""
    return {"id": name, "object": "model", "created": 0, "owned_by": "judge-router"}


def caller(request: Request) -> str | None:
    """The id of the API key that made the request (set by AccessControl), if keys are in use."""
    key_id: str | None = getattr(request.state, "api_key_id", None)
    return key_id


async def get_engine(request: Request) -> Engine:  # async: no thread-pool hop per request
    engine: Engine = request.app.state.engine
    return engine


async def get_telemetry(request: Request) -> Telemetry:
    telemetry: Telemetry = request.app.state.telemetry
    return telemetry


EngineDep = Annotated[Engine, Depends(get_engine)]
TelemetryDep = Annotated[Telemetry, Depends(get_telemetry)]


def create_app(settings: Settings, engine: Engine | None = None) -> FastAPI:
    """Build the app. `engine` may be given (tests); otherwise build_engine makes it from `settings`."""
    built = engine or build_engine(settings)
    telemetry = Telemetry(built.quality_readings, built.redis)
    built.observers.append(telemetry.observe_row)
    reloader = ModelReloader(built.judges.local_slot)  # POST /admin/reload and SIGHUP

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for line in built.startup_report():
            log.warning(line)
        # litellm leaves ~370k long-lived objects; frozen, a full collection takes <1 ms, not ~300.
        gc.collect()
        gc.freeze()
        await built.start()  # the budgets' first read of the ledger, before the first request
        dashboard.start()  # its background roll-up
        with reloader.reloading_on_sighup():
            yield
        await dashboard.close()
        if engine is None:  # close only what we opened
            await built.aclose()

    app = FastAPI(
        title="judge-router",
        summary="Routes LLM requests by difficulty and accounts for what the routing saved.",
        version="0.1.0",
        lifespan=lifespan,
    )
    parsed_bodies: list[type[BaseModel]] = [
        RouteRequest,
        ChatCompletionRequest,
        ResponsesRequest,
        MessagesRequest,
        FeedbackRequest,
        *DASHBOARD_BODIES,
    ]
    app.openapi = without_422(app, parsed_bodies)  # type: ignore[method-assign]
    app.state.engine = built
    app.state.telemetry = telemetry
    install_error_handlers(app, settings)
    limits = settings.server

    def check_message_count(count: int) -> None:
        if count > limits.max_messages:
            raise StarletteHTTPException(
                400, f"{count} messages is more than server.max_messages ({limits.max_messages})"
            )

    # The endpoints that take a body read it themselves (request_body.parse): see that module.
    @app.post(
        "/route",
        response_model=RouteAnswer,
        responses=ROUTE_ERRORS,
        openapi_extra=documented(RouteRequest),
    )
    async def route(request: Request) -> JSONResponse:
        """Decide the tier and model for a prompt, without calling the model."""
        body = await read(request, RouteRequest)
        messages = body.message_dicts()
        check_message_count(len(messages))
        wanted = RoutingRequest(
            messages, "route", None, body.tier, body.metadata, caller(request), body.strategy
        )
        async with asyncio.timeout(limits.request_timeout_s):
            answer = await built.route(wanted)
        decided = {  # as the proxy faces say it, and for the access log
            "x-judge-router-tier": answer.tier.value,
            "x-judge-router-model": answer.model,
            "x-judge-router-request-id": answer.request_id,
        }
        return JSONResponse(answer.model_dump(mode="json"), headers=decided)

    async def proxied(request: Request, dialect: Dialect) -> Response:
        form = dialect.chat_form(await read(request, dialect.body))
        check_message_count(len(form.messages))
        wanted = RoutingRequest(
            form.messages,
            dialect.endpoint,
            form.model,
            form.tier,
            form.metadata,
            caller(request),
            form.strategy,
        )
        started = time.perf_counter()
        decision: Decision | None = None
        try:
            async with asyncio.timeout(limits.request_timeout_s):
                decision = await built.decide(wanted)
                if form.stream:  # the deadline covers the stream until its first chunk
                    opened = await built.answering.stream(decision, form.params)
                    return ClosingStreamingResponse(opened, dialect.events(form, opened))
                answer = await built.answering.complete(decision, form.params)
        except TimeoutError:
            if decision is None:  # still deciding: no decision, so no row (the judge has its own
                raise  # judge.timeout_s, normally far shorter)
            limit = limits.request_timeout_s
            await built.answering.timed_out(decision, started, form.stream, limit)
            raise DeadlinePassed(decision.request_id) from None
        try:
            body = dialect.answer(form, answer)
        except UntranslatableAnswer as exc:  # paid for and recorded: say which row it is
            row = {"x-judge-router-request-id": decision.request_id}
            return error_response(502, f"{answer.model} answered, but {exc}", headers=row)
        return JSONResponse(body, headers=headers(decision, answer.model))

    completion_responses = {**COMPLETION_CONTENT, **PROXY_ERRORS}
    chat_face, complete_face = ChatDialect("chat"), ChatDialect("complete")
    responses_face, messages_face = ResponsesDialect(), MessagesDialect()

    @app.post(
        "/complete",
        responses=completion_responses,
        openapi_extra=documented(ChatCompletionRequest),
    )
    async def complete(request: Request) -> Response:
        """Route by difficulty, then call the chosen model (with fallbacks); streams when asked."""
        return await proxied(request, complete_face)

    @app.post(
        "/v1/chat/completions",
        responses=completion_responses,
        openapi_extra=documented(ChatCompletionRequest),
    )
    async def chat_completions(request: Request) -> Response:
        """OpenAI-compatible: model "auto" routes, "auto:TIER" forces, a configured name passes."""
        return await proxied(request, chat_face)

    @app.post(
        "/v1/responses",
        responses=completion_responses,
        openapi_extra=documented(ResponsesRequest),
    )
    async def responses(request: Request) -> Response:
        """OpenAI's Responses API, routed like chat completions (no stored state); streams."""
        return await proxied(request, responses_face)

    @app.post(
        "/v1/messages", responses=completion_responses, openapi_extra=documented(MessagesRequest)
    )
    async def messages(request: Request) -> Response:
        """Anthropic's Messages API, answered by any provider's models; streams when asked."""
        return await proxied(request, messages_face)

    add_feedback_route(app, built.ledger, limits.request_timeout_s)
    add_reload_route(app, reloader)
    dashboard = add_dashboard(app, settings)  # GET /dashboard and its data

    @app.get("/v1/models", responses=READ_ERRORS)
    async def models(engine: EngineDep) -> dict[str, Any]:
        """The model names the proxy faces accept: auto, auto:TIER and each configured model."""
        return {"object": "list", "data": [model_object(name) for name in engine.model_names()]}

    @app.get("/v1/models/{model_id:path}", responses=READ_ERRORS)
    async def model(model_id: str, engine: EngineDep) -> Response:
        """One model name (`client.models.retrieve("auto")`); 404 for a name not accepted."""
        if not engine.accepts_model(model_id):
            message = str(UnknownModel(model_id, engine.model_names()))
            return error_response(404, message, "model_not_found")
        return JSONResponse(model_object(model_id))

    @app.get("/stats", responses=errors(*COMMON_ERRORS, 400, 503))
    async def stats(
        request: Request, engine: EngineDep, since: str | None = None, group_by: str | None = None
    ) -> dict[str, Any]:
        """Spend and savings from the ledger: totals, by source, tier, model, day and rollout arm;
        `group_by` (tier, model, day, rule, arm, api_key, metadata.KEY) adds groups, and any other
        parameter filters (`metadata.team=search`, `api_key`, `rule`, `arm`, `tier`, `model`)."""
        view = view_of(request.query_params)  # group_by too: declared above for the schema
        try:
            summary = await engine.ledger.summary(parse_since(since), view)
        except (ScanTooLong, LedgerUnavailable) as exc:
            raise StarletteHTTPException(503, str(exc)) from None
        return {**summary, "budgets": await engine.budget_report()}  # this month, whatever `since`

    @app.get("/metrics", responses={**TEXT_CONTENT, **READ_ERRORS})
    async def metrics(telemetry: TelemetryDep) -> Response:
        """Prometheus metrics."""
        return Response(telemetry.exposition(), media_type="text/plain; version=0.0.4")

    @app.get("/healthz", responses=errors(404, 405, 500))
    async def healthz(engine: EngineDep) -> dict[str, Any]:
        """Whether the judge can be called as configured, and the cache and ledger are writable."""
        return await health(engine)

    # Starlette runs the last-added middleware first: access control, then the body limit, then
    # the hot paths (the per-request endpoints, served without FastAPI's routing: see hot_paths).
    hot = {
        "/route": route,
        "/complete": complete,
        "/v1/chat/completions": chat_completions,
        "/v1/responses": responses,
        "/v1/messages": messages,
    }
    app.add_middleware(HotPaths, endpoints=hot, error_handlers=app.exception_handlers)
    app.add_middleware(BodySizeLimit, limit=settings.server.max_body_bytes)
    app.add_middleware(AccessControl, server=settings.server, limiter=built.rate_limiter)
    if limits.cors_allow_origins:  # outermost: a browser's preflight is answered before auth
        app.add_middleware(
            CORSMiddleware,
            allow_origins=limits.cors_allow_origins,
            allow_methods=["GET", "POST"],
            # Anthropic's browser clients send their key and version in headers of their own.
            allow_headers=[
                "authorization",
                "content-type",
                "x-api-key",
                "anthropic-version",
                "anthropic-beta",
                "anthropic-dangerous-direct-browser-access",
            ],  # fmt: skip
            expose_headers=[
                "x-judge-router-request-id",
                "x-judge-router-tier",
                "x-judge-router-model",
            ],
        )
    app.add_middleware(AccessLog)  # outermost of all: every answer, refusals included, is logged
    return app


def app_from_env() -> FastAPI:
    """App factory for `uvicorn --factory` and multi-worker serving: config from $JUDGE_ROUTER_CONFIG."""
    from judge_router.config import load_settings
    from judge_router.upstream.redact import Redactor, install_log_redaction

    settings = load_settings()
    install_log_redaction(Redactor(settings.secrets()))  # each worker process configures its own
    return create_app(settings)
