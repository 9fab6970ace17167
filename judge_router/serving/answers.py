"""What the proxy faces send back: the provider's body plus the `router` object, headers, SSE."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import anyio
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from judge_router.service.answering import Answer, OpenStream, StreamBroke
from judge_router.service.direct import Trail
from judge_router.service.ledger_rows import PricedUsage
from judge_router.serving.json_response import FastJSONResponse
from judge_router.types import Decision, round_usd
from judge_router.upstream.model_chain import Attempt
from judge_router.upstream.sse_reader import RelayedChunk


def router_info(
    decision: Decision,
    model: str,
    attempts: list[Attempt],
    usage: PricedUsage | None,
    trail: Trail | None = None,
) -> dict[str, Any]:
    info: dict[str, Any] = {
        "request_id": decision.request_id,
        "tier": decision.tier.value,
        "model": model,
        "source": decision.verdict.source.value,
        "cached": decision.cached,
        "reason": decision.verdict.reason,
        "attempts": [a.public() for a in attempts],
        "judge_cost_usd": round_usd(decision.verdict.cost_usd),
    }
    if decision.verdict.judge_error:
        info["judge_error"] = decision.verdict.judge_error
    if decision.rule is not None:
        info["rule"] = decision.rule
    if decision.budget is not None:
        info["budget"] = decision.budget
    info["arm"] = decision.arm
    info["strategy"] = decision.strategy
    if trail is not None:  # a cascade: each step, and whether no answer passed
        info["cascade"] = trail.public()
        if trail.quality_flag:
            info["quality_flag"] = trail.quality_flag
    dropped = sorted({p for a in attempts if a.model == model for p in (a.dropped_params or [])})
    if dropped:
        info["dropped_params"] = dropped
    if usage is not None:
        info.update(
            cost_usd=round_usd(usage.cost_usd),
            baseline_cost_usd=round_usd(usage.baseline_cost_usd),
            saved_usd=round_usd(usage.saved_usd),
        )
    return info


def headers(decision: Decision, model: str) -> dict[str, str]:
    return {
        "x-judge-router-tier": decision.tier.value,
        "x-judge-router-model": model,
        "x-judge-router-request-id": decision.request_id,
    }


def completion_body(answer: Answer) -> dict[str, Any]:
    body = dict(answer.response)
    body["router"] = router_info(
        answer.decision, answer.model, answer.attempts, answer.usage, answer.trail
    )
    return body


def sse(payload: dict[str, Any]) -> bytes:
    if type(payload) is RelayedChunk:  # the provider's own bytes: nothing rewrote this chunk
        return b"data: " + payload.raw + b"\n\n"
    return b"data: " + FastJSONResponse.render_json(payload) + b"\n\n"


async def sse_events(stream: OpenStream, trailer: bool = False) -> AsyncIterator[bytes]:
    """The stream as server-sent events; a provider that breaks off is told to the client in-band.

    The usage chunk a client asked for (`stream_options.include_usage`) is the provider's last; it
    is held until the stream is priced and goes out carrying the `router` object with the costs.
    With `trailer`, one `event: router` with the same object follows `data: [DONE]`.
    """
    held: dict[str, Any] | None = None
    try:
        async for chunk in stream.chunks:
            if chunk.get("usage") and not chunk.get("choices"):
                held = chunk
                continue
            yield sse(chunk)
        if held is not None:
            yield sse({**held, "router": stream_router_info(stream)})
        yield b"data: [DONE]\n\n"
    except StreamBroke as broke:
        yield sse({"error": {"type": "upstream_error", "message": str(broke)}})
    if trailer:
        yield router_trailer(stream)


def stream_router_info(stream: OpenStream) -> dict[str, Any]:
    return router_info(stream.decision, stream.model, stream.attempts, stream.usage, stream.trail)


def router_trailer(stream: OpenStream) -> bytes:
    return b"event: router\n" + sse(stream_router_info(stream))


class ClosingStreamingResponse(StreamingResponse):
    """Closes the stream however the response ends (a client that left before the first byte or
    mid-stream included), so its row is recorded and the provider's stream stopped at once."""

    def __init__(self, stream: OpenStream, events: AsyncIterator[bytes]):
        super().__init__(
            events, media_type="text/event-stream", headers=headers(stream.decision, stream.model)
        )
        self.stream = stream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Starlette's own, but watching for the client leaving from a plain task under a cancel
        scope, not from an anyio task group, whose set-up is a good part of the time between a
        stream's first chunk and its first byte (benchmarks/stream_stages.py): the same
        cancellation, and shielded closes still run."""
        asgi = scope.get("asgi", {})
        spec = tuple(int(part) for part in asgi.get("spec_version", "2.0").split("."))
        if scope["type"] != "http" or spec >= (2, 4) or self.background is not None:
            await super().__call__(scope, receive, send)  # as Starlette does it
            return
        with anyio.CancelScope() as scope_of_the_stream:

            async def until_the_client_leaves() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                scope_of_the_stream.cancel()

            watcher = asyncio.get_running_loop().create_task(until_the_client_leaves())
            try:
                await self.stream_response(send)
            finally:
                watcher.cancel()

    async def stream_response(self, send: Send) -> None:
        try:
            await super().stream_response(send)
        finally:
            await self.body_iterator.aclose()  # type: ignore[attr-defined]
            await self.stream.aclose()
