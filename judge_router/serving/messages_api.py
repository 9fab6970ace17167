"""POST /v1/messages: Anthropic's Messages API, routed like a chat completion to any provider.

litellm translates the body to chat form and the answer back; a stream becomes Anthropic's events
(message_start, content blocks, message_delta, message_stop) as the chunks arrive.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from judge_router.service.answering import Answer, OpenStream, StreamBroke
from judge_router.serving.answers import router_info
from judge_router.serving.dialect import (
    ChatForm,
    Piece,
    StreamedChat,
    named_event,
    stream_pieces,
)
from judge_router.types import STRATEGY_HELP, StrategyName, Tier
from judge_router.upstream.dialects import (
    UntranslatableRequest,
    chat_as_message,
    messages_as_chat,
)

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


class MessagesRequest(BaseModel):
    """An Anthropic Messages request plus the router's `tier`; `model` may be "auto",
    "auto:TIER" or a configured model name, from any provider."""

    model_config = ConfigDict(extra="forbid", strict=True)  # no coercing, as ChatCompletionRequest

    model: str = Field(description='"auto", "auto:TIER" or a configured model name')
    max_tokens: int = Field(ge=1)
    messages: list[dict[str, Any]] = Field(min_length=1)
    system: str | list[dict[str, Any]] | None = None
    stream: bool = False
    tier: Tier | None = None
    metadata: dict[str, Any] | None = Field(default=None, description="Stored in the ledger")
    strategy: StrategyName | None = Field(default=None, description=STRATEGY_HELP)
    stop_sequences: list[str] | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: dict[str, Any] | None = None
    thinking: dict[str, Any] | None = None
    service_tier: str | None = None
    cache_control: dict[str, Any] | None = None
    container: str | dict[str, Any] | None = None
    inference_geo: str | None = None
    output_config: dict[str, Any] | None = None
    user_profile_id: str | None = None


class MessagesDialect:
    endpoint = "messages"
    body = MessagesRequest

    def chat_form(self, body: MessagesRequest) -> ChatForm:
        anthropic = body.model_dump(
            exclude_none=True, exclude={"tier", "metadata", "strategy", "stream"}
        )
        params, tool_names = messages_as_chat(anthropic)
        if not any(m.get("role") != "system" for m in params.get("messages", [])):
            # The translator skips blocks it cannot read (an unknown role, a non-list content).
            raise UntranslatableRequest("nothing in `messages` could be read as a message")
        if body.stream:  # message_delta carries the output tokens
            params["stream_options"] = {"include_usage": True}
        return ChatForm(
            list(params["messages"]),
            params,
            body.model,
            body.tier,
            body.metadata,
            body.stream,
            tool_names,
            body.strategy,
        )

    def answer(self, form: ChatForm, answer: Answer) -> dict[str, Any]:
        message = chat_as_message(answer.response, form.original)
        message["router"] = router_info(
            answer.decision, answer.model, answer.attempts, answer.usage, answer.trail
        )
        return message

    def events(self, form: ChatForm, stream: OpenStream) -> AsyncIterator[bytes]:
        return MessageEvents(stream, form.original).run()


class MessageEvents:
    """Chat chunks as Anthropic's stream: text as it arrives, in one block per run; each tool call
    as one whole block once the stream has ended.

    A chat stream may interleave the arguments of several tool calls, which Anthropic's blocks
    (one open at a time) cannot; so tool calls are sent whole, with the names litellm had to
    shorten restored.
    """

    def __init__(self, stream: OpenStream, tool_names: dict[str, str]):
        self.stream = stream
        self.tool_names = tool_names
        self.chat = StreamedChat(stream.model)
        self._text_open = False
        self._blocks = 0

    async def run(self) -> AsyncIterator[bytes]:
        decision = self.stream.decision
        message: dict[str, Any] = {
            "id": f"msg_{decision.request_id.removeprefix('jr-')}",
            "type": "message",
            "role": "assistant",
            "model": self.stream.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            # The provider reports usage at the end; until then, our own count of the prompt.
            "usage": {"input_tokens": decision.prompt_tokens, "output_tokens": 0},
        }
        yield named_event("message_start", {"type": "message_start", "message": message})
        try:
            async for piece in stream_pieces(self.stream, self.chat):
                for event in self._piece(piece):
                    yield event
        except StreamBroke as broke:
            error = {"type": "api_error", "message": str(broke)}
            yield named_event("error", {"type": "error", "error": error})
            return
        for event in self._close_text():
            yield event
        for event in self._tool_blocks():
            yield event
        yield named_event("message_delta", self._delta())
        router = router_info(
            decision, self.stream.model, self.stream.attempts, self.stream.usage, self.stream.trail
        )
        yield named_event("message_stop", {"type": "message_stop", "router": router})

    def _piece(self, piece: Piece) -> list[bytes]:
        if piece.kind != "text":
            return []  # tool calls are gathered by StreamedChat and sent whole at the end
        events = []
        if not self._text_open:
            self._text_open = True
            events.append(self._start({"type": "text", "text": ""}))
        delta = {"type": "text_delta", "text": piece.text}
        return [*events, self._block_event("content_block_delta", delta=delta)]

    def _start(self, content: dict[str, Any]) -> bytes:
        self._blocks += 1
        return self._block_event("content_block_start", content_block=content)

    def _close_text(self) -> list[bytes]:
        if not self._text_open:
            return []
        self._text_open = False
        return [self._block_event("content_block_stop")]

    def _tool_blocks(self) -> list[bytes]:
        events = []
        for _, call in sorted(self.chat.tool_calls.items()):
            name = self.tool_names.get(call["name"], call["name"])
            events.append(self._start({"type": "tool_use", "id": call["id"], "name": name,
                                       "input": {}}))  # fmt: skip
            delta = {"type": "input_json_delta", "partial_json": call["arguments"]}
            events.append(self._block_event("content_block_delta", delta=delta))
            events.append(self._block_event("content_block_stop"))
        return events

    def _block_event(self, kind: str, **data: Any) -> bytes:
        return named_event(kind, {"type": kind, "index": self._blocks - 1, **data})

    def _delta(self) -> dict[str, Any]:
        usage = self.chat.usage or {}
        priced = self.stream.usage
        output = usage.get("completion_tokens", priced.completion_tokens if priced else 0)
        prompt = usage.get("prompt_tokens", priced.prompt_tokens if priced else 0)
        stop = STOP_REASONS.get(self.chat.finish_reason or "stop", "end_turn")
        return {
            "type": "message_delta",
            "delta": {"stop_reason": stop, "stop_sequence": None},
            "usage": {"input_tokens": prompt, "output_tokens": output},
        }
