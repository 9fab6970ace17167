"""One outcome row: a score for one answer to one request, and where the score came from.

Outcomes are the quality loop's record (cascade checks, shadow tests, sampled grades, the
application's feedback) and the labels a learned judge trains on: docs/quality.md describes the
table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

OUTCOME_SOURCES = ("cascade", "shadow", "sample", "feedback")


def grade_score(grade: int) -> float:
    """A grader's 1-10 grade on the 0-1 scale every outcome's `score` uses (feedback's own)."""
    return round((grade - 1) / 9, 6)


@dataclass(slots=True)
class OutcomeRow:
    request_id: str
    source: str  # one of OUTCOME_SOURCES
    model: str  # the model whose answer was scored
    tier: str  # the tier that answer stands for (a cascade step's; the request's otherwise)
    score: float | None = None  # 0..1; None when no score could be had (see `error`)
    grade: int | None = None  # the grader's 1..10
    passed: bool | None = None  # a cascade step: whether the answer passed its checks
    failed_check: str | None = None
    reason: str | None = None  # the grader's sentence, or the feedback's comment
    grader_model: str | None = None
    grader_prompt: str | None = None  # name@digest of the grader's prompt
    grader_cost_usd: float = 0.0
    # What the scored answer cost when it was bought only for this outcome (a shadow candidate's
    # answer); 0 when the client's request paid for it (it is in the decision's cost).
    answer_cost_usd: float = 0.0
    error: str | None = None  # why there is no score: the grader or the candidate failed
    api_key_id: str | None = None  # feedback: the key that gave it
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def as_params(self) -> dict[str, Any]:
        params = {name: getattr(self, name) for name in _OUTCOME_FIELDS}
        if self.passed is not None:
            params["passed"] = int(self.passed)
        return params


_OUTCOME_FIELDS = tuple(OutcomeRow.__dataclass_fields__)
