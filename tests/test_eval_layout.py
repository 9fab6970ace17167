"""Eval tables at any width: a rich table while nothing breaks, else a narrow list, never wider."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from judge_router.evaluation.layout import Grid, fitted_table, narrow_body, show

GRID = Grid(
    "Verdicts against labels (90 judged rows)",
    ("predictor", "accuracy", "under-routed", "verdicts low/med/high"),
    [
        ("judge (openai/judge-nano)", "97.8%", "0.0%", "30/31/29"),
        ("length-only (<120 low, >=340 high tokens)", "55.6%", "21.1%", "30/30/30"),
    ],
)


def printed(grid: Grid, width: int) -> list[str]:
    out = io.StringIO()
    show(Console(file=out, width=width, color_system=None), grid)
    return out.getvalue().splitlines()


def test_a_wide_console_gets_the_table_on_one_line_per_row() -> None:
    lines = printed(GRID, 120)
    assert lines[1].startswith("┏") and len(lines) == 7  # title, 3 header, 2 rows, bottom
    assert max(len(line) for line in lines) <= 120


def test_a_tighter_console_wraps_headers_and_names_but_no_number() -> None:
    natural = len(printed(GRID, 200)[1])
    lines = printed(GRID, natural - 12)
    assert lines[1].startswith("┏")
    assert max(len(line) for line in lines) <= natural - 12
    body = "\n".join(lines)
    for value in ("97.8%", "55.6%", "21.1%", "30/31/29", "30/30/30"):
        assert value in body


@pytest.mark.parametrize("width", [60, 40, 35])
def test_a_narrow_console_gets_the_list_and_no_line_is_wider(width: int) -> None:
    assert fitted_table(Console(width=width), GRID, width) is None
    lines = printed(GRID, width)
    assert not any(line.startswith(("┏", "│")) for line in lines)
    assert max(len(line) for line in lines) <= width
    body = "\n".join(lines)
    for value in ("accuracy: 97.8%", "under-routed: 21.1%", "verdicts low/med/high: 30/31/29"):
        assert value in body  # a pair is never split between lines


def test_at_the_narrowest_even_a_pair_wraps_but_within_the_width() -> None:
    lines = printed(GRID, 24)
    assert max(len(line) for line in lines) <= 24
    assert "      30/31/29" in lines  # its own continuation line, indented under its name


def test_the_list_breaks_only_between_pairs() -> None:
    assert narrow_body(GRID, 60)[:3] == [
        "  judge (openai/judge-nano)",
        "    accuracy: 97.8%, under-routed: 0.0%",
        "    verdicts low/med/high: 30/31/29",
    ]
    figures = Grid("Ops", ("figure", "value"), [("judge calls", "3 / 1")], show_header=False)
    assert narrow_body(figures, 40) == ["  judge calls: 3 / 1"]
    confusion = Grid("C", ("label", "low", "high"), [("low", "2", "0")], heading="labelled {}")
    assert narrow_body(confusion, 40) == ["  labelled low", "    low: 2, high: 0"]


def test_cells_are_text_not_markup() -> None:
    grid = Grid("T", ("id", "error"), [("r1", "[bold]messages[0] is bad")])
    assert "[bold]messages[0] is bad" in "\n".join(printed(grid, 80))
