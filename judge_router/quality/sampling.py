"""Quality sampling: grade a share of live answers in the background, keep rolling means, alert.

Which requests are sampled is a pure function of the request id (`sampled`), so a share is the
same whichever worker serves it. Grades go to the ledger as outcome rows (source `sample`); the
rolling means (1-10, the grader's scale) feed /metrics and a log warning when a tier's mean falls
below `quality.alert_below`.
"""

from __future__ import annotations

import hashlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from judge_router.accounting.outcome_row import OutcomeRow, grade_score
from judge_router.config import QualityConfig
from judge_router.quality.background import BackgroundWork
from judge_router.quality.grader import Grade, Grader

log = logging.getLogger(__name__)

RecordOutcome = Callable[[OutcomeRow], Awaitable[bool]]
# A tier is alerted on only once its window holds this many grades (or the whole window, if
# smaller): one bad answer at start-up is not a trend.
ALERT_MIN_GRADES = 10


def share_point(key: str) -> int:
    """`key` hashed to a point in [0, 10000): a share of p percent is the points below p * 100."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % 10_000


def sampled(key: str, pct: float) -> bool:
    """Whether the request `key` (its id) is in a `pct` percent sample; the same answer every time."""
    return share_point(key) < pct * 100


class RollingScores:
    """Rolling means over the last `window` grades, per tier and per (tier, model); a warning
    when a tier's mean falls below `alert_below` (once per crossing: again only after it rose
    back to the line or above)."""

    def __init__(self, window: int, alert_below: float | None):
        self.window = window
        self.alert_below = alert_below
        self.min_grades = min(window, ALERT_MIN_GRADES)
        self._by_tier: dict[str, deque[int]] = {}
        self._by_model: dict[tuple[str, str], deque[int]] = {}
        self.alerting: set[str] = set()

    def _window(self) -> deque[int]:
        return deque(maxlen=self.window)

    def add(self, tier: str, model: str, grade: int) -> None:
        self._by_model.setdefault((tier, model), self._window()).append(grade)
        grades = self._by_tier.setdefault(tier, self._window())
        grades.append(grade)
        if self.alert_below is None or len(grades) < self.min_grades:
            return
        mean = sum(grades) / len(grades)
        if mean < self.alert_below and tier not in self.alerting:
            self.alerting.add(tier)
            log.warning(
                "quality alert: tier %s rolling mean score %.2f over the last %d grades is below "
                "quality.alert_below %s",
                tier, mean, len(grades), self.alert_below,
            )  # fmt: skip
        elif mean >= self.alert_below and tier in self.alerting:
            self.alerting.discard(tier)
            log.warning(
                "quality recovered: tier %s rolling mean score %.2f is back at or above %s",
                tier, mean, self.alert_below,
            )  # fmt: skip

    def by_tier(self) -> dict[str, tuple[float, int]]:
        """tier -> (mean grade, grades in the window)."""
        return {tier: _mean(grades) for tier, grades in self._by_tier.items()}

    def by_model(self) -> dict[tuple[str, str], tuple[float, int]]:
        """(tier, model) -> (mean grade, grades in the window)."""
        return {key: _mean(grades) for key, grades in self._by_model.items()}


def _mean(grades: deque[int]) -> tuple[float, int]:
    return sum(grades) / len(grades), len(grades)


class QualitySampler:
    """Offered every answered request; grades the sampled ones on its bounded background work."""

    def __init__(
        self,
        config: QualityConfig,
        grader: Grader,
        work: BackgroundWork,
        record: RecordOutcome,
    ):
        self.pct = config.sample_pct
        self.grader = grader
        self.work = work
        self.record = record
        self.scores = RollingScores(config.window, config.alert_below)

    def offer(
        self, request_id: str, tier: str, model: str, messages: list[dict[str, Any]], text: str
    ) -> None:
        """Queue a grade if the request is sampled (returns at once; the request moves on)."""
        if not sampled(request_id, self.pct):
            return

        async def job() -> float:
            return await self.grade(request_id, tier, model, messages, text)

        self.work.submit(job)

    async def grade(
        self, request_id: str, tier: str, model: str, messages: list[dict[str, Any]], text: str
    ) -> float:
        """Grade one answer, record its outcome row, update the means; the USD spent."""
        grade = await self.grader.grade(messages, text)
        if grade.score is not None:
            self.scores.add(tier, model, grade.score)
        await self.record(graded_outcome(request_id, "sample", tier, model, grade))
        return grade.cost_usd


def graded_outcome(
    request_id: str,
    source: str,
    tier: str,
    model: str,
    grade: Grade,
    grader_cost_usd: float | None = None,
    answer_cost_usd: float = 0.0,
) -> OutcomeRow:
    """The outcome row of a graded answer (`error` set when the grader failed)."""
    return OutcomeRow(
        request_id=request_id,
        source=source,
        model=model,
        tier=tier,
        score=None if grade.score is None else grade_score(grade.score),
        grade=grade.score,
        reason=grade.reason or None,
        grader_model=grade.grader_model,
        grader_prompt=grade.prompt,
        grader_cost_usd=grade.cost_usd if grader_cost_usd is None else grader_cost_usd,
        answer_cost_usd=answer_cost_usd,
        error=None if grade.error is None else f"grader {grade.error}",
    )
