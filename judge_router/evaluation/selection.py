"""Which of a data set's rows an eval run judges (all, the first N, or a seeded random N), and the
notes that count those rows rather than the whole file."""

from __future__ import annotations

import random
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from judge_router.evaluation.rows import EvalRow

MAX_SEED = 2**31 - 1  # a seed short enough to read back from a note and type again


@dataclass(frozen=True, slots=True)
class Selection:
    """The rows to judge, out of the file's `usable` rows, and the options that chose them."""

    rows: list[EvalRow]
    usable: int  # rows the loader kept (rows it skipped are counted in the data set's notes)
    limit: int | None = None
    sample: int | None = None
    seed: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"limit": self.limit, "sample": self.sample, "seed": self.seed}

    def note(self) -> str | None:
        """How the judged rows were chosen, when they are not simply every row of the file."""
        asked = self.limit or self.sample
        if asked is None:
            return None
        option = f"--limit {self.limit}" if self.limit else f"--sample {self.sample}"
        if asked >= self.usable:
            return f"{option} covers all of the file's {self.usable} usable rows"
        chosen = f"{len(self.rows)} of the file's {self.usable} usable rows evaluated"
        if self.limit:
            return f"{chosen}: the first {self.limit} ({option})"
        return f"{chosen}: a random sample, in file order ({option} --seed {self.seed})"


def random_seed() -> int:
    """A fresh seed for --sample without --seed; the report names it so the draw can be repeated."""
    return secrets.randbelow(MAX_SEED)


def select_rows(
    rows: Sequence[EvalRow],
    limit: int | None = None,
    sample: int | None = None,
    seed: int | None = None,
) -> Selection:
    """The first `limit` rows, or `sample` rows drawn with `seed` (kept in the file's order), or all.

    A sorted file's first rows are often one tier, so `limit` suits a smoke test and `sample` a
    measurement. The same seed draws the same rows from the same file.
    """
    if limit is not None and sample is not None:
        raise ValueError("give limit or sample, not both")
    if (limit is not None and limit < 1) or (sample is not None and sample < 1):
        raise ValueError("limit and sample must be at least 1")
    chosen = list(rows)
    if limit is not None:
        chosen = chosen[:limit]
    elif sample is not None:
        if seed is None:
            raise ValueError("a sample needs a seed")
        if sample < len(chosen):
            picked = random.Random(seed).sample(range(len(chosen)), sample)
            chosen = [chosen[index] for index in sorted(picked)]
    return Selection(chosen, len(rows), limit, sample, seed)


def row_notes(rows: Sequence[EvalRow]) -> list[str]:
    """Notes about the judged rows themselves: they count those rows, whatever the file holds."""
    notes = []
    repeated = len(rows) - len({row.id for row in rows})
    if repeated:
        notes.append(f"{repeated} rows repeat an earlier id")
    unsolved = sum(1 for row in rows if row.unsolved)
    if unsolved:
        notes.append(f"{unsolved} rows no ladder model answered correctly: labelled high")
    return notes
