"""The config file's sections (judge, cache, ledger, server, routing, state) and model entries.

Every field's `description` is the text of the README's configuration table (a test compares them).
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from judge_router.types import Tier

ENV_REFERENCE_PREFIX = "os.environ/"
HEURISTIC_JUDGE = "heuristic"


def resolve_env_reference(value: Any) -> Any:
    """Turn "os.environ/NAME" into that variable's value (None when unset), as LiteLLM's proxy does."""
    if isinstance(value, str) and value.startswith(ENV_REFERENCE_PREFIX):
        return os.environ.get(value.removeprefix(ENV_REFERENCE_PREFIX))
    return value


class LitellmParams(BaseModel):
    """Per-model parameters handed to litellm, as in LiteLLM's proxy config; unknown keys pass through."""

    model_config = ConfigDict(extra="allow")

    api_base: str | None = None
    api_key: str | None = Field(default=None, repr=False)
    input_cost_per_token: float | None = Field(default=None, ge=0)
    output_cost_per_token: float | None = Field(default=None, ge=0)
    # How calls reach the model: `auto` (unset) sends an OpenAI-compatible model's plain requests
    # straight over HTTP (upstream/direct_transport.py) and the rest through litellm; `direct`
    # insists (a model that does not qualify stops start-up); `litellm` always uses litellm.
    transport: Literal["auto", "direct", "litellm"] | None = None

    @model_validator(mode="before")
    @classmethod
    def _remember_env_references(cls, data: Any) -> Any:
        # Keep the names of referenced variables so a missing one can be reported by name.
        if isinstance(data, dict):
            refs = {
                key: value.removeprefix(ENV_REFERENCE_PREFIX)
                for key, value in data.items()
                if isinstance(value, str) and value.startswith(ENV_REFERENCE_PREFIX)
            }
            data = {key: resolve_env_reference(value) for key, value in data.items()}
            if refs:
                data["env_references"] = refs
        return data

    env_references: dict[str, str] = Field(default_factory=dict, exclude=True)

    def call_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for litellm: everything set, minus our bookkeeping."""
        return {
            k: v
            for k, v in self.model_dump(exclude={"env_references", "transport"}).items()
            if v is not None
        }

    def missing_env(self) -> list[str]:
        """Environment variables this entry references that are not set."""
        return [
            name for key, name in self.env_references.items() if getattr(self, key, None) is None
        ]


class ModelEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1)
    # The name clients use for it (as in LiteLLM's model_list); the litellm name when absent.
    model_name: str | None = Field(default=None, min_length=1)
    litellm_params: LitellmParams = Field(default_factory=LitellmParams)

    @property
    def name(self) -> str:
        return self.model_name or self.model


class CircuitBreakerConfig(BaseModel):
    """The one place the breaker defaults live (judge and models alike)."""

    model_config = ConfigDict(extra="forbid")

    failures: int = Field(default=3, ge=1, description="consecutive failures that open it")
    cooldown_s: float = Field(default=30.0, gt=0, description="how long an open circuit skips")


class ApiKey(BaseModel):
    """A key clients send as `Authorization: Bearer KEY`; the ledger records its id, never the key."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    key: str = Field(repr=False)
    admin: bool = False

    @model_validator(mode="before")
    @classmethod
    def _resolve_key(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("key"), str):
            reference = data["key"]
            value = resolve_env_reference(reference)
            if value is None:
                name = reference.removeprefix(ENV_REFERENCE_PREFIX)
                raise ValueError(f"environment variable {name} (named by `key`) is not set")
            data = {**data, "key": value}
        return data

    @field_validator("key")
    @classmethod
    def _long_enough(cls, value: str) -> str:
        if len(value) < 16:
            raise ValueError("API keys must be at least 16 characters long")
        return value


class ServerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field(default="127.0.0.1", description="where `serve` listens (`--host` overrides)")
    port: int = Field(
        default=8080, ge=0, le=65535, description="the port `serve` listens on (`--port` overrides)"
    )
    max_body_bytes: int = Field(
        default=1_000_000, gt=0, description="larger request bodies get 413"
    )
    max_messages: int = Field(default=500, ge=1, description="more messages in one request get 400")
    api_keys: list[ApiKey] = Field(
        default_factory=list,
        description="service keys: `[{id: team-a, key: os.environ/JR_KEY_TEAM_A, admin: false}]`; "
        "clients send `Authorization: Bearer KEY`; at least 16 characters; the ledger records the "
        "`id`; none: no authentication (loopback addresses only)",
    )
    admin_paths: list[str] = Field(
        default_factory=lambda: ["/stats", "/metrics"],
        description="paths that need a key with `admin: true` (when keys are configured); "
        "paths under `/admin/` (`POST /admin/reload`) always do",
    )
    rate_limit_per_minute: int | None = Field(
        default=None,
        ge=1,
        description="requests a minute per key (per client address without keys); over it: 429 "
        "with `Retry-After`",
        json_schema_extra={"shown_default": "off"},
    )
    cors_allow_origins: list[str] = Field(
        default_factory=list,
        description="web origins allowed to call the service from a browser (CORS), e.g. "
        "`[https://app.example.com]`; none: no CORS headers are sent",
    )
    request_timeout_s: float = Field(
        default=300.0,
        gt=0,
        description="deadline for a whole request (a stream: until its first chunk); past it: 504",
    )
    shutdown_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="on SIGTERM, how long in-flight requests may take to finish",
    )

    @field_validator("api_keys")
    @classmethod
    def _unique(cls, keys: list[ApiKey]) -> list[ApiKey]:
        ids = [key.id for key in keys]
        if len(set(ids)) != len(ids):
            raise ValueError("API key ids must be unique")
        if len({key.key for key in keys}) != len(keys):
            raise ValueError("two API keys share the same secret")
        return keys


class RoutingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expected_output_tokens: int = Field(
        default=300, ge=0, description="output length assumed by `/route`'s cost estimates"
    )
    fallback: Literal["next_tier", "none"] = Field(
        default="next_tier",
        description="when every model of the tier fails: try the tiers above (`next_tier`) or "
        "stop (`none`)",
    )
    upstream_timeout_s: float = Field(
        default=120.0,
        gt=0,
        description="timeout of each proxied attempt (a model's `litellm_params.timeout` "
        "overrides it)",
    )
    circuit_breaker: CircuitBreakerConfig = Field(
        default_factory=CircuitBreakerConfig,
        description="a model failing this often in a row is skipped for the cooldown; then one "
        "request tries it (half-open) while the others still skip it; if every model of a request "
        "is skipped, they are all tried anyway",
    )
    no_text_tier: Tier = Field(
        default=Tier.HIGH,
        description="the tier of a request with no text to judge (only images, audio or files, or "
        "empty content) when `model` is `auto`",
    )
    strategy: Literal["direct", "cascade"] = Field(
        default="direct",
        description="how a decided request is answered: `direct` (the tier's models in order, "
        "first answer wins) or `cascade` (cheapest tier first, escalated when its answer fails "
        "`cascade.checks`); a rule or the request's `strategy` field may choose per request",
    )


def default_tiers() -> dict[Tier, list[ModelEntry]]:
    return {
        Tier.LOW: [
            ModelEntry(model="gpt-5-nano"),
            ModelEntry(model="gemini/gemini-2.5-flash-lite"),
        ],
        Tier.MEDIUM: [ModelEntry(model="gpt-5-mini"), ModelEntry(model="claude-haiku-4-5")],
        Tier.HIGH: [ModelEntry(model="gpt-5.1"), ModelEntry(model="gemini/gemini-2.5-pro")],
    }
