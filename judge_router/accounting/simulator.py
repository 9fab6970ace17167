"""Savings simulator: price a monthly traffic mix before and after routing, judge cost included."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from judge_router.config import ConfigError
from judge_router.types import TIER_ORDER, Tier
from judge_router.validation import describe_errors

PER_MILLION = 1_000_000


class PriceSpec(BaseModel):
    """USD per 1M tokens, given directly or looked up by litellm model name."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    input_per_1m: float | None = Field(default=None, ge=0)
    output_per_1m: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _priced(self) -> PriceSpec:
        if self.model is None and (self.input_per_1m is None or self.output_per_1m is None):
            raise ValueError("give `model` or both `input_per_1m` and `output_per_1m`")
        return self


class JudgeSpec(PriceSpec):
    model: str | None = "gpt-5-nano"
    # Tokens of the judge's own prompt and markers per call; None: the configured judge.prompt's.
    template_tokens: int | None = Field(default=None, ge=0)
    max_input_tokens: int = Field(default=1000, ge=1)
    output_tokens: int = Field(default=30, ge=0)


class TrafficType(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    share: float = Field(gt=0, le=1)
    input_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0)
    tier: Tier


class Mix(BaseModel):
    model_config = ConfigDict(extra="forbid")

    requests_per_month: int = Field(gt=0)
    cache_hit_rate: float = Field(default=0.0, ge=0, le=1)
    baseline: PriceSpec
    tiers: dict[Tier, PriceSpec]
    judge: JudgeSpec = Field(default_factory=JudgeSpec)
    types: list[TrafficType] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Mix:
        total = sum(t.share for t in self.types)
        if abs(total - 1) > 1e-6:
            raise ValueError(f"the types' shares add up to {total:g}, not 1")
        missing = sorted({t.tier.value for t in self.types} - {t.value for t in self.tiers})
        if missing:
            raise ValueError(f"types land in tiers with no price: {missing}")
        return self


# (input, output) USD per token for a model name; the CLI passes litellm's lookup.
PriceLookup = Callable[[str], tuple[float, float]]


def _per_token(spec: PriceSpec, lookup: PriceLookup | None) -> tuple[float, float]:
    if spec.input_per_1m is not None and spec.output_per_1m is not None:
        return spec.input_per_1m / PER_MILLION, spec.output_per_1m / PER_MILLION
    if lookup is None or spec.model is None:
        raise ConfigError(f"no price for {spec.model!r}")
    return lookup(spec.model)


def load_mix(path: Path) -> Mix:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    return parse_mix(text, str(path))


def parse_mix(text: str, name: str = "traffic mix") -> Mix:
    """A mix from YAML (or JSON) text; ConfigError says what is wrong, `name` says where."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"cannot read {name}: {exc}") from None
    return validate_mix(data, name)


def validate_mix(data: Any, name: str = "traffic mix") -> Mix:
    try:
        return Mix.model_validate(data)
    except ValidationError as exc:
        lines = [f"  {line}" for line in describe_errors(exc.errors())]
        raise ConfigError(f"invalid traffic mix {name}:\n" + "\n".join(lines)) from None


def _apportion(mix: Mix) -> list[int]:
    """Whole requests per type that add up to requests_per_month (largest remainders get the rest)."""
    total_share = sum(kind.share for kind in mix.types)  # 1 within 1e-6 (validated)
    exact = [mix.requests_per_month * kind.share / total_share for kind in mix.types]
    counts = [int(value) for value in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: exact[i] - counts[i], reverse=True)
    for index in by_remainder[: max(0, mix.requests_per_month - sum(counts))]:
        counts[index] += 1
    return counts


def simulate(mix: Mix, template_tokens: int, lookup: PriceLookup | None = None) -> dict[str, Any]:
    """Monthly USD before routing (all on the baseline) and after (each type on its tier + judge)."""
    base_in, base_out = _per_token(mix.baseline, lookup)
    tier_prices = {tier: _per_token(spec, lookup) for tier, spec in mix.tiers.items()}
    judge_in, judge_out = _per_token(mix.judge, lookup)
    judge_template = (
        mix.judge.template_tokens if mix.judge.template_tokens is not None else template_tokens
    )
    judged_share = 1 - mix.cache_hit_rate

    rows: list[dict[str, Any]] = []
    for kind, requests in zip(mix.types, _apportion(mix), strict=True):
        price_in, price_out = tier_prices[kind.tier]
        judge_tokens = judge_template + min(kind.input_tokens, mix.judge.max_input_tokens)
        rows.append(
            {
                "name": kind.name,
                "tier": kind.tier.value,
                "requests": requests,
                "before_usd": requests
                * (kind.input_tokens * base_in + kind.output_tokens * base_out),
                "after_usd": requests
                * (kind.input_tokens * price_in + kind.output_tokens * price_out),
                "judge_usd": requests
                * judged_share
                * (judge_tokens * judge_in + mix.judge.output_tokens * judge_out),
            }
        )
    before: float = sum(r["before_usd"] for r in rows)
    after: float = sum(r["after_usd"] for r in rows)
    judge: float = sum(r["judge_usd"] for r in rows)
    return {
        "requests_per_month": mix.requests_per_month,
        "types": rows,
        "before_usd": before,
        "after_usd": after,
        "saved_before_judge_usd": before - after,
        "saved_before_judge_pct": 100 * (before - after) / before if before else None,
        "judge_usd": judge,
        "after_with_judge_usd": after + judge,
        "net_saved_usd": before - after - judge,
        "net_saved_pct": 100 * (before - after - judge) / before if before else None,
        "judge_roi": (before - after) / judge if judge else None,
        "tiers_used": [t.value for t in TIER_ORDER if t in {k.tier for k in mix.types}],
    }
