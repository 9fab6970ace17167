"""The direct transport's failures as litellm raises them: the same classes, status codes, messages.

litellm reaches OpenAI-compatible servers through the OpenAI SDK and maps what goes wrong in three
layers: the SDK turns an HTTP status or a transport error into its exception, litellm's OpenAI
handler wraps that in its `OpenAIError` (slightly differently for streams), and `exception_type`
maps it to litellm's classes (`RateLimitError`, `Timeout`, ...). A stream that breaks after its first
chunk is mapped once more, as litellm's stream wrapper does. This module rebuilds the first layer
and hands the rest to litellm's own code, so a client, the circuit breakers and the ledger see the
same error from either transport. It runs only when a call has failed.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from typing import Any

import httpx

from judge_router.upstream.litellm_runtime import load_litellm

STREAM_EOF = "Stream ended before a finish_reason was received"
_STATUS_CLASSES = {
    400: "BadRequestError",
    401: "AuthenticationError",
    403: "PermissionDeniedError",
    404: "NotFoundError",
    409: "ConflictError",
    422: "UnprocessableEntityError",
    429: "RateLimitError",
}


def _module(name: str) -> Any:
    load_litellm()
    return importlib.import_module(name)


def sdk_status_error(response: httpx.Response) -> Exception:
    """The OpenAI SDK's exception for an error status (its body already read)."""
    openai = _module("openai")
    text = response.text.strip()
    body: Any = text
    try:
        body = json.loads(text)
        message = f"Error code: {response.status_code} - {body}"
    except Exception:
        message = text or f"Error code: {response.status_code}"
    data = body.get("error", body) if isinstance(body, Mapping) else body
    name = _STATUS_CLASSES.get(response.status_code)
    if name is None:
        name = "InternalServerError" if response.status_code >= 500 else "APIStatusError"
    error: Exception = getattr(openai, name)(message, response=response, body=data)
    return error


def sdk_transport_error(exc: Exception, request: httpx.Request) -> Exception:
    """The OpenAI SDK's exception for a request that got no response (timeout, refused, reset)."""
    openai = _module("openai")
    if isinstance(exc, httpx.TimeoutException):
        error: Exception = openai.APITimeoutError(request=request)
    else:
        error = openai.APIConnectionError(request=request)
    error.__cause__ = exc
    return error


def with_timeout_note(error: Exception, timeout: float, elapsed_s: float) -> Exception:
    """litellm's note on a timed-out whole answer (its streams say nothing more)."""
    if isinstance(error, _module("openai").APITimeoutError):
        note = f" - timeout value={timeout}, time taken={round(elapsed_s, 2)} seconds"
        error.message += note
    return error


def invalid_answer(response: httpx.Response) -> Exception:
    """litellm's error for a 200 whose body is not JSON, in the SDK's two cases."""
    content_type = response.headers.get("content-type", "*").split(";")[0]
    try:
        json.loads(response.text)
    except json.JSONDecodeError as exc:
        if content_type.endswith("json"):
            return exc
    errors = _module("litellm.llms.openai.common_utils")
    return errors.OpenAIError(  # type: ignore[no-any-return]
        status_code=500,
        message=f"Empty or invalid response from LLM endpoint. Received: {response.text!r}. "
        "Check the reverse proxy or model server configuration.",
    )


def unusable_answer(data: Any) -> Exception | None:
    """litellm's error for a parsed 200 it cannot use (an `error` object, no list of choices), or
    None for a usable answer."""
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        meaningful = bool(error.get("message", "")) or error.get("code") is not None
    else:
        meaningful = bool(error)
    if meaningful:  # OpenRouter and others answer some failures with 200
        raised = Exception()
        raised.status_code = error.get("code", 422) if isinstance(error, dict) else 422  # type: ignore[attr-defined]
        message = error.get("message") if isinstance(error, dict) else None
        if isinstance(error, dict) and "message" in error:
            text = json.dumps(message) if isinstance(message, dict) else str(message)
        else:
            text = "Error in response object"
        raised.message = text  # type: ignore[attr-defined]
        return raised
    if isinstance(data, dict) and isinstance(data.get("choices"), list):
        return None
    convert = _module("litellm.litellm_core_utils.llm_response_utils.convert_dict_to_response")
    message = convert._invalid_choices_message(data if isinstance(data, dict) else {})
    invalid: Exception = load_litellm().exceptions.APIError(
        status_code=500, message=message, llm_provider="", model=""
    )
    return invalid


def as_litellm(
    error: Exception, model: str, messages: Any, api_base: str, stream: bool
) -> Exception:
    """What `litellm.acompletion(model=model, ...)` raises for `error` before a first chunk."""
    common = _module("litellm.llms.openai.common_utils")
    response = getattr(error, "response", None)
    headers = getattr(error, "headers", None) or getattr(response, "headers", None)
    body = getattr(error, "body", None)
    if not stream:
        wrapped = common.OpenAIError(
            status_code=getattr(error, "status_code", 500),
            message=getattr(error, "message", str(error)),
            response=common.upstream_error_response(error),
            headers=headers,
            body=body,
        )
    elif isinstance(error, common.OpenAIError):
        wrapped = error
    elif hasattr(error, "status_code"):
        wrapped = common.OpenAIError(
            status_code=error.status_code,
            message=str(error),
            response=common.upstream_error_response(error),
            headers=headers,
            body=body,
        )
    else:
        wrapped = common.OpenAIError(
            status_code=500, message=f"{error}", headers=headers, body=body
        )
    mapping = _module("litellm.litellm_core_utils.exception_mapping_utils")
    mapped: Exception = mapping.exception_type(
        model=model,
        custom_llm_provider="openai",
        original_exception=wrapped,
        completion_kwargs={"model": model, "messages": messages},
        extra_kwargs={"api_base": api_base},
    )
    return mapped


def stream_event_error(payload: Any, request: httpx.Request) -> Exception | None:
    """The SDK's exception for an SSE event carrying an `error` object, or None."""
    if not isinstance(payload, dict) or not payload.get("error"):
        return None
    error = payload["error"]
    message = error.get("message") if isinstance(error, Mapping) else None
    if not message or not isinstance(message, str):
        message = "An error occurred during streaming"
    failure: Exception = _module("openai").APIError(message=message, request=request, body=error)
    return failure


def stream_broke(error: Exception, model: str, api_base: str) -> Exception:
    """What litellm's stream wrapper raises when its provider's stream fails (`model`: the name
    the provider was sent)."""
    wrapper = _module("litellm.litellm_core_utils.streaming_handler")
    exceptions = load_litellm().exceptions
    mapped: Exception
    if isinstance(error, exceptions.OpenAIError):
        mapped = error
    else:
        mapping = _module("litellm.litellm_core_utils.exception_mapping_utils")
        try:
            mapped = mapping.exception_type(
                model=model,
                custom_llm_provider="openai",
                original_exception=error,
                extra_kwargs={"api_base": api_base},
            )
        except Exception as mapping_error:
            mapped = mapping_error
    codes = (_status(mapped), _status(error))
    if not wrapper._is_transport_timeout(error) and any(
        wrapper._skips_stream_fallback(code) for code in codes
    ):
        return mapped
    fallback: Exception = exceptions.MidStreamFallbackError(
        message=str(mapped),
        model=model,
        llm_provider="openai",
        original_exception=mapped,
        generated_content="",
        is_pre_first_chunk=False,
        emitted_disqualifying_content=False,
    )
    return fallback


def eof_error() -> Exception:
    """litellm's error for a stream that ended before any finish_reason."""
    request = httpx.Request(method="POST", url="https://docs.litellm.ai/docs")
    return httpx.RemoteProtocolError(STREAM_EOF, request=request)


def _status(error: Exception) -> int | None:
    code = getattr(error, "status_code", None)
    if code is None:
        code = getattr(getattr(error, "response", None), "status_code", None)
    try:
        return int(code) if code is not None else None
    except (TypeError, ValueError):
        return None
