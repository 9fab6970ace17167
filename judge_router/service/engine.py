"""The engine: decides every request through one pipeline, answers it, and records its row."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from judge_router.accounting.ledger import Ledger
from judge_router.accounting.ledger_row import LedgerRow
from judge_router.config import Settings
from judge_router.redis_link import RedisLink
from judge_router.routing.judges.chain import JudgeChain
from judge_router.routing.pipeline import DecisionPipeline
from judge_router.routing.request import RoutingRequest, model_names
from judge_router.routing.shared_flight import SharedFlight
from judge_router.routing.verdict_store import VerdictStore
from judge_router.service.answering import Answering
from judge_router.service.budget_tracker import BudgetTracker, Clock, utc_now
from judge_router.service.direct import AnswerStrategy
from judge_router.service.ledger_rows import RowBuilder
from judge_router.service.quality_loop import QualityLoop, QualityReadings
from judge_router.service.rate_limits import RateLimiter
from judge_router.service.shared_spend import SharedSpend
from judge_router.types import Decision, Source, Tier, round_usd
from judge_router.upstream.breaker import Breaker
from judge_router.upstream.litellm_runtime import missing_credentials
from judge_router.upstream.prices import Pricer

# Told of every row as it is recorded: (row, written to the ledger?, provisional?).
RowObserver = Callable[[LedgerRow, bool, bool], None]


class RouteAnswer(BaseModel):
    """The body of a /route answer: the decision, what it cost, and what the request should cost."""

    request_id: str
    tier: Tier
    model: str
    fallbacks: list[str]
    source: Source
    cached: bool
    reason: str
    judge_cost_usd: float
    judge_latency_ms: float
    # Why the judge did not answer, when judge.on_failure did (e.g. "timeout"); else null.
    judge_error: str | None = None
    rule: str | None = None  # the routing rule that matched, if any
    arm: str = "routed"  # routed, or holdout: held back on the baseline by `rollout`
    budget: str | None = None  # the budget that capped the tier, if any
    strategy: str = "direct"  # how /complete would answer it: direct, or cascade
    prompt_tokens: int
    estimated_cost_usd: float
    baseline_model: str
    estimated_baseline_cost_usd: float


@dataclass(slots=True)
class EngineParts:
    """Everything the engine is built from; build_engine chooses each from the config."""

    pricer: Pricer
    judges: JudgeChain
    verdicts: VerdictStore
    ledger: Ledger
    model_breaker: Breaker
    rate_limiter: RateLimiter | None
    # Every strategy a decision may name (`routing.strategy`, a rule's, the request's), by name.
    strategies: Callable[[DecisionPipeline], Mapping[str, AnswerStrategy]]
    clock: Clock = field(default=utc_now)  # the budgets' month
    quality: QualityLoop | None = None  # shadow tests and sampling, when configured
    shared_flight: SharedFlight | None = None  # one judge call per prompt across replicas
    redis: Sequence[RedisLink] = ()  # the Redis connections the parts share (closed last)
    shared_spend: SharedSpend | None = None  # budget counters every replica adds to
    close_upstream: Callable[[], Awaitable[None]] | None = None  # the pooled provider connections


class Engine:
    def __init__(self, settings: Settings, parts: EngineParts):
        self.settings = settings
        self.pricer = parts.pricer
        self.judges = parts.judges
        self.verdicts = parts.verdicts
        self.ledger = parts.ledger
        self.model_breaker = parts.model_breaker
        self.rate_limiter = parts.rate_limiter
        self.budgets = (
            BudgetTracker(settings.budgets, parts.ledger, parts.clock, shared=parts.shared_spend)
            if settings.budgets
            else None
        )
        self.pipeline = DecisionPipeline(
            settings, parts.judges, parts.verdicts, self.budgets, parts.shared_flight
        )
        self.redis = list(parts.redis)
        self.rows = RowBuilder(settings, parts.pricer)
        self.answering = Answering(
            parts.strategies(self.pipeline),
            self.rows,
            self.record,
            self.record_provisional,
            parts.ledger.record_outcome,
        )
        self.observers: list[RowObserver] = [self.budgets.observe] if self.budgets else []
        self.quality = parts.quality
        self._close_upstream = parts.close_upstream
        if self.quality is not None:
            self.answering.observers.append(self.quality.observe)

    async def start(self) -> None:
        """Background work that should not wait for the first request: the budgets' first read."""
        if self.budgets is not None:
            await self.budgets.ready()
        if self.quality is not None:  # today's background spend, then the workers
            await self.quality.start()

    async def budget_report(self) -> list[dict[str, Any]]:
        """Each budget's month so far (/stats' `budgets`)."""
        return await self.budgets.report() if self.budgets is not None else []

    async def decide(self, request: RoutingRequest) -> Decision:
        return await self.pipeline.decide(request)

    async def route(self, request: RoutingRequest) -> RouteAnswer:
        """Decide and record, without calling the model (/route and the CLI's route)."""
        started = time.perf_counter()
        decision = await self.decide(request)
        row = self.rows.row(decision, started)
        await self.record(row)
        return RouteAnswer(
            request_id=row.request_id,
            tier=decision.tier,
            model=row.model,
            fallbacks=decision.backups,
            source=decision.verdict.source,
            cached=row.cached,
            reason=row.reason,
            judge_cost_usd=round_usd(row.judge_cost_usd),
            judge_latency_ms=row.judge_latency_ms,
            judge_error=decision.verdict.judge_error,
            rule=decision.rule,
            arm=decision.arm,
            budget=decision.budget,
            strategy=decision.strategy,
            prompt_tokens=row.prompt_tokens,
            estimated_cost_usd=round_usd(row.estimated_cost_usd),
            baseline_model=row.baseline_model,
            estimated_baseline_cost_usd=round_usd(row.estimated_baseline_cost_usd),
        )

    async def record(self, row: LedgerRow) -> None:
        """Append the row to the ledger and tell the observers; never raises.

        A stream's row replaces the provisional row written when its first chunk went out.
        """
        await self._record(row, provisional=False)

    async def record_provisional(self, row: LedgerRow) -> None:
        """Put a row on disk that a later `record(row)` completes; observers see it as provisional."""
        await self._record(row, provisional=True)

    async def _record(self, row: LedgerRow, provisional: bool) -> None:
        written = await self.ledger.record(row, replace=row.stream and not provisional)
        for observe in self.observers:
            observe(row, written, provisional)

    def accepts_model(self, name: str) -> bool:
        """Whether a request may name `name` as its `model` (an alias's litellm name included)."""
        return name in self.model_names() or name in self.pipeline.configured_models

    def model_names(self) -> list[str]:
        """The `model` values the proxy faces accept."""
        return model_names(self.pipeline.configured_models.listed)

    def missing_credentials(self) -> dict[str, list[str]]:
        """Model name -> environment variables it needs and lacks, for every model that will be
        called (a baseline that is only priced needs no key)."""
        missing = {}
        for entry in self.settings.called_models():
            names = missing_credentials(entry)
            if names:
                missing[entry.model] = names
        return missing

    def startup_report(self) -> list[str]:
        """What an operator must know at start: missing credentials and what the judge will do."""
        lines = []
        judge = self.settings.judge
        missing = self.missing_credentials()
        if missing:
            listed = "; ".join(f"{model}: {', '.join(names)}" for model, names in missing.items())
            lines.append(f"missing credentials (calls to these models will fail): {listed}")
        cache = self.settings.cache
        if cache.enabled and cache.backend == "redis" and cache.lock_s <= judge.timeout_s:
            lines.append(
                f"cache.lock_s ({cache.lock_s:g} s) is not above judge.timeout_s "
                f"({judge.timeout_s:g} s): while a slow judge call runs, other replicas may "
                "judge the same prompt too"
            )
        if not judge.is_heuristic and judge.mode != "local" and not self.judges.calls_llm:
            lines.append(
                f"judge {judge.model} has no credentials; every verdict comes from "
                f"judge.on_failure={judge.on_failure} until they are set"
            )
        return lines

    def quality_readings(self) -> QualityReadings:
        """The quality loop's rolling means and background counts (/metrics)."""
        return self.quality.readings() if self.quality is not None else QualityReadings()

    async def aclose(self) -> None:
        if self.quality is not None:  # before the ledger closes: running jobs record outcomes
            await self.quality.aclose()
        if self.budgets is not None:
            await self.budgets.aclose()
        self.verdicts.close()
        await self.ledger.close()
        for link in self.redis:
            await link.aclose()
        if self._close_upstream is not None:
            await self._close_upstream()
