"""build_engine(settings): every part chosen from the config through plain dict registries.

Each registry's keys are the values its config key accepts (`cache.backend`, `ledger.backend`,
`state.backend`, `routing.strategy`); a new back end is one entry here. Tests pass their own parts
(a fake judge, a fake ledger) as keyword arguments instead of patching anything.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from judge_router.accounting.ledger import Ledger
from judge_router.accounting.sqlite_ledger import SqliteLedger
from judge_router.config import CircuitBreakerConfig, ConfigError, Settings
from judge_router.quality.grader import Grader
from judge_router.redis_link import RedisLink
from judge_router.routing.judges.base import Judge
from judge_router.routing.judges.chain import JudgeChain, build_judges
from judge_router.routing.memory_layer import MemoryLayer
from judge_router.routing.pipeline import DecisionPipeline
from judge_router.routing.redis_store import RedisVerdictStore
from judge_router.routing.shared_flight import SharedFlight
from judge_router.routing.verdict_store import DiskVerdictStore, NoVerdictStore, VerdictStore
from judge_router.service.budget_tracker import Clock, utc_now
from judge_router.service.cascade import CascadeStrategy
from judge_router.service.direct import AnswerStrategy, DirectStrategy
from judge_router.service.engine import Engine, EngineParts
from judge_router.service.quality_loop import build_quality_loop
from judge_router.service.rate_limits import MemoryRateLimiter, RateLimiter
from judge_router.service.redis_limits import RedisRateLimiter
from judge_router.service.shared_spend import RedisSpend, SharedSpend
from judge_router.upstream.breaker import Breaker, MemoryBreaker
from judge_router.upstream.judge_call import StructuredCaller
from judge_router.upstream.model_chain import ModelChain
from judge_router.upstream.prices import Pricer
from judge_router.upstream.redact import Redactor
from judge_router.upstream.redis_breaker import RedisBreaker
from judge_router.upstream.transports import Transports


@dataclass(slots=True)
class Links:
    """The Redis connections of one engine: one per URL (cache and state usually share it)."""

    settings: Settings
    by_url: dict[str, RedisLink] = field(default_factory=dict)

    def get(self, url: str | None, password: str | None, use: str) -> RedisLink:
        assert url is not None  # the config requires the URL with the redis backend
        link = self.by_url.get(url)
        if link is None:
            link = self.by_url[url] = RedisLink(url, password, use)
        elif use not in link.uses:
            link.uses = sorted([*link.uses, use])
        return link

    def cache(self) -> RedisLink:
        cache = self.settings.cache
        return self.get(cache.redis_url, cache.redis_password, "cache")

    def state(self) -> RedisLink:
        state = self.settings.state
        return self.get(state.redis_url, state.redis_password, "state")


def _postgres_ledger(settings: Settings) -> Ledger:
    try:
        from judge_router.accounting.postgres_ledger import PostgresLedger
    except ImportError:  # pragma: no cover - the extra is part of dev
        raise ConfigError(
            "ledger.url needs the PostgreSQL client: pip install 'judge-router[postgres]'"
        ) from None

    ledger = settings.ledger
    assert ledger.url is not None
    # One recovery file per replica, on its own disk: beside where the SQLite ledger would be.
    recovery = ledger.recovery_path or ledger.path.with_name("ledger.postgresql.pending.jsonl")
    return PostgresLedger(
        ledger.url, ledger.pool_size, ledger.max_pending_rows, recovery_path=recovery
    )


VERDICT_STORES: dict[str, Callable[[Settings, Links], VerdictStore]] = {
    "disk": lambda s, links: DiskVerdictStore(s.cache.dir, s.cache.ttl_s),
    "redis": lambda s, links: RedisVerdictStore(links.cache(), s.cache.ttl_s, s.cache.lock_s),
}
LEDGERS: dict[str, Callable[[Settings], Ledger]] = {
    "sqlite": lambda s: SqliteLedger(
        s.ledger.path, s.ledger.max_pending_rows, recovery_path=s.ledger.recovery_path
    ),
    "postgresql": _postgres_ledger,
}
# scope: which breaker it is (judge, models, shadow), so shared ones keep apart.
BREAKERS: dict[str, Callable[[CircuitBreakerConfig, Links, str], Breaker]] = {
    "memory": lambda config, links, scope: MemoryBreaker(config),
    "redis": lambda config, links, scope: RedisBreaker(links.state(), config, scope),
}
SPEND_COUNTERS: dict[str, Callable[[Links], SharedSpend | None]] = {
    "memory": lambda links: None,  # each replica counts its own rows and reads its ledger
    "redis": lambda links: RedisSpend(links.state()),
}
RATE_LIMITERS: dict[str, Callable[[int, Links], RateLimiter]] = {
    "memory": lambda per_minute, links: MemoryRateLimiter(per_minute),
    "redis": lambda per_minute, links: RedisRateLimiter(links.state(), per_minute),
}


@dataclass(frozen=True, slots=True)
class StrategyParts:
    """What a strategy is built from; the pipeline gives a tier's models."""

    settings: Settings
    models: ModelChain
    pipeline: DecisionPipeline
    pricer: Pricer
    call: StructuredCaller  # the grader's, for a cascade that grades


def cascade_strategy(parts: StrategyParts) -> CascadeStrategy:
    settings = parts.settings
    grades = settings.cascade.grader_min_score is not None
    grader = Grader(settings.grader, parts.call) if grades else None
    return CascadeStrategy(settings, parts.models, parts.pipeline.models_for, parts.pricer, grader)


# Every one is built: routing.strategy is the default, and a rule or a request may name another.
STRATEGIES: dict[str, Callable[[StrategyParts], AnswerStrategy]] = {
    "direct": lambda p: DirectStrategy(p.settings, p.models, p.pipeline.models_for),
    "cascade": cascade_strategy,
}


def verdict_store(settings: Settings, links: Links | None = None) -> VerdictStore:
    cache = settings.cache
    if not cache.enabled:
        return NoVerdictStore()
    store = VERDICT_STORES[cache.backend](settings, links or Links(settings))
    return MemoryLayer(store, cache.memory_entries) if cache.memory_entries else store


def shared_flight(verdicts: VerdictStore) -> SharedFlight | None:
    """The store's one flight across replicas, if it is a shared (Redis) store."""
    inner = verdicts.store if isinstance(verdicts, MemoryLayer) else verdicts
    return inner if isinstance(inner, RedisVerdictStore) else None


def build_engine(
    settings: Settings,
    *,
    judges: Sequence[Judge] | None = None,
    verdicts: VerdictStore | None = None,
    ledger: Ledger | None = None,
    model_breaker: Breaker | None = None,
    judge_breaker: Breaker | None = None,
    rate_limiter: RateLimiter | None = None,
    clock: Clock = utc_now,
) -> Engine:
    """The engine for `settings`; raises ConfigError (e.g. for an unpriced model). `clock`: the
    budgets' and the background work's daily limits (tests move it across a month or a day)."""
    state = settings.state.backend or "memory"
    pricer = Pricer(settings)  # raises ConfigError for unpriced models, before anything is opened
    links = Links(settings)
    redact = Redactor(settings.secrets())
    judge_breaker = judge_breaker or BREAKERS[state](settings.judge.circuit_breaker, links, "judge")
    structured = StructuredCaller(pricer, redact)  # the judge's and the cascade grader's calls
    if judges is None:
        chain = build_judges(settings.judge, structured, judge_breaker)
    else:
        judge = settings.judge
        chain = JudgeChain(judges, judge.on_failure, judge_breaker, judge.model)
    model_breaker = model_breaker or BREAKERS[state](
        settings.routing.circuit_breaker, links, "models"
    )
    per_minute = settings.server.rate_limit_per_minute
    if rate_limiter is None and per_minute:
        rate_limiter = RATE_LIMITERS[state](per_minute, links)
    # One pooled HTTP client for every direct model; ConfigError for a `transport: direct` model
    # that does not qualify.
    transports = Transports(settings)
    models = ModelChain(model_breaker, redact, transports)
    ledger = ledger or LEDGERS[settings.ledger.backend or "sqlite"](settings)
    # Shadow candidates get their own breaker: their failures never open a live model's circuit.
    shadow_breaker = BREAKERS[state](settings.routing.circuit_breaker, links, "shadow")
    shadow_models = ModelChain(shadow_breaker, redact, transports)
    quality = build_quality_loop(settings, pricer, redact, ledger, shadow_models, clock)
    verdicts = verdicts or verdict_store(settings, links)
    spend = SPEND_COUNTERS[state](links) if settings.budgets else None
    parts = EngineParts(
        pricer=pricer,
        judges=chain,
        verdicts=verdicts,
        ledger=ledger,
        model_breaker=model_breaker,
        rate_limiter=rate_limiter,
        strategies=lambda pipeline: {
            name: build(StrategyParts(settings, models, pipeline, pricer, structured))
            for name, build in STRATEGIES.items()
        },
        clock=clock,
        quality=quality,
        shared_flight=shared_flight(verdicts),
        shared_spend=spend,
        redis=list(links.by_url.values()),  # every link made above
        close_upstream=transports.aclose,
    )
    return Engine(settings, parts)
