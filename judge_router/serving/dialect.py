"""The API faces the proxy speaks (Chat Completions, Responses, Anthropic Messages) as one seam.

Each face reads its own body into chat form, and turns the chat answer (or stream) back into its
own shape; routing, fallbacks, pricing and the ledger are the same for all of them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel

from judge_router.service.answering import Answer, OpenStream
from judge_router.serving.json_response import FastJSONResponse
from judge_router.types import Tier


@dataclass(slots=True)
class ChatForm:
    """A request of any face, in chat-completion form."""

    messages: list[dict[str, Any]]
    params: dict[str, Any]  # what goes to the provider, `messages` included
    model: str | None
    tier: Tier | None
    metadata: dict[str, Any] | None
    stream: bool
    original: Any = None  # what the face needs to answer in its own shape (its body, ...)
    strategy: str | None = None  # the body's `strategy`


class Dialect(Protocol):
    @property
    def endpoint(self) -> str:
        """The ledger's `endpoint` for requests of this face."""

    @property
    def body(self) -> type[BaseModel]:
        """The request body's model."""

    def chat_form(self, body: Any) -> ChatForm:
        """Raises UntranslatableRequest (a 400) for a body that has no chat form."""

    def answer(self, form: ChatForm, answer: Answer) -> dict[str, Any]: ...

    def events(self, form: ChatForm, stream: OpenStream) -> AsyncIterator[bytes]: ...


def named_event(name: str, payload: dict[str, Any]) -> bytes:
    """One server-sent event with an `event:` name, as the Responses and Messages APIs send."""
    return (
        b"event: " + name.encode() + b"\ndata: " + FastJSONResponse.render_json(payload) + b"\n\n"
    )


@dataclass(slots=True)
class Piece:
    """Something new in a chat stream: text, a tool call's start, or more of its arguments."""

    kind: str  # "text" | "tool_start" | "tool_arguments"
    text: str = ""
    index: int = 0  # the tool call's index
    call_id: str = ""
    name: str = ""


class StreamedChat:
    """Chat chunks gathered into what they add up to: the final chat completion, for faces whose
    stream ends with the whole answer (the Responses API's `response.completed`)."""

    def __init__(self, model: str):
        self.model = model
        self.id = ""
        self.text: list[str] = []
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None

    def add(self, chunk: dict[str, Any]) -> list[Piece]:
        self.id = self.id or str(chunk.get("id") or "")
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        pieces: list[Piece] = []
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue  # these faces have one answer; `n` > 1 is chat-only
            delta = choice.get("delta") or {}
            if isinstance(delta.get("content"), str) and delta["content"]:
                self.text.append(delta["content"])
                pieces.append(Piece("text", delta["content"]))
            for call in delta.get("tool_calls") or ():
                pieces.extend(self._tool_call(call))
            self.finish_reason = choice.get("finish_reason") or self.finish_reason
        return pieces

    def _tool_call(self, call: dict[str, Any]) -> list[Piece]:
        index = int(call.get("index") or 0)
        function = call.get("function") or {}
        pieces = []
        known = self.tool_calls.get(index)
        if known is None:
            call_id = str(call.get("id") or f"call_{index}")
            name = str(function.get("name") or "")
            known = self.tool_calls[index] = {"id": call_id, "name": name, "arguments": ""}
            pieces.append(Piece("tool_start", index=index, call_id=call_id, name=name))
        arguments = function.get("arguments")
        if arguments:
            known["arguments"] += arguments
            pieces.append(Piece("tool_arguments", arguments, index=index))
        return pieces

    def completion(self) -> dict[str, Any]:
        """The chat.completion the chunks add up to."""
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self.text) or None}
        if self.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call["id"],
                    "type": "function",
                    "function": {"name": call["name"], "arguments": call["arguments"]},
                }
                for _, call in sorted(self.tool_calls.items())
            ]
        return {
            "id": self.id or "chatcmpl-stream",
            "object": "chat.completion",
            "created": 0,
            "model": self.model,
            "choices": [
                {"index": 0, "message": message, "finish_reason": self.finish_reason or "stop"}
            ],
            "usage": self.usage or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        }


async def stream_pieces(stream: OpenStream, chat: StreamedChat) -> AsyncIterator[Piece]:
    """What each chunk of the stream adds, gathered into `chat` as it goes; raises StreamBroke
    if the provider breaks off."""
    async for chunk in stream.chunks:
        for piece in chat.add(chunk):
            yield piece
