"""The direct transport: OpenAI-compatible models called over one pooled HTTP client, no litellm.

It sends what litellm would send (plain_request.py decides; any other request goes through
litellm), relays the provider's answer as it came (streamed chunks byte for byte where nothing
rewrites them), and fails as litellm would (direct_errors.py). What litellm adds to a stream is
reproduced where the service relies on it: a stream ending before any finish_reason is an error,
a connection lost after one is not, and usage the provider did not send is counted as litellm counts
it. Keep-alive connections (http_pools.py) are shared by every model and request of the process.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import anyio
import httpx
import pydantic_core

from judge_router.upstream import direct_errors as errors
from judge_router.upstream.direct_target import DirectTarget
from judge_router.upstream.http_pools import HttpPools
from judge_router.upstream.litellm_runtime import load_litellm
from judge_router.upstream.plain_request import direct_body
from judge_router.upstream.replay import completion_chunks
from judge_router.upstream.sse_reader import RelayedChunk, parse_json, sse_data
from judge_router.upstream.transport import OpenedStream, Reply, Transport, usage_tokens

_SENT_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


class DirectTransport:
    """Calls the models it was given targets for; hands `litellm` the requests it would rewrite."""

    name = "direct"

    def __init__(self, litellm: Transport):
        self.targets: dict[str, DirectTarget] = {}
        self._headers: dict[str, dict[str, str]] = {}
        self._litellm = litellm
        self._pools: HttpPools | None = None

    def add(self, model: str, target: DirectTarget) -> None:
        self.targets[model] = target
        self._headers[model] = {**_SENT_HEADERS, **target.headers}

    def _http(self) -> HttpPools:
        """The pooled client. Connections belong to an event loop: a new loop (a CLI command's
        second asyncio.run, a test's) gets new pools, and the old ones are let go with their loop."""
        loop = asyncio.get_running_loop()
        if self._pools is None or self._pools.loop is not loop:
            if self._pools is not None:
                self._pools.abandon()
            self._pools = HttpPools()
        return self._pools

    async def aclose(self) -> None:
        pools, self._pools = self._pools, None
        if pools is None:
            return
        if pools.loop is asyncio.get_running_loop():
            await pools.aclose()
        else:  # opened on a loop that has ended (eval closes its engine in a loop of its own)
            pools.abandon()

    def _request(
        self, model: str, body: dict[str, Any], timeout_s: float
    ) -> tuple[DirectTarget, httpx.Request, float]:
        target = self.targets[model]
        timeout = target.timeout_s if target.timeout_s is not None else timeout_s
        content = pydantic_core.to_json(body)
        request = self._http().build(target.url, content, self._headers[model], timeout)
        return target, request, timeout

    async def complete(self, model: str, params: dict[str, Any], timeout_s: float) -> Reply:
        body = direct_body(self.targets[model].model, params)
        if body is None:
            return await self._litellm.complete(model, params, timeout_s)
        target, request, timeout = self._request(model, body, timeout_s)
        started = time.monotonic()

        def failed(error: Exception) -> Exception:
            return errors.as_litellm(error, model, body["messages"], target.api_base, False)

        try:
            response = await self._http().send(request)
        except Exception as exc:
            error = errors.sdk_transport_error(exc, request)
            elapsed = time.monotonic() - started
            raise failed(errors.with_timeout_note(error, timeout, elapsed)) from exc
        if response.status_code >= 400:
            raise failed(errors.sdk_status_error(response))
        try:
            data = parse_json(response.content)
        except ValueError:
            raise failed(errors.invalid_answer(response)) from None
        invalid = errors.unusable_answer(data)
        if invalid is not None:
            raise failed(invalid)
        if data.get("usage") is None:  # litellm answers with zero usage (and so prices it)
            data["usage"] = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        prompt, completion = usage_tokens(data["usage"])
        return Reply(data, prompt, completion)

    async def stream(self, model: str, params: dict[str, Any], timeout_s: float) -> OpenedStream:
        body = direct_body(self.targets[model].model, params)
        if body is None:
            return await self._litellm.stream(model, params, timeout_s)
        target, request, _ = self._request(model, body, timeout_s)

        def failed(error: Exception) -> Exception:
            return errors.as_litellm(error, model, body["messages"], target.api_base, True)

        try:
            response = await self._http().send(request, stream=True)
        except Exception as exc:
            raise failed(errors.sdk_transport_error(exc, request)) from exc
        if response.status_code >= 400:
            try:
                await response.aread()
            except Exception as exc:
                raise failed(errors.sdk_transport_error(exc, request)) from exc
            finally:
                await response.aclose()
            raise failed(errors.sdk_status_error(response))
        if "json" in response.headers.get("content-type", ""):
            chunks = _replayed(response, target, body["messages"])
        else:
            chunks = _relay(response, target, body["messages"])

        async def close() -> None:
            await chunks.aclose()
            await response.aclose()

        try:
            first = await chunks.__anext__()
        except BaseException:  # a failure, or the request cancelled before its first chunk
            with anyio.CancelScope(shield=True):
                await response.aclose()
            raise
        return OpenedStream(first, chunks, close)


async def _relay(
    response: httpx.Response, target: DirectTarget, messages: list[Any]
) -> AsyncGenerator[dict[str, Any]]:
    """The provider's chunks, then its usage as one usage-only chunk (as litellm ends a stream)."""
    finished = usage_sent = False
    held_usage: Any = None  # usage that came on a chunk with choices
    last: dict[str, Any] = {}
    texts: list[str] = []
    events = sse_data(response.aiter_bytes())
    try:
        async for data in events:
            if data.startswith(b"[DONE]"):
                await _drain(events)
                break
            chunk = parse_json(data)
            failure = errors.stream_event_error(chunk, response.request)
            if failure is not None:
                raise failure
            if not isinstance(chunk, dict):
                raise ValueError(f"a stream event that is not a JSON object: {data[:100]!r}")
            for choice in chunk.get("choices") or ():
                finished = finished or bool(choice.get("finish_reason"))
                text = (choice.get("delta") or {}).get("content")
                if isinstance(text, str):
                    texts.append(text)
            last = chunk
            usage = chunk.get("usage")
            if usage and chunk.get("choices"):  # litellm sends usage on a chunk of its own
                held_usage = usage
                yield {key: value for key, value in chunk.items() if key != "usage"}
                continue
            usage_sent = usage_sent or bool(usage)
            # Several data lines joined by newlines cannot go out as one line: encoded afresh.
            yield RelayedChunk(chunk, data) if b"\n" not in data else chunk
    except (httpx.ReadError, httpx.RemoteProtocolError) as exc:
        if not finished:  # after a finish_reason, litellm takes a lost connection as the end
            raise errors.stream_broke(exc, target.model, target.api_base) from exc
    except Exception as exc:
        raise errors.stream_broke(exc, target.model, target.api_base) from exc
    if not finished:
        raise errors.stream_broke(errors.eof_error(), target.model, target.api_base)
    if usage_sent:
        return
    if not held_usage:
        held_usage = _counted_usage(target.model, messages, "".join(texts))
    yield {
        **{key: last[key] for key in ("id", "created", "model", "object") if key in last},
        "choices": [],
        "usage": held_usage,
    }


async def _drain(events: AsyncIterator[bytes]) -> None:
    """Reads the stream to its end after `[DONE]`, as the OpenAI SDK does: a response closed
    unread loses its connection, and every streamed request then paid a new connect (and, to an
    https provider, a TLS handshake). A failure after `[DONE]` is not the answer's."""
    try:
        async for _ in events:
            pass
    except httpx.HTTPError:
        pass


async def _replayed(
    response: httpx.Response, target: DirectTarget, messages: list[Any]
) -> AsyncGenerator[dict[str, Any]]:
    """A stream request answered with a whole completion (servers that ignore `stream`), as the
    chunks of a stream. litellm finds no events in it and streams an empty answer instead."""
    try:
        data = parse_json(await response.aread())
    except Exception as exc:
        raise errors.stream_broke(exc, target.model, target.api_base) from exc
    unusable = errors.unusable_answer(data)
    if unusable is not None:
        raise errors.stream_broke(unusable, target.model, target.api_base)
    if not data.get("usage"):
        text = "".join(
            str((choice.get("message") or {}).get("content") or "") for choice in data["choices"]
        )
        data["usage"] = _counted_usage(target.model, messages, text)
    for chunk in completion_chunks(data, target.model):
        yield chunk


def _counted_usage(model: str, messages: list[Any], text: str) -> dict[str, int]:
    """Usage the provider did not report, counted as litellm counts it."""
    count = load_litellm().token_counter
    try:
        prompt = int(count(model=model, messages=messages))
    except Exception:
        prompt = 0
    completion = int(count(model=model, text=text, count_response_tokens=True))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
