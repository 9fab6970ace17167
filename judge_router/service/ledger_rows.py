"""The one place a decision becomes a ledger row: what was chosen, what happened, what it cost."""

from __future__ import annotations

import time
from dataclasses import dataclass

from judge_router.accounting.ledger_row import LedgerRow
from judge_router.config import Settings
from judge_router.service.direct import Trail
from judge_router.types import Decision, round_usd
from judge_router.upstream.model_chain import Attempt
from judge_router.upstream.prices import Pricer


@dataclass(slots=True)
class PricedUsage:
    """What one answered request cost, and what the baseline would have for the same usage."""

    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    baseline_cost_usd: float
    saved_usd: float  # baseline - realised - judge
    usage_estimated: bool = False  # counted by us, not reported by the provider


@dataclass(slots=True)
class Served:
    """What answering a decision did: `ok`, `error` (every model failed) or `incomplete`."""

    status: str
    model: str
    attempts: list[Attempt]
    stream: bool
    usage: PricedUsage | None = None
    upstream_latency_ms: float | None = None
    error: str | None = None
    trail: Trail | None = None  # a cascade's steps


class RowBuilder:
    def __init__(self, settings: Settings, pricer: Pricer):
        self.baseline = settings.baseline
        self.expected_output_tokens = settings.routing.expected_output_tokens
        self.pricer = pricer

    def price(
        self,
        decision: Decision,
        model: str,
        prompt_tokens: int,
        completion_tokens: int,
        estimated: bool = False,
        rejected_usd: float = 0.0,
    ) -> PricedUsage:
        """`rejected_usd`: answers bought and not sent (a cascade's), part of the realised cost;
        the baseline is priced for the answer that was sent."""
        cost = round_usd(self.pricer.cost(model, prompt_tokens, completion_tokens) + rejected_usd)
        baseline = round_usd(self.pricer.cost(self.baseline, prompt_tokens, completion_tokens))
        return PricedUsage(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost_usd=cost,
            baseline_cost_usd=baseline,
            saved_usd=round_usd(baseline - cost - decision.verdict.cost_usd),
            usage_estimated=estimated,
        )

    def row(self, decision: Decision, started: float, served: Served | None = None) -> LedgerRow:
        """The decision's row; `started` is time.perf_counter() when its latency began.

        Without `served` (/route: no model called) the costs are estimates from the prompt and
        `routing.expected_output_tokens`.
        """
        verdict = decision.verdict
        output_tokens = self.expected_output_tokens
        row = LedgerRow(
            request_id=decision.request_id,
            endpoint=decision.endpoint,
            prompt_hash=decision.prompt_hash,
            tier=decision.tier.value,
            model=decision.model,
            source=verdict.source.value,
            cached=decision.cached,
            reason=verdict.reason,
            judge_model=verdict.judge_model,
            judge_error=verdict.judge_error,
            judge_cost_usd=round_usd(verdict.cost_usd),
            judge_latency_ms=round(verdict.latency_ms, 3),
            prompt_tokens=decision.prompt_tokens,
            estimated_cost_usd=round_usd(
                self.pricer.cost(decision.model, decision.prompt_tokens, output_tokens)
            ),
            baseline_model=self.baseline,
            estimated_baseline_cost_usd=round_usd(
                self.pricer.cost(self.baseline, decision.prompt_tokens, output_tokens)
            ),
            latency_ms=(time.perf_counter() - started) * 1000,
            metadata=decision.metadata,
            api_key_id=decision.api_key_id,
            prompt_text=decision.prompt_text,
            rule=decision.rule,
            arm=decision.arm,
            budget=decision.budget,
            strategy=decision.strategy,
            features=decision.features,
        )
        if served is not None:
            row.status = served.status
            row.model = served.model
            row.routed_model = decision.model
            row.stream = served.stream
            row.attempts = [a.public() for a in served.attempts]
            row.upstream_latency_ms = served.upstream_latency_ms
            row.error = served.error
            trail = served.trail
            if trail is not None:
                row.strategy = trail.strategy
                row.cascade = trail.public()
                row.grader_cost_usd = round_usd(trail.grader_cost_usd)
                row.quality_flag = trail.quality_flag
            usage = served.usage
            if usage is not None:
                row.prompt_tokens = usage.prompt_tokens
                row.completion_tokens = usage.completion_tokens
                row.usage_estimated = usage.usage_estimated
                row.cost_usd = usage.cost_usd
                row.baseline_cost_usd = usage.baseline_cost_usd
                row.saved_usd = usage.saved_usd
        return row
