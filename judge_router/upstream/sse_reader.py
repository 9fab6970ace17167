"""Server-sent events from a provider's byte stream, and chunks that remember their bytes.

A `RelayedChunk` is the provider's chunk as parsed, carrying the exact JSON it arrived as: the SSE
writer sends those bytes on unchanged. Whatever rewrites a chunk builds a new plain dict (the code
never edits a chunk in place), so a rewritten chunk is encoded afresh and an untouched one is not.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pydantic_core


class RelayedChunk(dict[str, Any]):
    """A chunk as the provider sent it; `raw` is its JSON, byte for byte."""

    __slots__ = ("raw",)

    def __init__(self, parsed: dict[str, Any], raw: bytes):
        super().__init__(parsed)
        self.raw = raw


def without(chunk: dict[str, Any], key: str) -> dict[str, Any]:
    """`chunk` without `key` (itself when it has none). A relayed chunk whose JSON ends with that
    key set to null (as OpenAI writes `"usage":null`) keeps its bytes, cut; any other is a new
    dict, encoded afresh."""
    if key not in chunk:
        return chunk
    kept = {name: value for name, value in chunk.items() if name != key}
    if type(chunk) is RelayedChunk and chunk[key] is None:
        raw, quoted = chunk.raw.rstrip(), f'"{key}"'.encode()
        for tail in (b"," + quoted + b":null}", b", " + quoted + b": null}"):
            # The last member of the object, and the only one of that name: cut from the text.
            if raw.endswith(tail) and raw.count(quoted) == 1:
                return RelayedChunk(kept, raw[: -len(tail)] + b"}")
    return kept


def parse_json(data: bytes) -> Any:
    """JSON text parsed fast; on invalid text, the json module's own error (litellm's message)."""
    try:
        return pydantic_core.from_json(data)
    except ValueError:
        return json.loads(data)  # raises json.JSONDecodeError, unless only pydantic refused it


def _event_data(block: bytes) -> bytes | None:
    """The data of one event (its `data:` lines joined by newlines), None when it has none."""
    if block.startswith(b"data:") and b"\n" not in block:  # the usual one-line event
        value = block[5:]
        return value[1:] if value.startswith(b" ") else value
    found = []
    for line in block.split(b"\n"):
        if line.startswith(b"data:"):
            value = line[5:]
            found.append(value[1:] if value.startswith(b" ") else value)
    return b"\n".join(found) if found else None


async def sse_data(pieces: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The data of each event in a byte stream; a last event without its blank line counts too
    (as the OpenAI SDK reads it)."""
    buffer = b""
    async for piece in pieces:
        buffer += piece
        if b"\r" in buffer:
            buffer = buffer.replace(b"\r\n", b"\n")
        while True:
            end = buffer.find(b"\n\n")
            if end < 0:
                break
            data = _event_data(buffer[:end])
            buffer = buffer[end + 2 :]
            if data is not None:
                yield data
    rest = buffer.strip(b"\n")
    if rest:
        data = _event_data(rest)
        if data is not None:
            yield data
