"""How one call reaches one model: the interface litellm and the direct HTTP path both implement.

A transport is handed what the model is to receive (the parameters it does not take are already left
out) and answers in OpenAI's chat shapes, as dicts; it raises litellm's exception classes, with
litellm's messages, so the chain, its breakers and the client's error bodies cannot tell which
transport failed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(slots=True)
class Reply:
    """A whole chat completion and its usage (zeros when the provider sent none)."""

    response: dict[str, Any]
    prompt_tokens: int
    completion_tokens: int


@dataclass(slots=True)
class OpenedStream:
    """A stream whose first chunk has arrived; `close` stops the provider's response."""

    first_chunk: dict[str, Any]
    chunks: AsyncIterator[dict[str, Any]]
    close: Callable[[], Awaitable[None]]


class Transport(Protocol):
    name: str

    async def complete(self, model: str, params: dict[str, Any], timeout_s: float) -> Reply: ...

    async def stream(
        self, model: str, params: dict[str, Any], timeout_s: float
    ) -> OpenedStream: ...


def usage_tokens(usage: Any) -> tuple[int, int]:
    """(prompt, completion) tokens of a usage object or dict; zeros for what is missing."""
    if isinstance(usage, dict):
        return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
    return prompt, int(getattr(usage, "completion_tokens", 0) or 0)
