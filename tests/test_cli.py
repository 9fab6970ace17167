"""The CLI's route command, run in-process with click's runner."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import yaml
from click.testing import CliRunner

from judge_router.accounting.sqlite_ledger import SqliteLedger
from judge_router.cli.main import main

from fakes import settings_data


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
