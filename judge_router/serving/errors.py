"""Every 4xx/5xx answer in one shape (OpenAI's), and the app's exception handlers that produce it."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from judge_router.config import Settings
from judge_router.routing.budget_limits import BudgetExceeded
from judge_router.routing.conversation import ConversationError
from judge_router.routing.request import UnknownModel, UnknownTier
from judge_router.service.answering import AnswerFailed
from judge_router.serving.json_response import FastJSONResponse as JSONResponse
from judge_router.serving.request_body import InvalidBody
from judge_router.upstream.dialects import UntranslatableRequest
from judge_router.upstream.model_chain import Attempt
from judge_router.validation import describe_errors

log = logging.getLogger(__name__)

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
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


class DeadlinePassed(TimeoutError):
    """server.request_timeout_s passed after the request was decided; its row is `request_id`."""

    def __init__(self, request_id: str):
        super().__init__(request_id)
        self.request_id = request_id


def error_response(
    status: int,
    message: str,
    error_type: str | None = None,
    headers: Mapping[str, str] | None = None,
    attempts: Sequence[Attempt] = (),
) -> JSONResponse:
    """The one error body: {"error": {"type", "message"}}, plus which model failed how, if any."""
    error: dict[str, Any] = {
        "type": error_type or ERROR_TYPES.get(status, "error"),
        "message": message,
    }
    if attempts:  # machine-readable beside the message
        error["attempts"] = [attempt.public() for attempt in attempts]
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def _json_kind(value: Any) -> str:
    kinds = {type(None): "null", bool: "a boolean", int: "a number", float: "a number"}
    kinds.update({str: "a string", list: "an array"})
    return kinds.get(type(value), type(value).__name__)


def describe_validation(errors: Sequence[Any]) -> str:
    """pydantic's errors about a body or query as one sentence (the first five)."""
    for error in errors[:5]:
        if error.get("type") == "model_type" and not [
            p for p in error.get("loc", ()) if p != "body"
        ]:
            return f"request body must be a JSON object, not {_json_kind(error.get('input'))}"
    shown = [_explained(error) for error in errors[:5]]
    return "; ".join(describe_errors(shown, root="", skip=("body",))) or "invalid request"


# Fields a client might send to steer the provider call itself: refused, and told why.
_PROVIDER_SETTINGS = frozenset(
    {"api_base", "api_key", "base_url", "api_version", "organization", "custom_llm_provider"}
)


def _explained(error: Any) -> Any:
    """An unknown field's error, saying why provider settings are never taken from a request."""
    loc = error.get("loc", ())
    if error.get("type") != "extra_forbidden" or not loc:
        return error
    if loc[-1] in _PROVIDER_SETTINGS:
        why = (
            "not accepted: provider settings come from the service's config, so a request "
            "cannot redirect its credentials"
        )
    else:
        why = "unknown field (the API reference lists those accepted: GET /docs)"
    return {**error, "msg": why}


_OPERATIONS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def allowed_methods(request: Request, named: str) -> list[str]:
    """The methods of every route at the request's path, for a 405's Allow: Starlette names only
    the first route's (`named`), and the dashboard's session path has three. Read from the
    OpenAPI schema (built once), which lists each path's operations."""
    found = {method.strip().upper() for method in named.split(",") if method.strip()}
    for template, operations in request.app.openapi().get("paths", {}).items():
        parts = re.split(r"(\{[^}]+\})", template)
        pattern = "".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts)
        if re.fullmatch(pattern, request.url.path):
            found |= {method.upper() for method in operations if method in _OPERATIONS}
    return sorted(found)


def install_error_handlers(app: FastAPI, settings: Settings) -> None:
    timeout_s = settings.server.request_timeout_s

    @app.exception_handler(InvalidBody)
    async def _invalid_body(request: Request, exc: InvalidBody) -> JSONResponse:
        return error_response(400, describe_validation(exc.errors))

    @app.exception_handler(RequestValidationError)  # query parameters (e.g. /stats?since=)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(400, describe_validation(exc.errors()))

    @app.exception_handler(ConversationError)
    async def _bad_conversation(request: Request, exc: ConversationError) -> JSONResponse:
        return error_response(400, str(exc))

    @app.exception_handler(UntranslatableRequest)
    async def _untranslatable(request: Request, exc: UntranslatableRequest) -> JSONResponse:
        return error_response(400, str(exc))

    @app.exception_handler(UnknownTier)
    async def _unknown_tier(request: Request, exc: UnknownTier) -> JSONResponse:
        return error_response(400, str(exc))

    @app.exception_handler(UnknownModel)
    async def _unknown_model(request: Request, exc: UnknownModel) -> JSONResponse:
        return error_response(404, str(exc), "model_not_found")

    @app.exception_handler(BudgetExceeded)
    async def _budget_spent(request: Request, exc: BudgetExceeded) -> JSONResponse:
        wait = {"retry-after": str(exc.limit.retry_after_s)}  # until the budget's month ends
        return error_response(429, str(exc), "budget_exceeded", headers=wait)

    @app.exception_handler(AnswerFailed)
    async def _no_answer(request: Request, exc: AnswerFailed) -> JSONResponse:
        status = 400 if exc.refused else 502
        headers = {"x-judge-router-request-id": exc.request_id}  # its ledger row
        return error_response(status, exc.message, headers=headers, attempts=exc.attempts)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = exc.headers
        if exc.status_code == 405:  # Starlette names only the first route of the path's methods
            named = {k.lower(): v for k, v in (headers or {}).items()}.get("allow", "")
            headers = {k: v for k, v in (headers or {}).items() if k.lower() != "allow"}
            headers["allow"] = ", ".join(allowed_methods(request, named))
        return error_response(exc.status_code, str(exc.detail), headers=headers)

    @app.exception_handler(TimeoutError)
    async def _too_slow(request: Request, exc: TimeoutError) -> JSONResponse:
        message = f"request took longer than server.request_timeout_s ({timeout_s} s)"
        row = (
            {"x-judge-router-request-id": exc.request_id}
            if isinstance(exc, DeadlinePassed)
            else None
        )
        return error_response(504, message, "timeout", headers=row)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, f"internal error ({type(exc).__name__}); see the server log")
