"""Load and validate the YAML config (plus JUDGE_ROUTER_* environment overrides) into one Settings."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from judge_router.config_judge import JudgeConfig
from judge_router.config_models import expand_model_names
from judge_router.config_policy import Budget, RolloutConfig, Rule, check_budgets, check_rules
from judge_router.config_quality import (
    CascadeConfig,
    GraderConfig,
    QualityConfig,
    ShadowTest,
    check_shadow_tests,
    used_graders,
)
from judge_router.config_sections import (
    ApiKey,
    CircuitBreakerConfig,
    LitellmParams,
    ModelEntry,
    RoutingConfig,
    ServerConfig,
    default_tiers,
)
from judge_router.config_stores import (
    CacheConfig,
    LedgerConfig,
    StateConfig,
    resolve_stores,
    url_password,
)
from judge_router.types import TIER_ORDER, Tier
from judge_router.validation import describe_errors

__all__ = [
    "ApiKey",
    "CacheConfig",
    "CascadeConfig",
    "CircuitBreakerConfig",
    "ConfigError",
    "GraderConfig",
    "JudgeConfig",
    "LedgerConfig",
    "LitellmParams",
    "ModelEntry",
    "QualityConfig",
    "RoutingConfig",
    "ServerConfig",
    "Settings",
    "ShadowTest",
    "StateConfig",
    "load_settings",
]

CONFIG_ENV_VAR = "JUDGE_ROUTER_CONFIG"
ENV_PREFIX = "JUDGE_ROUTER_"
ENV_NESTING = "__"


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the key and how to fix it."""


class Settings(BaseSettings):
    """Everything the service needs, validated once at startup and handed down."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter=ENV_NESTING, extra="forbid"
    )

    judge: JudgeConfig = Field(default_factory=JudgeConfig)
    model_list: list[dict[str, Any]] = Field(
        default_factory=list,
        description="as in LiteLLM's proxy config: `[{model_name: NAME, litellm_params: {model: "
        "..., api_key: ...}}]`; tiers, `judge.model` and `baseline` may then name a `model_name`",
        json_schema_extra={"shown_default": "`[]`"},
    )
    tiers: dict[Tier, list[ModelEntry]] = Field(
        default_factory=default_tiers,
        description="`low`, `medium` and `high`: each a list of model entries, first choice first",
        json_schema_extra={"shown_default": "see example"},
    )
    baseline: str = Field(
        default="gpt-5.1",
        description='the model "no routing" would have used; savings are measured against it',
    )
    baseline_litellm_params: LitellmParams = Field(
        default_factory=LitellmParams,
        description="prices for a baseline model that is in no tier and not in litellm's map",
    )
    rules: list[Rule] = Field(
        default_factory=list,
        description="routing rules tried in order before the judge; the first that matches "
        "decides (`tier`, `model`) or bounds the judge's verdict (`min_tier`, `max_tier`): see "
        "docs/policy.md",
        json_schema_extra={"shown_default": "`[]`"},
    )
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    budgets: list[Budget] = Field(
        default_factory=list,
        description="monthly USD limits per scope (everyone, one `metadata` value, one service "
        "key), counted from the ledger: past `soft_pct` the verdict is capped (`over_soft`), past "
        "`usd_per_month` capped or refused with 429 (`over_hard`): see docs/policy.md",
        json_schema_extra={"shown_default": "`[]`"},
    )
    grader: GraderConfig = Field(default_factory=GraderConfig)
    cascade: CascadeConfig = Field(default_factory=CascadeConfig)
    shadow: list[ShadowTest] = Field(
        default_factory=list,
        description="shadow tests: `[{candidate: {model, litellm_params}, share_pct, tiers, grade, "
        "max_usd_per_day, max_concurrent, max_queued}]`; a share of requests is also sent to the "
        "candidate in the background, after the answer, and both answers graded: see "
        "docs/quality.md",
        json_schema_extra={"shown_default": "`[]`"},
    )
    quality: QualityConfig = Field(default_factory=QualityConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    ledger: LedgerConfig = Field(default_factory=LedgerConfig)
    server: ServerConfig = Field(default_factory=ServerConfig)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    state: StateConfig = Field(default_factory=StateConfig)

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

    @model_validator(mode="before")
    @classmethod
    def _expand_model_names(cls, data: Any) -> Any:
        return expand_model_names(data)

    @field_validator("tiers")
    @classmethod
    def _every_tier_has_models(
        cls, tiers: dict[Tier, list[ModelEntry]]
    ) -> dict[Tier, list[ModelEntry]]:
        missing = [tier.value for tier in TIER_ORDER if not tiers.get(tier)]
        if missing:
            raise ValueError(f"every tier needs at least one model; missing or empty: {missing}")
        ordered = {tier: tiers[tier] for tier in TIER_ORDER}
        _check_client_names(ordered)
        return ordered

    @model_validator(mode="after")
    def _policy_names_configured_things(self) -> Settings:
        accepted = {name for e in self.tiers.values() for x in e for name in (x.model, x.name)}
        check_rules(self.rules, accepted)
        check_budgets(self.budgets, {key.id for key in self.server.api_keys})
        check_shadow_tests(self.shadow)
        resolve_stores(self.cache, self.ledger, self.state)
        return self

    def quality_models(self) -> list[ModelEntry]:
        """The graders and shadow candidates: called and priced like the judge."""
        entries = [
            g.entry for g in used_graders(self.grader, self.cascade, self.shadow, self.quality)
        ]
        entries += [test.candidate for test in self.shadow]
        return entries

    def model_entry(self, model: str) -> ModelEntry:
        """The config entry for a model name (tiers, judge or baseline); a bare entry if unlisted."""
        for entries in self.tiers.values():
            for entry in entries:
                if model in (entry.model, entry.model_name):
                    return entry
        if model == self.judge.model:
            return self.judge.entry
        for entry in self.quality_models():
            if model in (entry.model, entry.model_name):
                return entry
        if model == self.baseline:
            return ModelEntry(model=model, litellm_params=self.baseline_litellm_params)
        return ModelEntry(model=model)

    def secrets(self) -> list[str]:
        """Every credential in the config, so that logs and answers can be scrubbed of them."""
        params = [entry.litellm_params for entry in self.priced_models()]
        found = [p.api_key for p in params if p.api_key]
        found += [key.key for key in self.server.api_keys]
        stores = (self.cache.redis_password, self.state.redis_password)
        urls = (self.cache.redis_url, self.state.redis_url, self.ledger.url)
        found += [s for s in (*stores, *map(url_password, urls)) if s]
        return sorted({s for s in found if len(s) >= 6}, key=len, reverse=True)

    def called_models(self) -> list[ModelEntry]:
        """Every model the service may call: tier models, the LLM judge, and the baseline when the
        rollout holds traffic back on it (otherwise it is only priced)."""
        entries = [entry for tier_entries in self.tiers.values() for entry in tier_entries]
        if not self.judge.is_heuristic:
            entries.append(self.judge.entry)
        entries += self.quality_models()
        listed = {entry.model for entry in entries}
        if not self.rollout.everything_routed and self.baseline not in listed:
            entries.append(self.model_entry(self.baseline))
        return entries

    def priced_models(self) -> list[ModelEntry]:
        """Every model whose price the service needs: tier models, the baseline and the LLM judge."""
        entries = [entry for tier_entries in self.tiers.values() for entry in tier_entries]
        entries.append(self.model_entry(self.baseline))
        if not self.judge.is_heuristic:
            entries.append(self.judge.entry)
        return entries + self.quality_models()


def _check_client_names(tiers: dict[Tier, list[ModelEntry]]) -> None:
    """A client's `model` must name one model: aliases are unique and never look like `auto`."""
    owners: dict[str, str] = {}
    settings_of: dict[str, tuple[str, LitellmParams]] = {}
    for tier, entries in tiers.items():
        for index, entry in enumerate(entries):
            where = f"{tier.value}[{index}]"
            # Calls, prices and breakers are keyed by the litellm model: one model, one deployment.
            first = settings_of.setdefault(entry.model, (where, entry.litellm_params))
            if first[1] != entry.litellm_params:
                raise ValueError(
                    f"{where}: {entry.model!r} is also at {first[0]} with other litellm_params; "
                    "one litellm model can have one deployment here (several deployments of one "
                    "model, load-balanced, are not supported yet): keep one, or give the same "
                    "litellm_params to both"
                )
            alias = entry.model_name
            if alias is not None and (alias == "auto" or alias.startswith("auto:")):
                raise ValueError(f"{where}: model_name {alias!r} is reserved for routing")
            for name in {entry.model, entry.name}:
                target = owners.setdefault(name, entry.model)
                if target != entry.model:
                    raise ValueError(
                        f"{where}: the name {name!r} already means {target!r}; give each model "
                        "its own model_name"
                    )


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
    except SettingsError as exc:  # a variable whose value must be JSON (a section, a list) is not
        raise ConfigError(_unparsable_override(str(exc))) from None
    except ValidationError as exc:
        raise ConfigError(_describe_invalid(exc, source)) from None


def _environment() -> dict[str, str]:
    """JUDGE_ROUTER_* variables by upper-cased name (pydantic-settings matches them in any case)."""
    return {name.upper(): name for name in os.environ if name.upper().startswith(ENV_PREFIX)}


def _override_for(loc: Sequence[int | str], env: dict[str, str]) -> str | None:
    """The environment variable that set the value at `loc`, if one did (it wins over the file)."""
    for depth in range(len(loc), 0, -1):
        name = ENV_PREFIX + ENV_NESTING.join(str(part) for part in loc[:depth]).upper()
        if name not in env:
            continue
        if depth == len(loc):
            return env[name]
        try:  # a whole section in one variable, as JSON: did it carry this key?
            value: Any = json.loads(os.environ[env[name]])
            for part in loc[depth:]:
                value = value[part]
        except (ValueError, KeyError, IndexError, TypeError):
            continue
        return env[name]
    return None


def _describe_invalid(exc: ValidationError, source: str) -> str:
    env = _environment()
    from_file, from_env = [], []
    for error in exc.errors():
        (line,) = describe_errors([error])
        variable = _override_for(error.get("loc", ()), env) if env else None
        if variable is None:
            from_file.append(f"  {line}")
        else:
            where, _, message = line.partition(": ")
            from_env.append(f"  {variable} (sets {where}): {message}")
    parts = []
    if from_env:
        parts.append(
            "invalid environment override (unset the variable or fix its value):\n"
            + "\n".join(from_env)
        )
    if from_file:
        parts.append(f"invalid configuration ({source}):\n" + "\n".join(from_file))
    return "\n".join(parts)


def _unparsable_override(message: str) -> str:
    match = re.search(r'field "([^"]+)"', message)
    field = match.group(1) if match else None
    named = [original for upper, original in _environment().items()
             if field and (upper == ENV_PREFIX + field.upper()
                           or upper.startswith(ENV_PREFIX + field.upper() + ENV_NESTING))]  # fmt: skip
    variable = ", ".join(sorted(named)) or f"{ENV_PREFIX}{(field or '?').upper()}"
    return (
        f"invalid environment override: {variable} must be JSON (it sets `{field}`, which is a "
        f'section or a list), e.g. {ENV_PREFIX}JUDGE=\'{{"model": "heuristic"}}\'; or set one key '
        f"with {ENV_PREFIX}SECTION{ENV_NESTING}KEY"
    )
