"""The OpenAPI document: error responses per endpoint, 400 instead of FastAPI's 422, hot-path bodies."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from judge_router.serving.errors import ERROR_TYPES, ErrorBody
from judge_router.serving.request_body import component_schemas


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorBody, "description": ERROR_TYPES[code]} for code in codes}


# Errors any endpoint can answer (access control and the body limit run before routing).
COMMON_ERRORS = (401, 403, 404, 405, 413, 429, 500)
ROUTE_ERRORS = errors(*COMMON_ERRORS, 400, 415, 504)
PROXY_ERRORS = errors(*COMMON_ERRORS, 400, 415, 502, 504)
READ_ERRORS = errors(*COMMON_ERRORS)
COMPLETION_CONTENT: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the API's answer (chat.completion, response or message) with a `router` "
        "object, or server-sent events when streaming",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            # One server-sent event: its data, and its name (Responses and Messages events).
            "text/event-stream": {
                "schema": {
                    "type": "object",
                    "properties": {"event": {"type": "string"}, "data": {"type": "string"}},
                    "required": ["data"],
                }
            },
        },
    }
}
TEXT_CONTENT: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/plain": {"schema": {"type": "string"}}}}
}


def without_422(app: FastAPI, bodies: Sequence[type[BaseModel]]) -> Callable[[], dict[str, Any]]:
    """FastAPI documents 422 for invalid bodies; this service answers 400 (as OpenAI does).

    `bodies` are the request bodies the endpoints parse themselves (request_body.documented).
    """

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
            components.update(component_schemas(*bodies))
            app.openapi_schema = schema
        return app.openapi_schema

    return openapi
