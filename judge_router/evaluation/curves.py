"""RouteLLM's threshold sweep, as pure maths: a score per row routes it to the strong model when the
score is at least a threshold, and sweeping the threshold traces quality against strong-call share.

Two-model routing between two rungs of the ladder (by default its cheapest and its strongest). A
group of rows with equal scores moves to the strong model at one threshold; the straight line between
two points of the curve is what breaking those ties at random would give on average, so every
measure reads the curve linearly interpolated between its points (as RouteLLM's `np.interp` and
`np.trapz` do).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from judge_router.evaluation.scores import Outcomes
from judge_router.types import TIER_ORDER, Tier

CPT_LEVELS = (0.5, 0.8)  # RouteLLM's "% strong calls for 50% / 80% of the quality gap"
KEPT_QUALITY = 0.95  # the target: 95% of the strongest model's quality...
AT_COST_SHARE = 0.5  # ... at no more than half of its cost


@dataclass(frozen=True, slots=True)
class CurvePoint:
    threshold: float | None  # rows scoring at least this go to the strong model; None: no row does
    strong_share: float  # share of rows sent to the strong model
    quality: float  # mean score of the models the rows were sent to
    cost_usd: float  # total cost of those calls


@dataclass(frozen=True, slots=True)
class Curve:
    """Points from no strong call (share 0) to every row strong (share 1), in that order."""

    points: tuple[CurvePoint, ...]
    weak_quality: float
    strong_quality: float
    strong_cost_usd: float  # every row on the strong model: what `cost_share` is relative to

    def pgr(self, quality: float) -> float | None:
        """Performance gap recovered: (q - q_weak) / (q_strong - q_weak); None when there is none."""
        gap = self.strong_quality - self.weak_quality
        return (quality - self.weak_quality) / gap if gap else None

    def cost_share(self, point: CurvePoint) -> float | None:
        return point.cost_usd / self.strong_cost_usd if self.strong_cost_usd else None


def sweep(
    scores: Sequence[float],
    rows: Sequence[Outcomes],
    weak: Tier = TIER_ORDER[0],
    strong: Tier = TIER_ORDER[-1],
) -> Curve:
    """The curve of `score >= t` for every observed score t (and one above them all)."""
    if len(scores) != len(rows):
        raise ValueError(f"{len(scores)} scores but {len(rows)} rows")
    if not rows:
        raise ValueError("no rows to sweep")
    n = len(rows)
    quality = sum(row[weak].score for row in rows)
    cost = sum(row[weak].cost_usd for row in rows)
    points = [CurvePoint(None, 0.0, quality / n, cost)]
    order = sorted(range(n), key=lambda i: scores[i], reverse=True)
    strong_rows = 0
    for position, index in enumerate(order):
        row = rows[index]
        quality += row[strong].score - row[weak].score
        cost += row[strong].cost_usd - row[weak].cost_usd
        strong_rows += 1
        last_of_tie = position + 1 == n or scores[order[position + 1]] != scores[index]
        if last_of_tie:  # a threshold sends all the rows that share a score, or none of them
            points.append(CurvePoint(float(scores[index]), strong_rows / n, quality / n, cost))
    return Curve(
        tuple(points),
        weak_quality=points[0].quality,
        strong_quality=points[-1].quality,
        strong_cost_usd=points[-1].cost_usd,
    )


def apgr(curve: Curve) -> float | None:
    """Average PGR over the strong-call share from 0 to 1 (the area under PGR against it)."""
    gap = curve.strong_quality - curve.weak_quality
    if not gap:
        return None
    area = 0.0
    for left, right in zip(curve.points, curve.points[1:], strict=False):
        mean_quality = (left.quality + right.quality) / 2
        area += (right.strong_share - left.strong_share) * (mean_quality - curve.weak_quality)
    return area / gap


def _crossing(start: float, end: float, target: float) -> float | None:
    """Where, as a fraction of the way from `start` to `end`, a straight line first reaches `target`
    (from below); None when it does not."""
    if start >= target:
        return 0.0
    if end < target:
        return None
    return (target - start) / (end - start)


def cpt(curve: Curve, level: float) -> float | None:
    """Call-performance threshold: the least strong-call share at which the interpolated curve
    recovers `level` of the quality gap (PGR >= level); None when the gap is zero or never reached."""
    if curve.pgr(curve.weak_quality) is None:
        return None
    target = curve.weak_quality + level * (curve.strong_quality - curve.weak_quality)
    for left, right in zip(curve.points, curve.points[1:], strict=False):
        along = _crossing(left.quality, right.quality, target)
        if along is not None:
            return left.strong_share + along * (right.strong_share - left.strong_share)
    return None


def least_cost_share(curve: Curve, kept: float = KEPT_QUALITY) -> float | None:
    """The least cost (a share of always-strong's) at which the interpolated curve keeps `kept` of
    the strong model's quality; None when no point of it does. On a segment the quality and the
    cost are both straight lines, so the least cost lies at a point or where the target is crossed."""
    if not curve.strong_cost_usd:
        return None
    target = kept * curve.strong_quality
    best: float | None = None
    segments = zip(curve.points, curve.points[1:], strict=False)
    for left, right in segments:
        candidates = []
        if left.quality >= target:
            candidates.append(left.cost_usd)
        if right.quality >= target:
            candidates.append(right.cost_usd)
        if (left.quality < target) != (right.quality < target):
            along = (target - left.quality) / (right.quality - left.quality)
            candidates.append(left.cost_usd + along * (right.cost_usd - left.cost_usd))
        for cost in candidates:
            best = cost if best is None else min(best, cost)
    if len(curve.points) == 1 and curve.points[0].quality >= target:
        best = curve.points[0].cost_usd
    return None if best is None else best / curve.strong_cost_usd


def best_quality_within(curve: Curve, cost_share: float = AT_COST_SHARE) -> float | None:
    """The best quality the interpolated curve reaches at a cost of at most `cost_share` of
    always-strong's; None when even its cheapest point costs more."""
    budget = cost_share * curve.strong_cost_usd
    best: float | None = None
    for left, right in zip(curve.points, curve.points[1:], strict=False):
        candidates = [p.quality for p in (left, right) if p.cost_usd <= budget]
        if (left.cost_usd <= budget) != (right.cost_usd <= budget):
            along = (budget - left.cost_usd) / (right.cost_usd - left.cost_usd)
            candidates.append(left.quality + along * (right.quality - left.quality))
        for quality in candidates:
            best = quality if best is None else max(best, quality)
    if len(curve.points) == 1 and curve.points[0].cost_usd <= budget:
        best = curve.points[0].quality
    return best


def curve_summary(curve: Curve) -> dict[str, Any]:
    """The curve's measures and points as plain data (the eval report's and the benchmark's)."""
    kept = best_quality_within(curve)
    return {
        "apgr": apgr(curve),
        **{f"cpt_{round(level * 100)}": cpt(curve, level) for level in CPT_LEVELS},
        "least_cost_share_for_95pct_quality": least_cost_share(curve),
        "best_quality_kept_at_half_cost": (
            kept / curve.strong_quality if kept is not None and curve.strong_quality else None
        ),
        "points": [
            {
                "threshold": p.threshold,
                "strong_share": p.strong_share,
                "quality": p.quality,
                "pgr": curve.pgr(p.quality),
                "cost_share": curve.cost_share(p),
            }
            for p in curve.points
        ],
    }
