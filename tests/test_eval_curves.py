"""The threshold sweep's maths (evaluation/curves.py) on rows small enough to check by hand:
the curve's points, APGR, CPT, the least cost for 95% quality and the best quality at half cost."""

from __future__ import annotations

import pytest

from judge_router.evaluation.curves import (
    apgr,
    best_quality_within,
    cpt,
    curve_summary,
    least_cost_share,
    sweep,
)
from judge_router.evaluation.scorers import oracle_scores, random_scores
from judge_router.evaluation.scores import Outcome, Outcomes
from judge_router.types import Tier


def rows(*pairs: tuple[float, float]) -> list[Outcomes]:
    """One row per (weak score, strong score); a weak call costs 1, a strong one 10."""
    return [
        {
            Tier.LOW: Outcome(weak, 1.0),
            Tier.MEDIUM: Outcome(weak, 2.0),
            Tier.HIGH: Outcome(strong, 10.0),
        }
        for weak, strong in pairs
    ]


# A: only the strong model is right; B: both; C: only the strong; D: neither.
# q_weak = 1/4, q_strong = 3/4: a gap of 1/2. Always weak costs 4, always strong 40.
FOUR = rows((0, 1), (1, 1), (0, 1), (0, 0))
SCORES = [0.9, 0.5, 0.5, 0.1]  # A first, then B and C together (a tie), D last


def test_the_sweep_moves_tied_rows_together_from_no_strong_call_to_all() -> None:
    curve = sweep(SCORES, FOUR)
    got = [(p.threshold, p.strong_share, p.quality, p.cost_usd) for p in curve.points]
    assert got == [
        (None, 0.0, 0.25, 4.0),  # every row on the weak model
        (0.9, 0.25, 0.5, 13.0),  # A: +1 right, +9 cost
        (0.5, 0.75, 0.75, 31.0),  # B (no gain) and C (+1) at once
        (0.1, 1.0, 0.75, 40.0),  # D: no gain
    ]
    assert (curve.weak_quality, curve.strong_quality, curve.strong_cost_usd) == (0.25, 0.75, 40.0)
    assert [curve.pgr(p.quality) for p in curve.points] == [0.0, 0.5, 1.0, 1.0]


def test_apgr_is_the_area_under_pgr_against_strong_call_share() -> None:
    # Trapezoids: 0.25 * (0 + 0.5) / 2 + 0.5 * (0.5 + 1) / 2 + 0.25 * (1 + 1) / 2
    assert apgr(sweep(SCORES, FOUR)) == pytest.approx(0.0625 + 0.375 + 0.25)


def test_cpt_is_the_least_strong_call_share_recovering_the_gap_share() -> None:
    curve = sweep(SCORES, FOUR)
    assert cpt(curve, 0.5) == pytest.approx(0.25)  # reached at a point
    # Between (0.25, PGR 0.5) and (0.75, PGR 1): PGR 0.8 is 60% of the way along.
    assert cpt(curve, 0.8) == pytest.approx(0.25 + 0.6 * 0.5)
    assert cpt(curve, 0.0) == 0.0


def test_the_least_cost_for_95pct_quality_and_the_best_quality_at_half_cost() -> None:
    curve = sweep(SCORES, FOUR)
    # 95% of 0.75 = 0.7125 is crossed between (13, 0.5) and (31, 0.75), 85% of the way: 28.3.
    assert least_cost_share(curve) == pytest.approx(28.3 / 40)
    # Half of always-strong's cost, 20, lies 7/18 of the way from 13 to 31.
    assert best_quality_within(curve, 0.5) == pytest.approx(0.5 + 7 / 18 * 0.25)
    assert best_quality_within(curve, 0.05) is None  # even no strong call costs 10% of it
    summary = curve_summary(curve)
    assert summary["best_quality_kept_at_half_cost"] == pytest.approx((0.5 + 7 / 72) / 0.75)
    assert summary["cpt_80"] == pytest.approx(0.55) and len(summary["points"]) == 4


def test_a_score_that_tells_nothing_draws_the_random_line() -> None:
    curve = sweep([1.0] * 4, FOUR)  # one tie: no strong call, then all of them
    assert [p.strong_share for p in curve.points] == [0.0, 1.0]
    assert apgr(curve) == pytest.approx(0.5)
    assert cpt(curve, 0.8) == pytest.approx(0.8)


def test_the_oracle_order_is_the_best_and_the_reverse_the_worst() -> None:
    data = rows((0, 1), (1, 1), (0, 1), (0, 0), (1, 0), (0, 1))
    oracle = oracle_scores(data)
    best = apgr(sweep(oracle, data))
    worst = apgr(sweep([-s for s in oracle], data))
    assert best is not None and worst is not None
    for seed in range(5):
        drawn = apgr(sweep(random_scores(len(data), seed), data))
        assert drawn is not None and worst <= drawn <= best
    assert best > 0.5 > worst


def test_a_gap_of_zero_has_no_pgr_measures() -> None:
    same = rows((1, 1), (0, 0))
    curve = sweep([0.2, 0.7], same)
    assert apgr(curve) is None and cpt(curve, 0.5) is None
    assert least_cost_share(curve) is not None  # always weak already keeps its quality


def test_scores_and_rows_must_pair_up() -> None:
    with pytest.raises(ValueError, match="3 scores but 4 rows"):
        sweep([0.1, 0.2, 0.3], FOUR)
    with pytest.raises(ValueError, match="no rows"):
        sweep([], [])


def test_the_weak_and_strong_rungs_can_be_chosen() -> None:
    curve = sweep(SCORES, FOUR, weak=Tier.MEDIUM)
    assert curve.points[0].cost_usd == 8.0 and curve.strong_cost_usd == 40.0
