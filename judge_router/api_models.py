"""Request bodies the HTTP API accepts (OpenAI chat shapes plus the router's own fields)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from judge_router.tiers import Tier

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


class RouteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    messages: list[ChatMessage] | None = Field(default=None, description="OpenAI chat messages")
    prompt: str | None = Field(
        default=None, description="A single user prompt, instead of messages"
    )
    tier: Tier | None = Field(default=None, description="Force this tier; the judge is skipped")
    metadata: dict[str, Any] | None = Field(default=None, description="Stored with the decision")

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
