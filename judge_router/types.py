"""Value types shared by every module: tiers, verdicts and routing decisions."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Tier(StrEnum):
    """Difficulty tiers, ordered from cheapest to most capable."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def rank(self) -> int:
        return TIER_ORDER.index(self)

    def next_up(self) -> Tier | None:
        """The tier above this one, or None at the top."""
        rank = self.rank
        return TIER_ORDER[rank + 1] if rank + 1 < len(TIER_ORDER) else None


TIER_ORDER: tuple[Tier, ...] = (Tier.LOW, Tier.MEDIUM, Tier.HIGH)

USD_DIGITS = 10  # a ten-billionth of a dollar: below any price per token, above float noise


def round_usd(amount: float) -> float:
    """A USD figure as answers show it: 0.0004868, not 0.00048679999999999996."""
    return round(amount, USD_DIGITS)


# How a decided request is answered: routing.strategy, a rule's `strategy`, a request's field.
StrategyName = Literal["direct", "cascade"]
STRATEGY_HELP = (
    '"direct" (the tier\'s models) or "cascade" (the cheapest tier first, checked, escalated on '
    "failure); overrides routing.strategy and the rules"
)


class Source(StrEnum):
    """Where a verdict came from."""

    LLM = "llm"  # the LLM judge answered
    HEURISTIC = "heuristic"  # the local heuristic judge answered (chosen, or judge.on_failure)
    CACHE = "cache"  # a cached verdict was reused
    FORCED = "forced"  # the caller forced the tier
    FALLBACK = "fallback"  # the judge failed and `judge.on_failure` named a fixed tier
    PASSTHROUGH = "passthrough"  # the client named a configured model: no routing
    RULE = "rule"  # a configured rule chose or bounded the tier (or routing.no_text_tier)
    BUDGET = "budget"  # a budget capped the tier (`budgets:`)
    CASCADE = "cascade"  # a cascade starts at the cheapest tier: no judge (`cascade.start`)
    LOCAL = "local"  # the trained local model answered (`judge.mode`, or judge.on_failure)


class Verdict(BaseModel):
    """A judge's rating of one conversation, with what it cost to obtain.

    Frozen: the cache hands one instance to every request that hits it.
    """

    model_config = ConfigDict(frozen=True)

    tier: Tier
    reason: str
    source: Source
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    judge_model: str = ""
    # Why the judges did not answer, when judge.on_failure did (e.g. "timeout").
    judge_error: str | None = None


class Decision(BaseModel):
    """What the router decided for one request: the verdict and the models it maps to."""

    request_id: str
    endpoint: str = "route"  # route | complete | chat | cli | eval
    prompt_hash: str
    verdict: Verdict
    cached: bool
    models: list[str] = Field(min_length=1)
    prompt_tokens: int
    metadata: dict[str, Any] | None = None
    api_key_id: str | None = None  # which service key asked (its id, never the secret)
    prompt_text: str | None = None  # only when ledger.store_prompts is on
    rule: str | None = None  # the routing rule that matched, if any
    arm: str = "routed"  # the rollout arm: routed, or holdout (sent to the baseline)
    budget: str | None = None  # the budget that capped the tier, if any
    strategy: str = "direct"  # how it is answered: direct, or cascade
    # The highest tier a cascade may climb to: a rule's max_tier or a budget's cap, else high.
    ceiling: Tier = Tier.HIGH
    features: str | None = None  # judge.learn: the prompt's encoded feature vector (no text)

    @property
    def tier(self) -> Tier:
        return self.verdict.tier

    @property
    def model(self) -> str:
        return self.models[0]

    @property
    def backups(self) -> list[str]:
        """The tier's other models, in order (the /route answer's `fallbacks`)."""
        return self.models[1:]
