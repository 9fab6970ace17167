"""What the decision pipeline asks of the budgets: the strictest limit over a request, if any.

The spend behind it is kept by the service (service/budget_tracker.py); routing only applies it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from judge_router.routing.request import RoutingRequest
from judge_router.types import Tier


@dataclass(frozen=True, slots=True)
class BudgetLimit:
    """A budget past its soft share or its limit: the tier it caps verdicts at, or a refusal."""

    budget: str
    scope: str  # as a sentence: "everyone", "metadata team = search", "api key team-a"
    state: str  # soft | hard
    max_tier: Tier | None  # None: refuse the request
    usd_per_month: float
    spent_usd: float
    soft_pct: float
    resets_at: datetime
    retry_after_s: int  # until resets_at

    @property
    def refuses(self) -> bool:
        return self.max_tier is None

    def describe(self) -> str:
        """Why: "budget team-search past its soft limit (80% of $500/month; $412.50 spent)"."""
        if self.state == "hard":
            where = f"over its limit (${self.usd_per_month:g}/month"
        else:
            where = f"past its soft limit ({self.soft_pct:g}% of ${self.usd_per_month:g}/month"
        return f"budget {self.budget} {where}; ${self.spent_usd:.2f} spent)"


class BudgetExceeded(Exception):
    """A budget with `over_hard: reject` is spent: the request is refused before it is judged."""

    def __init__(self, limit: BudgetLimit):
        self.limit = limit
        super().__init__(
            f"budget {limit.budget!r} ({limit.scope}) is spent: ${limit.spent_usd:.2f} of "
            f"${limit.usd_per_month:g} this month; requests in its scope are refused until it "
            f"resets at {limit.resets_at.isoformat()}"
        )


class BudgetCheck(Protocol):
    async def limit_for(self, request: RoutingRequest) -> BudgetLimit | None:
        """The strictest budget limit over `request` now (None: no budget restricts it)."""
        ...
