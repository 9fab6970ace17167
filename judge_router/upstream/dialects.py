"""Other APIs' requests and answers in chat-completion form and back (litellm's translators).

The Responses API and Anthropic's Messages API are answered by the same pipeline as chat
completions: the request is translated into chat form, routed and answered by any provider, and the
chat answer translated back. litellm owns these translations (it maintains them as both APIs move);
this module is the only place that calls them.
"""

from __future__ import annotations

import importlib
from typing import Any

from judge_router.upstream.litellm_runtime import load_litellm

# The translators take a model to tailor their output to; the tier's model is not known until the
# request is routed, and it is litellm's chat call that adapts to each provider. So a model that
# takes the whole OpenAI chat surface stands in.
NEUTRAL_MODEL = "gpt-4o"


class UntranslatableRequest(ValueError):
    """The body cannot be put in chat form; the message says why (a client error)."""


class UntranslatableAnswer(RuntimeError):
    """The model's answer cannot be put in the API's shape (say, a tool call's arguments cut off
    mid-JSON by max_tokens); the message says why."""


def _responses_config() -> Any:
    load_litellm()
    module = importlib.import_module(
        "litellm.responses.litellm_completion_transformation.transformation"
    )
    return module.LiteLLMCompletionResponsesConfig


def _messages_adapter() -> Any:
    load_litellm()
    module = importlib.import_module("litellm.llms.anthropic.messages.adapters.transformation")
    return module.LiteLLMAnthropicMessagesAdapter()


def responses_as_chat(body: dict[str, Any]) -> dict[str, Any]:
    """A Responses API body (without the router's fields) as chat-completion parameters."""
    options = {k: v for k, v in body.items() if k not in ("input", "model", "stream")}
    try:
        chat: dict[str, Any] = (
            _responses_config().transform_responses_api_request_to_chat_completion_request(
                model=NEUTRAL_MODEL,
                input=body["input"],
                responses_api_request=options,
                stream=False,
            )
        )
    except Exception as exc:  # litellm says what it could not read
        raise UntranslatableRequest(f"cannot read this Responses request: {exc}") from None
    return _without(chat, "model", "stream")


def chat_as_response(body: dict[str, Any], chat: dict[str, Any]) -> dict[str, Any]:
    """A chat completion as the Responses API's `response` object for the request `body`."""
    options = {k: v for k, v in body.items() if k not in ("input", "model", "stream")}
    try:
        response = _responses_config().transform_chat_completion_response_to_responses_api_response(
            request_input=body["input"],
            responses_api_request=options,
            chat_completion_response=chat,
        )
    except Exception as exc:
        raise UntranslatableAnswer(f"the answer has no Responses form: {exc}") from None
    dumped: dict[str, Any] = response.model_dump(exclude_none=True)
    return dumped


def messages_as_chat(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """An Anthropic Messages body as chat-completion parameters, and the tool names litellm had to
    shorten (to restore them in the answer)."""
    request = {**body, "model": NEUTRAL_MODEL}
    try:
        chat, tool_names = _messages_adapter().translate_anthropic_to_openai(request)
    except Exception as exc:
        raise UntranslatableRequest(f"cannot read this Messages request: {exc}") from None
    return _without(dict(chat), "model", "stream"), dict(tool_names or {})


def chat_as_message(chat: dict[str, Any], tool_names: dict[str, str]) -> dict[str, Any]:
    """A chat completion as an Anthropic `message` object."""
    try:
        model_response = load_litellm().ModelResponse(**chat)
        message = _messages_adapter().translate_openai_response_to_anthropic(
            model_response, tool_names or None
        )
    except Exception as exc:
        raise UntranslatableAnswer(f"the answer has no Messages form: {exc}") from None
    return dict(message)


def _without(params: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: value for key, value in params.items() if key not in keys}
