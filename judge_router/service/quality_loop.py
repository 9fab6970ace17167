"""The quality loop: shadow tests and quality sampling, told of every answered request.

Built by build_engine when `shadow:` has entries or `quality.sample_pct` is above 0, registered
as an answer observer, started and stopped with the engine. `observe` only decides and queues
(a hash or two per request); every provider call happens on bounded background work.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from judge_router.accounting.ledger import Ledger
from judge_router.config import Settings
from judge_router.quality.background import BackgroundWork, Clock, DailyLimit, day_start
from judge_router.quality.grader import Grader
from judge_router.quality.sampling import QualitySampler
from judge_router.quality.shadow import SOURCE as SHADOW_SOURCE
from judge_router.quality.shadow import ShadowRunner
from judge_router.service.answering import Answered
from judge_router.upstream.judge_call import StructuredCaller
from judge_router.upstream.model_chain import ModelChain
from judge_router.upstream.prices import Pricer
from judge_router.upstream.redact import Redactor

log = logging.getLogger(__name__)

SAMPLE_WORK = "sample"


@dataclass(frozen=True, slots=True)
class WorkReading:
    """One queue of background work, as /metrics shows it."""

    work: str  # `sample`, or `shadow:<candidate model>`
    done: int
    dropped: dict[str, int]  # reason -> jobs
    spent_usd: float  # since the process started
    queued: int


@dataclass(frozen=True, slots=True)
class QualityReadings:
    """The rolling means (1-10) and the background work's counts, read when /metrics is scraped."""

    tier_scores: dict[str, tuple[float, int]] = field(default_factory=dict)
    model_scores: dict[tuple[str, str], tuple[float, int]] = field(default_factory=dict)
    work: list[WorkReading] = field(default_factory=list)


class QualityLoop:
    def __init__(
        self,
        settings: Settings,
        models: ModelChain,
        pricer: Pricer,
        call: StructuredCaller,
        ledger: Ledger,
        clock: Clock,
    ):
        self.ledger = ledger
        self.shadows: list[ShadowRunner] = []
        timeout_s = settings.routing.upstream_timeout_s
        grader = Grader(settings.grader, call) if any(t.grade for t in settings.shadow) else None
        for test in settings.shadow:
            work = BackgroundWork(
                f"shadow:{test.name}",
                test.max_queued,
                test.max_concurrent,
                DailyLimit(test.max_usd_per_day, clock),
            )
            runner = ShadowRunner(
                test, models, pricer, grader, work, ledger.record_outcome, timeout_s
            )
            self.shadows.append(runner)
        quality = settings.quality
        self.sampler: QualitySampler | None = None
        if quality.sample_pct > 0:
            work = BackgroundWork(
                SAMPLE_WORK,
                quality.max_queued,
                quality.max_concurrent,
                DailyLimit(quality.max_usd_per_day, clock),
            )
            sample_grader = Grader(quality.grader or settings.grader, call)
            self.sampler = QualitySampler(quality, sample_grader, work, ledger.record_outcome)
        self._started = False
        self.works = [runner.work for runner in self.shadows]
        if self.sampler is not None:
            self.works.append(self.sampler.work)

    def observe(self, answered: Answered) -> None:
        """The answer observer: queue what this request is picked for; returns at once."""
        decision = answered.decision
        for runner in self.shadows:
            runner.offer(decision, answered.params, answered.model, answered.text)
        if self.sampler is not None:
            messages = answered.params.get("messages") or []
            self.sampler.offer(
                decision.request_id, decision.tier.value, answered.model, messages, answered.text
            )

    async def start(self) -> None:
        """Count what today's outcome rows already spent (a restart keeps the day's limit), then
        start the workers. Once only, and before any job (after one, this process's own count
        already holds what it spent)."""
        if self._started:
            return
        self._started = True
        if not any(work.started for work in self.works):
            await self._read_todays_spend()
        for work in self.works:
            work.start()

    async def _read_todays_spend(self) -> None:
        works = self.works
        if not works:
            return
        today = works[0].limit.today()
        try:
            rows = await self.ledger.outcomes(since=day_start(today).isoformat())
        except Exception as exc:  # the limits then count from 0, as a fresh process would
            log.warning("could not read today's background spend from the ledger: %s", exc)
            return
        by_candidate = {runner.candidate: runner.work for runner in self.shadows}
        for row in rows:
            spent = float(row.get("answer_cost_usd") or 0) + float(row.get("grader_cost_usd") or 0)
            if row.get("source") == SHADOW_SOURCE and row.get("model") in by_candidate:
                by_candidate[row["model"]].limit.add(spent)
            elif row.get("source") == "sample" and self.sampler is not None:
                self.sampler.work.limit.add(spent)

    async def idle(self) -> None:
        """Wait until every comparison and grade queued so far has ended."""
        for work in self.works:
            await work.idle()

    async def aclose(self) -> None:
        for work in self.works:
            await work.aclose()

    def readings(self) -> QualityReadings:
        scores = self.sampler.scores if self.sampler is not None else None
        return QualityReadings(
            tier_scores=scores.by_tier() if scores is not None else {},
            model_scores=scores.by_model() if scores is not None else {},
            work=[
                WorkReading(w.name, w.done, dict(w.dropped), w.spent_usd, w.queued)
                for w in self.works
            ],
        )


def build_quality_loop(
    settings: Settings,
    pricer: Pricer,
    redact: Redactor,
    ledger: Ledger,
    models: ModelChain,
    clock: Clock,
) -> QualityLoop | None:
    """The loop for `settings`, or None when neither shadow tests nor sampling are configured.

    `models`: the shadow candidates' chain, with a breaker of its own so their failures never open
    a live model's circuit.
    """
    if not settings.shadow and settings.quality.sample_pct <= 0:
        return None
    return QualityLoop(settings, models, pricer, StructuredCaller(pricer, redact), ledger, clock)
