"""`shadow-report`'s figures from a real ledger (pairs, means, costs per request, the projected
monthly saving), the command with --json, and `outcomes`' JSON lines."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from test_stats import row

from judge_router.accounting.ledger_row import LedgerRow
from judge_router.accounting.outcome_row import OutcomeRow, grade_score
from judge_router.accounting.shadow_report import shadow_facts, shadow_report
from judge_router.accounting.sqlite_ledger import SqliteLedger
from judge_router.cli.main import main

from fakes import model_entry, settings_data

NOW = datetime(2026, 12, 1, tzinfo=UTC)
CANDIDATE = "openai/cand"  # outcome rows name a candidate by its litellm model


def at(days_ago: float) -> str:
    return (NOW - timedelta(days=days_ago)).isoformat()


def decisions(now: datetime = NOW) -> list[LedgerRow]:
    """Six proxied high-tier requests at 0.01 each, two low ones, and a /route decision; the first
    ten days before `now`."""
    when = [(now - timedelta(days=10 - i)).isoformat() for i in range(9)]
    high = [row(f"h{i}", when[i - 1], tier="high", model="big", cost_usd=0.01) for i in range(1, 7)]
    low = [row(f"l{i}", when[5 + i], model="small", cost_usd=0.001) for i in (1, 2)]
    routed = row("r1", when[8], tier="high", model="big", status="routed", cost_usd=None)
    return [*high, *low, routed]


def shadow(request_id: str, model: str, grade: int | None = None, **fields: Any) -> OutcomeRow:
    scored = {} if grade is None else {"grade": grade, "score": grade_score(grade)}
    return OutcomeRow(request_id, "shadow", model, "high", **scored, **fields)


def pair(request_id: str, primary: int, candidate: int, answer_usd: float) -> list[OutcomeRow]:
    return [
        shadow(request_id, "big", primary),
        shadow(request_id, CANDIDATE, candidate, answer_cost_usd=answer_usd, grader_cost_usd=4e-4),
    ]


OUTCOMES = [
    *pair("h1", 8, 8, 0.002),
    *pair("h2", 9, 6, 0.002),
    *pair("h3", 5, 7, 0.003),
    *pair("h4", 10, 4, 0.001),
    shadow("h5", CANDIDATE, error="candidate provider_error: boom"),  # only the candidate's row
    shadow("h6", "big", error="grader timeout: slow"),
    shadow("h6", CANDIDATE, 8, answer_cost_usd=0.002, grader_cost_usd=0.0002),
    # a candidate tested once and since removed from the config
    shadow("h1", "old", 3, answer_cost_usd=0.0005, grader_cost_usd=0.0003),
    OutcomeRow("h1", "sample", "big", "high", grade=2, score=grade_score(2)),  # not a shadow row
]


async def write(path: Path, now: datetime = NOW) -> None:
    ledger = SqliteLedger(path)
    for decided in decisions(now):
        assert await ledger.record(decided)
    for scored in OUTCOMES:
        assert await ledger.record_outcome(scored)
    await ledger.close()


async def report_of(tmp_path: Path, since: str | None = None) -> dict[str, Any]:
    await write(tmp_path / "l.sqlite")
    ledger = SqliteLedger(tmp_path / "l.sqlite")
    facts = await ledger.read(shadow_facts, since)
    await ledger.close()
    return shadow_report(facts, {CANDIDATE: ["high"], "idle": ["low"]}, NOW, since)


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["candidate"]: entry for entry in report["candidates"]}


async def test_pairs_means_and_the_share_at_least_as_good(tmp_path: Path) -> None:
    report = await report_of(tmp_path)
    cand = by_name(report)[CANDIDATE]
    assert (cand["configured"], cand["tiers"]) == (True, ["high"])
    assert (cand["comparisons"], cand["pairs"]) == (6, 4)  # h5 failed, h6's primary was not graded
    assert cand["candidate_mean_grade"] == 6.25 and cand["primary_mean_grade"] == 8.0
    assert cand["candidate_mean_score"] == pytest.approx(5.25 / 9, abs=1e-6)
    assert cand["primary_mean_score"] == pytest.approx(7 / 9, abs=1e-6)
    assert cand["at_least_as_good_share"] == 0.5  # h1 (a tie) and h3
    assert (cand["candidate_errors"], cand["grader_errors"]) == (1, 1)


async def test_costs_per_request_and_the_projected_monthly_saving(tmp_path: Path) -> None:
    report = await report_of(tmp_path)
    assert report["window_start"] == at(10) and report["window_days"] == 10
    cand = by_name(report)[CANDIDATE]
    # over the five requests the candidate answered: the decisions' cost, the candidate's answers
    assert cand["costed_requests"] == 5
    assert cand["primary_cost_per_request_usd"] == pytest.approx(0.01)
    assert cand["candidate_cost_per_request_usd"] == pytest.approx(0.010 / 5)
    assert cand["spend_usd"] == pytest.approx(0.010 + 4 * 0.0004 + 0.0002)
    # six proxied high requests in ten days (the /route decision called no model): 18 a month
    assert (cand["requests_in_window"], cand["requests_per_month"]) == (6, 18.0)
    assert cand["projected_monthly_saving_usd"] == pytest.approx((0.01 - 0.002) * 18)


async def test_a_removed_candidate_and_an_idle_one_are_reported(tmp_path: Path) -> None:
    candidates = by_name(await report_of(tmp_path))
    assert list(candidates) == ["idle", "old", CANDIDATE]
    old = candidates["old"]
    assert (old["configured"], old["tiers"], old["pairs"]) == (False, ["high"], 1)
    assert old["at_least_as_good_share"] == 0.0  # 3 against the primary's 8
    assert old["projected_monthly_saving_usd"] == pytest.approx((0.01 - 0.0005) * 18)
    idle = candidates["idle"]
    assert (idle["comparisons"], idle["candidate_mean_score"]) == (0, None)
    assert idle["requests_per_month"] == 6.0 and idle["projected_monthly_saving_usd"] is None


async def test_since_narrows_the_pairs_and_the_window(tmp_path: Path) -> None:
    report = await report_of(tmp_path, since=at(5.5))  # from h6 on
    assert report["window_start"] == at(5) and report["window_days"] == 5
    cand = by_name(report)[CANDIDATE]
    assert cand["comparisons"] == 6  # outcome rows were all written now, after `since`
    assert cand["requests_in_window"] == 1  # h6
    assert cand["requests_per_month"] == 6.0


def config_for(tmp_path: Path) -> tuple[Path, Path]:
    data = settings_data(
        tmp_path, judge={"model": "heuristic"}, grader=model_entry("grader"),
        shadow=[{"candidate": model_entry("cand"), "tiers": ["high"]}],
    )  # fmt: skip
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(data))
    return config, Path(data["ledger"]["path"])


def test_the_command_prints_the_report_as_json_and_as_a_table(tmp_path: Path) -> None:
    config, ledger = config_for(tmp_path)
    asyncio.run(write(ledger, datetime.now(UTC)))
    result = CliRunner().invoke(main, ["shadow-report", "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert 9.99 < report["window_days"] < 10.01
    assert "* 30 / window_days" in report["monthly_volume"]
    candidates = by_name(report)
    assert set(candidates) == {CANDIDATE, "old"}
    tested, old = candidates[CANDIDATE], candidates["old"]
    assert (tested["configured"], tested["pairs"], old["configured"]) == (True, 4, False)
    assert tested["projected_monthly_saving_usd"] == pytest.approx(0.008 * 18, rel=1e-3)
    table = CliRunner().invoke(main, ["shadow-report", "--config", str(config)],
                               env={"COLUMNS": "250"})  # fmt: skip
    assert table.exit_code == 0, table.output
    assert "shadow tests" in table.stdout and "50.0%" in table.stdout  # h1 and h3 of four
    assert "* 30 / window_days" in table.stdout  # how the volume was estimated
    bad = CliRunner().invoke(main, ["shadow-report", "--config", str(config), "--since", "soon"])
    assert bad.exit_code == 2 and "ISO" in bad.output


def test_the_commands_need_a_ledger(tmp_path: Path) -> None:
    config, _ = config_for(tmp_path)
    for command in ("shadow-report", "outcomes"):
        result = CliRunner().invoke(main, [command, "--config", str(config)])
        assert result.exit_code == 1 and "no ledger" in result.output


def test_outcomes_exports_json_lines_joined_with_their_requests(tmp_path: Path) -> None:
    config, ledger = config_for(tmp_path)
    asyncio.run(write(ledger))
    result = CliRunner().invoke(main, ["outcomes", "--config", str(config)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == len(OUTCOMES)
    first = next(line for line in lines if line["source"] == "sample")
    assert first["request_id"] == "h1" and first["grade"] == 2
    assert (first["prompt_hash"], first["request_tier"], first["arm"]) == ("h", "high", "routed")
    assert first["request_model"] == "big" and first["request_cost_usd"] == 0.01
    assert "prompt_text" not in first  # not stored for this request
    failed = next(line for line in lines if line["request_id"] == "h5")
    assert failed["score"] is None and failed["error"].startswith("candidate")
    out = tmp_path / "labels.jsonl"
    only = CliRunner().invoke(
        main, ["outcomes", "--config", str(config), "--source", "sample", "--output", str(out)]
    )
    assert only.exit_code == 0, only.output
    assert "1 outcome rows written" in only.stderr
    assert [json.loads(line)["source"] for line in out.read_text().splitlines()] == ["sample"]
    later = CliRunner().invoke(main, ["outcomes", "--config", str(config), "--since", "2999-01-01"])
    assert later.exit_code == 0 and later.stdout == ""


def test_outcomes_carries_the_prompt_text_when_the_request_stored_it(tmp_path: Path) -> None:
    config, ledger = config_for(tmp_path)

    async def stored() -> None:
        book = SqliteLedger(ledger)
        assert await book.record(row("p1", at(1), prompt_text="what is 2+2?"))
        assert await book.record_outcome(OutcomeRow("p1", "feedback", "m1", "low", score=1.0))
        await book.close()

    asyncio.run(stored())
    result = CliRunner().invoke(main, ["outcomes", "--config", str(config), "--source", "feedback"])
    [line] = [json.loads(text) for text in result.stdout.splitlines()]
    assert line["prompt_text"] == "what is 2+2?" and line["score"] == 1.0
