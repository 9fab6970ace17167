"""The judge's margin over length-only in `eval`, with how much of it the draw of the rows explains.

A judge 2 points ahead of prompt length on 160 rows may be ahead by chance: each row is 0.6 points.
Both margins are per-row differences averaged (a row the judge gets right and length-only wrong
counts +1, the reverse -1): the paired bootstrap of intervals.py gives the margin's spread, and an
exact sign test on the rows where the two differ says whether the lead is settled (a percentile
interval drawn from a handful of differing rows is narrower than the evidence: three rows the judge
alone gets right give [+100%, +100%]). Length-only's cut points stay as fitted on all the judged
rows; the interval is that of the rows, not of the fit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from judge_router.evaluation.intervals import DRAWS, paired_bootstrap
from judge_router.evaluation.scores import Outcomes
from judge_router.types import Tier

SEED = 0  # fixed, so a report's interval can be drawn again
SETTLED_P = 0.05  # the sign test's two-sided p below which a lead is called settled


def sign_test(ahead: int, behind: int) -> float:
    """The exact two-sided p of `ahead` wins against `behind` losses if each were a coin's toss."""
    n = ahead + behind
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(ahead, behind) + 1)) / 2**n
    return min(1.0, 2.0 * float(tail))


def _mean_margin(per_row: list[float], draws: int) -> dict[str, Any] | None:
    def margin(indices: Sequence[int]) -> float:
        return sum(per_row[i] for i in indices) / len(indices)

    interval = paired_bootstrap(margin, len(per_row), draws=draws, seed=SEED)
    if interval is None:
        return None
    ahead, behind = sum(d > 0 for d in per_row), sum(d < 0 for d in per_row)
    p = sign_test(ahead, behind)
    return {**interval.as_dict(), "rows_ahead": ahead, "rows_behind": behind, "sign_test_p": p,
            "settled": p < SETTLED_P}  # fmt: skip


def accuracy_margin(
    truth: Sequence[Tier], judge: Sequence[Tier], length_only: Sequence[Tier], draws: int = DRAWS
) -> dict[str, Any] | None:
    """The judge's accuracy minus length-only's, with its 95% paired bootstrap interval."""
    if not truth:
        return None
    per_row = [
        float(mine is label) - float(theirs is label)
        for label, mine, theirs in zip(truth, judge, length_only, strict=True)
    ]
    return _mean_margin(per_row, draws)


def quality_margin(
    outcomes: Sequence[Outcomes],
    judge: Sequence[Tier],
    length_only: Sequence[Tier],
    draws: int = DRAWS,
) -> dict[str, Any] | None:
    """The routed quality (share answered correctly) of the judge's tiers minus length-only's."""
    if not outcomes:
        return None
    per_row = [
        row[mine].score - row[theirs].score
        for row, mine, theirs in zip(outcomes, judge, length_only, strict=True)
    ]
    return _mean_margin(per_row, draws)
