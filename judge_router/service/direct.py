"""How a decided request is answered: the strategy interface, and `direct` (the tier's models, then
the tiers above, first success wins). The other strategy, `cascade`, is in cascade.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from judge_router.accounting.outcome_row import OutcomeRow
from judge_router.config import Settings
from judge_router.types import Decision, Source, Tier
from judge_router.upstream.model_chain import Completed, ModelChain, StreamStarted

ModelsFor = Callable[[Tier], list[str]]  # a tier's models, in order


class Trail(Protocol):
    """What a strategy that tries several answers did besides the one it sent (a cascade's
    steps): the answering records it with the request's row."""

    @property
    def strategy(self) -> str: ...

    @property
    def rejected_cost_usd(self) -> float:
        """Answers bought and not sent: part of the request's realised cost."""

    @property
    def grader_cost_usd(self) -> float: ...

    @property
    def quality_flag(self) -> str | None: ...

    def public(self) -> list[dict[str, Any]]:
        """As `router.cascade` and the ledger's `cascade` column show it."""

    def outcomes(self, request_id: str) -> list[OutcomeRow]: ...


class AnswerStrategy(Protocol):
    """Calls models for a decision and says what happened; raises AllAttemptsFailed (or
    UnsendableRequest for a request it cannot take)."""

    async def complete(
        self, decision: Decision, params: dict[str, Any]
    ) -> tuple[Completed, Trail | None]: ...

    async def stream(
        self, decision: Decision, params: dict[str, Any]
    ) -> tuple[StreamStarted, Trail | None]: ...


class DirectStrategy:
    def __init__(self, settings: Settings, models: ModelChain, models_for: ModelsFor):
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

    async def complete(
        self, decision: Decision, params: dict[str, Any]
    ) -> tuple[Completed, Trail | None]:
        return await self.models.complete(self.chain(decision), params, self.timeout_s), None

    async def stream(
        self, decision: Decision, params: dict[str, Any]
    ) -> tuple[StreamStarted, Trail | None]:
        return await self.models.stream(self.chain(decision), params, self.timeout_s), None
