"""POST /v1/responses: OpenAI's Responses API, routed like a chat completion.

The body is put in chat form by litellm's translator, answered by the tier's models, and the answer
translated back; a stream is turned into the Responses API's events as the chunks arrive.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

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
    UntranslatableAnswer,
    UntranslatableRequest,
    chat_as_response,
    responses_as_chat,
)

# Responses features that need state kept by the server, which a router does not keep.
STATEFUL = {
    "previous_response_id": "send the whole conversation in `input` instead",
    "conversation": "send the whole conversation in `input` instead",
    "prompt": "stored prompt templates live at OpenAI; send the prompt's text in `input`",
}


class ResponsesRequest(BaseModel):
    """A Responses API request plus the router's `tier`. Every parameter OpenAI documents is
    accepted (tests walk the installed SDK's list); provider settings are refused by name."""

    model_config = ConfigDict(extra="forbid", strict=True)  # no coercing, as ChatCompletionRequest

    model: str | None = Field(
        default=None, description='"auto", "auto:TIER" or a configured model name'
    )
    input: str | list[dict[str, Any]]
    stream: bool = False
    tier: Tier | None = None
    metadata: dict[str, Any] | None = Field(default=None, description="Stored in the ledger")
    strategy: StrategyName | None = Field(default=None, description=STRATEGY_HELP)
    instructions: str | None = None
    max_output_tokens: int | None = Field(default=None, ge=1)
    max_tool_calls: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_logprobs: int | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    text: dict[str, Any] | None = None
    reasoning: dict[str, Any] | None = None
    include: list[str] | None = None
    truncation: str | None = None
    service_tier: str | None = None
    store: bool | None = None  # accepted; the router keeps no responses to retrieve later
    stream_options: dict[str, Any] | None = None
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    prompt_cache_options: dict[str, Any] | None = None
    context_management: list[dict[str, Any]] | None = None
    moderation: dict[str, Any] | None = None
    background: bool | None = None
    previous_response_id: str | None = None
    conversation: str | dict[str, Any] | None = None
    prompt: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _no_server_state(self) -> ResponsesRequest:
        for field, instead in STATEFUL.items():
            if getattr(self, field) is not None:
                raise ValueError(f"`{field}` needs state the router does not keep: {instead}")
        if self.background:
            raise ValueError("`background: true` is not supported: the router answers in-line")
        return self

    def options(self) -> dict[str, Any]:
        """What the translator and the answer's echo see: the OpenAI parameters that were set."""
        return self.model_dump(
            exclude_none=True,
            exclude={"tier", "metadata", "strategy", "stream_options", "background"},
        )


class ResponsesDialect:
    endpoint = "responses"
    body = ResponsesRequest

    def chat_form(self, body: ResponsesRequest) -> ChatForm:
        options = body.options()
        params = responses_as_chat(options)
        if body.stream:  # the final response.completed event carries the usage
            params["stream_options"] = {"include_usage": True}
        messages = list(params["messages"])
        if not messages:  # the translator skips items it cannot read
            raise UntranslatableRequest("nothing in `input` could be read as a message")
        return ChatForm(
            messages,
            params,
            body.model,
            body.tier,
            body.metadata,
            body.stream,
            options,
            body.strategy,
        )

    def answer(self, form: ChatForm, answer: Answer) -> dict[str, Any]:
        response = chat_as_response(form.original, answer.response)
        response["id"] = f"resp_{answer.decision.request_id.removeprefix('jr-')}"  # as streamed
        response["router"] = router_info(
            answer.decision, answer.model, answer.attempts, answer.usage, answer.trail
        )
        return response

    def events(self, form: ChatForm, stream: OpenStream) -> AsyncIterator[bytes]:
        return ResponseEvents(form, stream).run()


class ResponseEvents:
    """Chat chunks as the Responses API's stream: created, the output items as they grow, and
    `response.completed` with the whole response (and the `router` object with the costs)."""

    def __init__(self, form: ChatForm, stream: OpenStream):
        self.form = form
        self.stream = stream
        self.chat = StreamedChat(stream.model)
        self.response_id = f"resp_{stream.decision.request_id.removeprefix('jr-')}"
        self.message_id = f"msg_{stream.decision.request_id.removeprefix('jr-')}"
        self._numbers: Iterator[int] = itertools.count()
        self._message_index: int | None = None
        self._tool_index: dict[int, int] = {}  # chat tool-call index -> output index
        self._outputs = 0

    def event(self, kind: str, **data: Any) -> bytes:
        return named_event(kind, {"type": kind, "sequence_number": next(self._numbers), **data})

    async def run(self) -> AsyncIterator[bytes]:
        skeleton = {
            "id": self.response_id,
            "object": "response",
            "created_at": int(time.time()),
            "model": self.stream.model,
            "status": "in_progress",
            "output": [],
        }
        yield self.event("response.created", response=skeleton)
        yield self.event("response.in_progress", response=skeleton)
        try:
            async for piece in stream_pieces(self.stream, self.chat):
                for event in self._piece(piece):
                    yield event
        except StreamBroke as broke:
            yield self.event("error", code="upstream_error", message=str(broke), param=None)
            return
        try:
            closing = self._closing()
        except UntranslatableAnswer as exc:
            yield self.event("error", code="upstream_error", message=str(exc), param=None)
            return
        for event in closing:
            yield event

    def _piece(self, piece: Piece) -> list[bytes]:
        if piece.kind == "text":
            events = [] if self._message_index is not None else self._open_message()
            return [*events, self.event("response.output_text.delta", **self._text_at(),
                                        delta=piece.text, logprobs=[])]  # fmt: skip
        if piece.kind == "tool_start":
            index = self._tool_index[piece.index] = self._next_output()
            item = self._tool_item(piece.index, "in_progress")
            return [self.event("response.output_item.added", output_index=index, item=item)]
        output_index = self._tool_index[piece.index]
        return [
            self.event(
                "response.function_call_arguments.delta",
                item_id=_tool_item_id(self.chat.tool_calls[piece.index]["id"]),
                output_index=output_index,
                delta=piece.text,
            )
        ]

    def _next_output(self) -> int:
        index, self._outputs = self._outputs, self._outputs + 1
        return index

    def _text_at(self) -> dict[str, Any]:
        return {"item_id": self.message_id, "output_index": self._message_index, "content_index": 0}

    def _open_message(self) -> list[bytes]:
        self._message_index = self._next_output()
        item = {"id": self.message_id, "type": "message", "status": "in_progress",
                "role": "assistant", "content": []}  # fmt: skip
        part = {"type": "output_text", "text": "", "annotations": []}
        return [
            self.event("response.output_item.added", output_index=self._message_index, item=item),
            self.event("response.content_part.added", **self._text_at(), part=part),
        ]

    def _tool_item(self, index: int, status: str) -> dict[str, Any]:
        call = self.chat.tool_calls[index]
        return {"id": _tool_item_id(call["id"]), "type": "function_call", "status": status,
                "call_id": call["id"], "name": call["name"],
                "arguments": call["arguments"] if status == "completed" else ""}  # fmt: skip

    def _closing(self) -> list[bytes]:
        events = []
        if self._message_index is not None:
            text = "".join(self.chat.text)
            part = {"type": "output_text", "text": text, "annotations": []}
            item = {"id": self.message_id, "type": "message", "status": "completed",
                    "role": "assistant", "content": [part]}  # fmt: skip
            events += [
                self.event("response.output_text.done", **self._text_at(), text=text, logprobs=[]),
                self.event("response.content_part.done", **self._text_at(), part=part),
                self.event(
                    "response.output_item.done", output_index=self._message_index, item=item
                ),
            ]
        for chat_index, output_index in self._tool_index.items():
            item = self._tool_item(chat_index, "completed")
            events += [
                self.event(
                    "response.function_call_arguments.done",
                    item_id=item["id"],
                    output_index=output_index,
                    arguments=item["arguments"],
                ),  # fmt: skip
                self.event("response.output_item.done", output_index=output_index, item=item),
            ]
        events.append(self.event("response.completed", response=self._final()))
        return events

    def _final(self) -> dict[str, Any]:
        response = chat_as_response(self.form.original, self.chat.completion())
        response["id"], response["model"] = self.response_id, self.stream.model
        for item in response.get("output", []):  # the ids the stream already announced
            if item.get("type") == "message":
                item["id"] = self.message_id
            elif item.get("type") == "function_call" and item.get("call_id"):
                item["id"] = _tool_item_id(item["call_id"])
        stream = self.stream
        response["router"] = router_info(
            stream.decision, stream.model, stream.attempts, stream.usage, stream.trail
        )
        return response


def _tool_item_id(call_id: str) -> str:
    return f"fc_{call_id}"
