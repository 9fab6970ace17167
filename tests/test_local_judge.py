"""The local judge: trained on a synthetic set it agrees with the labels; its file is checked on
load and a bad one falls back to the LLM judge; hybrid asks the LLM judge for exactly the prompts
the model is unsure of; with no keys a trained model replaces the heuristic."""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable
from pathlib import Path

import pytest
import respx

from judge_router.config import Settings
from judge_router.evaluation.training import Example, evaluate, fit, split, train
from judge_router.routing.conversation import extract_turns, judged_view
from judge_router.routing.judges.chain import JudgeChain
from judge_router.routing.judges.features import FEATURIZER, decode, encode, featurize
from judge_router.routing.judges.llm import LLMJudge
from judge_router.routing.judges.local import LocalJudge, ModelSlot
from judge_router.routing.judges.local_model import LocalModel, ModelFileError, load_model
from judge_router.service.factory import build_engine
from judge_router.types import Source, Tier

from fakes import ask

EASY = ["hi", "thanks", "what is the capital of", "translate hello into", "spell the word",
        "say good morning to", "define the word", "a synonym for"]  # fmt: skip
HARD = ["prove that the eigenvalues of", "design a distributed consensus protocol for",
        "derive the asymptotic complexity of", "refactor this concurrent scheduler in rust",
        "analyse the trade-offs between", "write a lock-free queue in c++ with"]  # fmt: skip
TOPICS = ["france", "a matrix", "the ledger", "spanish", "graphs", "our cache", "kafka", "zebras"]


def synthetic_rows(n: int, seed: int = 7) -> list[tuple[str, Tier]]:
    """Easy chat is low, hard technical asks are high, and a middle mixes one of each."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        tier = (Tier.LOW, Tier.MEDIUM, Tier.HIGH)[i % 3]
        topic = rng.choice(TOPICS)
        if tier is Tier.LOW:
            text = f"{rng.choice(EASY)} {topic}"
        elif tier is Tier.HIGH:
            text = f"{rng.choice(HARD)} {topic}, step by step, with edge cases and a proof sketch"
        else:
            text = f"{rng.choice(EASY)} {topic} and then explain why in a short paragraph"
        rows.append((f"{text} #{i}", tier))
    return rows


def examples_of(rows: list[tuple[str, Tier]]) -> list[Example]:
    found = []
    for n, (text, tier) in enumerate(rows):
        view = judged_view(extract_turns([{"role": "user", "content": text}]), 1000)
        features = featurize(view.text, view.prompt_tokens, len(view.turns))
        found.append(Example(f"row-{n}", features, tier, "synthetic"))
    return found


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model, _, _ = train(examples_of(synthetic_rows(150)), 0.25, seed=1)
    path = tmp_path_factory.mktemp("model") / "local.json"
    model.save(path)
    return path


def test_a_model_trained_on_a_synthetic_set_agrees_with_held_out_labels() -> None:
    examples = examples_of(synthetic_rows(150))
    training, test = split(examples, 0.25, seed=1)
    assert {e.id for e in training}.isdisjoint({e.id for e in test}) and len(test) > 25
    evaluation = evaluate(fit(training), test)
    assert evaluation.accuracy >= 0.9
    assert evaluation.under_routed + evaluation.over_routed == pytest.approx(
        1 - evaluation.accuracy
    )
    shares = [share for share, _ in evaluation.by_threshold.values()]
    assert shares == sorted(shares, reverse=True)  # a higher bar is met by fewer prompts


def test_the_split_is_the_same_for_a_seed_and_differs_across_seeds() -> None:
    examples = examples_of(synthetic_rows(120))
    first = [e.id for e in split(examples, 0.3, seed=5)[1]]
    assert first == [e.id for e in split(examples, 0.3, seed=5)[1]]
    assert first != [e.id for e in split(examples, 0.3, seed=6)[1]]


def test_the_model_file_round_trips_and_records_its_training(model_file: Path) -> None:
    model = load_model(model_file)
    data = json.loads(model_file.read_text())
    assert data["featurizer"] == FEATURIZER and data["labels"] == ["low", "medium", "high"]
    assert data["trained"]["train"]["rows"] + data["trained"]["test"]["rows"] == 150
    assert {"date", "seed", "test_share"} <= set(data["trained"])
    view = judged_view(extract_turns([{"role": "user", "content": "prove that zebras"}]), 1000)
    prediction = model.predict(featurize(view.text, view.prompt_tokens))
    assert sum(prediction.probabilities) == pytest.approx(1.0)
    assert 0 <= prediction.strength <= 1


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: d.update(featurizer="hashed-ngrams-v0"), "featurizer"),
        (lambda d: d.update(labels=["easy", "hard", "x"]), "labels"),
        (lambda d: d.update(intercepts=[0.0, 9.0, 0.0]), "digest"),
        (lambda d: d.update(format="something-else"), "not a judge-router-local-model"),
        (lambda d: d.update(format_version=99), "format_version"),
    ],
)
def test_a_mismatched_or_edited_file_is_refused_with_the_reason(
    model_file: Path, tmp_path: Path, damage: Callable[[dict[str, object]], None], message: str
) -> None:
    data = json.loads(model_file.read_text())
    damage(data)
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(data))
    with pytest.raises(ModelFileError, match=message) as raised:
        load_model(broken)
    assert str(broken) in str(raised.value)


def test_a_truncated_or_missing_file_is_refused(model_file: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "cut.json"
    truncated.write_bytes(model_file.read_bytes()[:5000])
    with pytest.raises(ModelFileError, match="not JSON"):
        load_model(truncated)
    with pytest.raises(ModelFileError, match="cannot read"):
        load_model(tmp_path / "absent.json")


def hybrid_settings(
    make_settings: Callable[..., Settings], model: Path, **judge: object
) -> Settings:
    return make_settings(
        judge={"mode": "hybrid", "local_model": str(model), **judge}, cache={"enabled": False}
    )


def test_a_corrupt_file_falls_back_to_the_llm_judge_and_says_why(
    make_settings: Callable[..., Settings], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text("{not json")
    with caplog.at_level(logging.ERROR):
        engine = build_engine(hybrid_settings(make_settings, corrupt))
    chain: JudgeChain = engine.judges
    assert any(isinstance(j, LLMJudge) for j in chain.judges)
    assert chain.local_slot is not None and chain.local_slot.model is None
    state = chain.local_slot.state()
    assert state.version is None and state.error is not None and "not JSON" in state.error
    assert any("not JSON" in r.getMessage() for r in caplog.records)


async def test_hybrid_asks_the_llm_judge_for_exactly_the_unsure_prompts(
    make_settings: Callable[..., Settings], model_file: Path, judge_route: respx.Route
) -> None:
    model = load_model(model_file)
    prompts = [text for text, _ in synthetic_rows(60, seed=99)]
    confidences = []
    for text in prompts:
        view = judged_view(extract_turns([{"role": "user", "content": text}]), 1000)
        confidences.append(model.predict(featurize(view.text, view.prompt_tokens)).confidence)
    threshold = sorted(confidences)[len(prompts) // 3]  # a third of the prompts fall below it
    unsure = sum(confidence < threshold for confidence in confidences)
    assert 0 < unsure < len(prompts)  # the set exercises both sides
    engine = build_engine(hybrid_settings(make_settings, model_file, local_threshold=threshold))
    sources = [(await engine.decide(ask(text))).verdict.source for text in prompts]
    await engine.aclose()
    assert judge_route.call_count == unsure
    assert sources.count(Source.LLM) == unsure
    assert sources.count(Source.LOCAL) == len(prompts) - unsure


async def test_without_keys_a_trained_model_replaces_the_heuristic(
    make_settings: Callable[..., Settings], model_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(
        judge={"model": "openai/gpt-5-nano", "litellm_params": {}, "local_model": str(model_file)}
    )
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    engine = build_engine(settings)
    decision = await engine.decide(ask("prove that the eigenvalues of a matrix are real"))
    await engine.aclose()
    verdict = decision.verdict
    assert verdict.source is Source.LOCAL and verdict.judge_model.startswith("local:")
    assert verdict.judge_error is not None and "no credentials" in verdict.judge_error


async def test_local_mode_rates_every_prompt_without_calling_out(
    make_settings: Callable[..., Settings], model_file: Path, judge_route: respx.Route
) -> None:
    settings = make_settings(judge={"mode": "local", "local_model": str(model_file)})
    engine = build_engine(settings)
    verdicts = [(await engine.decide(ask(text))).verdict for text, _ in synthetic_rows(9)]
    await engine.aclose()
    assert {v.source for v in verdicts} == {Source.LOCAL} and judge_route.call_count == 0


def test_a_local_judge_abstains_below_its_threshold_and_without_a_model(model_file: Path) -> None:
    view = judged_view(extract_turns([{"role": "user", "content": "hi france"}]), 1000)
    slot = ModelSlot(model_file)
    assert LocalJudge(slot).rate_now(view, 0.0) is None  # nothing loaded yet
    slot.load()
    assert LocalJudge(slot).rate_now(view, 0.0) is not None
    assert LocalJudge(slot).rate_now(view, 1.01) is None


def test_the_mode_needs_a_model_file(make_settings: Callable[..., Settings]) -> None:
    with pytest.raises(Exception, match="needs judge.local_model"):
        make_settings(judge={"mode": "hybrid"})


def test_a_stored_vector_reads_back_as_it_was() -> None:
    features = featurize("Prove that 2 + 2 = 4, step by step?", 12, 1)
    again = decode(encode(features))
    assert again.indices == features.indices and again.featurizer == FEATURIZER
    assert again.values == pytest.approx(features.values, rel=1e-6)


def test_an_empty_model_is_a_valid_judge_that_predicts_from_its_intercepts(tmp_path: Path) -> None:
    path = tmp_path / "empty.json"
    LocalModel(["low", "medium", "high"], [0, 0, 5], {}).save(path)  # ints are floats on disk
    assert load_model(path).predict(featurize("anything", 1)).tier is Tier.HIGH


async def test_hybrid_without_keys_answers_locally_without_calling_it_a_failure(
    make_settings: Callable[..., Settings], model_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    settings = make_settings(judge={"model": "openai/gpt-5-nano", "litellm_params": {},
                                    "mode": "hybrid", "local_model": str(model_file),
                                    "local_threshold": 0.0})  # fmt: skip
    engine = build_engine(settings)
    verdict = (await engine.decide(ask("prove that the eigenvalues of a matrix are real"))).verdict
    await engine.aclose()
    assert verdict.source is Source.LOCAL and verdict.judge_error is None


def test_the_signals_mark_code_and_math_and_the_n_grams_have_unit_length() -> None:
    from judge_router.routing.judges.features import DIMENSIONS, SIGNALS

    def signal(text: str, name: str) -> float:
        return featurize(text, 20).as_dict().get(DIMENSIONS + SIGNALS.index(name), 0.0)

    assert signal("def parse(line):\n    return line.split()", "code") == 1.0
    assert signal("Find x if x^2 = 49.", "math") == 1.0
    assert signal("Write a short thank-you note to my neighbour.", "code") == 0.0
    assert signal("Write a short thank-you note to my neighbour.", "math") == 0.0
    # words and pairs, and character 4-grams: each kind scaled to unit length before they are added
    grams = [
        v for i, v in featurize("alpha beta alpha beta", 6).as_dict().items() if i < DIMENSIONS
    ]
    assert 1.9 < sum(v * v for v in grams) < 2.1
