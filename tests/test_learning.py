"""judge.learn and `train --from-ledger`: rows keep feature vectors and never the prompts' text;
outcomes label a prompt before the LLM judge's verdict does; the trainer learns from the ledger."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import respx
from click.testing import CliRunner

from judge_router.accounting.outcome_row import OutcomeRow, grade_score
from judge_router.cli.main import main
from judge_router.config import Settings
from judge_router.evaluation.ledger_examples import outcome_label
from judge_router.routing.judges.local_model import load_model
from judge_router.service.factory import build_engine
from judge_router.types import Tier

from fakes import ask, verdict_reply

SECRET_WORDS = ["quokkazanzibar", "marmaladeprotocol", "velociraptorledger"]


def learning_settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(judge={"learn": True}, ledger={"store_prompts": False})


async def test_the_feature_store_never_holds_the_prompts_text(
    make_settings: Callable[..., Settings], judge_route: respx.Route, tmp_path: Path
) -> None:
    settings = learning_settings(make_settings)
    engine = build_engine(settings)
    for n, word in enumerate(SECRET_WORDS):
        await engine.route(ask(f"Please explain {word} in detail, case {n}"))
    rows = await engine.ledger.rows()
    await engine.aclose()
    assert len(rows) == 3 and all(row["features"] for row in rows)
    assert all(row["prompt_text"] is None for row in rows)
    # Every byte the service wrote under its folders: the ledger (and its WAL), the cache.
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name.startswith("ledger.sqlite") for p in written)
    for path in written:
        data = path.read_bytes().lower()
        for word in SECRET_WORDS:
            assert word.encode() not in data, (word, path)


async def test_without_learn_no_vector_is_kept(
    make_settings: Callable[..., Settings], judge_route: respx.Route
) -> None:
    engine = build_engine(make_settings())
    await engine.route(ask("hello there"))
    (row,) = await engine.ledger.rows()
    await engine.aclose()
    assert row["features"] is None


def outcome(source: str, tier: str, score: float | None = None, passed: bool | None = None) -> dict:
    return {"source": source, "tier": tier, "score": score, "passed": passed}


@pytest.mark.parametrize(
    ("outcomes", "label"),
    [
        ([outcome("cascade", "low", passed=False), outcome("cascade", "medium", passed=True)],
         Tier.MEDIUM),
        ([outcome("cascade", "low", passed=True)], Tier.LOW),
        ([outcome("sample", "medium", score=grade_score(9))], Tier.MEDIUM),
        ([outcome("sample", "medium", score=grade_score(3))], Tier.HIGH),
        ([outcome("feedback", "high", score=0.0)], Tier.HIGH),  # nothing above high
        # A low grade at medium outweighs a pass at low: never under a tier known to fall short.
        ([outcome("cascade", "low", passed=True), outcome("feedback", "medium", score=0.1)],
         Tier.HIGH),
        ([outcome("shadow", "high", score=1.0)], None),  # a candidate model, not a tier
        ([], None),
    ],
)  # fmt: skip
def test_outcomes_point_to_the_lowest_tier_known_to_be_enough(
    outcomes: list[dict], label: Tier | None
) -> None:
    assert outcome_label(outcomes) is label


def test_train_from_the_ledger_prefers_outcomes_to_llm_verdicts(
    make_settings: Callable[..., Settings],
    judge_route: respx.Route,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = learning_settings(make_settings)
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps(settings.model_dump(mode="json")))
    # The LLM judge says high for the hard prompts and low for the easy ones.
    tiers = [Tier.HIGH if n % 2 else Tier.LOW for n in range(40)]
    judge_route.side_effect = [verdict_reply(tier=tier.value) for tier in tiers]

    async def serve() -> None:
        engine = build_engine(settings)
        ids = []
        for n, _ in enumerate(tiers):
            text = f"prove the theorem about graphs {n}" if n % 2 else f"hi there friend {n}"
            ids.append((await engine.route(ask(text))).request_id)
        # One easy prompt's answer graded poorly at low: its outcome says medium, over the judge.
        await engine.ledger.record_outcome(
            OutcomeRow(ids[0], "sample", "openai/cheap-a", "low", score=grade_score(2), grade=2)
        )
        await engine.aclose()

    asyncio.run(serve())
    out = tmp_path / "model.json"
    monkeypatch.setenv("JUDGE_ROUTER_CONFIG", str(config))
    result = CliRunner().invoke(
        main, ["train", "--from-ledger", "--test-share", "0.25", "--out", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    trained = json.loads(result.output)
    assert trained["ledger"]["vectors"] == 40
    assert trained["ledger"]["from_outcomes"] == 1 and trained["ledger"]["from_llm_verdicts"] == 39
    sources = {**trained["train"]["by_source"], **trained["test"]["by_source"]}
    assert set(sources) <= {"outcome", "llm_verdict"}
    assert trained["train"]["rows"] + trained["test"]["rows"] == 40
    assert load_model(out).trained["seed"] == 0


def test_train_says_what_is_missing(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["train", "--out", str(tmp_path / "m.json")])
    assert result.exit_code == 2 and "DATASET files, --from-ledger, or both" in result.output
    absent = runner.invoke(main, ["train", str(tmp_path / "none.jsonl"), "--out", "m.json"])
    assert absent.exit_code == 1 and "no such file" in absent.output
