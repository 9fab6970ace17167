"""Choosing the rows an eval judges: the first N, a seeded random N, and notes on those rows only."""

from __future__ import annotations

import pytest

from judge_router.evaluation.rows import EvalRow
from judge_router.evaluation.selection import row_notes, select_rows
from judge_router.types import TIER_ORDER, Tier


def sorted_rows(per_tier: int = 20) -> list[EvalRow]:
    """A file sorted by tier: its first `per_tier` rows are all low."""
    return [
        EvalRow(id=f"{tier.value}-{i}", messages=[{"role": "user", "content": "x"}], tier=tier)
        for tier in TIER_ORDER
        for i in range(per_tier)
    ]


def test_limit_takes_the_first_rows_and_says_how_many_of_the_file() -> None:
    selection = select_rows(sorted_rows(), limit=5)
    assert [r.id for r in selection.rows] == [f"low-{i}" for i in range(5)]
    assert selection.usable == 60
    assert selection.note() == "5 of the file's 60 usable rows evaluated: the first 5 (--limit 5)"
    assert select_rows(sorted_rows(), limit=100).note() == (
        "--limit 100 covers all of the file's 60 usable rows"
    )
    assert select_rows(sorted_rows()).note() is None


def test_a_seeded_sample_is_reproducible_spread_over_tiers_and_in_file_order() -> None:
    rows = sorted_rows()
    first = select_rows(rows, sample=12, seed=7)
    again = select_rows(rows, sample=12, seed=7)
    other = select_rows(rows, sample=12, seed=8)
    ids = [r.id for r in first.rows]
    assert ids == [r.id for r in again.rows]
    assert ids != [r.id for r in other.rows]
    assert len(set(ids)) == 12
    assert len({r.tier for r in first.rows}) > 1  # --limit 12 would give twelve low rows
    order = {row.id: index for index, row in enumerate(rows)}
    assert ids == sorted(ids, key=order.__getitem__)
    assert first.note() == (
        "12 of the file's 60 usable rows evaluated: a random sample, in file order "
        "(--sample 12 --seed 7)"
    )


def test_a_sample_as_large_as_the_file_is_the_file() -> None:
    rows = sorted_rows(2)
    selection = select_rows(rows, sample=10, seed=1)
    assert selection.rows == rows
    assert selection.note() == "--sample 10 covers all of the file's 6 usable rows"


@pytest.mark.parametrize(
    "options",
    [{"limit": 2, "sample": 2, "seed": 1}, {"limit": 0}, {"sample": 0, "seed": 1}, {"sample": 2}],
)
def test_bad_selections_are_refused(options: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        select_rows(sorted_rows(), **options)


def test_row_notes_count_only_the_rows_given() -> None:
    unsolved = EvalRow(id="u", messages=[], tier=Tier.HIGH, unsolved=True)
    plain = EvalRow(id="p", messages=[], tier=Tier.LOW)
    rows = [plain, unsolved, unsolved, plain]
    assert row_notes(rows) == [
        "2 rows repeat an earlier id",
        "2 rows no ladder model answered correctly: labelled high",
    ]
    assert row_notes(rows[:1]) == []
