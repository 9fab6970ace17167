"""How a decided request is answered: the strategy interface, and `direct` (the tier's models, then
the tiers above, first success wins)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from judge_router.config import Settings
from judge_router.types import Decision, Source, Tier
from judge_router.upstream.model_chain import Completed, ModelChain, StreamStarted


class AnswerStrategy(Protocol):
    """Calls models for a decision and says what happened; raises AllAttemptsFailed."""

    async def complete(self, decision: Decision, params: dict[str, Any]) -> Completed: ...

    async def stream(self, decision: Decision, params: dict[str, Any]) -> StreamStarted: ...


class DirectStrategy:
    def __init__(
        self, settings: Settings, models: ModelChain, models_for: Callable[[Tier], list[str]]
    ):
        self.escalate = settings.routing.fallback == "next_tier"
        self.timeout_s = settings.routing.upstream_timeout_s
        self.models = models
        self.models_for = models_for

    def chain(self, decision: Decision) -> list[str]:
        """The models to try in order: the tier's, then (routing.fallback: next_tier) the tiers above."""
        chain = list(decision.models)
        if decision.verdict.source is Source.PASSTHROUGH or not self.escalate:
            return chain
        tier: Tier | None = decision.tier.next_up()
        while tier is not None:
            chain.extend(m for m in self.models_for(tier) if m not in chain)
            tier = tier.next_up()
        return chain

    async def complete(self, decision: Decision, params: dict[str, Any]) -> Completed:
        return await self.models.complete(self.chain(decision), params, self.timeout_s)

    async def stream(self, decision: Decision, params: dict[str, Any]) -> StreamStarted:
        return await self.models.stream(self.chain(decision), params, self.timeout_s)
