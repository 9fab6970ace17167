"""`judge-router eval` options: output paths checked before judging, --limit and --sample, notes
that count the rows judged, a repeated ladder model, tables at the output's width, judge calls."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import pytest
import respx
import yaml
from click.testing import CliRunner, Result

from judge_router.cli.main import main

from fakes import JUDGE_PRICE, settings_data

SAMPLES = Path(__file__).resolve().parent.parent / "benchmarks" / "samples.jsonl"
TIERS = ("low", "medium", "high")


def _config(tmp_path: Path, **overrides: Any) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(settings_data(tmp_path, **overrides)), encoding="utf-8")
    return path


def _eval(*args: str, columns: int | None = None) -> Result:
    env = {"COLUMNS": str(columns)} if columns else None
    return CliRunner().invoke(main, ["eval", *args], catch_exceptions=False, env=env)


def _sorted_by_tier(tmp_path: Path, per_tier: int = 20) -> Path:
    """A file whose first `per_tier` rows are all low, then medium, then high."""
    path = tmp_path / "sorted.jsonl"
    records = [
        {"id": f"{tier}-{i}", "prompt": f"Question {i} of the {tier} kind.", "tier": tier}
        for tier in TIERS
        for i in range(per_tier)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _routerbench(tmp_path: Path, unsolved: set[int], rows: int = 3) -> Path:
    """Models a < b < c by cost; row i is unsolved (nobody right) when i is in `unsolved`."""
    path = tmp_path / "bench.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sample_id", "prompt", "a", "b", "c", *(f"{m}|total_cost" for m in "abc")])
        for i in range(rows):
            scores = [0, 0, 0] if i in unsolved else [i % 2, 1, 1]
            writer.writerow([f"x{i}", f"['Prompt number {i}?']", *scores, 0.001, 0.002, 0.01])
    return path


def _ids(csv_path: Path) -> list[str]:
    with csv_path.open(encoding="utf-8", newline="") as handle:
        return [row["id"] for row in csv.DictReader(handle)]


# -- output paths ---------------------------------------------------------------------------------


def _unwritable_cases(tmp_path: Path, data: Path) -> list[tuple[list[str], str]]:
    missing = tmp_path / "no-such-dir"
    return [
        (["--json", str(missing / "r.json")], f"'--json': directory {missing} does not exist"),
        (["--out", str(missing / "r.csv")], f"'--out': directory {missing} does not exist"),
        (["--out", str(data / "r.csv")], f"'--out': {data} is not a directory"),
        (["--json", str(data)], "'--json': " + f"{data} is the data set itself"),
        (["--json", str(tmp_path / "x"), "--out", str(tmp_path / "x")], "name the same file"),
    ]


def test_unwritable_outputs_fail_before_a_single_judge_call(
    tmp_path: Path, judge_route: respx.Route
) -> None:
    data = _sorted_by_tier(tmp_path, per_tier=2)
    config = _config(tmp_path)
    for options, message in _unwritable_cases(tmp_path, data):
        result = _eval(str(data), "--config", str(config), *options)
        assert result.exit_code == 2, (options, result.output)
        assert message in result.output, result.output
    assert judge_route.call_count == 0
    assert not (tmp_path / "x").exists()  # the check leaves no empty file behind
    # The same run with paths it can write does call the judge: the check came first.
    good = _eval(str(data), "--config", str(config), "--json", str(tmp_path / "r.json"))
    assert good.exit_code == 0 and judge_route.call_count == 6
    assert json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))["judged_rows"] == 6


# -- choosing rows --------------------------------------------------------------------------------


def test_limit_notes_count_the_rows_judged_not_the_file(tmp_path: Path) -> None:
    bench = _routerbench(tmp_path, unsolved={2, *range(10, 50, 2)}, rows=50)  # 21 unsolved, 1 early
    args = [str(bench), "--config", str(_config(tmp_path)), "--judge", "heuristic"]
    args += ["--ladder", "low=a,medium=b,high=c", "--limit", "5"]
    report = json.loads(_eval(*args, "--json", "-").stdout)
    dataset = report["dataset"]
    assert (dataset["rows"], dataset["usable_rows_in_file"], report["judged_rows"]) == (5, 50, 5)
    assert dataset["selection"] == {"limit": 5, "sample": None, "seed": None}
    assert (
        dataset["notes"][0] == "5 of the file's 50 usable rows evaluated: the first 5 (--limit 5)"
    )
    assert "1 rows no ladder model answered correctly: labelled high" in dataset["notes"]
    assert report["routing_quality"]["unsolved_rows"] == 1
    shown = _eval(*args, columns=200).stdout
    assert "5 rows" in shown and "5 of the file's 50 usable rows evaluated" in shown
    assert "21 rows" not in shown


def test_a_seeded_sample_of_a_sorted_file_is_reproducible_and_mixes_tiers(tmp_path: Path) -> None:
    data = _sorted_by_tier(tmp_path)
    base = [str(data), "--config", str(_config(tmp_path)), "--judge", "heuristic", "--json", "-"]

    def run(*options: str, out: str) -> tuple[dict[str, int], list[str]]:
        result = _eval(*base, *options, "--out", str(tmp_path / out))
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)["dataset"]["labels"], _ids(tmp_path / out)

    first_labels, first = run("--limit", "9", out="limit.csv")
    assert first_labels == {"low": 9, "medium": 0, "high": 0}  # why a sample is needed
    labels, seven = run("--sample", "9", "--seed", "7", out="s7.csv")
    assert sum(1 for count in labels.values() if count) >= 2 and sum(labels.values()) == 9
    assert run("--sample", "9", "--seed", "7", out="again.csv")[1] == seven
    assert run("--sample", "9", "--seed", "8", out="s8.csv")[1] != seven
    assert seven != first and len(set(seven)) == 9


def test_a_sample_without_a_seed_names_the_one_it_drew(tmp_path: Path) -> None:
    data = _sorted_by_tier(tmp_path)
    base = [str(data), "--config", str(_config(tmp_path)), "--judge", "heuristic", "--json", "-"]
    drawn = json.loads(_eval(*base, "--sample", "6", "--out", str(tmp_path / "a.csv")).stdout)
    seed = drawn["dataset"]["selection"]["seed"]
    assert isinstance(seed, int) and f"--seed {seed})" in drawn["dataset"]["notes"][0]
    _eval(*base, "--sample", "6", "--seed", str(seed), "--out", str(tmp_path / "b.csv"))
    assert _ids(tmp_path / "a.csv") == _ids(tmp_path / "b.csv")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--sample", "0"], "Invalid value for '--sample'"),
        (["--sample", "3", "--limit", "3"], "--limit (the first N rows) and --sample"),
        (["--seed", "4"], "--seed only applies to --sample"),
    ],
)
def test_bad_selection_options_are_usage_errors(
    tmp_path: Path, judge_route: respx.Route, options: list[str], message: str
) -> None:
    result = _eval(str(_sorted_by_tier(tmp_path)), "--config", str(_config(tmp_path)), *options)
    assert result.exit_code == 2 and message in result.output, result.output
    assert judge_route.call_count == 0


def test_help_documents_sample_and_seed() -> None:
    text = " ".join(_eval("--help").output.split())
    assert "--sample N Judge N rows drawn at random, kept in file order; not with --limit." in text
    assert "--seed S Seed for --sample: the same seed draws the same rows" in text


# -- the ladder, the tables, judge calls ------------------------------------------------------------


def test_a_ladder_that_repeats_a_model_says_so(tmp_path: Path) -> None:
    bench = _routerbench(tmp_path, unsolved={2})
    args = [str(bench), "--config", str(_config(tmp_path)), "--judge", "heuristic"]
    repeated = _eval(*args, "--ladder", "low=a,medium=c,high=c", columns=200)
    assert repeated.exit_code == 0, repeated.output
    assert "the ladder repeats a model: medium and high both use c" in repeated.stdout
    distinct = _eval(*args, "--ladder", "low=a,medium=b,high=c", columns=200)
    assert "repeats a model" not in distinct.stdout


@pytest.mark.parametrize("columns", [50, 80, 120, 200])
def test_tables_never_run_past_the_width_of_a_pipe(tmp_path: Path, columns: int) -> None:
    config = _config(tmp_path)
    bench = _routerbench(tmp_path, unsolved={2}, rows=6)
    for args in (
        [str(SAMPLES), "--judge", "heuristic"],
        [str(bench), "--judge", "heuristic", "--ladder", "low=a,medium=b,high=c"],
    ):
        result = _eval(*args, "--config", str(config), columns=columns)
        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()
        assert max(len(line) for line in lines) <= columns, "\n".join(lines)
        for title in ("Verdicts against labels", "Judge operations"):
            assert title in result.stdout
        # Every figure is whole on its line: a percentage is never split by a wrapped cell.
        shown = json.loads(_eval(*args, "--config", str(config), "--json", "-").stdout)
        accuracy = f"{shown['verdicts']['judge']['accuracy']:.1%}"
        assert re.search(rf"(^|[\s│]){re.escape(accuracy)}($|[\s│,])", result.stdout, re.M)
    # The routing table's eight columns of figures need about 90 columns; below, it is a list.
    after_title = result.stdout.split("Routing quality on 6 rows")[1].splitlines()[1]
    if columns in (50, 200):
        assert after_title.startswith("┏") == (columns == 200), after_title


def test_judge_calls_count_only_calls_made(tmp_path: Path, judge_route: respx.Route) -> None:
    heuristic = _eval(str(SAMPLES), "--config", str(_config(tmp_path)), "--judge", "heuristic",
                      "--json", "-")  # fmt: skip
    assert json.loads(heuristic.stdout)["operations"]["judge_calls"] == 0
    unset = {"api_key": "os.environ/JUDGE_ROUTER_TEST_UNSET_KEY", **JUDGE_PRICE}
    config = _config(tmp_path, judge={"litellm_params": unset})
    result = _eval(str(SAMPLES), "--config", str(config), "--limit", "4", "--json", "-")
    ops = json.loads(result.stdout)["operations"]
    assert (ops["judge_calls"], judge_route.call_count) == (0, 0)
    assert ops["failure_kinds"] == {"no credentials": 4}  # on_failure answered every row
