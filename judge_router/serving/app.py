"""The HTTP edge: create_app(settings) builds the FastAPI app; routes stay thin over the Engine."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from judge_router.config import Settings
from judge_router.routing.conversation import ConversationError
from judge_router.service.engine import Engine, RouteAnswer
from judge_router.service.proxy import Proxy, ProxyError
from judge_router.serving.access import AccessControl
from judge_router.serving.bodies import ChatCompletionRequest, RouteRequest
from judge_router.serving.hot_paths import HotPaths
from judge_router.serving.json_response import FastJSONResponse as JSONResponse
from judge_router.serving.request_body import InvalidBody, component_schemas, documented, parse

log = logging.getLogger(__name__)


ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "method_not_allowed",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "internal_error",
    502: "upstream_error",
    503: "service_unavailable",
    504: "timeout",
}


class ErrorDetail(BaseModel):
    type: str
    message: str
    attempts: list[dict[str, Any]] | None = None


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer: OpenAI's error shape."""

    error: ErrorDetail


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorBody, "description": ERROR_TYPES[code]} for code in codes}


# Errors any endpoint can answer (access control and the body limit run before routing).
COMMON_ERRORS = (401, 403, 404, 405, 413, 429, 500)
ROUTE_ERRORS = _errors(*COMMON_ERRORS, 400, 504)
PROXY_ERRORS = _errors(*COMMON_ERRORS, 400, 502, 504)
READ_ERRORS = _errors(*COMMON_ERRORS)
COMPLETION_CONTENT: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "chat.completion JSON with a `router` object, or SSE chunks when streaming",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "text/event-stream": {"schema": {"type": "string"}},
        },
    }
}


METRICS_CONTENT: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/plain": {"schema": {"type": "string"}}}}
}


def without_422(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """FastAPI documents 422 for invalid bodies; this service answers 400 (as OpenAI does)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, summary=app.summary, routes=app.routes
            )
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    operation.get("responses", {}).pop("422", None)
            # Bodies parsed by request_body.parse are declared by reference; define them here.
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(component_schemas(RouteRequest, ChatCompletionRequest))
            app.openapi_schema = schema
        return app.openapi_schema

    return openapi


def error_response(status: int, message: str, error_type: str | None = None) -> JSONResponse:
    """The one error shape every 4xx/5xx uses, as OpenAI's: {"error": {"type", "message"}}."""
    kind = error_type or ERROR_TYPES.get(status, "error")
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status)


class BodySizeLimit:
    """Rejects bodies over `limit` bytes with 413 before they are read into memory (pure ASGI)."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                if not value.isdigit() or int(value) > self.limit:
                    await self.too_large()(scope, receive, send)
                    return
                await self.app(scope, receive, send)
                return
        # No declared length (chunked upload): read up to the limit here, then replay the body.
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before finishing its request
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.limit:
                await self.too_large()(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def too_large(self) -> JSONResponse:
        message = f"request body is larger than server.max_body_bytes ({self.limit} bytes)"
        return error_response(413, message)


class ClosingStreamingResponse(StreamingResponse):
    """Closes its body iterator however the stream ends, so a client disconnect is recorded now."""

    async def stream_response(self, send: Send) -> None:
        try:
            await super().stream_response(send)
        finally:
            close = getattr(self.body_iterator, "aclose", None)
            if close is not None:
                await close()


def _json_kind(value: Any) -> str:
    kinds = {type(None): "null", bool: "a boolean", int: "a number", float: "a number"}
    kinds.update({str: "a string", list: "an array"})
    return kinds.get(type(value), type(value).__name__)


def _describe_validation(errors: Sequence[Any]) -> str:
    parts = []
    for error in errors[:5]:
        loc = [str(p) for p in error.get("loc", ()) if p != "body"]
        if error.get("type") == "model_type" and not loc:
            return f"request body must be a JSON object, not {_json_kind(error.get('input'))}"
        message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
        parts.append(f"{'.'.join(loc)}: {message}" if loc else message)
    return "; ".join(parts) or "invalid request"


def parse_since(since: str | None) -> str | None:
    """An ISO date or datetime (UTC when no zone is given), normalised for comparing with the ledger."""
    if since is None:
        return None
    try:
        moment = datetime.fromisoformat(since)
    except ValueError:
        raise StarletteHTTPException(
            400, f"since={since!r} is not an ISO date or datetime (e.g. 2026-11-01)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def caller(request: Request) -> str | None:
    """The id of the API key that made the request (set by AccessControl), if keys are in use."""
    key_id: str | None = getattr(request.state, "api_key_id", None)
    return key_id


async def get_engine(request: Request) -> Engine:  # async: no thread-pool hop per request
    engine: Engine = request.app.state.engine
    return engine


async def get_proxy(request: Request) -> Proxy:
    proxy: Proxy = request.app.state.proxy
    return proxy


EngineDep = Annotated[Engine, Depends(get_engine)]
ProxyDep = Annotated[Proxy, Depends(get_proxy)]


def create_app(settings: Settings, engine: Engine | None = None) -> FastAPI:
    """Build the app. `engine` may be given (tests); otherwise it is built from `settings`."""
    built = engine or Engine(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for line in built.startup_report():
            log.warning(line)
        # litellm leaves ~370k long-lived objects; frozen, a full collection takes <1 ms, not ~300.
        gc.collect()
        gc.freeze()
        yield
        if engine is None:  # close only what we opened
            built.close()

    app = FastAPI(
        title="judge-router",
        summary="Routes LLM requests by difficulty and accounts for what the routing saved.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.openapi = without_422(app)  # type: ignore[method-assign]
    app.state.engine = built
    proxy = app.state.proxy = Proxy(built)
    app.state.settings = settings

    @app.exception_handler(InvalidBody)
    async def _invalid_body(request: Request, exc: InvalidBody) -> JSONResponse:
        return error_response(400, _describe_validation(exc.errors))

    @app.exception_handler(RequestValidationError)  # query parameters (e.g. /stats?since=)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(400, _describe_validation(exc.errors()))

    @app.exception_handler(ConversationError)
    async def _bad_conversation(request: Request, exc: ConversationError) -> JSONResponse:
        return error_response(400, str(exc))

    @app.exception_handler(ProxyError)
    async def _proxy_error(request: Request, exc: ProxyError) -> JSONResponse:
        error: dict[str, Any] = {"type": exc.error_type, "message": exc.message}
        if exc.attempts:  # which model failed how, machine-readably, beside the message
            error["attempts"] = [attempt.public() for attempt in exc.attempts]
        return JSONResponse({"error": error}, status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        response = error_response(exc.status_code, str(exc.detail))
        response.headers.update(exc.headers or {})  # e.g. Allow on 405
        return response

    @app.exception_handler(TimeoutError)
    async def _too_slow(request: Request, exc: TimeoutError) -> JSONResponse:
        return error_response(
            504,
            f"request took longer than server.request_timeout_s ({limits.request_timeout_s} s)",
            "timeout",
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, f"internal error ({type(exc).__name__}); see the server log")

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
        body = parse(await request.body(), RouteRequest)
        messages = body.message_dicts()
        check_message_count(len(messages))
        async with asyncio.timeout(limits.request_timeout_s):
            answer = await built.route(
                messages, body.tier, body.metadata, api_key_id=caller(request)
            )
        return JSONResponse(answer.model_dump(mode="json"))

    async def proxied(request: Request, endpoint: str) -> Response:
        body = parse(await request.body(), ChatCompletionRequest)
        messages = body.message_dicts()
        check_message_count(len(messages))
        params = body.provider_params(messages)
        async with asyncio.timeout(limits.request_timeout_s):
            decision = await proxy.decide(
                body.model, body.tier, messages, body.metadata, caller(request)
            )
            if body.stream:  # the deadline covers the stream until its first chunk
                chunks, headers = await proxy.stream(params, decision, endpoint)
                return ClosingStreamingResponse(
                    chunks, media_type="text/event-stream", headers=headers
                )
            answer, headers = await proxy.complete(params, decision, endpoint)
        return JSONResponse(answer, headers=headers)

    completion_responses = {**COMPLETION_CONTENT, **PROXY_ERRORS}
    completion_body = documented(ChatCompletionRequest)

    @app.post("/complete", responses=completion_responses, openapi_extra=completion_body)
    async def complete(request: Request) -> Response:
        """Route by difficulty, then call the chosen model (with fallbacks); streams when asked."""
        return await proxied(request, "complete")

    @app.post("/v1/chat/completions", responses=completion_responses, openapi_extra=completion_body)
    async def chat_completions(request: Request) -> Response:
        """OpenAI-compatible: model "auto" routes, "auto:TIER" forces, a configured name passes."""
        return await proxied(request, "chat")

    @app.get("/v1/models", responses=READ_ERRORS)
    async def models(proxy: ProxyDep) -> dict[str, Any]:
        """The model names /v1/chat/completions accepts."""
        return {
            "object": "list",
            "data": [
                {"id": name, "object": "model", "created": 0, "owned_by": "judge-router"}
                for name in proxy.model_names()
            ],
        }

    @app.get("/stats", responses=_errors(*COMMON_ERRORS, 400))
    async def stats(engine: EngineDep, since: str | None = None) -> dict[str, Any]:
        """Spend and savings from the ledger: totals, by source, tier, model and day."""
        return engine.ledger.summary(parse_since(since))

    @app.get(
        "/metrics",
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}, **READ_ERRORS},
    )
    async def metrics(engine: EngineDep) -> Response:
        """Prometheus metrics."""
        return Response(engine.telemetry.exposition(), media_type="text/plain; version=0.0.4")

    @app.get("/healthz", responses=_errors(404, 405, 500))
    async def healthz(engine: EngineDep) -> dict[str, Any]:
        """Whether the judge can be called as configured, and the cache and ledger are writable."""
        cache_ok = engine.cache.writable() if settings.cache.enabled else True
        ledger_ok = engine.ledger.writable()
        judge = engine.judge
        missing = engine.completions.missing_credentials(settings.judge.entry)
        llm_ready = judge.calls_llm
        return {
            "status": "ok" if cache_ok and ledger_ok else "degraded",
            "open_circuits": {
                "judge": judge.breaker.open_circuits(),
                "models": engine.completions.breaker.open_circuits(),
            },
            "judge": {
                "model": settings.judge.model,
                "mode": "llm" if llm_ready else "heuristic",
                "reachable_by_config": llm_ready,
                "missing_credentials": [] if settings.judge.is_heuristic else missing,
                "on_failure": settings.judge.on_failure,
                "failures": judge.failures,
            },
            "cache": {
                "enabled": settings.cache.enabled,
                "writable": cache_ok,
                "errors": engine.cache.errors,
            },
            "ledger": {
                "writable": ledger_ok,
                "write_errors": engine.ledger.write_errors,
                "pending_rows": engine.ledger.pending,
                "dropped_rows": engine.ledger.dropped,
            },
        }

    # Starlette runs the last-added middleware first: access control, then the body limit, then
    # the hot paths (the per-request endpoints, served without FastAPI's routing: see hot_paths).
    hot = {"/route": route, "/complete": complete, "/v1/chat/completions": chat_completions}
    app.add_middleware(HotPaths, endpoints=hot, error_handlers=app.exception_handlers)
    app.add_middleware(BodySizeLimit, limit=settings.server.max_body_bytes)
    app.add_middleware(AccessControl, server=settings.server)
    return app


def app_from_env() -> FastAPI:
    """App factory for `uvicorn --factory` and multi-worker serving: config from $JUDGE_ROUTER_CONFIG."""
    from judge_router.config import load_settings
    from judge_router.upstream.redact import Redactor, install_log_redaction

    settings = load_settings()
    install_log_redaction(Redactor(settings.secrets()))  # each worker process configures its own
    return create_app(settings)
