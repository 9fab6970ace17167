"""The paired bootstrap of evaluation/intervals.py: a clear difference is settled, noise is not,
undefined resamples are skipped, and the draw is repeatable."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from judge_router.evaluation.intervals import paired_bootstrap


def mean_gap(a: Sequence[float], b: Sequence[float]) -> Callable[[Sequence[int]], float]:
    def gap(indices: Sequence[int]) -> float:
        return sum(a[i] - b[i] for i in indices) / len(indices)

    return gap


def test_a_router_better_on_every_row_is_settled_ahead() -> None:
    a = [1.0 + (i % 3) for i in range(60)]
    b = [x - 0.5 for x in a]

    interval = paired_bootstrap(mean_gap(a, b), len(a), draws=200)

    assert interval is not None
    assert interval.difference == pytest.approx(0.5)
    assert interval.low == pytest.approx(0.5) and interval.high == pytest.approx(0.5)
    assert interval.wins == 1.0 and interval.settled


def test_a_difference_that_is_noise_is_not_settled() -> None:
    # Ahead on half the rows by as much as behind on the other half: the sign is the draw's.
    a = [1.0 if i % 2 else 0.0 for i in range(100)]
    b = [0.0 if i % 2 else 1.0 for i in range(100)]

    interval = paired_bootstrap(mean_gap(a, b), len(a), draws=400, seed=3)

    assert interval is not None
    assert interval.difference == pytest.approx(0.0)
    assert interval.low < 0 < interval.high and not interval.settled
    assert 0.3 < interval.wins < 0.7


def test_the_interval_narrows_as_rows_grow() -> None:
    def widths(rows: int) -> float:
        a = [float(i % 5) for i in range(rows)]
        b = [float((i * 7) % 5) for i in range(rows)]
        found = paired_bootstrap(mean_gap(a, b), rows, draws=300, seed=1)
        assert found is not None
        return found.high - found.low

    assert widths(800) < widths(50) / 2


def test_resamples_where_the_difference_is_undefined_are_skipped() -> None:
    def gap(indices: Sequence[int]) -> float | None:
        return None if 0 not in indices else 1.0  # undefined without row 0

    interval = paired_bootstrap(gap, 3, draws=300, seed=5)

    assert interval is not None
    assert 0 < interval.draws < 300  # about 70% of three-row draws hold row 0
    assert paired_bootstrap(lambda indices: None, 3, draws=10) is None


def test_the_same_seed_draws_the_same_interval() -> None:
    a = [float((i * 13) % 7) for i in range(40)]
    b = [float((i * 5) % 7) for i in range(40)]

    first = paired_bootstrap(mean_gap(a, b), 40, draws=100, seed=9)
    again = paired_bootstrap(mean_gap(a, b), 40, draws=100, seed=9)
    other = paired_bootstrap(mean_gap(a, b), 40, draws=100, seed=10)

    assert first == again
    assert first != other


@pytest.mark.parametrize(("rows", "draws", "level"), [(0, 10, 0.95), (5, 0, 0.95), (5, 10, 1.0)])
def test_impossible_settings_are_refused(rows: int, draws: int, level: float) -> None:
    with pytest.raises(ValueError, match="need"):
        paired_bootstrap(lambda indices: 0.0, rows, draws=draws, level=level)
