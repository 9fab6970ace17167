"""POST /v1/chat/completions and /complete: OpenAI's Chat Completions, the proxy's own form."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from judge_router.service.answering import Answer, OpenStream
from judge_router.serving.answers import completion_body, sse_events
from judge_router.serving.bodies import ChatCompletionRequest
from judge_router.serving.dialect import ChatForm

TRAILER_OPTION = "include_router"  # stream_options.include_router: true asks for the trailer


class ChatDialect:
    body = ChatCompletionRequest

    def __init__(self, endpoint: str):
        self.endpoint = endpoint

    def chat_form(self, body: ChatCompletionRequest) -> ChatForm:
        messages = body.message_dicts()
        params = body.provider_params(messages)
        # The router's own stream option (the `event: router` trailer) is not the provider's.
        options = params.get("stream_options")
        trailer = bool(options and options.get(TRAILER_OPTION))
        if options and TRAILER_OPTION in options:
            params["stream_options"] = {k: v for k, v in options.items() if k != TRAILER_OPTION}
        return ChatForm(
            messages,
            params,
            body.model,
            body.tier,
            body.metadata,
            body.stream,
            trailer,
            body.strategy,
        )

    def answer(self, form: ChatForm, answer: Answer) -> dict[str, Any]:
        return completion_body(answer)

    def events(self, form: ChatForm, stream: OpenStream) -> AsyncIterator[bytes]:
        return sse_events(stream, trailer=bool(form.original))
