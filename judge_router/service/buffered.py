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
from judge_router.upstream.replay import completion_chunks


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
