"""The judge chain and the decision pipeline, with judges and stores faked at their seams."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from judge_router.config import Settings
from judge_router.routing.judges.base import JudgeError
from judge_router.routing.request import UnknownModel, UnknownTier
from judge_router.service.factory import build_engine
from judge_router.types import Source, Tier

from fakes import FakeJudge, FakeLedger, FakeVerdictStore, ask


@pytest.fixture
def parts() -> tuple[FakeVerdictStore, FakeLedger]:
    return FakeVerdictStore(), FakeLedger()


async def test_an_abstaining_judge_passes_to_the_next_without_blame(
    make_settings: Callable[..., Settings], parts: tuple[FakeVerdictStore, FakeLedger]
) -> None:
    local, llm = FakeJudge(None, name="local"), FakeJudge(Tier.HIGH, name="llm")
    store, ledger = parts
    engine = build_engine(make_settings(), judges=[local, llm], verdicts=store, ledger=ledger)
    answer = await engine.route(ask("Prove that e is irrational."))
    (row,) = ledger.stored.values()
    assert (answer.tier, answer.source, row.judge_model) == (Tier.HIGH, Source.LLM, "llm")
    assert row.judge_error is None and len(store.kept) == 1  # a clean verdict is kept
    assert engine.judges.failures == 0


async def test_a_failing_judge_is_reported_on_the_next_judges_answer_and_not_cached(
    make_settings: Callable[..., Settings], parts: tuple[FakeVerdictStore, FakeLedger]
) -> None:
    first = FakeJudge(JudgeError("timeout", "took 5 s"), name="first")
    second = FakeJudge(Tier.LOW, name="second")
    store, ledger = parts
    engine = build_engine(make_settings(), judges=[first, second], verdicts=store, ledger=ledger)
    answer = await engine.route(ask("What is 2 + 2?"))
    assert answer.tier is Tier.LOW and engine.judges.failures == 1
    (row,) = ledger.stored.values()
    assert row.judge_error == "timeout: took 5 s" and row.judge_model == "second"
    assert store.kept == {}


async def test_when_every_judge_fails_on_failure_answers(
    make_settings: Callable[..., Settings], parts: tuple[FakeVerdictStore, FakeLedger]
) -> None:
    broken = FakeJudge(JudgeError("provider_error", "503"), JudgeError("rate_limit", "429"))
    store, ledger = parts
    settings = make_settings(judge={"on_failure": "high"})
    engine = build_engine(settings, judges=[broken], verdicts=store, ledger=ledger)
    first = await engine.route(ask("hello"))
    second = await engine.route(ask("hello"))
    assert (first.tier, first.source) == (Tier.HIGH, Source.FALLBACK)
    assert [r.judge_error for r in ledger.stored.values()] == [
        "provider_error: 503",
        "rate_limit: 429",
    ]
    assert second.source is Source.FALLBACK and store.kept == {}  # failed verdicts never cached


async def test_the_breaker_skips_a_judge_that_keeps_failing(
    make_settings: Callable[..., Settings], parts: tuple[FakeVerdictStore, FakeLedger]
) -> None:
    failing = FakeJudge(*[JudgeError("timeout", "slow")] * 5)
    store, ledger = parts
    settings = make_settings(judge={"circuit_breaker": {"failures": 2, "cooldown_s": 300}})
    engine = build_engine(settings, judges=[failing], verdicts=store, ledger=ledger)
    for index in range(4):
        await engine.route(ask(f"question {index}"))
    assert len(failing.seen) == 2
    errors = [r.judge_error or "" for r in ledger.stored.values()]
    assert [e.split(":")[0] for e in errors] == [
        "timeout",
        "timeout",
        "circuit_open",
        "circuit_open",
    ]
    assert "fake-judge" in await engine.judges.breaker.open_circuits()


async def test_a_judge_that_is_not_cacheable_is_asked_every_time(
    make_settings: Callable[..., Settings], parts: tuple[FakeVerdictStore, FakeLedger]
) -> None:
    local = FakeJudge(cacheable=False)
    store, ledger = parts
    engine = build_engine(make_settings(), judges=[local], verdicts=store, ledger=ledger)
    await engine.route(ask("Name three primes."))
    again = await engine.route(ask("Name three primes."))
    assert len(local.seen) == 2 and again.source is Source.LLM
    assert store.gets == 0 and store.kept == {}  # the store is not even asked


async def test_the_cache_key_names_the_judge_and_its_version(
    make_settings: Callable[..., Settings],
) -> None:
    def key(judge: FakeJudge) -> str:
        engine = build_engine(make_settings(), judges=[judge], verdicts=FakeVerdictStore())
        return engine.pipeline.reader.read([{"role": "user", "content": "hi"}]).key

    versioned = FakeJudge()
    versioned.version = "fake-2"
    assert key(FakeJudge()) == key(FakeJudge())
    assert key(FakeJudge()) != key(versioned) != key(FakeJudge(name="other"))


async def test_forced_tiers_and_named_models_skip_the_judge(
    make_settings: Callable[..., Settings], parts: tuple[FakeVerdictStore, FakeLedger]
) -> None:
    judge = FakeJudge()
    store, ledger = parts
    engine = build_engine(make_settings(), judges=[judge], verdicts=store, ledger=ledger)
    forced = await engine.decide(ask("hi", tier=Tier.LOW))
    by_name = await engine.decide(ask("hi", model="auto:high"))
    passthrough = await engine.decide(ask("hi", model="openai/mid-a"))
    assert (forced.tier, forced.verdict.source) == (Tier.LOW, Source.FORCED)
    assert (by_name.tier, by_name.verdict.source) == (Tier.HIGH, Source.FORCED)
    assert passthrough.models == ["openai/mid-a"] and passthrough.tier is Tier.MEDIUM
    assert passthrough.verdict.source is Source.PASSTHROUGH
    assert judge.seen == [] and store.gets == 0
    with pytest.raises(UnknownTier):
        await engine.decide(ask("hi", model="auto:extreme"))
    with pytest.raises(UnknownModel, match="GET /v1/models"):
        await engine.decide(ask("hi", model="gpt-9"))
