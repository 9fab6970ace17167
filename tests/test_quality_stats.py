"""/stats' quality: outcome rows added up per source, by tier, model, arm and group, under the
same `since` and filters as the rest of /stats; their cost (quality spend) taken off net savings."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from test_api_docs import documented
from test_stats import row

from judge_router.accounting.ledger_row import LedgerRow
from judge_router.accounting.migrations import connect, migrate
from judge_router.accounting.outcome_row import OutcomeRow, grade_score
from judge_router.accounting.sqlite_ledger import SqliteLedger
from judge_router.accounting.stats import summarise
from judge_router.accounting.stats_view import stats_view
from judge_router.cli.main import main

from fakes import settings_data

DAY = "2026-11-30T"
# Each row costs 0.02 on its model and 0.2 on the baseline, and its judge 0.001 (test_stats.BASE).
DECISIONS = [
    row("a", f"{DAY}08:00:00+00:00", metadata={"team": "search"}),  # low, m1, routed arm
    row("b", f"{DAY}09:00:00+00:00", tier="high", model="m2", metadata={"team": "ads"}),
    row("c", f"{DAY}10:00:00+00:00", tier="high", model="b", arm="holdout", cost_usd=0.2,
        metadata={"team": "search"}),
    row("e", f"{DAY}11:00:00+00:00", tier="medium", model="m3", strategy="cascade"),
    row("d", "2026-12-01T01:00:00+00:00", source="forced", judge_cost_usd=0.0),  # in no arm
]  # fmt: skip


def outcome(
    request_id: str, source: str, model: str, tier: str, at: str, **fields: Any
) -> OutcomeRow:
    when = at if "T" in at else f"{DAY}{at}:00+00:00"
    return OutcomeRow(request_id, source, model, tier, created_at=when, **fields)


def graded(
    request_id: str, source: str, model: str, tier: str, at: str, grade: int, **fields: Any
) -> OutcomeRow:
    return outcome(request_id, source, model, tier, at, grade=grade, score=grade_score(grade),
                   **fields)  # fmt: skip


OUTCOMES = [
    graded("a", "sample", "m1", "low", "08:01", 7, grader_cost_usd=0.001),
    outcome("a", "feedback", "m1", "low", "08:30", score=1.0),
    graded("b", "sample", "m2", "high", "09:01", 4, grader_cost_usd=0.001),
    # a shadow pair: the answered model's row, and the candidate's carrying the pair's cost
    graded("b", "shadow", "m2", "high", "09:02", 8),
    graded("b", "shadow", "cand", "high", "09:02", 6, grader_cost_usd=0.002, answer_cost_usd=0.005),
    graded("c", "sample", "b", "high", "10:01", 10, grader_cost_usd=0.001),
    outcome("c", "feedback", "b", "high", "10:30", score=0.5),
    # a cascade: the low tier's answer failed a check, the medium tier's passed and was graded 9
    outcome("e", "cascade", "m1", "low", "11:00", passed=False, failed_check="not_refusal"),
    graded("e", "cascade", "m3", "medium", "11:00", 9, passed=True, grader_cost_usd=0.0015),
    outcome("d", "sample", "m1", "low", "2026-12-01T01:01:00+00:00", error="grader timeout: slow",
            grader_cost_usd=0.0005),
]  # fmt: skip
QUALITY_SPEND = 0.001 * 3 + 0.007 + 0.0015 + 0.0005


async def ledger_with(
    path: Path, decisions: list[LedgerRow], outcomes: list[OutcomeRow]
) -> SqliteLedger:
    ledger = SqliteLedger(path)
    for decided in decisions:
        assert await ledger.record(decided)
    for scored in outcomes:
        assert await ledger.record_outcome(scored)
    return ledger


async def summary_of(
    tmp_path: Path,
    since: str | None = None,
    view: Any = None,
    outcomes: list[OutcomeRow] = OUTCOMES,
) -> dict[str, Any]:
    ledger = await ledger_with(tmp_path / "l.sqlite", DECISIONS, outcomes)
    try:
        return await ledger.summary(since, view)
    finally:
        await ledger.close()


def of(entries: list[dict[str, Any]], key: str, value: str) -> dict[str, Any]:
    [found] = [entry for entry in entries if entry[key] == value]
    return found


async def test_each_source_is_added_up_with_its_means(tmp_path: Path) -> None:
    quality = (await summary_of(tmp_path))["quality"]
    assert quality["sample"] == {
        "outcomes": 4, "scored": 3, "mean_score": pytest.approx(2 / 3, abs=1e-6),
        "graded": 3, "mean_grade": 7.0, "errors": 1, "spend_usd": pytest.approx(0.0035),
    }  # fmt: skip
    shadow = quality["shadow"]
    assert (shadow["outcomes"], shadow["scored"], shadow["mean_grade"]) == (2, 2, 7.0)
    assert shadow["mean_score"] == pytest.approx(6 / 9, abs=1e-6)
    assert shadow["spend_usd"] == pytest.approx(0.007)
    cascade = quality["cascade"]
    assert (cascade["outcomes"], cascade["scored"], cascade["pass_rate"]) == (2, 1, 0.5)
    assert cascade["mean_score"] == pytest.approx(8 / 9, abs=1e-6) and cascade["mean_grade"] == 9
    assert quality["feedback"] == {"scored": 2, "mean_score": 0.75}


async def test_quality_spend_is_taken_off_net_savings_and_nothing_else(tmp_path: Path) -> None:
    scored = await summary_of(tmp_path / "with")
    unscored = await summary_of(tmp_path / "without", outcomes=[])
    totals, before = scored["totals"], unscored["totals"]
    assert totals["quality_spend_usd"] == pytest.approx(QUALITY_SPEND)
    assert before["quality_spend_usd"] == 0
    for same in ("gross_savings_usd", "judge_spend_usd", "realised_spend_usd", "judge_roi"):
        assert totals[same] == pytest.approx(before[same]), same
    # baseline 5 x 0.2; realised 4 x 0.02 + 0.2; judge 4 x 0.001
    assert totals["gross_savings_usd"] == pytest.approx(0.72)
    assert totals["net_savings_usd"] == pytest.approx(0.72 - 0.004 - QUALITY_SPEND)
    assert totals["savings_pct"] == pytest.approx(100 * (0.72 - 0.004 - QUALITY_SPEND) / 1.0)
    assert before["net_savings_usd"] == pytest.approx(0.716)


async def test_breakdowns_carry_their_own_quality_spend(tmp_path: Path) -> None:
    summary = await summary_of(tmp_path)
    # Spend follows the request: e's low step is the medium request's cost.
    spend = {entry["tier"]: entry["quality_spend_usd"] for entry in summary["by_tier"]}
    assert spend == pytest.approx({"low": 0.0015, "medium": 0.0015, "high": 0.009})
    low = of(summary["by_tier"], "tier", "low")
    assert low["net_savings_usd"] == pytest.approx(0.36 - 0.001 - 0.0015)
    by_day = {entry["day"]: entry["quality_spend_usd"] for entry in summary["by_day"]}
    assert by_day == pytest.approx({"2026-11-30": QUALITY_SPEND - 0.0005, "2026-12-01": 0.0005})
    by_model = {entry["model"]: entry["quality_spend_usd"] for entry in summary["by_model"]}
    assert by_model == pytest.approx({"m1": 0.0015, "m2": 0.008, "b": 0.001, "m3": 0.0015})
    assert sum(spend.values()) == pytest.approx(summary["totals"]["quality_spend_usd"])


async def test_quality_by_tier_and_model_follows_the_answer_scored(tmp_path: Path) -> None:
    quality = (await summary_of(tmp_path))["quality"]
    assert [entry["tier"] for entry in quality["by_tier"]] == ["high", "low", "medium"]
    low, medium = of(quality["by_tier"], "tier", "low"), of(quality["by_tier"], "tier", "medium")
    assert (low["cascade"]["outcomes"], low["cascade"]["pass_rate"]) == (1, 0.0)
    assert (medium["cascade"]["outcomes"], medium["cascade"]["pass_rate"]) == (1, 1.0)
    assert (low["sample"]["scored"], low["sample"]["errors"], low["sample"]["mean_grade"]) == (
        1,
        1,
        7,
    )
    high = of(quality["by_tier"], "tier", "high")
    assert high["sample"]["mean_grade"] == 7.0 and high["feedback"]["mean_score"] == 0.5
    assert high["shadow"]["outcomes"] == 2
    candidate = of(quality["by_model"], "model", "cand")
    assert candidate["shadow"]["mean_grade"] == 6 and candidate["sample"]["outcomes"] == 0
    assert candidate["sample"]["mean_score"] is None  # no figure made up for what is not there


async def test_by_arm_holds_each_arms_quality(tmp_path: Path) -> None:
    summary = await summary_of(tmp_path)
    routed, holdout = summary["by_arm"]
    assert (routed["arm"], holdout["arm"]) == ("routed", "holdout")
    # d was forced: in no arm, its failed grade neither
    assert routed["quality"]["sample"]["scored"] == 2 and routed["quality"]["sample"]["errors"] == 0
    assert routed["quality"]["sample"]["mean_grade"] == 5.5
    assert routed["quality"]["feedback"] == {"scored": 1, "mean_score": 1.0}
    assert holdout["quality"]["sample"]["mean_grade"] == 10
    assert holdout["quality"]["feedback"] == {"scored": 1, "mean_score": 0.5}
    assert routed["quality_spend_usd"] == pytest.approx(0.0105)
    assert holdout["quality_spend_usd"] == pytest.approx(0.001)
    assert [entry["arm"] for entry in summary["quality"]["by_arm"]] == ["routed", "holdout"]
    assert summary["quality"]["by_arm"][1]["sample"] == holdout["quality"]["sample"]


async def test_groups_and_filters_apply_to_quality(tmp_path: Path) -> None:
    summary = await summary_of(tmp_path, view=stats_view("metadata.team"))
    groups = {group["group"]: group for group in summary["quality"]["groups"]}
    assert set(groups) == {"search", "ads", "(none)"}
    assert groups["search"]["sample"]["mean_grade"] == 8.5
    assert groups["search"]["feedback"] == {"scored": 2, "mean_score": 0.75}
    assert groups["ads"]["shadow"]["outcomes"] == 2 and groups["ads"]["sample"]["mean_grade"] == 4
    assert (
        groups["(none)"]["cascade"]["outcomes"] == 2 and groups["(none)"]["sample"]["errors"] == 1
    )
    spend = {group["group"]: group["quality_spend_usd"] for group in summary["groups"]}
    assert spend == pytest.approx({"search": 0.002, "ads": 0.008, "(none)": 0.002})
    holdout = await summary_of(tmp_path / "holdout", view=stats_view(None, [("arm", "holdout")]))
    assert holdout["totals"]["quality_spend_usd"] == pytest.approx(0.001)
    assert holdout["quality"]["sample"]["outcomes"] == 1
    assert holdout["quality"]["shadow"]["outcomes"] == 0 and holdout["quality"]["groups"] == []


async def test_since_counts_the_outcomes_recorded_from_then_on(tmp_path: Path) -> None:
    summary = await summary_of(tmp_path, since="2026-12-01T00:00:00+00:00")
    assert summary["totals"]["quality_spend_usd"] == pytest.approx(0.0005)
    sample = summary["quality"]["sample"]
    assert (sample["outcomes"], sample["scored"], sample["errors"]) == (1, 0, 1)
    assert sample["mean_score"] is None and summary["quality"]["feedback"]["scored"] == 0


async def test_groups_past_the_limit_fold_their_quality_into_other(tmp_path: Path) -> None:
    ledger = await ledger_with(tmp_path / "l.sqlite", DECISIONS, OUTCOMES)
    await ledger.close()
    conn = connect(tmp_path / "l.sqlite")
    migrate(conn)
    summary = summarise(conn, None, stats_view("metadata.team"), max_groups=1)
    conn.close()
    # search spent most (c's answer on the baseline); ads and (none) are added up as one
    assert [group["group"] for group in summary["groups"]] == ["search", "(other)"]
    assert summary["groups"][1]["quality_spend_usd"] == pytest.approx(0.01)
    quality = {group["group"]: group for group in summary["quality"]["groups"]}
    assert list(quality) == ["search", "(other)"]
    assert (
        quality["(other)"]["sample"]["outcomes"] == 2
        and quality["(other)"]["shadow"]["outcomes"] == 2
    )


async def test_the_quality_fields_are_the_documented_ones(tmp_path: Path) -> None:
    summary = await summary_of(tmp_path, view=stats_view("arm"))
    quality = summary["quality"]
    assert set(quality) == documented("stats-quality")
    assert set((await summary_of(tmp_path / "plain"))["quality"]) == documented("stats-quality") - {
        "groups"
    }
    per_source = documented("stats-quality-source")
    assert set(quality["sample"]) | set(quality["cascade"]) == per_source
    assert set(quality["feedback"]) <= per_source
    assert set(quality["by_tier"][0]) == {"tier", "cascade", "shadow", "sample", "feedback"}
    assert set(summary["by_arm"][0]["quality"]) == {"cascade", "shadow", "sample", "feedback"}


def test_report_shows_the_quality_table_when_there_are_outcomes(tmp_path: Path) -> None:
    tables = {}
    for name, outcomes in (("with", OUTCOMES), ("without", [])):
        data = settings_data(tmp_path / name, judge={"model": "heuristic"})
        config = tmp_path / name / "config.yaml"
        config.parent.mkdir()
        config.write_text(yaml.safe_dump(data))

        async def write(
            path: Path = Path(data["ledger"]["path"]), rows: list[OutcomeRow] = outcomes
        ) -> None:
            await (await ledger_with(path, DECISIONS, rows)).close()

        asyncio.run(write())
        result = CliRunner().invoke(
            main, ["report", "--config", str(config)], env={"COLUMNS": "200"}
        )
        assert result.exit_code == 0, result.output
        tables[name] = result.stdout
        as_json = CliRunner().invoke(main, ["report", "--config", str(config), "--json"])
        assert json.loads(as_json.stdout)["quality"]["sample"]["outcomes"] == (4 if outcomes else 0)
    assert "answer quality" in tables["with"] and "answer quality" not in tables["without"]
    assert "tier high" in tables["with"] and "model cand" in tables["with"]
    assert "5.5 (n=2)" in tables["with"]  # the routed arm's mean sampled grade
    assert "not measured yet" in tables["without"]
