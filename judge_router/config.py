"""Load and validate the YAML config (plus JUDGE_ROUTER_* environment overrides) into one Settings."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from judge_router.types import TIER_ORDER, Tier

CONFIG_ENV_VAR = "JUDGE_ROUTER_CONFIG"
ENV_REFERENCE_PREFIX = "os.environ/"
HEURISTIC_JUDGE = "heuristic"


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the key and how to fix it."""


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
            k: v for k, v in self.model_dump(exclude={"env_references"}).items() if v is not None
        }

    def missing_env(self) -> list[str]:
        """Environment variables this entry references that are not set."""
        return [
            name for key, name in self.env_references.items() if getattr(self, key, None) is None
        ]


class ModelEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1)
    litellm_params: LitellmParams = Field(default_factory=LitellmParams)


class CircuitBreakerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    failures: int = Field(default=3, ge=1)  # consecutive failures that open the circuit
    cooldown_s: float = Field(default=30.0, gt=0)  # how long an open circuit skips the model


class JudgeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(default="gpt-5-nano", min_length=1)
    litellm_params: LitellmParams = Field(default_factory=LitellmParams)
    timeout_s: float = Field(default=5.0, gt=0)
    max_input_tokens: int = Field(default=1000, ge=50)
    max_output_tokens: int = Field(default=300, ge=16)
    on_failure: Literal["heuristic", "low", "medium", "high"] = "heuristic"
    # File name in prompts/ without extension; the name carries the version and is part of the cache key.
    prompt: str = Field(default="judge-v1", pattern=r"^[A-Za-z0-9_.-]+$")
    # Where prompt files live; None means the prompts/ shipped with judge-router.
    prompt_dir: Path | None = None
    # After this many failures in a row the LLM judge is skipped (heuristic answers) for a while.
    circuit_breaker: CircuitBreakerConfig = Field(default_factory=CircuitBreakerConfig)

    @property
    def is_heuristic(self) -> bool:
        return self.model == HEURISTIC_JUDGE

    @property
    def entry(self) -> ModelEntry:
        return ModelEntry(model=self.model, litellm_params=self.litellm_params)


class CacheConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    dir: Path = Field(default=Path("~/.judge-router/cache"), validate_default=True)
    ttl_s: int = Field(default=604_800, gt=0)
    # Verdicts and prompt readings kept in process memory in front of the disk (0: none).
    memory_entries: int = Field(default=4096, ge=0)

    @field_validator("dir", mode="after")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()


class LedgerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: Path = Field(default=Path("~/.judge-router/ledger.sqlite"), validate_default=True)
    # Prompt text is never stored unless this is true (then: the conversation's text, per row).
    store_prompts: bool = False
    # Rows kept in memory while the ledger cannot be written, flushed when it can be again.
    max_pending_rows: int = Field(default=10_000, ge=0)

    @field_validator("path")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()


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

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    max_body_bytes: int = Field(default=1_000_000, gt=0)
    max_messages: int = Field(default=500, ge=1)
    # Service keys; empty means no authentication (only allowed on a loopback address).
    api_keys: list[ApiKey] = Field(default_factory=list)
    # Paths that need a key with `admin: true` (when keys are configured).
    admin_paths: list[str] = Field(default_factory=lambda: ["/stats", "/metrics"])
    # Requests per minute per key (per client address without keys); None turns the limit off.
    rate_limit_per_minute: int | None = Field(default=None, ge=1)
    # Deadline for a whole request (a stream: until its first byte); past it, 504.
    request_timeout_s: float = Field(default=300.0, gt=0)
    # On SIGTERM, how long in-flight requests may take to finish.
    shutdown_timeout_s: float = Field(default=30.0, gt=0)

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

    # Output length assumed when /route estimates what a request will cost before it is made.
    expected_output_tokens: int = Field(default=300, ge=0)
    # When every model of the tier fails: try the tiers above (next_tier) or give up (none).
    fallback: Literal["next_tier", "none"] = "next_tier"
    # Per-attempt timeout for proxied calls (a model's litellm_params.timeout overrides it).
    upstream_timeout_s: float = Field(default=120.0, gt=0)
    # A model that fails this often in a row is skipped for a while (like LiteLLM's cooldowns).
    circuit_breaker: CircuitBreakerConfig = Field(default_factory=CircuitBreakerConfig)


def _default_tiers() -> dict[Tier, list[ModelEntry]]:
    return {
        Tier.LOW: [
            ModelEntry(model="gpt-5-nano"),
            ModelEntry(model="gemini/gemini-2.5-flash-lite"),
        ],
        Tier.MEDIUM: [ModelEntry(model="gpt-5-mini"), ModelEntry(model="claude-haiku-4-5")],
        Tier.HIGH: [ModelEntry(model="gpt-5.1"), ModelEntry(model="gemini/gemini-2.5-pro")],
    }


class Settings(BaseSettings):
    """Everything the service needs, validated once at startup and handed down."""

    model_config = SettingsConfigDict(
        env_prefix="JUDGE_ROUTER_", env_nested_delimiter="__", extra="forbid"
    )

    judge: JudgeConfig = Field(default_factory=JudgeConfig)
    tiers: dict[Tier, list[ModelEntry]] = Field(default_factory=_default_tiers)
    baseline: str = "gpt-5.1"
    baseline_litellm_params: LitellmParams = Field(default_factory=LitellmParams)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    ledger: LedgerConfig = Field(default_factory=LedgerConfig)
    server: ServerConfig = Field(default_factory=ServerConfig)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment overrides the YAML file (passed as init values), as deployments expect.
        return (env_settings, init_settings)

    @field_validator("tiers")
    @classmethod
    def _every_tier_has_models(
        cls, tiers: dict[Tier, list[ModelEntry]]
    ) -> dict[Tier, list[ModelEntry]]:
        missing = [tier.value for tier in TIER_ORDER if not tiers.get(tier)]
        if missing:
            raise ValueError(f"every tier needs at least one model; missing or empty: {missing}")
        return {tier: tiers[tier] for tier in TIER_ORDER}

    def model_entry(self, model: str) -> ModelEntry:
        """The config entry for a model name (tiers, judge or baseline); a bare entry if unlisted."""
        for entries in self.tiers.values():
            for entry in entries:
                if entry.model == model:
                    return entry
        if model == self.judge.model:
            return self.judge.entry
        if model == self.baseline:
            return ModelEntry(model=model, litellm_params=self.baseline_litellm_params)
        return ModelEntry(model=model)

    def secrets(self) -> list[str]:
        """Every credential in the config, so that logs and answers can be scrubbed of them."""
        params = [entry.litellm_params for entry in self.priced_models()]
        found = [p.api_key for p in params if p.api_key]
        found += [key.key for key in self.server.api_keys]
        return sorted({s for s in found if len(s) >= 6}, key=len, reverse=True)

    def priced_models(self) -> list[ModelEntry]:
        """Every model whose price the service needs: tier models, the baseline and the LLM judge."""
        entries = [entry for tier_entries in self.tiers.values() for entry in tier_entries]
        entries.append(self.model_entry(self.baseline))
        if not self.judge.is_heuristic:
            entries.append(self.judge.entry)
        return entries


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        lines.append(f"  {key}: {item['msg']}")
    return "\n".join(lines)


def load_settings(path: str | Path | None = None) -> Settings:
    """Read the YAML config at `path` (or $JUDGE_ROUTER_CONFIG; built-in defaults if neither)."""
    chosen = path or os.environ.get(CONFIG_ENV_VAR)
    data: dict[str, Any] = {}
    source = "built-in defaults"
    if chosen:
        config_path = Path(chosen).expanduser()
        source = str(config_path)
        try:
            loaded = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {config_path}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {config_path} is not valid YAML: {exc}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {config_path} must hold a mapping at the top level")
        data = loaded
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(f"invalid configuration ({source}):\n{_describe(exc)}") from None
