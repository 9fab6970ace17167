"""Paired bootstrap intervals: how far the difference between two routers on one set could move
had the set's rows been drawn again.

A few hundred labelled rows rank routers coarsely: on a 162-row slice one row is 0.6 points of
accuracy, and an APGR difference of 0.01 between two scores of the same rows can come from a handful
of them. Resampling the rows with replacement, and measuring *both* routers on each resample (the
pairing: each draw asks both the same questions), gives the spread of the difference itself. The
interval is the percentile one, which needs no assumption about the statistic's distribution.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from judge_router.evaluation.scores import percentile

DRAWS = 1000
LEVEL = 0.95

# The difference on the rows at these indices (a row may appear more than once), or None where it
# is not defined on them (an APGR whose quality gap is zero).
Difference = Callable[[Sequence[int]], float | None]


@dataclass(frozen=True, slots=True)
class Interval:
    difference: float  # on the rows as they are
    low: float
    high: float
    wins: float  # the share of resamples where the difference is above zero
    draws: int  # resamples where the difference was defined
    level: float

    @property
    def settled(self) -> bool:
        """Whether the interval leaves out zero: the sign of the difference is not the draw's."""
        return self.low > 0 or self.high < 0

    def as_dict(self) -> dict[str, float | int | bool]:
        return {"difference": self.difference, "low": self.low, "high": self.high,
                "wins": self.wins, "draws": self.draws, "level": self.level,
                "settled": self.settled}  # fmt: skip


def paired_bootstrap(
    difference: Difference, rows: int, draws: int = DRAWS, level: float = LEVEL, seed: int = 0
) -> Interval | None:
    """The difference on all `rows` and its `level` interval over `draws` seeded resamples; None
    when the difference is not defined on all the rows or on any resample."""
    if rows < 1 or draws < 1 or not 0 < level < 1:
        raise ValueError(f"rows {rows}, draws {draws} and level {level}: need >= 1, >= 1, (0, 1)")
    observed = difference(range(rows))
    if observed is None:
        return None
    draw = random.Random(seed)
    found = [
        value
        for _ in range(draws)
        if (value := difference(draw.choices(range(rows), k=rows))) is not None
    ]
    if not found:
        return None
    tail = (1 - level) / 2 * 100
    low, high = percentile(found, tail), percentile(found, 100 - tail)
    assert low is not None and high is not None  # found is not empty
    return Interval(
        difference=observed,
        low=low,
        high=high,
        wins=sum(value > 0 for value in found) / len(found),
        draws=len(found),
        level=level,
    )
