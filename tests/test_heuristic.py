"""The local heuristic judge on clear-cut prompts."""

from __future__ import annotations

import pytest

from judge_router.routing.conversation import Turn, judged_view
from judge_router.routing.judges.heuristic import HeuristicJudge
from judge_router.types import Source, Tier


@pytest.mark.parametrize(
    ("prompt", "tier"),
    [
        ("hi", Tier.LOW),
        ("What is the capital of Peru?", Tier.LOW),
        ("Translate 'good morning' into Spanish.", Tier.LOW),
        (
            "Write a Python function that parses an ISO date string and returns a datetime.",
            Tier.MEDIUM,
        ),
        (
            "Prove that for every prime p > 3, p^2 - 1 is divisible by 24. Be rigorous and justify "
            "each step.",
            Tier.HIGH,
        ),
        (
            "Our Go service deadlocks under load. Here is the code:\n```go\nfunc (s *S) Get() {\n"
            "s.mu.Lock()\ndefer s.mu.Unlock()\ns.refresh()\n}\n```\nWhy does it deadlock, and how "
            "should we redesign the locking so it scales across many concurrent readers?",
            Tier.HIGH,
        ),
    ],
)
def test_clear_cases(prompt: str, tier: Tier) -> None:
    verdict = HeuristicJudge().rate_now(judged_view([Turn("user", prompt)], 1000))
    assert verdict.tier is tier, verdict.reason
    assert verdict.source is Source.HEURISTIC and verdict.cost_usd == 0
    assert verdict.reason.startswith("heuristic score")
