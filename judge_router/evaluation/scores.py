"""Pure metrics for `judge-router eval`: verdicts against labels, baselines, and routing quality."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from judge_router.types import TIER_ORDER, Tier

CORRECT_AT = 0.5  # a score at or above this counts as a correct answer (RouterBench scores are 0/1)


@dataclass(frozen=True, slots=True)
class TierScores:
    precision: float  # of the rows given this tier, the share that truly are it (0 if none given)
    recall: float  # of the rows truly this tier, the share given it (0 if none are)
    f1: float
    support: int  # rows truly this tier
    predicted: int  # rows given this tier


@dataclass(frozen=True, slots=True)
class Classification:
    n: int
    accuracy: float
    macro_f1: float  # mean F1 over the tiers present in the labels or the verdicts
    per_tier: dict[Tier, TierScores]
    confusion: list[list[int]]  # confusion[true rank][verdict rank]
    under_routing: float  # verdict below the true tier: a quality risk
    over_routing: float  # verdict above the true tier: money spent for nothing

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["per_tier"] = {tier.value: asdict(s) for tier, s in self.per_tier.items()}
        return data


def confusion_matrix(truth: Sequence[Tier], predicted: Sequence[Tier]) -> list[list[int]]:
    """3x3 counts; rows are the true tier, columns the verdict, both low -> high."""
    if len(truth) != len(predicted):
        raise ValueError(f"{len(truth)} labels but {len(predicted)} verdicts")
    matrix = [[0] * len(TIER_ORDER) for _ in TIER_ORDER]
    for true, given in zip(truth, predicted, strict=True):
        matrix[true.rank][given.rank] += 1
    return matrix


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def classify(truth: Sequence[Tier], predicted: Sequence[Tier]) -> Classification:
    """Accuracy, macro-F1, per-tier precision/recall, confusion and under-/over-routing rates."""
    matrix = confusion_matrix(truth, predicted)
    n = len(truth)
    if n == 0:
        raise ValueError("no rows to score")
    per_tier = {}
    for tier in TIER_ORDER:
        hits = matrix[tier.rank][tier.rank]
        support = sum(matrix[tier.rank])
        given = sum(row[tier.rank] for row in matrix)
        precision, recall = _ratio(hits, given), _ratio(hits, support)
        f1 = _ratio(2 * precision * recall, precision + recall)
        per_tier[tier] = TierScores(precision, recall, f1, support, given)
    present = [s.f1 for s in per_tier.values() if s.support or s.predicted]
    under = sum(matrix[t][p] for t in range(3) for p in range(3) if p < t)
    over = sum(matrix[t][p] for t in range(3) for p in range(3) if p > t)
    return Classification(
        n=n,
        accuracy=sum(matrix[i][i] for i in range(3)) / n,
        macro_f1=sum(present) / len(present),
        per_tier=per_tier,
        confusion=matrix,
        under_routing=under / n,
        over_routing=over / n,
    )


def tercile_thresholds(tokens: Sequence[int]) -> tuple[int, int]:
    """Cut points of the length-only baseline: the token counts at ranks n/3 and 2n/3 (sorted)."""
    if not tokens:
        raise ValueError("no rows to fit")
    ordered = sorted(tokens)
    return ordered[len(ordered) // 3], ordered[2 * len(ordered) // 3]


def length_tiers(tokens: Sequence[int], thresholds: tuple[int, int]) -> list[Tier]:
    """low below the first cut point, high from the second on, medium between."""
    low_below, high_from = thresholds
    return [
        Tier.LOW if count < low_below else Tier.HIGH if count >= high_from else Tier.MEDIUM
        for count in tokens
    ]


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) with linear interpolation between ranks, as numpy's default."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


# -- routing quality on per-model outcomes (RouterBench-style) ------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one ladder model did on one prompt: its score (1 = correct) and what the call cost."""

    score: float
    cost_usd: float

    @property
    def correct(self) -> bool:
        return self.score >= CORRECT_AT


Outcomes = Mapping[Tier, Outcome]


def oracle_tiers(rows: Sequence[Outcomes]) -> list[Tier]:
    """Per row, the cheapest (lowest) rung that is correct; the cheapest rung when none is."""
    return [
        next((tier for tier in TIER_ORDER if outcomes[tier].correct), TIER_ORDER[0])
        for outcomes in rows
    ]


@dataclass(frozen=True, slots=True)
class RoutedRun:
    """One way of sending every row to a rung, and how it compares with the ladder's ends."""

    quality: float  # mean score of the models the rows were sent to
    cost_usd: float  # total cost of those calls
    cost_per_query_usd: float
    strong_calls: float  # share of rows sent to the top rung ("% strong calls" in RouteLLM)
    quality_kept: float | None  # quality / always-strongest quality
    cost_share: float | None  # cost / always-strongest cost
    pgr: float | None  # (quality - cheapest) / (strongest - cheapest): RouteLLM's PGR
    cost_position: float | None  # (cost - cheapest) / (strongest - cheapest)
    mix_cost_at_equal_quality_usd: float | None  # cost of a random cheapest/strongest mix as good
    cost_share_at_equal_quality: float | None  # cost / that mix's cost (< 1: beats a random mix)


def _totals(rows: Sequence[Outcomes], tiers: Sequence[Tier]) -> tuple[float, float]:
    if len(rows) != len(tiers):
        raise ValueError(f"{len(rows)} rows but {len(tiers)} tiers")
    if not rows:
        raise ValueError("no rows to score")
    picked = [outcomes[tier] for outcomes, tier in zip(rows, tiers, strict=True)]
    return sum(o.score for o in picked) / len(picked), sum(o.cost_usd for o in picked)


def routed_run(rows: Sequence[Outcomes], tiers: Sequence[Tier]) -> RoutedRun:
    """Quality and cost of sending row i to `tiers[i]`, against always-cheapest and always-strongest.

    The mix at equal quality is the straight line between always-cheapest and always-strongest
    (sending a random share p of rows to the strongest): it reaches quality q at
    p = PGR(q), costing cheapest + p * (strongest - cheapest). A quality at or below the cheapest's
    costs the cheapest's; one above the strongest's no mix reaches (None).
    """
    quality, cost = _totals(rows, tiers)
    weak_q, weak_c = _totals(rows, [TIER_ORDER[0]] * len(rows))
    strong_q, strong_c = _totals(rows, [TIER_ORDER[-1]] * len(rows))
    pgr = (quality - weak_q) / (strong_q - weak_q) if strong_q != weak_q else None
    mix: float | None
    if quality <= weak_q:
        mix = weak_c
    elif quality > strong_q or pgr is None:
        mix = None
    else:
        mix = weak_c + pgr * (strong_c - weak_c)
    return RoutedRun(
        quality=quality,
        cost_usd=cost,
        cost_per_query_usd=cost / len(rows),
        strong_calls=sum(1 for t in tiers if t is TIER_ORDER[-1]) / len(tiers),
        quality_kept=quality / strong_q if strong_q else None,
        cost_share=cost / strong_c if strong_c else None,
        pgr=pgr,
        cost_position=(cost - weak_c) / (strong_c - weak_c) if strong_c != weak_c else None,
        mix_cost_at_equal_quality_usd=mix,
        cost_share_at_equal_quality=cost / mix if mix else None,
    )
