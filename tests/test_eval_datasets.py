"""The eval data loaders on small files written by the tests: each format, detection and errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from judge_router.evaluation.datasets import DatasetError, detect_format, load_dataset
from judge_router.evaluation.rows import parse_ladder, parse_levels
from judge_router.evaluation.selection import row_notes
from judge_router.types import Tier

L, M, H = Tier.LOW, Tier.MEDIUM, Tier.HIGH


def write_jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


# -- the project's JSONL ------------------------------------------------------------------------


def test_project_jsonl_prompts_messages_and_default_ids(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "mine.jsonl",
        [
            {"id": "a", "prompt": "Say hi.", "tier": "low", "category": "faq"},
            {"messages": [{"role": "user", "content": "Prove it."}], "tier": "HIGH"},
        ],
    )
    data = load_dataset(path)
    assert data.format == "jsonl" and data.notes == []
    first, second = data.rows
    assert (first.id, first.tier, first.category) == ("a", L, "faq")
    assert first.messages == [{"role": "user", "content": "Say hi."}]
    assert (second.id, second.tier, second.category) == ("line-2", H, None)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"prompt": "x", "tier": "hard"}', "mine.jsonl:2: tier is 'hard'"),
        ('{"prompt": "x", "messages": [], "tier": "low"}', "exactly one of 'prompt' or 'messages'"),
        ('{"prompt": "", "tier": "low"}', "'prompt' must be a non-empty string"),
        ('{"messages": [{"content": "x"}], "tier": "low"}', "needs a 'role'"),
        ('{"prompt": "x", "tier": "low"', "mine.jsonl:2: not valid JSON"),
        ('["prompt", "tier"]', "expected a JSON object per line"),
    ],
)
def test_project_jsonl_errors_name_the_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "mine.jsonl"
    path.write_text('{"prompt": "fine", "tier": "low"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(DatasetError) as caught:
        load_dataset(path, fmt="jsonl")
    assert message in str(caught.value)


def test_repeated_ids_are_noted_among_the_rows_judged(tmp_path: Path) -> None:
    records = [{"id": 1, "prompt": "x", "tier": "low"}] * 2 + [{"prompt": "y", "tier": "low"}]
    data = load_dataset(write_jsonl(tmp_path / "d.jsonl", records))
    assert data.notes == []  # a property of the rows judged, not of the file
    assert row_notes(data.rows) == ["1 rows repeat an earlier id"]
    assert row_notes(data.rows[1:]) == []


# -- MATH -----------------------------------------------------------------------------------------


def _math(tmp_path: Path) -> Path:
    records = [
        {
            "problem": f"Problem {level}",
            "level": level,
            "subject": "Algebra",
            "unique_id": f"p{level}",
        }
        for level in (1, 2, 3, 4, 5)
    ]
    records.append({"problem": "Old style", "level": "Level 3"})
    records.append({"problem": "Unrated", "level": "Level ?"})
    return write_jsonl(tmp_path / "math.jsonl", records)


def test_math_levels_map_to_tiers(tmp_path: Path) -> None:
    data = load_dataset(_math(tmp_path))
    assert data.format == "math"
    assert [(r.id, r.tier) for r in data.rows] == [
        ("p1", L), ("p2", L), ("p3", M), ("p4", H), ("p5", H), ("line-6", M)
    ]  # fmt: skip
    assert data.rows[0].category == "Algebra"
    assert data.notes == ["1 rows skipped: level not in --levels"]


def test_math_custom_levels_can_leave_levels_out(tmp_path: Path) -> None:
    data = load_dataset(_math(tmp_path), levels="1:low,3:medium,5:high")
    assert [r.tier for r in data.rows] == [L, M, H, M]
    assert data.notes == ["3 rows skipped: level not in --levels"]


def test_math_without_level_is_an_error(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "m.jsonl", [{"problem": "x", "level": 1}, {"problem": "y"}])
    with pytest.raises(DatasetError, match=r"m.jsonl:2: no 'level' field"):
        load_dataset(path, fmt="math")


def test_parse_levels() -> None:
    assert parse_levels("1-2:low,3:medium,4-5:high") == {1: L, 2: L, 3: M, 4: H, 5: H}
    assert parse_levels(" 1 - 3 : LOW ") == {1: L, 2: L, 3: L}
    for bad, message in [
        ("1-2:low,2:high", "level 2 is mapped twice"),
        ("3-1:low", "runs backwards"),
        ("1:easy", "tier is 'easy'"),
        ("one:low", "cannot read 'one:low'"),
        ("", "empty"),
    ]:
        with pytest.raises(DatasetError, match=message):
            parse_levels(bad)


# -- RouterBench CSV -------------------------------------------------------------------------------

MODELS = ("tiny", "mid", "big", "other")
COSTS = {"tiny": "0.001", "mid": "0.002", "big": "0.01", "other": "0.005"}


def _routerbench(tmp_path: Path, rows: list[tuple[str, str, dict[str, str]]]) -> Path:
    path = tmp_path / "bench.csv"
    header = ["", "sample_id", "prompt", "eval_name"]
    header += list(MODELS) + [f"{m}|total_cost" for m in MODELS]
    header += ["oracle_model_to_route_to"]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for index, (sample_id, prompt, scores) in enumerate(rows):
            costs = [COSTS[m] if scores.get(m, "") != "" else "" for m in MODELS]
            writer.writerow(
                [index, sample_id, prompt, "task"]
                + [scores.get(m, "") for m in MODELS]
                + costs
                + ["x"]
            )
    return path


LADDER = "low=tiny,medium=mid,high=big"


def _bench_rows() -> list[tuple[str, str, dict[str, str]]]:
    every = {"other": "1.0"}
    return [
        ("r-low", "['Easy one']", {"tiny": "1.0", "mid": "0.0", "big": "1.0", **every}),
        ("r-mid", "['Mid one']", {"tiny": "0.0", "mid": "1.0", "big": "1.0", **every}),
        ("r-high", "['Hard', 'and a second turn']", {"tiny": "0", "mid": "0", "big": "1", **every}),
        ("r-none", "not a list repr", {"tiny": "0.0", "mid": "0.0", "big": "0.0", **every}),
        ("r-gap", "['Missing score']", {"tiny": "1.0", "big": "1.0", **every}),
    ]


def test_routerbench_label_is_the_cheapest_correct_rung(tmp_path: Path) -> None:
    data = load_dataset(_routerbench(tmp_path, _bench_rows()), ladder=LADDER)
    assert data.format == "routerbench" and data.ladder == {L: "tiny", M: "mid", H: "big"}
    assert [(r.id, r.tier, r.unsolved) for r in data.rows] == [
        ("r-low", L, False),
        ("r-mid", M, False),
        ("r-high", H, False),
        ("r-none", H, True),  # nobody right: labelled high, and marked
    ]
    assert data.rows[0].outcomes is not None
    assert data.rows[0].outcomes[H].cost_usd == pytest.approx(0.01)
    assert data.rows[0].category == "task"
    assert [m["content"] for m in data.rows[2].messages] == ["Hard", "and a second turn"]
    assert data.rows[3].messages == [{"role": "user", "content": "not a list repr"}]
    assert data.notes == [
        "ladder: low=tiny, medium=mid, high=big",
        "1 rows skipped: a ladder model's score or cost is empty",
    ]
    assert row_notes(data.rows) == ["1 rows no ladder model answered correctly: labelled high"]
    assert row_notes(data.rows[:3]) == []  # counted on the rows judged, not the whole file


def test_routerbench_ladder_out_of_cost_order_is_noted(tmp_path: Path) -> None:
    data = load_dataset(
        _routerbench(tmp_path, _bench_rows()), ladder="low=big,medium=mid,high=tiny"
    )
    assert "the ladder is not ordered by mean cost" in data.notes[1]


def test_a_ladder_that_repeats_a_model_says_so(tmp_path: Path) -> None:
    data = load_dataset(
        _routerbench(tmp_path, _bench_rows()), ladder="low=tiny,medium=big,high=big"
    )
    repeated = [note for note in data.notes if "repeats a model" in note]
    assert repeated == [
        "the ladder repeats a model: medium and high both use big, so their figures are one "
        "model's and a row it gets right is labelled medium, never high"
    ]
    # cheapest correct stops at medium: only rows no rung answered are labelled high
    assert [r.tier for r in data.rows if not r.unsolved] == [L, M, M, L]
    same = load_dataset(_routerbench(tmp_path, _bench_rows()), ladder="low=big,medium=big,high=big")
    assert any(
        "every tier uses big" in note and "never medium or high" in note for note in same.notes
    )
    distinct = load_dataset(_routerbench(tmp_path, _bench_rows()), ladder=LADDER)
    assert not any("repeats a model" in note for note in distinct.notes)


def test_routerbench_unknown_models_list_what_the_file_has(tmp_path: Path) -> None:
    path = _routerbench(tmp_path, _bench_rows())
    with pytest.raises(DatasetError) as caught:
        load_dataset(path)  # the default ladder names RouterBench models this file lacks
    message = str(caught.value)
    assert "no columns for mistralai/mistral-7b-chat" in message and "--ladder" in message
    assert message.index("tiny ($0.001000)") < message.index("big ($0.010000)")


def test_routerbench_bad_score_and_not_routerbench(tmp_path: Path) -> None:
    path = _routerbench(tmp_path, [("r", "['x']", {"tiny": "yes", "mid": "1", "big": "1"})])
    with pytest.raises(DatasetError, match=r"bench.csv:2 column 'tiny': 'yes' is not a number"):
        load_dataset(path, ladder=LADDER)
    plain = tmp_path / "plain.csv"
    plain.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="not RouterBench-style"):
        load_dataset(plain)


def test_parse_ladder() -> None:
    assert parse_ladder("high=c, low=a,medium=b/x") == {L: "a", M: "b/x", H: "c"}
    for bad, message in [
        ("low=a,medium=b", "missing: high"),
        ("low=a,low=b,medium=c,high=d", "low is given twice"),
        ("low:a", "expected TIER=MODEL"),
        ("cheap=a", "tier is 'cheap'"),
    ]:
        with pytest.raises(DatasetError, match=message):
            parse_ladder(bad)


# -- MT-Bench -------------------------------------------------------------------------------------

WEAK, STRONG = "mixtral", "gpt-4"


def _mtbench(tmp_path: Path, judged: dict[int, list[tuple[float, float]]]) -> Path:
    questions = [
        {"question_id": qid, "category": "writing", "turns": [f"Q{qid} turn 1", f"Q{qid} turn 2"]}
        for qid in (81, 82, 83, 84)
    ]
    judgements = [
        {"question_id": qid, "turn": turn, "model": model, "score": score}
        for qid, pairs in judged.items()
        for turn, (weak, strong) in enumerate(pairs, 1)
        for model, score in ((WEAK, weak), (STRONG, strong))
    ]
    write_jsonl(tmp_path / "judgements.jsonl", judgements)
    return write_jsonl(tmp_path / "question.jsonl", questions)


def test_mtbench_label_counts_turns_where_the_weak_model_kept_up(tmp_path: Path) -> None:
    # 81: both turns reached -> low; 82: one -> medium; 83: none -> high; 84: no judgements
    path = _mtbench(tmp_path, {81: [(9, 9), (10, 8)], 82: [(9, 10), (8, 8)], 83: [(2, 9), (5, 9)]})
    data = load_dataset(path)
    assert data.format == "mtbench"
    assert [(r.id, r.tier) for r in data.rows] == [("81", L), ("82", M), ("83", H)]
    assert [m["content"] for m in data.rows[0].messages] == ["Q81 turn 1", "Q81 turn 2"]
    assert data.rows[0].category == "writing"
    assert f"turns where {WEAK} scored at least {STRONG}" in data.notes[0]  # weak: lower mean
    assert data.notes[1] == "1 questions skipped: a turn has no judgement for both models"


def test_mtbench_needs_judgements_beside_it(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "question.jsonl", [{"question_id": 1, "turns": ["x"]}])
    with pytest.raises(DatasetError, match="judgements.jsonl, which does not exist"):
        load_dataset(path)


# -- detection and whole-file errors ----------------------------------------------------------------


def test_detect_format_by_fields(tmp_path: Path) -> None:
    cases = {
        "math": {"problem": "x", "level": 1},
        "mtbench": {"question_id": 1, "turns": ["x"]},
        "jsonl": {"prompt": "x", "tier": "low"},
    }
    for expected, record in cases.items():
        assert detect_format(write_jsonl(tmp_path / f"{expected}.jsonl", [record])) == expected
    assert detect_format(tmp_path / "anything.CSV") == "routerbench"
    unknown = write_jsonl(tmp_path / "unknown.jsonl", [{"text": "x"}])
    with pytest.raises(DatasetError, match=r"fields \['text'\]; pass --format"):
        load_dataset(unknown)


def test_missing_empty_and_all_skipped_files(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no such file"):
        load_dataset(tmp_path / "absent.jsonl")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="no records"):
        load_dataset(empty)
    skipped = write_jsonl(tmp_path / "m.jsonl", [{"problem": "x", "level": 9}])
    with pytest.raises(DatasetError, match="no usable rows"):
        load_dataset(skipped)
