"""The CLI's route and simulate commands, in-process with click's runner, and in a fresh interpreter
to show that neither imports litellm when it calls no model."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from judge_router.accounting.sqlite_ledger import SqliteLedger
from judge_router.cli.main import main

from fakes import settings_data
from servers import clean_env

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "judge-router.example.yaml"
EXAMPLE_MIX = ROOT / "examples" / "traffic-mix.yaml"


def test_route_prints_json_and_records_a_ledger_row(tmp_path: Path) -> None:
    data = settings_data(tmp_path, judge={"model": "heuristic"})
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(
        main,
        [
            "route",
            "Prove that sqrt(2) is irrational, rigorously.",
            "--config",
            str(config),
            "--json",
        ],  # fmt: skip
    )
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["source"] == "heuristic"
    rows = asyncio.run(SqliteLedger(Path(data["ledger"]["path"])).rows())
    assert [(r["request_id"], r["endpoint"]) for r in rows] == [(answer["request_id"], "cli")]


def test_route_with_a_bad_config_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("judge: {timeout_s: soon}\n")
    result = CliRunner().invoke(main, ["route", "hi", "--config", str(config)])
    assert result.exit_code == 1
    assert "judge.timeout_s" in result.output


def test_forced_tier_table_output(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(settings_data(tmp_path, judge={"model": "heuristic"})))
    result = CliRunner().invoke(main, ["route", "hi", "--tier", "high", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "forced" in result.output and "openai/big-a" in result.output


def heuristic_config(tmp_path: Path) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(settings_data(tmp_path, judge={"model": "heuristic"})))
    return config


def test_route_reads_the_prompt_from_stdin(tmp_path: Path) -> None:
    config = heuristic_config(tmp_path)
    proof = "Prove that sqrt(2) is irrational, rigorously, with every step justified."
    piped = CliRunner().invoke(main, ["route", "-", "--config", str(config), "--json"], input=proof)
    direct = CliRunner().invoke(main, ["route", proof, "--config", str(config), "--json"])
    assert piped.exit_code == 0, piped.output
    keys = ("tier", "reason", "prompt_tokens")
    assert [json.loads(piped.stdout)[k] for k in keys] == [
        json.loads(direct.stdout)[k] for k in keys
    ]
    empty = CliRunner().invoke(main, ["route", "-", "--config", str(config)], input="  \n")
    assert empty.exit_code == 2 and "stdin held no prompt" in empty.output


def test_route_dry_run_records_no_ledger_row(tmp_path: Path) -> None:
    config = heuristic_config(tmp_path)
    result = CliRunner().invoke(
        main, ["route", "hello", "--config", str(config), "--json", "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["source"] == "heuristic"
    assert not (tmp_path / "ledger.sqlite").exists()  # not even opened
    table = CliRunner().invoke(main, ["route", "hello", "--config", str(config), "--dry-run"])
    assert "dry run: not recorded" in table.output and not (tmp_path / "ledger.sqlite").exists()


def test_route_warns_about_the_judge_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    data = settings_data(tmp_path, judge={"model": "gpt-5-nano", "litellm_params": {}})
    data["tiers"]["low"] = [{"model": "gpt-5-mini"}]  # no key either: route never calls it
    data["baseline"] = "claude-haiku-4-5"  # only priced
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(main, ["route", "hi", "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        "warning: judge gpt-5-nano is not called (no credentials: OPENAI_API_KEY not set); "
        "the heuristic judge answers (judge.on_failure)"
    ]


def test_simulate_json_counts_are_whole_requests(tmp_path: Path) -> None:
    mix = {
        "requests_per_month": 10,
        "baseline": {"input_per_1m": 1, "output_per_1m": 1},
        "tiers": {"low": {"input_per_1m": 1, "output_per_1m": 1}},
        "judge": {"input_per_1m": 1, "output_per_1m": 1, "template_tokens": 0},
        "types": [
            {"name": n, "share": s, "input_tokens": 1, "output_tokens": 0, "tier": "low"}
            for n, s in (("a", 0.35), ("b", 0.35), ("c", 0.3))
        ],
    }
    path = tmp_path / "mix.yaml"
    path.write_text(yaml.safe_dump(mix))
    result = CliRunner().invoke(main, ["simulate", str(path), "--json"])
    assert result.exit_code == 0, result.output
    counts = [row["requests"] for row in json.loads(result.stdout)["types"]]
    assert all(isinstance(count, int) for count in counts) and sum(counts) == 10
    assert sorted(counts) == [3, 3, 4]


# `python -c` runs the CLI in a fresh interpreter, then reports whether litellm was imported.
NO_LITELLM = """
import json, sys
from judge_router.cli.main import main
try:
    main(sys.argv[1:], standalone_mode=False)
finally:
    print(json.dumps({"litellm_imported": "litellm" in sys.modules}), file=sys.stderr)
"""


def run_fresh(tmp_path: Path, *args: str) -> tuple[str, dict[str, bool]]:
    env = clean_env(tmp_path)
    env.pop("LITELLM_LOCAL_MODEL_COST_MAP", None)  # as a user's shell has it
    done = subprocess.run(
        [sys.executable, "-c", NO_LITELLM, *args],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout, json.loads(done.stderr.strip().splitlines()[-1])


@pytest.mark.slow
def test_route_with_the_heuristic_judge_does_not_import_litellm(tmp_path: Path) -> None:
    config = heuristic_config(tmp_path)
    stdout, seen = run_fresh(tmp_path, "route", "hello", "--config", str(config), "--json")
    assert json.loads(stdout)["source"] == "heuristic"
    assert seen == {"litellm_imported": False}


@pytest.mark.slow
def test_route_on_the_example_config_without_keys_does_not_import_litellm(tmp_path: Path) -> None:
    # The example's models are priced from litellm's map: here read from its file.
    stdout, seen = run_fresh(tmp_path, "route", "hello", "--config", str(EXAMPLE), "--json")
    answer = json.loads(stdout)
    assert (answer["source"], answer["model"]) == ("heuristic", "gpt-5-nano")
    assert answer["estimated_cost_usd"] > 0 and answer["estimated_baseline_cost_usd"] > 0
    assert seen == {"litellm_imported": False}


@pytest.mark.slow
def test_simulate_does_not_import_litellm(tmp_path: Path) -> None:
    stdout, seen = run_fresh(tmp_path, "simulate", str(EXAMPLE_MIX), "--json")
    assert json.loads(stdout)["before_usd"] == pytest.approx(4325.00)
    assert seen == {"litellm_imported": False}
