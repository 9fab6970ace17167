"""The local heuristic judge on clear-cut prompts."""

from __future__ import annotations

import pytest

from judge_router.routing.conversation import Turn, judged_view
from judge_router.routing.judges.heuristic import HeuristicJudge, score
from judge_router.types import Source, Tier


@pytest.mark.parametrize(
    ("prompt", "tier"),
    [
        ("hi", Tier.LOW),
        ("What is the capital of Peru?", Tier.LOW),
        ("Translate 'good morning' into Spanish.", Tier.LOW),
        (
            "Write a Python function that parses an ISO 8601 date string, with or without a time "
            "zone, and returns a datetime; it must raise ValueError on bad input.",
            Tier.MEDIUM,
        ),
        (
            "Prove that for every prime p > 3, p^2 - 1 is divisible by 24. Be rigorous: justify "
            "each step, say which properties of primes modulo 3 and modulo 8 you use, and why "
            "the two facts together give divisibility by 24.",
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


def _points(prompt: str) -> float:
    view = judged_view([Turn("user", prompt)], 1000)
    return score(view.text, view.prompt_tokens).points


def test_solved_few_shot_examples_do_not_count() -> None:
    """Five solved examples make a prompt long and full of questions, not harder: the score is the
    last task's, and the reason says what was left out."""
    example = (
        "Which gas do plants take in for photosynthesis?\nA) oxygen\nB) carbon dioxide\n"
        "Print only a single choice.\nAnswer:\nB\n\n"
    )
    task = "Which planet is closest to the Sun?\nA) Mercury\nB) Mars\nPrint only a single choice.\nAnswer:"
    view = judged_view([Turn("user", example * 5 + task)], 1000)
    shot = score(view.text, view.prompt_tokens)
    assert shot.examples == 5 and "5 solved examples left out" in shot.cues
    assert abs(shot.points - _points(task)) < 0.5
    assert shot.points < _points((example * 5 + task).replace("Answer:", "Reply:"))


def test_length_breaks_ties_between_prompts_with_the_same_cues() -> None:
    short = "Summarise this paragraph about the history of the printing press."
    longer = short + " It spread across Europe within decades of its invention." * 12
    assert _points(longer) > _points(short) + 2  # sixteen times the length: four doublings
