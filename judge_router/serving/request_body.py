"""Request bodies parsed straight from bytes, and their OpenAPI description.

FastAPI's body handling (json.loads, then validating the dict, then solving the endpoint's
dependencies) cost the proxy path ~0.2 ms a request; pydantic's own JSON parser validates in one
pass. The endpoints therefore take the raw request and call `parse`, and `documented` puts the
model's schema back into the OpenAPI document that FastAPI would otherwise have derived.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request

Body = TypeVar("Body", bound=BaseModel)

COMPONENTS = "#/components/schemas/{model}"


class InvalidBody(Exception):
    """A body that is JSON but not what the endpoint takes; `errors` are pydantic's."""

    def __init__(self, errors: list[Any]):
        super().__init__(f"{len(errors)} validation errors")
        self.errors = errors


def is_json(content_type: str) -> bool:
    """application/json, or any application/...+json, whatever its parameters (charset=...)."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


async def read(request: Request, model: type[Body]) -> Body:
    """The request's body as `model`: 400 if it is missing or invalid, 415 if it is not JSON.

    Refusing other media types matters on a loopback service without keys: a web page can send a
    text/plain or form POST to it without a CORS preflight, but not an application/json one.
    """
    raw = await request.body()
    if raw.strip() and not is_json(request.headers.get("content-type", "")):
        sent = request.headers.get("content-type") or "no Content-Type"
        raise StarletteHTTPException(
            415, f"request body must be sent as Content-Type: application/json (got {sent})"
        )
    return parse(raw, model)


def parse(raw: bytes, model: type[Body]) -> Body:
    """`raw` as `model`; a 400 (through the app's handlers) naming what is wrong otherwise."""
    if not raw.strip():
        raise StarletteHTTPException(400, "request body is missing: send a JSON object")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
    if any(error["type"] == "json_invalid" for error in errors):
        # pydantic's parser refuses some JSON that Python's accepts (lone surrogates such as
        # "\ud800", which json.dumps writes, and nesting past ~200 levels): accept what the
        # standard library accepts, as FastAPI did, and report its error when it refuses too.
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise StarletteHTTPException(400, f"request body is not valid JSON: {exc}") from None
        try:  # lax here: in Python mode, strict would refuse "low" for a Tier
            return model.model_validate(data, strict=False)
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
    raise InvalidBody(errors)


def documented(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` declaring `model` as the required JSON request body."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": COMPONENTS.format(model=model.__name__)}}
            },
        }
    }


def component_schemas(*models: type[BaseModel]) -> dict[str, Any]:
    """The components/schemas entries for `models` and every model they refer to."""
    schemas: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template=COMPONENTS)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return schemas
