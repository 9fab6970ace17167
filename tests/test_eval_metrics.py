"""Eval metrics on cases small enough to check by hand."""

from __future__ import annotations

import pytest

from judge_router.evaluation.scores import (
    Outcome,
    classify,
    confusion_matrix,
    length_tiers,
    oracle_tiers,
    percentile,
    routed_run,
    tercile_thresholds,
)
from judge_router.types import Tier

L, M, H = Tier.LOW, Tier.MEDIUM, Tier.HIGH


def test_confusion_rows_are_labels_and_columns_verdicts() -> None:
    assert confusion_matrix([L, M, H, H], [M, M, L, H]) == [[0, 1, 0], [0, 1, 0], [1, 0, 1]]
    with pytest.raises(ValueError):
        confusion_matrix([L], [])


def test_classification_by_hand() -> None:
    # labels L L M M H H, verdicts L M M L H L
    result = classify([L, L, M, M, H, H], [L, M, M, L, H, L])
    assert result.confusion == [[1, 1, 0], [1, 1, 0], [1, 0, 1]]
    assert result.accuracy == pytest.approx(3 / 6)
    low, medium, high = (result.per_tier[t] for t in (L, M, H))
    assert (low.precision, low.recall, low.f1) == pytest.approx((1 / 3, 1 / 2, 0.4))
    assert (medium.precision, medium.recall, medium.f1) == pytest.approx((0.5, 0.5, 0.5))
    assert (high.precision, high.recall, high.f1) == pytest.approx((1.0, 0.5, 2 / 3))
    assert (low.support, low.predicted, high.predicted) == (2, 3, 1)
    assert result.macro_f1 == pytest.approx((0.4 + 0.5 + 2 / 3) / 3)
    assert result.under_routing == pytest.approx(2 / 6)  # M->L, H->L
    assert result.over_routing == pytest.approx(1 / 6)  # L->M


def test_macro_f1_averages_only_tiers_seen_and_empty_precision_is_zero() -> None:
    result = classify([L, L], [L, M])
    # low: P 1, R 1/2, F1 2/3; medium: never labelled, once given: F1 0; high: absent, not averaged
    assert result.per_tier[M].precision == 0 and result.per_tier[H].f1 == 0
    assert result.macro_f1 == pytest.approx((2 / 3 + 0) / 2)
    always_high = classify([L, M, H], [H, H, H])
    assert always_high.accuracy == pytest.approx(1 / 3)
    assert (always_high.under_routing, always_high.over_routing) == (0, pytest.approx(2 / 3))
    with pytest.raises(ValueError):
        classify([], [])


def test_length_baseline_terciles() -> None:
    tokens = [5, 1, 3, 2, 6, 4]
    assert tercile_thresholds(tokens) == (3, 5)  # sorted[6 // 3], sorted[2 * 6 // 3]
    assert length_tiers(tokens, (3, 5)) == [H, L, M, L, H, M]
    assert tercile_thresholds([7]) == (7, 7)
    assert length_tiers([7], (7, 7)) == [H]


def test_percentile_interpolates_like_numpy() -> None:
    assert percentile([4, 1, 3, 2], 50) == pytest.approx(2.5)
    assert percentile([1, 2, 3, 4], 95) == pytest.approx(3.85)
    assert percentile([], 50) is None


def _rows() -> list[dict[Tier, Outcome]]:
    # Rung costs $1 / $2 / $10. A: all right. B: only medium and high right. C: nobody right.
    def row(low: float, medium: float, high: float) -> dict[Tier, Outcome]:
        return {L: Outcome(low, 1.0), M: Outcome(medium, 2.0), H: Outcome(high, 10.0)}

    return [row(1, 1, 1), row(0, 1, 1), row(0, 1, 1), row(0, 0, 0)]


def test_oracle_takes_the_cheapest_correct_rung_and_the_cheapest_when_none_is() -> None:
    assert oracle_tiers(_rows()) == [L, M, M, L]
    oracle = routed_run(_rows(), oracle_tiers(_rows()))
    assert (oracle.quality, oracle.cost_usd) == (pytest.approx(3 / 4), pytest.approx(6.0))


def test_routed_run_against_the_ladder_ends() -> None:
    # always cheapest: quality 1/4, cost 4; always strongest: quality 3/4, cost 40
    run = routed_run(_rows(), [L, H, L, L])
    assert run.quality == pytest.approx(2 / 4)
    assert run.cost_usd == pytest.approx(13.0) and run.cost_per_query_usd == pytest.approx(3.25)
    assert run.strong_calls == pytest.approx(1 / 4)
    assert run.quality_kept == pytest.approx((2 / 4) / (3 / 4))
    assert run.cost_share == pytest.approx(13 / 40)
    assert run.pgr == pytest.approx(0.5)  # (1/2 - 1/4) / (3/4 - 1/4)
    assert run.cost_position == pytest.approx((13 - 4) / (40 - 4))
    # a random half-and-half mix of cheapest and strongest has the same quality for 4 + 0.5 * 36
    assert run.mix_cost_at_equal_quality_usd == pytest.approx(22.0)
    assert run.cost_share_at_equal_quality == pytest.approx(13 / 22)


def test_routed_run_edges() -> None:
    cheapest = routed_run(_rows(), [L] * 4)
    assert (cheapest.pgr, cheapest.cost_share_at_equal_quality) == (0, 1)
    strongest = routed_run(_rows(), [H] * 4)
    assert (strongest.pgr, strongest.strong_calls, strongest.cost_share) == (1, 1, 1)
    as_good_as_strongest = routed_run(_rows(), [L, M, M, L])
    assert as_good_as_strongest.mix_cost_at_equal_quality_usd == pytest.approx(40.0)
    medium_wins = [
        {L: Outcome(0, 1.0), M: Outcome(1, 2.0), H: Outcome(0, 3.0)},
        {L: Outcome(0, 1.0), M: Outcome(1, 2.0), H: Outcome(1, 3.0)},
    ]
    above = routed_run(medium_wins, [M, M])  # better than always-strongest: no mix reaches it
    assert above.pgr == pytest.approx(2.0) and above.mix_cost_at_equal_quality_usd is None
    assert above.cost_share_at_equal_quality is None
    flat = [{L: Outcome(1, 1.0), M: Outcome(1, 2.0), H: Outcome(1, 3.0)}]
    same_quality = routed_run(flat, [M])
    assert same_quality.pgr is None and same_quality.cost_share == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        routed_run(_rows(), [L])
