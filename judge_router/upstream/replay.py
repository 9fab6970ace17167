"""A whole chat completion as the chunks of a stream that adds up to it: a cascade's checked answer
for a client that asked for `stream: true`, and a provider that answered a stream request whole.

The chunks are the ones a provider would have sent (a role and content delta per choice, tool
calls with their indexes, a finish chunk, then a usage chunk).
"""

from __future__ import annotations

from typing import Any


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
