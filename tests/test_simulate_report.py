"""The savings simulator on the worked example, and the report command over a real ledger."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from judge_router.accounting.ledger_row import LedgerRow
from judge_router.accounting.simulator import Mix, load_mix, simulate
from judge_router.accounting.sqlite_ledger import SqliteLedger
from judge_router.cli.main import main
from judge_router.config import ConfigError

from fakes import settings_data

EXAMPLE_MIX = Path(__file__).parent.parent / "examples" / "traffic-mix.yaml"

WORKED_EXAMPLE = {
    "requests_per_month": 1_000_000,
    "baseline": {"input_per_1m": 2.50, "output_per_1m": 10.00},
    "tiers": {
        "low": {"input_per_1m": 0.10, "output_per_1m": 0.40},
        "medium": {"input_per_1m": 0.40, "output_per_1m": 1.60},
        "high": {"input_per_1m": 2.50, "output_per_1m": 10.00},
    },
    "judge": {
        "input_per_1m": 0.05,
        "output_per_1m": 0.40,
        "template_tokens": 400,
        "output_tokens": 30,
    },  # fmt: skip
    "types": [
        {"name": "a", "share": 0.50, "input_tokens": 500, "output_tokens": 150, "tier": "low"},
        {"name": "b", "share": 0.35, "input_tokens": 800, "output_tokens": 300, "tier": "medium"},
        {"name": "c", "share": 0.15, "input_tokens": 1200, "output_tokens": 500, "tier": "high"},
    ],
}


def test_worked_example_totals() -> None:
    result = simulate(Mix.model_validate(WORKED_EXAMPLE), template_tokens=0)
    assert result["before_usd"] == pytest.approx(4325.00)
    assert result["after_usd"] == pytest.approx(1535.00)
    assert result["saved_before_judge_pct"] == pytest.approx(64.5, abs=0.05)
    # Judge: 1M calls of (400 template + min(prompt, 1000)) input and 30 output tokens.
    judge_in = 0.5 * 900 + 0.35 * 1200 + 0.15 * 1400
    expected_judge = 1_000_000 * (judge_in * 0.05e-6 + 30 * 0.40e-6)
    assert result["judge_usd"] == pytest.approx(expected_judge)
    assert result["net_saved_usd"] == pytest.approx(4325 - 1535 - expected_judge)


def test_cache_hits_cut_the_judge_bill() -> None:
    cold = simulate(Mix.model_validate(WORKED_EXAMPLE), template_tokens=0)
    warm = simulate(Mix.model_validate({**WORKED_EXAMPLE, "cache_hit_rate": 0.75}), 0)
    assert warm["judge_usd"] == pytest.approx(cold["judge_usd"] / 4)


def test_shares_must_add_up(tmp_path: Path) -> None:
    broken = {**WORKED_EXAMPLE, "types": WORKED_EXAMPLE["types"][:2]}
    path = tmp_path / "mix.yaml"
    path.write_text(yaml.safe_dump(broken))
    with pytest.raises(ConfigError, match="add up to 0.85"):
        load_mix(path)


def test_simulate_cli_on_the_shipped_example() -> None:
    result = CliRunner().invoke(main, ["simulate", str(EXAMPLE_MIX), "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert figures["before_usd"] == pytest.approx(4325.00)
    assert figures["after_usd"] == pytest.approx(1535.00)
    assert 0 < figures["judge_usd"] < 100  # gpt-5-nano from litellm's map, ~1.3k tokens a call
    table = CliRunner().invoke(main, ["simulate", str(EXAMPLE_MIX)])
    assert "$4,325.00" in table.output and "$1,535.00" in table.output


def test_simulate_prices_the_configured_judge_prompt(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "tiny.md").write_text("Rate it.")
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"judge": {"prompt": "tiny", "prompt_dir": str(prompts)}}))

    def judge_usd(*extra: str) -> float:
        result = CliRunner().invoke(main, ["simulate", str(EXAMPLE_MIX), "--json", *extra])
        assert result.exit_code == 0, result.output
        return float(json.loads(result.stdout)["judge_usd"])

    # judge-v1 is several hundred tokens; a two-word prompt makes every judge call cheaper.
    assert judge_usd("--config", str(config)) < judge_usd()


def _row(
    request_id: str, tier: str, cost: float | None, baseline: float | None, judge: float
) -> LedgerRow:
    return LedgerRow(
        request_id=request_id, endpoint="complete", prompt_hash="h", tier=tier, model=f"m-{tier}",
        source="llm", cached=False, reason="r", judge_model="j", judge_error=None,
        judge_cost_usd=judge, judge_latency_ms=1.0, prompt_tokens=10, estimated_cost_usd=0.0,
        baseline_model="b", estimated_baseline_cost_usd=0.0, latency_ms=2.0,
        status="ok" if cost is not None else "error", cost_usd=cost, baseline_cost_usd=baseline,
    )  # fmt: skip


def test_report_cli_json_and_table(tmp_path: Path) -> None:
    data = settings_data(tmp_path, judge={"model": "heuristic"})
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(data))
    ledger = SqliteLedger(Path(data["ledger"]["path"]))

    async def write() -> None:
        for row in (
            _row("r1", "low", 1.0, 10.0, 0.5),
            _row("r2", "high", 8.0, 10.0, 0.5),
            _row("r3", "high", None, None, 0.0),
        ):
            assert await ledger.record(row)
        await ledger.close()

    asyncio.run(write())
    result = CliRunner().invoke(main, ["report", "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    totals = json.loads(result.stdout)["totals"]
    assert totals["requests"] == 3 and totals["errors"] == 1
    assert totals["gross_savings_usd"] == pytest.approx(11.0)
    assert totals["net_savings_usd"] == pytest.approx(10.0)
    assert totals["savings_pct"] == pytest.approx(50.0)
    assert totals["judge_roi"] == pytest.approx(11.0)
    table = CliRunner().invoke(main, ["report", "--config", str(config)])
    assert "$11.00" in table.output and "by tier" in table.output
    bad = CliRunner().invoke(main, ["report", "--config", str(config), "--since", "yesterday"])
    assert bad.exit_code == 2 and "ISO" in bad.output


def test_report_without_a_ledger_says_so(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(settings_data(tmp_path)))
    result = CliRunner().invoke(main, ["report", "--config", str(config)])
    assert result.exit_code == 1 and "no ledger" in result.output
