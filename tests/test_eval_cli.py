"""`judge-router eval` end to end on benchmarks/samples.jsonl: a faked LLM judge and the heuristic one."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
import yaml
from click.testing import CliRunner, Result

from judge_router.cli.eval import eval_settings
from judge_router.cli.main import main
from judge_router.config import Settings
from judge_router.routing.conversation import extract_turns, judged_view
from judge_router.routing.judges.heuristic import HeuristicJudge

from fakes import JUDGE_PRICE, settings_data, verdict_reply

SAMPLES = Path(__file__).resolve().parent.parent / "benchmarks" / "samples.jsonl"
RECORDS = [json.loads(line) for line in SAMPLES.read_text(encoding="utf-8").splitlines() if line]
TRUTH = {r["prompt"]: r["tier"] for r in RECORDS}
OVER_ROUTED, FAILING = RECORDS[0], RECORDS[1]  # both labelled low


def _config(tmp_path: Path, **overrides: Any) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(settings_data(tmp_path, **overrides)), encoding="utf-8")
    return path


def _eval(*args: str) -> Result:
    return CliRunner().invoke(main, ["eval", *args], catch_exceptions=False)


def _fake_judge(request: httpx.Request) -> httpx.Response:
    """Answers each sample's true tier, except one over-routed row and one provider error."""
    content = json.loads(request.content)["messages"][1]["content"]
    conversation = json.loads(content.split("\n")[2])  # the JSON array between the markers
    prompt = conversation[-1]["content"]
    if prompt == FAILING["prompt"]:
        return httpx.Response(500, json={"error": {"message": "judge is down"}})
    tier = "high" if prompt == OVER_ROUTED["prompt"] else TRUTH.get(prompt, "medium")
    return verdict_reply(tier=tier)


def test_llm_judge_on_the_sample_set(tmp_path: Path, judge_route: respx.Route) -> None:
    judge_route.mock(side_effect=_fake_judge)
    config = _config(tmp_path)
    out = tmp_path / "rows.csv"
    result = _eval(str(SAMPLES), "--config", str(config), "--json", "-", "--out", str(out))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    ops = report["operations"]
    assert report["judge"] == "openai/judge-nano" and report["judged_rows"] == 90
    assert judge_route.call_count == 90
    assert ops["judge_failures"] == 1 and ops["failure_kinds"] == {"provider_error": 1}
    assert ops["sources"] == {"llm": 89, "heuristic": 1}  # on_failure: heuristic answered
    per_call = 400 * JUDGE_PRICE["input_cost_per_token"] + 12 * JUDGE_PRICE["output_cost_per_token"]
    assert ops["judge_spend_usd"] == pytest.approx(89 * per_call)
    assert ops["latency_ms"]["p50"] > 0 and ops["cache_hits"] == 0

    view = judged_view(extract_turns([{"role": "user", "content": FAILING["prompt"]}]), 1000)
    fallback_tier = HeuristicJudge().rate_now(view).tier.rank
    expected = [[29, 0, 1], [0, 30, 0], [0, 0, 30]]
    expected[0][0] -= 1
    expected[0][fallback_tier] += 1
    judge = report["verdicts"]["judge"]
    assert judge["confusion"] == expected
    assert judge["accuracy"] == pytest.approx(sum(expected[i][i] for i in range(3)) / 90)
    assert judge["over_routing"] == pytest.approx((90 - 90 * judge["accuracy"]) / 90)
    assert report["verdicts"]["always_high"]["accuracy"] == pytest.approx(1 / 3)
    assert report["verdicts"]["length_only"]["n"] == 90
    assert report["routing_quality"] is None  # no per-model outcomes in this data set

    with out.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 90 and rows[0]["id"] == OVER_ROUTED["id"]
    assert (rows[0]["true_tier"], rows[0]["verdict"], rows[0]["correct"]) == ("low", "high", "0")
    assert rows[1]["source"] == "heuristic" and rows[1]["judge_error"].startswith("provider_error")
    # eval records nothing: the service's ledger is not even created
    assert not (tmp_path / "ledger.sqlite").exists()
    assert not Path(":memory:").exists()


def test_cache_is_used_like_the_service_and_no_cache_skips_it(
    tmp_path: Path, judge_route: respx.Route
) -> None:
    judge_route.mock(side_effect=_fake_judge)
    args = [str(SAMPLES), "--config", str(_config(tmp_path)), "--limit", "6", "--json", "-"]
    first = json.loads(_eval(*args).stdout)["operations"]
    second = json.loads(_eval(*args).stdout)["operations"]
    assert (first["judge_calls"], first["cache_hits"]) == (6, 0)
    # five verdicts come from the cache; the failed one was not cached, so it is asked again
    assert (second["judge_calls"], second["cache_hits"]) == (1, 5)
    assert second["judge_spend_usd"] == 0 and judge_route.call_count == 7
    uncached = json.loads(_eval(*args, "--no-cache").stdout)["operations"]
    assert (uncached["judge_calls"], uncached["cache_hits"]) == (6, 0)
    assert judge_route.call_count == 13


def test_heuristic_judge_out_of_the_box_with_tables(tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    result = _eval(
        str(SAMPLES), "--config", str(_config(tmp_path)), "--judge", "heuristic",
        "--json", str(report_path), "--concurrency", "4",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for title in ("Verdicts against labels", "Judge per tier", "Judge confusion", "length-only"):
        assert title in result.stdout
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert report["judge"] == "heuristic"
    assert report["operations"]["sources"] == {"heuristic": 90}
    assert report["operations"]["judge_spend_usd"] == 0
    assert report["dataset"]["labels"] == {"low": 30, "medium": 30, "high": 30}
    assert report["verdicts"]["judge"]["accuracy"] > report["verdicts"]["always_low"]["accuracy"]


def test_routing_quality_on_routerbench_style_rows(tmp_path: Path) -> None:
    path = tmp_path / "bench.csv"
    header = "sample_id,prompt,a,b,c,a|total_cost,b|total_cost,c|total_cost\n"
    lines = [
        "x1,['What is 2+2?'],1,1,1,0.001,0.002,0.01",
        "x2,['Name a colour.'],0,1,1,0.001,0.002,0.01",
        "x3,['Say yes.'],0,0,0,0.001,0.002,0.01",
    ]
    path.write_text(header + "\n".join(lines) + "\n", encoding="utf-8")
    result = _eval(
        str(path), "--config", str(_config(tmp_path)), "--judge", "heuristic",
        "--ladder", "low=a,medium=b,high=c",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Routing quality on 3 rows" in result.stdout
    result = _eval(
        str(path), "--config", str(_config(tmp_path)), "--judge", "heuristic",
        "--ladder", "low=a,medium=b,high=c", "--json", "-",
    )  # fmt: skip
    quality = json.loads(result.stdout)["routing_quality"]
    assert quality["unsolved_rows"] == 1
    oracle, strongest = quality["runs"]["oracle"], quality["runs"]["always_strongest"]
    assert oracle["quality"] == pytest.approx(2 / 3) and oracle["cost_usd"] == pytest.approx(0.004)
    assert strongest["cost_usd"] == pytest.approx(0.03) and strongest["pgr"] == 1


def test_bad_dataset_and_unknown_judge_are_clear_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "x", "tier": "hard"}\n', encoding="utf-8")
    result = _eval(str(bad), "--config", str(_config(tmp_path)))
    assert result.exit_code == 1 and "bad.jsonl:1: tier is 'hard'" in result.output
    result = _eval(str(SAMPLES), "--config", str(_config(tmp_path)), "--judge", "no-such-model")
    assert result.exit_code == 1 and "no-such-model" in result.output


def test_eval_settings_apply_judge_no_cache_and_keep_off_the_ledger(tmp_path: Path) -> None:
    settings = Settings(**settings_data(tmp_path))
    assert eval_settings(settings, None, False).cache.enabled
    tier_judge = eval_settings(settings, "openai/mid-a", True)
    assert tier_judge.judge.model == "openai/mid-a" and not tier_judge.cache.enabled
    assert tier_judge.judge.litellm_params.input_cost_per_token == 5e-7  # the tier entry's params
    assert tier_judge.judge.timeout_s == settings.judge.timeout_s
    assert eval_settings(settings, "heuristic", False).judge.is_heuristic
    assert eval_settings(settings, None, False).ledger.path == Path(":memory:")
