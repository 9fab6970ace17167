"""The routing policy sections of the config: rules before the judge, the gradual rollout and
monthly budgets."""

from __future__ import annotations

from typing import Any, Literal

import regex
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    ValidationError,
    model_validator,
)

from judge_router.types import TIER_ORDER, Tier
from judge_router.validation import describe_errors

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
    strategy: Literal["direct", "cascade"] | None = None

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
    medium: float = Field(default=100.0, ge=0, le=100, description="the same for `medium` traffic")
    high: float = Field(default=100.0, ge=0, le=100, description="the same for `high` traffic")

    def percent(self, tier: Tier) -> float:
        value: float = getattr(self, tier.value)
        return value

    @property
    def everything_routed(self) -> bool:
        return all(self.percent(tier) >= 100 for tier in TIER_ORDER)


BudgetCap = Literal["max_tier_low", "max_tier_medium"]
BudgetAction = Literal["max_tier_low", "max_tier_medium", "reject"]
CAP_TIERS: dict[str, Tier] = {"max_tier_low": Tier.LOW, "max_tier_medium": Tier.MEDIUM}
# How much an action restricts: the strictest of the budgets over a request applies.
ACTION_RANK: dict[str | None, int] = {None: 0, "max_tier_medium": 1, "max_tier_low": 2, "reject": 3}


class BudgetScope(BaseModel):
    """Whose spend a budget counts: the requests with one metadata value, or one service key's."""

    model_config = ConfigDict(extra="forbid")

    metadata: str | None = Field(default=None, min_length=1, max_length=100, pattern=r'^[^"\\]+$')
    api_key_id: str | None = Field(default=None, min_length=1, max_length=64)


class Budget(BaseModel):
    """A monthly USD limit on the spend of a scope (everyone when `scope` is left out)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    scope: BudgetScope | None = None
    value: MetadataValue | None = None  # with scope.metadata: the value whose spend this is
    usd_per_month: float = Field(gt=0, allow_inf_nan=False)
    soft_pct: float = Field(default=80, ge=0, le=100)
    over_soft: BudgetCap | None = None
    over_hard: BudgetAction = "reject"

    @model_validator(mode="wrap")
    @classmethod
    def _named(cls, data: Any, handler: ModelWrapValidatorHandler[Budget]) -> Budget:
        """Every error names the budget, not only its index in the list."""
        try:
            return handler(data)
        except ValidationError as exc:
            name = data.get("name") if isinstance(data, dict) else None
            problems = "; ".join(describe_errors(exc.errors(), root=""))
            raise ValueError(f"budget {name!r}: {problems}" if name else problems) from None

    @model_validator(mode="after")
    def _scope_is_complete(self) -> Budget:
        scope, named = self.scope, f"budget {self.name!r}"
        if scope is not None and (scope.metadata is None) == (scope.api_key_id is None):
            raise ValueError(
                f"{named}: scope: give `metadata: KEY` (with `value`) or `api_key_id: ID`; leave "
                "scope out to count everyone's spend"
            )
        key = scope.metadata if scope is not None else None
        if key is not None and self.value is None:
            raise ValueError(
                f"{named}: scope {{metadata: {key}}} needs `value`: whose spend this is (e.g. "
                "value: search)"
            )
        if key is None and self.value is not None:
            raise ValueError(f"{named}: `value` goes with `scope: {{metadata: KEY}}` only")
        if ACTION_RANK[self.over_hard] < ACTION_RANK[self.over_soft]:
            raise ValueError(
                f"{named}: over_hard ({self.over_hard}) is looser than over_soft ({self.over_soft})"
            )
        return self

    def action(self, state: str) -> str | None:
        """What the budget does to a request in `state` (ok, soft or hard)."""
        return {"soft": self.over_soft, "hard": self.over_hard}.get(state)

    def scope_public(self) -> dict[str, Any]:
        """The scope as /stats shows it: {} (everyone), {metadata, value} or {api_key_id}."""
        if self.scope is None:
            return {}
        if self.scope.metadata is not None:
            return {"metadata": self.scope.metadata, "value": self.value}
        return {"api_key_id": self.scope.api_key_id}


def check_budgets(budgets: list[Budget], api_key_ids: set[str]) -> None:
    """Names are unique and a key's budget names a configured key; raises ValueError."""
    seen: set[str] = set()
    for index, budget in enumerate(budgets):
        if budget.name in seen:
            raise ValueError(f"budgets[{index}]: the name {budget.name!r} is used twice")
        seen.add(budget.name)
        key = budget.scope.api_key_id if budget.scope else None
        if key is not None and key not in api_key_ids:
            raise ValueError(
                f"budgets[{index}] ({budget.name}): api_key_id {key!r} is not a key of "
                f"server.api_keys (ids: {sorted(api_key_ids)})"
            )
