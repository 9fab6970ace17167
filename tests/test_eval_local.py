"""`judge-router eval --judge local|hybrid`: a trained model measured like any judge, the share it
answered, the threshold sweep beside the baselines, and a model file that cannot be used refused
before a single row is judged."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
import respx
import yaml
from click.testing import CliRunner, Result

from judge_router.cli.main import main
from judge_router.routing.judges.features import DIMENSIONS, SIGNALS
from judge_router.routing.judges.local_model import LABELS, LocalModel

from fakes import JUDGE_PRICE, settings_data

QUESTIONS = DIMENSIONS + SIGNALS.index("questions")  # the signal: question marks / 5, at most 1
EASY, HARD = 6, 4  # rows of each kind in the data set


def _model(tmp_path: Path, **trained: Any) -> Path:
    """A model that reads question marks only: none -> low at p 0.665 (intercepts 1, 0, -1);
    five or more -> high at p 0.867 (weights -3, 0, 3 on a signal of 1)."""
    path = tmp_path / "model.json"
    LocalModel(list(LABELS), [1.0, 0.0, -1.0], {QUESTIONS: (-3.0, 0.0, 3.0)}, trained).save(path)
    return path


def _routerbench(tmp_path: Path) -> Path:
    """Easy rows every rung answers; hard rows (five questions) only the top rung does."""
    path = tmp_path / "bench.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sample_id", "prompt", "a", "b", "c", *(f"{m}|total_cost" for m in "abc")])
        for i in range(EASY + HARD):
            easy = i < EASY
            prompt = f"Say hello number {i}." if easy else f"Why {i}? How? When? Where? Who?"
            scores = [1, 1, 1] if easy else [0, 0, 1]
            writer.writerow([f"x{i}", repr([prompt]), *scores, 0.001, 0.002, 0.01])
    return path


def _config(tmp_path: Path, **judge: Any) -> Path:
    path = tmp_path / "config.yaml"
    data = settings_data(tmp_path, judge=judge, cache={"enabled": False})
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _eval(tmp_path: Path, *args: str, **judge: Any) -> Result:
    common = ["--config", str(_config(tmp_path, **judge)), "--ladder", "low=a,medium=b,high=c"]
    return CliRunner().invoke(
        main, ["eval", str(_routerbench(tmp_path)), *common, *args], catch_exceptions=False
    )


def _report(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def test_local_rates_every_row_without_calling_out(
    tmp_path: Path, judge_route: respx.Route
) -> None:
    model = _model(tmp_path)
    report = _report(
        _eval(tmp_path, "--judge", "local", "--local-model", str(model), "--json", "-")
    )
    ops = report["operations"]
    assert judge_route.call_count == 0 and ops["judge_calls"] == 0
    assert ops["sources"] == {"local": EASY + HARD} and ops["judge_failures"] == 0
    assert ops["answered_locally"]["rows"] == EASY + HARD
    assert ops["answered_locally"]["latency_ms"]["p50"] > 0
    assert report["judge"].startswith("local:hashed-ngrams")
    assert report["verdicts"]["judge"]["accuracy"] == 1.0  # low for easy rows, high for hard ones
    local = report["local_model"]
    assert (local["mode"], local["path"], local["threshold"]) == ("local", str(model), None)


def test_the_sweep_reports_routellm_measures_beside_the_baselines(tmp_path: Path) -> None:
    model = _model(tmp_path)
    report = _report(
        _eval(tmp_path, "--judge", "local", "--local-model", str(model), "--json", "-")
    )
    curves = report["routing_quality"]["curves"]
    assert (curves["weak"], curves["strong"]) == ("low", "high")
    runs = curves["runs"]
    assert set(runs) == {"judge", "length_only", "random", "heuristic", "oracle"}
    # The model ranks every hard row above every easy one: the oracle's own curve. Sending the
    # four hard rows (40%) to the strong rung recovers the whole gap.
    assert runs["judge"]["apgr"] == pytest.approx(runs["oracle"]["apgr"]) == pytest.approx(0.8)
    assert runs["judge"]["cpt_50"] == pytest.approx(0.2) and runs["judge"][
        "cpt_80"
    ] == pytest.approx(0.32)
    points = runs["judge"]["points"]
    assert [p["strong_share"] for p in points] == [0.0, 0.4, 1.0]
    assert all(run["apgr"] is not None for run in runs.values())


def test_the_tables_show_the_sweep_and_the_share_answered_locally(tmp_path: Path) -> None:
    model = _model(tmp_path)
    result = CliRunner().invoke(
        main,
        ["eval", str(_routerbench(tmp_path)), "--config", str(_config(tmp_path)),
         "--ladder", "low=a,medium=b,high=c", "--judge", "local", "--local-model", str(model)],
        env={"COLUMNS": "200"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Threshold sweep, two models (a vs c)" in result.stdout
    assert "judge: the local model's strength" in result.stdout
    assert "answered locally" in result.stdout and "10 of 10 (100.0%)" in result.stdout


def test_hybrid_asks_the_llm_judge_only_below_the_threshold(
    tmp_path: Path, judge_route: respx.Route
) -> None:
    args = ["--judge", "hybrid", "--local-model", str(_model(tmp_path)), "--json", "-"]
    report = _report(_eval(tmp_path, *args, "--local-threshold", "0.8"))
    ops = report["operations"]
    assert judge_route.call_count == EASY  # p 0.665 < 0.8: the LLM judge (answers medium)
    assert ops["sources"] == {"local": HARD, "llm": EASY}
    assert ops["answered_locally"] == {**ops["answered_locally"], "rows": HARD, "share": 0.4}
    assert report["local_model"]["threshold"] == 0.8
    assert report["judge"].endswith("at confidence >= 0.8, else openai/judge-nano")

    lower = _report(_eval(tmp_path, *args, "--local-threshold", "0.6"))
    assert lower["operations"]["answered_locally"]["rows"] == EASY + HARD
    assert judge_route.call_count == EASY  # no new call: every row was answered locally


def test_hybrid_without_keys_says_which_rows_the_model_answered_itself(
    tmp_path: Path, judge_route: respx.Route
) -> None:
    unset = {"api_key": "os.environ/JR_TEST_UNSET", **JUDGE_PRICE}
    args = ["--judge", "hybrid", "--local-model", str(_model(tmp_path)), "--local-threshold", "0.8"]
    result = _eval(tmp_path, *args, "--json", "-", litellm_params=unset)
    report = _report(result)
    ops = report["operations"]
    assert judge_route.call_count == 0
    assert ops["sources"] == {"local": EASY + HARD}  # on_failure: the model at any confidence
    assert ops["answered_locally"]["rows"] == HARD
    assert (ops["judge_failures"], ops["failure_kinds"]) == (EASY, {"no credentials": EASY})
    assert "rows the local model rates below confidence 0.8" in result.stderr


def test_an_llm_judge_with_a_model_file_counts_its_stand_in_answers_as_failures(
    tmp_path: Path, judge_route: respx.Route
) -> None:
    unset = {"api_key": "os.environ/JR_TEST_UNSET", **JUDGE_PRICE}
    result = _eval(tmp_path, "--json", "-", litellm_params=unset, local_model=str(_model(tmp_path)))
    ops = _report(result)["operations"]
    assert ops["sources"] == {"local": EASY + HARD}  # judge.on_failure: the trained model answered
    assert ops["answered_locally"]["rows"] == 0 and ops["judge_failures"] == EASY + HARD
    assert judge_route.call_count == 0


def test_a_model_trained_on_the_file_is_noted(tmp_path: Path) -> None:
    model = _model(tmp_path, train={"by_source": {"bench.csv": 10}})
    report = _report(
        _eval(tmp_path, "--judge", "local", "--local-model", str(model), "--json", "-")
    )
    assert report["local_model"]["trained_on_this_file"] is True
    assert any("was trained on rows of bench.csv" in n for n in report["dataset"]["notes"])


def test_a_judge_without_a_local_model_has_no_judge_curve(tmp_path: Path) -> None:
    report = _report(_eval(tmp_path, "--judge", "heuristic", "--json", "-"))
    assert report["local_model"] is None
    assert "judge" not in report["routing_quality"]["curves"]["runs"]
    assert report["operations"]["answered_locally"]["rows"] == 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--judge", "local"], "--judge local needs a model file: --local-model FILE"),
        (["--judge", "hybrid", "--local-model", "{absent}"], "cannot read local model"),
        (["--judge", "local", "--local-model", "{corrupt}"], "is not JSON"),
        (["--judge", "local", "--local-model", "{model}", "--local-threshold", "0.5"],
         "--local-threshold only applies to --judge hybrid"),
        (["--judge", "hybrid", "--local-model", "{model}", "--local-threshold", "2"],
         "Invalid value for '--local-threshold'"),
    ],
)  # fmt: skip
def test_an_unusable_model_or_option_is_a_usage_error(
    tmp_path: Path, judge_route: respx.Route, options: list[str], message: str
) -> None:
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text("{not json", encoding="utf-8")
    files = {"absent": tmp_path / "absent.json", "corrupt": corrupt, "model": _model(tmp_path)}
    result = _eval(tmp_path, *(option.format(**files) for option in options))
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert judge_route.call_count == 0


def test_an_unusable_model_named_by_the_config_is_an_error(
    tmp_path: Path, judge_route: respx.Route
) -> None:
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text("{not json", encoding="utf-8")
    result = _eval(tmp_path, "--judge", "local", mode="hybrid", local_model=str(corrupt))
    assert result.exit_code == 1, result.output
    assert "is not JSON" in result.output and "(judge.local_model in the config)" in result.output
    assert judge_route.call_count == 0
