"""Wires settings into the router, judge, cache, prices and ledger; the one object the edges use."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from judge_router.accounting.ledger import Ledger, LedgerRow
from judge_router.config import Settings
from judge_router.routing.judges.llm import build_judge
from judge_router.routing.pipeline import Router
from judge_router.routing.verdict_cache import VerdictCache
from judge_router.serving.prometheus import Telemetry
from judge_router.types import Decision, Source, Tier
from judge_router.upstream.completion import Completions

# Sources whose verdict came from asking a judge just now (so its latency is worth observing).
_JUDGED_NOW = {Source.LLM.value, Source.HEURISTIC.value, Source.FALLBACK.value}


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
    prompt_tokens: int
    estimated_cost_usd: float
    baseline_model: str
    estimated_baseline_cost_usd: float


class Engine:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.completions = Completions(settings)  # raises ConfigError for unpriced models
        cache = settings.cache
        self.cache = VerdictCache(
            cache.dir, cache.ttl_s, cache.enabled, memory_entries=cache.memory_entries
        )
        self.judge = build_judge(settings.judge, self.completions)
        self.router = Router(settings, self.judge, self.cache)
        self.ledger = Ledger(settings.ledger.path, settings.ledger.max_pending_rows)
        self.telemetry = Telemetry()

    def missing_credentials(self) -> dict[str, list[str]]:
        """Model name -> environment variables it needs and lacks, for every configured model."""
        missing = {}
        for entry in self.settings.priced_models():
            names = self.completions.missing_credentials(entry)
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
        if not judge.is_heuristic and not self.judge.calls_llm:
            lines.append(
                f"judge {judge.model} has no credentials; every verdict comes from "
                f"judge.on_failure={judge.on_failure} until they are set"
            )
        return lines

    async def route(
        self,
        messages: Sequence[dict[str, Any]],
        forced_tier: Tier | None = None,
        metadata: dict[str, Any] | None = None,
        endpoint: str = "route",
        api_key_id: str | None = None,
    ) -> RouteAnswer:
        started = time.perf_counter()
        decision = await self.router.decide(messages, forced_tier, metadata, api_key_id)
        row = self.row(decision, endpoint, (time.perf_counter() - started) * 1000)
        self.record(row)
        return self.answer(decision, row)

    def record_provisional(self, row: LedgerRow) -> None:
        """Put a row on disk that a later `record(row, replace=True)` completes; not counted yet."""
        if not self.ledger.record(row):
            self.telemetry.child(self.telemetry.errors, "ledger_write").inc()

    def record(self, row: LedgerRow) -> None:
        """Append the row to the ledger and count it in the metrics; never raises.

        A stream's row replaces the provisional row written when its first chunk went out.
        """
        written = self.ledger.record(row, replace=row.stream)
        metrics = self.telemetry
        child = metrics.child
        child(metrics.requests, row.endpoint, row.tier, row.source, row.status).inc()
        if row.cached:
            metrics.cache_hits.inc()
        if row.source in _JUDGED_NOW:
            metrics.judge_latency.observe(row.judge_latency_ms / 1000)
        if row.judge_error:
            child(metrics.errors, "judge").inc()
        child(metrics.cost, "judge").inc(row.judge_cost_usd)
        if row.cost_usd is not None:
            child(metrics.cost, "realised").inc(row.cost_usd)
        if row.baseline_cost_usd is not None:
            child(metrics.cost, "baseline").inc(row.baseline_cost_usd)
        if row.upstream_latency_ms is not None:
            child(metrics.upstream_latency, row.model).observe(row.upstream_latency_ms / 1000)
        failed_attempts = sum(1 for attempt in row.attempts or () if attempt.get("error"))
        if failed_attempts:
            child(metrics.errors, "upstream_attempt").inc(failed_attempts)
        if row.status == "error":
            child(metrics.errors, "all_models_failed").inc()
        if not written:
            child(metrics.errors, "ledger_write").inc()

    def row(self, decision: Decision, endpoint: str, latency_ms: float) -> LedgerRow:
        """The decision's ledger row, with the cost estimated from the prompt and expected output."""
        output_tokens = self.settings.routing.expected_output_tokens
        verdict = decision.verdict
        return LedgerRow(
            request_id=decision.request_id,
            endpoint=endpoint,
            prompt_hash=decision.prompt_hash,
            tier=decision.tier.value,
            model=decision.model,
            source=verdict.source.value,
            cached=decision.cached,
            reason=verdict.reason,
            judge_model=verdict.judge_model,
            judge_error=verdict.judge_error,
            judge_cost_usd=verdict.cost_usd,
            judge_latency_ms=round(verdict.latency_ms, 3),
            prompt_tokens=decision.prompt_tokens,
            estimated_cost_usd=self.completions.cost(
                decision.model, decision.prompt_tokens, output_tokens
            ),
            baseline_model=self.settings.baseline,
            estimated_baseline_cost_usd=self.completions.cost(
                self.settings.baseline, decision.prompt_tokens, output_tokens
            ),
            latency_ms=latency_ms,
            metadata=decision.metadata,
            api_key_id=decision.api_key_id,
            prompt_text=decision.prompt_text,
        )

    @staticmethod
    def answer(decision: Decision, row: LedgerRow) -> RouteAnswer:
        """The /route answer: what the ledger row says, plus the fallback models."""
        return RouteAnswer(
            request_id=row.request_id,
            tier=decision.tier,
            model=row.model,
            fallbacks=decision.fallbacks,
            source=decision.verdict.source,
            cached=row.cached,
            reason=row.reason,
            judge_cost_usd=row.judge_cost_usd,
            judge_latency_ms=row.judge_latency_ms,
            prompt_tokens=row.prompt_tokens,
            estimated_cost_usd=row.estimated_cost_usd,
            baseline_model=row.baseline_model,
            estimated_baseline_cost_usd=row.estimated_baseline_cost_usd,
        )

    def close(self) -> None:
        self.cache.close()
        self.ledger.close()
