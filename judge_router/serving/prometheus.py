"""Prometheus metrics for one app instance (its own registry: no process-global state)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from judge_router.accounting.ledger_row import LedgerRow
from judge_router.redis_link import RedisLink
from judge_router.service.quality_loop import QualityReadings
from judge_router.types import Source

# Sources whose verdict came from asking a judge just now (so its latency is worth observing).
_JUDGED_NOW = {Source.LLM.value, Source.HEURISTIC.value, Source.FALLBACK.value}

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class QualityCollector:
    """The quality loop's readings, taken when /metrics is scraped (nothing per request)."""

    def __init__(self, readings: Callable[[], QualityReadings]):
        self.readings = readings

    def collect(self) -> Iterator[Metric]:
        found = self.readings()
        by_model = GaugeMetricFamily(
            "judge_router_quality_score",
            "Rolling mean grade (1-10) of sampled answers, by tier and model (quality.window).",
            labels=["tier", "model"],
        )
        grades = GaugeMetricFamily(
            "judge_router_quality_grades",
            "Grades the rolling mean judge_router_quality_score is taken over.",
            labels=["tier", "model"],
        )
        for (tier, model), (mean, count) in sorted(found.model_scores.items()):
            by_model.add_metric([tier, model], mean)
            grades.add_metric([tier, model], count)
        by_tier = GaugeMetricFamily(
            "judge_router_quality_tier_score",
            "Rolling mean grade (1-10) of sampled answers by tier (what quality.alert_below checks).",
            labels=["tier"],
        )
        for tier, (mean, _) in sorted(found.tier_scores.items()):
            by_tier.add_metric([tier], mean)
        done = CounterMetricFamily(
            "judge_router_background_done",
            "Background jobs (shadow comparisons, sampled grades) run to their end.",
            labels=["work"],
        )
        dropped = CounterMetricFamily(
            "judge_router_background_dropped",
            "Background jobs not run to their end: queue_full, daily_limit, failed, shutdown.",
            labels=["work", "reason"],
        )
        cost = CounterMetricFamily(
            "judge_router_background_cost_usd",
            "USD spent by background work: shadow candidates' answers and grader calls.",
            labels=["work"],
        )
        queued = GaugeMetricFamily(
            "judge_router_background_queued", "Background jobs waiting.", labels=["work"]
        )
        for work in found.work:
            done.add_metric([work.work], work.done)
            for reason, count in sorted(work.dropped.items()):
                dropped.add_metric([work.work, reason], count)
            cost.add_metric([work.work], work.spent_usd)
            queued.add_metric([work.work], work.queued)
        yield from (by_model, grades, by_tier, done, dropped, cost, queued)


class RedisCollector:
    """Each Redis link's state and what this process did alone while it was unreachable."""

    def __init__(self, links: Sequence[RedisLink]):
        self.links = links

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "judge_router_redis_up",
            "1 while Redis answered its last call, 0 while this process works without it.",
            labels=["uses"],
        )
        errors = CounterMetricFamily(
            "judge_router_redis_errors", "Redis calls that failed or timed out.", labels=["uses"]
        )
        fallbacks = CounterMetricFamily(
            "judge_router_redis_fallbacks",
            "Work done in this process because Redis was unreachable: cache_read, cache_write, "
            "judged_alone, claim_timeout, rate_limit, breaker, budget_add, budget_read.",
            labels=["uses", "kind"],
        )
        for link in self.links:
            uses = ",".join(link.uses)
            up.add_metric([uses], 1 if link.reachable else 0)
            errors.add_metric([uses], link.errors)
            for kind, count in sorted(link.fallbacks.items()):
                fallbacks.add_metric([uses, kind], count)
        yield from (up, errors, fallbacks)


class Telemetry:
    def __init__(
        self,
        quality: Callable[[], QualityReadings] | None = None,
        redis: Sequence[RedisLink] = (),
    ) -> None:
        """`quality`: the engine's quality_readings, read at each scrape; `redis`: its links."""
        self.registry = CollectorRegistry()
        if quality is not None:
            self.registry.register(QualityCollector(quality))
        if redis:
            self.registry.register(RedisCollector(redis))
        self._children: dict[tuple[Counter | Histogram, tuple[str, ...]], Any] = {}
        self.requests = Counter(
            "judge_router_requests",
            "Requests decided, by endpoint, tier, verdict source and outcome status.",
            ["endpoint", "tier", "source", "status"],
            registry=self.registry,
        )
        self.cache_hits = Counter(
            "judge_router_cache_hits", "Verdicts served from the cache.", registry=self.registry
        )
        self.judge_latency = Histogram(
            "judge_router_judge_latency_seconds",
            "Time the judge took for a verdict it was asked for (cache hits excluded).",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.upstream_latency = Histogram(
            "judge_router_upstream_latency_seconds",
            "Time to the answer (or first chunk) of the model that answered.",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.cost = Counter(
            "judge_router_cost_usd",
            "USD: judge spend, realised upstream spend, and the baseline for the same usage.",
            ["kind"],
            registry=self.registry,
        )
        self.errors = Counter(
            "judge_router_errors",
            "Failures by kind: upstream attempts, exhausted chains, judge and ledger errors.",
            ["kind"],
            registry=self.registry,
        )

    def child(self, metric: Counter | Histogram, *labels: str) -> Any:
        """`metric.labels(*labels)`, remembered: prometheus-client re-validates labels every call.

        Label values come from the config and fixed vocabularies, so the set stays small.
        """
        key = (metric, labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def observe_row(self, row: LedgerRow, written: bool, provisional: bool) -> None:
        """Count a recorded row (the engine's row observer); a provisional row counts only if its
        write failed, as the final row that replaces it is counted in full."""
        child = self.child
        if not written:
            child(self.errors, "ledger_write").inc()
        if provisional:
            return
        child(self.requests, row.endpoint, row.tier, row.source, row.status).inc()
        if row.cached:
            self.cache_hits.inc()
        if row.source in _JUDGED_NOW:
            self.judge_latency.observe(row.judge_latency_ms / 1000)
        if row.judge_error:
            child(self.errors, "judge").inc()
        child(self.cost, "judge").inc(row.judge_cost_usd)
        if row.cost_usd is not None:
            child(self.cost, "realised").inc(row.cost_usd)
        if row.baseline_cost_usd is not None:
            child(self.cost, "baseline").inc(row.baseline_cost_usd)
        if row.upstream_latency_ms is not None:
            child(self.upstream_latency, row.model).observe(row.upstream_latency_ms / 1000)
        failed_attempts = sum(1 for attempt in row.attempts or () if attempt.get("error"))
        if failed_attempts:
            child(self.errors, "upstream_attempt").inc(failed_attempts)
        if row.status == "error":
            child(self.errors, "all_models_failed").inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
