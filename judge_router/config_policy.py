"""The routing policy sections of the config: rules before the judge and the gradual rollout."""

from __future__ import annotations

from typing import Any, Literal

import regex
from pydantic import BaseModel, ConfigDict, Field, model_validator

from judge_router.types import TIER_ORDER, Tier

ENDPOINTS = ("route", "complete", "chat", "responses", "messages", "cli", "eval")
MetadataValue = str | int | float | bool


class RuleMatch(BaseModel):
    """What a request must have for its rule to apply; every matcher given must hold."""

    model_config = ConfigDict(extra="forbid")

    metadata: dict[str, MetadataValue | list[MetadataValue]] | None = Field(
        default=None, description="each key must equal the request's (a list: any of them)"
    )
    min_prompt_tokens: int | None = Field(default=None, ge=0)
    max_prompt_tokens: int | None = Field(default=None, ge=0)
    last_user_regex: str | None = Field(
        default=None, max_length=1000, description="searched in the last user message's text"
    )
    api_key_id: str | list[str] | None = None
    endpoint: str | list[str] | None = None


class Rule(BaseModel):
    """One routing rule: when `match` holds, its action decides (or bounds) the tier."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    match: RuleMatch = Field(default_factory=RuleMatch)
    tier: Tier | None = None
    model: str | None = Field(default=None, min_length=1)
    min_tier: Tier | None = None
    max_tier: Tier | None = None
    strategy: Literal["direct"] | None = None

    @model_validator(mode="before")
    @classmethod
    def _known_matchers(cls, data: Any) -> Any:
        match = data.get("match") if isinstance(data, dict) else None
        if isinstance(match, dict):
            unknown = sorted(set(match) - set(RuleMatch.model_fields))
            if unknown:
                raise ValueError(
                    f"rule {data.get('name')!r}: unknown matcher {unknown}; matchers are "
                    f"{list(RuleMatch.model_fields)}"
                )
        return data

    @model_validator(mode="after")
    def _matchers_are_valid(self) -> Rule:
        pattern = self.match.last_user_regex
        if pattern is not None:
            try:
                regex.compile(pattern)
            except regex.error as exc:
                raise ValueError(
                    f"rule {self.name!r}: last_user_regex {pattern!r} is not a valid regex: {exc}"
                ) from None
        endpoint = self.match.endpoint
        for name in [endpoint] if isinstance(endpoint, str) else endpoint or []:
            if name not in ENDPOINTS:
                raise ValueError(
                    f"rule {self.name!r}: endpoint {name!r} is not one of {list(ENDPOINTS)}"
                )
        return self

    @model_validator(mode="after")
    def _one_kind_of_action(self) -> Rule:
        decides = [name for name in ("tier", "model") if getattr(self, name) is not None]
        bounds = [name for name in ("min_tier", "max_tier") if getattr(self, name) is not None]
        if len(decides) > 1 or (decides and bounds):
            raise ValueError(f"rule {self.name!r}: give one of tier, model or min_/max_tier")
        if not decides and not bounds and self.strategy is None:
            raise ValueError(
                f"rule {self.name!r} has no action: give tier, model, min_tier/max_tier or strategy"
            )
        if self.min_tier and self.max_tier and self.min_tier.rank > self.max_tier.rank:
            raise ValueError(f"rule {self.name!r}: min_tier is above max_tier")
        return self


def check_rules(rules: list[Rule], accepted_models: set[str]) -> None:
    """Names are unique and every `model` a rule names is configured; raises ValueError."""
    seen: set[str] = set()
    for index, rule in enumerate(rules):
        if rule.name in seen:
            raise ValueError(f"rules[{index}]: the name {rule.name!r} is used twice")
        seen.add(rule.name)
        if rule.model is not None and rule.model not in accepted_models:
            raise ValueError(
                f"rules[{index}] ({rule.name}): model {rule.model!r} is in no tier; "
                f"use one of {sorted(accepted_models)}"
            )


class RolloutConfig(BaseModel):
    """The share of each tier's traffic that is routed; the rest goes to `baseline` (held back)."""

    model_config = ConfigDict(extra="forbid")

    low: float = Field(
        default=100.0,
        ge=0,
        le=100,
        description="the percentage of `low` traffic that is routed; the rest goes to `baseline` "
        "(the held-back arm), chosen by prompt hash",
    )
    medium: float = Field(
        default=100.0, ge=0, le=100, description="the same for `medium` traffic"
    )
    high: float = Field(default=100.0, ge=0, le=100, description="the same for `high` traffic")

    def percent(self, tier: Tier) -> float:
        value: float = getattr(self, tier.value)
        return value

    @property
    def everything_routed(self) -> bool:
        return all(self.percent(tier) >= 100 for tier in TIER_ORDER)
