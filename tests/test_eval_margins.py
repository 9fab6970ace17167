"""eval's margin of the judge over length-only: the difference, its paired bootstrap interval, and
the report's words for a lead the rows settle and for one they do not."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from judge_router.evaluation.margins import accuracy_margin, quality_margin, sign_test
from judge_router.evaluation.report import build_report
from judge_router.evaluation.rows import Dataset, EvalRow
from judge_router.evaluation.run import RowResult
from judge_router.evaluation.scores import Outcome
from judge_router.evaluation.tables import render
from judge_router.types import TIER_ORDER, Tier

LOW, MEDIUM, HIGH = TIER_ORDER


def test_a_judge_right_where_length_is_wrong_leads_by_the_share_of_those_rows() -> None:
    truth = [LOW, MEDIUM, HIGH] * 40
    judge = list(truth)
    length = [LOW] * len(truth)  # right on a third of the rows

    margin = accuracy_margin(truth, judge, length)

    assert margin is not None
    assert margin["difference"] == pytest.approx(2 / 3)
    assert margin["low"] > 0.5 and margin["settled"] and margin["wins"] == 1.0


def test_two_predictors_that_trade_rows_evenly_are_not_settled() -> None:
    truth = [LOW, HIGH] * 50
    judge = [LOW, LOW] * 50  # right on the low rows
    length = [HIGH, HIGH] * 50  # right on the high rows

    margin = accuracy_margin(truth, judge, length)

    assert margin is not None
    assert margin["difference"] == pytest.approx(0.0)
    assert margin["low"] < 0 < margin["high"] and not margin["settled"]
    assert accuracy_margin([], [], []) is None


def test_the_quality_margin_counts_the_outcomes_of_the_rungs_each_chose() -> None:
    # The strong rung answers every row, the cheap one none: sending a row up gains a point.
    outcomes = [{t: Outcome(float(t is HIGH), 0.01) for t in TIER_ORDER} for _ in range(60)]
    judge = [HIGH] * 30 + [LOW] * 30
    length = [LOW] * 60

    margin = quality_margin(outcomes, judge, length)

    assert margin is not None
    assert margin["difference"] == pytest.approx(0.5) and margin["settled"]


def report_for(truth: list[Tier], judge: list[Tier], tokens: list[int]) -> dict[str, object]:
    rows = [
        EvalRow(id=f"r{i}", messages=[{"role": "user", "content": "x" * t}], tier=label)
        for i, (label, t) in enumerate(zip(truth, tokens, strict=True))
    ]
    results = [
        RowResult(row=row, prompt_tokens=t, verdict=verdict, source="llm")
        for row, verdict, t in zip(rows, judge, tokens, strict=True)
    ]
    return build_report(Dataset(Path("d.jsonl"), "jsonl", rows), results, "fake", 1.0)


def rendered(report: dict[str, object]) -> str:
    console = Console(record=True, width=200)
    render(report, console)  # type: ignore[arg-type]
    return " ".join(console.export_text().split())  # the lines as one, however wrapped


def test_the_report_says_whether_the_rows_settle_the_judges_lead() -> None:
    truth = [LOW, MEDIUM, HIGH] * 30
    backwards = [300 - 100 * (i % 3) for i in range(90)]  # the longest prompts are the easy ones

    ahead = report_for(truth, list(truth), backwards)
    level = report_for(truth, [LOW] * 90, [100] * 90)  # each right on a third, not the same

    margin = ahead["verdicts"]["judge_over_length"]  # type: ignore[index]
    assert margin["difference"] == pytest.approx(2 / 3) and margin["settled"]  # length: medium
    assert "the draw of the rows does not explain it" in rendered(ahead)
    assert "not a settled difference" in rendered(level)


def test_a_lead_on_a_few_differing_rows_is_not_called_settled() -> None:
    # Three rows only the judge gets right: the bootstrap's interval is [+100%, +100%], but three
    # coin tosses all landing one way happen one time in four (two-sided).
    few = accuracy_margin([LOW, MEDIUM, HIGH], [LOW, MEDIUM, HIGH], [HIGH, LOW, MEDIUM])
    assert few is not None
    assert few["low"] == few["high"] == pytest.approx(1.0)
    assert few["rows_ahead"] == 3 and few["rows_behind"] == 0
    assert few["sign_test_p"] == pytest.approx(0.25) and not few["settled"]


def test_the_sign_test_is_exact() -> None:
    assert sign_test(0, 0) == 1.0
    assert sign_test(5, 0) == pytest.approx(2 / 32)
    assert sign_test(9, 2) == pytest.approx(2 * (1 + 11 + 55) / 2048)
    assert sign_test(3, 3) == 1.0
