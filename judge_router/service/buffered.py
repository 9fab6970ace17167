"""A whole chat completion replayed as a stream: how a checked (cascade) answer reaches a client
that asked for `stream: true`.

The chunks are the ones a provider would have sent (a role and content delta per choice, tool
calls with their indexes, a finish chunk, then a usage chunk), so every face streams them as it
streams a provider's: the relay drops the usage chunk unless the client asked for it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from judge_router.upstream.model_chain import Completed, StreamStarted


def completion_chunks(response: dict[str, Any], model: str) -> list[dict[str, Any]]:
    """The chunks of a stream that adds up to `response`."""
    base = {
        "id": response.get("id") or "chatcmpl-buffered",
        "object": "chat.completion.chunk",
        "created": response.get("created") or 0,
        "model": response.get("model") or model,
    }
    chunks, finishes = [], []
    for position, choice in enumerate(response.get("choices") or []):
        index = choice.get("index", position)
        message = choice.get("message") or {}
        delta: dict[str, Any] = {"role": "assistant", "content": message.get("content") or ""}
        calls = message.get("tool_calls")
        if calls:
            delta["tool_calls"] = [{**call, "index": n} for n, call in enumerate(calls)]
        if message.get("refusal"):
            delta["refusal"] = message["refusal"]
        chunks.append(
            {**base, "choices": [{"index": index, "delta": delta, "finish_reason": None}]}
        )
        finish = choice.get("finish_reason") or "stop"
        finishes.append(
            {**base, "choices": [{"index": index, "delta": {}, "finish_reason": finish}]}
        )
    if not chunks:  # a provider that answered no choice still opens a stream
        chunks.append({**base, "choices": [{"index": 0, "delta": {"role": "assistant"}}]})
    chunks.extend(finishes)
    if response.get("usage"):
        chunks.append({**base, "choices": [], "usage": response["usage"]})
    return chunks


async def _replay(chunks: list[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    for chunk in chunks:
        yield chunk


async def _nothing_to_close() -> None:
    """The provider's answer was read whole: there is no open response to stop."""


def replayed_stream(done: Completed, first_chunk_ms: float) -> StreamStarted:
    """`done` as an open stream; `first_chunk_ms`: how long the client waited for it."""
    chunks = completion_chunks(done.response, done.model)
    return StreamStarted(
        model=done.model,
        first_chunk=chunks[0],
        chunks=_replay(chunks[1:]),
        attempts=done.attempts,
        first_chunk_ms=first_chunk_ms,
        close=_nothing_to_close,
    )
