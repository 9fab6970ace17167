"""The draft decision the pipeline's steps fill in, and how it becomes a Decision."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from judge_router.config_policy import Rule
from judge_router.routing.budget_limits import BudgetLimit
from judge_router.routing.reading import Reading
from judge_router.routing.request import RoutingRequest
from judge_router.types import Decision, Tier, Verdict


def new_request_id() -> str:
    return f"jr-{uuid.uuid4().hex}"


@dataclass(slots=True)
class Draft:
    """A decision being made: each step reads it and fills in what it decides."""

    request: RoutingRequest
    reading: Reading | None = None
    verdict: Verdict | None = None
    cached: bool = False
    models: list[str] | None = None
    rule: Rule | None = None  # the rule that matched (its action applied, or bounds to apply)
    arm: str = "routed"
    limit: BudgetLimit | None = None  # the strictest budget cap over the request, if any
    capped_by: str | None = None  # the budget that changed the tier
    strategy: str = "direct"
    features: str | None = None  # judge.learn: the encoded vector of what the judge saw

    def ceiling(self) -> Tier:
        """The highest tier a cascade may reach: under the rule's max_tier and the budget's cap,
        never under the decided tier (a forced tier is the client's)."""
        assert self.verdict is not None
        ceiling = Tier.HIGH
        caps = (
            self.rule.max_tier if self.rule else None,
            self.limit.max_tier if self.limit else None,
        )
        for cap in caps:
            if cap is not None and cap.rank < ceiling.rank:
                ceiling = cap
        return ceiling if ceiling.rank >= self.verdict.tier.rank else self.verdict.tier

    def decision(self) -> Decision:
        assert self.reading is not None and self.verdict is not None and self.models
        request = self.request
        return Decision(
            request_id=new_request_id(),
            endpoint=request.endpoint,
            prompt_hash=self.reading.prompt_hash,
            verdict=self.verdict,
            cached=self.cached,
            models=self.models,
            prompt_tokens=self.reading.view.prompt_tokens,
            metadata=request.metadata,
            api_key_id=request.api_key_id,
            prompt_text=self.reading.prompt_text,
            rule=self.rule.name if self.rule else None,
            arm=self.arm,
            budget=self.capped_by,
            strategy=self.strategy,
            features=self.features,
            ceiling=self.ceiling(),
        )


Step = Callable[[Draft], Awaitable[None]]
