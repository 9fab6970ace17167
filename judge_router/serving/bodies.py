"""Request bodies the HTTP API accepts (OpenAI chat shapes plus the router's own fields)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from judge_router.types import STRATEGY_HELP, StrategyName, Tier

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    """An OpenAI chat message; fields other than role and content pass through to the provider."""

    model_config = ConfigDict(extra="allow")

    role: Role
    content: str | list[ContentPart] | None = None

    @model_validator(mode="after")
    def _content_where_required(self) -> ChatMessage:
        # As in OpenAI's API: only assistant messages (which may carry tool calls) may omit it.
        if self.content is None and self.role not in ("assistant", "function"):
            raise ValueError(f"`content` is required for a {self.role} message")
        return self


class RouteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    messages: list[ChatMessage] | None = Field(default=None, description="OpenAI chat messages")
    prompt: str | None = Field(
        default=None, description="A single user prompt, instead of messages"
    )
    tier: Tier | None = Field(default=None, description="Force this tier; the judge is skipped")
    metadata: dict[str, Any] | None = Field(default=None, description="Stored with the decision")
    strategy: StrategyName | None = Field(default=None, description=STRATEGY_HELP)

    @model_validator(mode="after")
    def _one_input(self) -> RouteRequest:
        if self.messages is None and self.prompt is None:
            raise ValueError("send `messages` (OpenAI chat format) or `prompt` (a string)")
        if self.messages is not None and self.prompt is not None:
            raise ValueError("send either `messages` or `prompt`, not both")
        return self

    def message_dicts(self) -> list[dict[str, Any]]:
        if self.messages is None:
            return [{"role": "user", "content": self.prompt}]
        return [message.model_dump(exclude_none=True) for message in self.messages]


class ChatCompletionRequest(BaseModel):
    """An OpenAI chat completion request plus the router's `tier` and `metadata`.

    Every parameter OpenAI documents is accepted and handed to litellm, which drops what a model
    does not take (listed in `router.dropped_params`); tests/test_drop_in.py walks the installed
    `openai` package's parameters so a new one fails the suite until it is listed here. Anything
    else (say `api_base` or `api_key`) could redirect the service's provider credentials, so it
    is refused with a 400 naming it. Values are checked by the provider, not here, except where
    a bad one would hurt the router itself (`n`, token limits).
    """

    # strict: `stream: 0` or `"n": "2"` is a client error, as at OpenAI, not something to coerce.
    model_config = ConfigDict(extra="forbid", strict=True)

    model: str | None = Field(
        default=None,
        description='"auto" (or absent) routes by the judge; "auto:low|medium|high" forces a tier; '
        "a configured model name passes through unrouted",
    )
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    tier: Tier | None = None
    metadata: dict[str, Any] | None = Field(
        default=None, description="Stored with the decision in the ledger (not sent on)"
    )
    strategy: StrategyName | None = Field(default=None, description=STRATEGY_HELP)
    temperature: float | None = None
    top_p: float | None = None
    n: int | None = Field(default=None, ge=1, le=16)
    stop: str | list[str] | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    user: str | None = None
    safety_identifier: str | None = None
    seed: int | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    functions: list[dict[str, Any]] | None = None  # deprecated by OpenAI, still sent by old SDKs
    function_call: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    stream_options: dict[str, Any] | None = None
    reasoning_effort: str | None = None
    verbosity: str | None = None
    service_tier: str | None = None
    store: bool | None = None
    modalities: list[str] | None = None
    audio: dict[str, Any] | None = None
    prediction: dict[str, Any] | None = None
    web_search_options: dict[str, Any] | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    prompt_cache_options: dict[str, Any] | None = None
    moderation: dict[str, Any] | None = None

    def message_dicts(self) -> list[dict[str, Any]]:
        # `content` stays even when null: providers (and litellm) expect the key on every message.
        dicts = []
        for message in self.messages:
            data = message.model_dump(exclude_none=True)
            data.setdefault("content", None)
            dicts.append(data)
        return dicts

    def provider_params(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """What goes to the provider: the OpenAI parameters that were set, and `messages`."""
        params = self.model_dump(
            exclude_none=True,
            exclude={"model", "tier", "metadata", "stream", "messages", "strategy"},
        )
        params["messages"] = messages
        return params
