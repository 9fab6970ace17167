"""Verdict cache: hits, TTL, invalidation by judge prompt or model, and one judge call per key."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import respx

import judge_router.routing.pipeline as router_module
from judge_router.config import Settings
from judge_router.routing.conversation import Turn, judged_view
from judge_router.routing.verdict_cache import VerdictCache, cache_key
from judge_router.service.engine import Engine
from judge_router.types import Source, Tier, Verdict

from fakes import verdict_reply

PROMPT = [{"role": "user", "content": "Explain the CAP theorem with an example."}]


async def test_second_identical_prompt_is_a_cache_hit(
    engine: Engine, judge_route: respx.Route
) -> None:
    judge_route.mock(return_value=verdict_reply(tier="high"))
    first = await engine.route(PROMPT)
    second = await engine.route(PROMPT)
    assert (first.source, first.cached) == (Source.LLM, False)
    assert (second.source, second.cached, second.tier) == (Source.CACHE, True, Tier.HIGH)
    assert second.judge_cost_usd == 0 and first.judge_cost_usd > 0
    assert judge_route.call_count == 1
    rows = engine.ledger.rows()
    assert rows[0]["prompt_hash"] == rows[1]["prompt_hash"]


def test_cache_stores_hash_and_verdict_never_prompt_text(tmp_path: Path) -> None:
    cache = VerdictCache(tmp_path / "c", ttl_s=60)
    secret = "my password is hunter2"
    view = judged_view([Turn("user", secret)], 1000)
    key = cache_key(view, "judge", "judge-v1@abc")
    cache.put(key, Verdict(tier=Tier.LOW, reason="short", source=Source.LLM))
    cache.close()
    assert key.startswith("jr-verdict-v1:") and secret not in key
    for path in (tmp_path / "c").rglob("*"):
        if path.is_file():
            assert b"hunter2" not in path.read_bytes()


def test_ttl_expiry(tmp_path: Path) -> None:
    now = [1_000_000.0]
    cache = VerdictCache(tmp_path / "c", ttl_s=60, clock=lambda: now[0])
    cache.put("k", Verdict(tier=Tier.HIGH, reason="r", source=Source.LLM))
    now[0] += 59
    hit = cache.get("k")
    assert hit is not None and hit.tier is Tier.HIGH and hit.source is Source.CACHE
    now[0] += 2
    assert cache.get("k") is None
    cache.close()


def test_key_changes_with_judge_model_prompt_version_and_text() -> None:
    view = judged_view([Turn("user", "hello")], 1000)
    base = cache_key(view, "gpt-5-nano", "judge-v1@aaa")
    assert base == cache_key(
        judged_view([Turn("user", "hello")], 1000), "gpt-5-nano", "judge-v1@aaa"
    )
    assert base != cache_key(view, "gemini/gemini-2.5-flash-lite", "judge-v1@aaa")
    assert base != cache_key(view, "gpt-5-nano", "judge-v2@aaa")
    assert base != cache_key(view, "gpt-5-nano", "judge-v1@bbb")
    assert base != cache_key(
        judged_view([Turn("user", "hello!")], 1000), "gpt-5-nano", "judge-v1@aaa"
    )


async def test_new_prompt_version_invalidates_cached_verdicts(
    make_settings: Callable[..., Settings], judge_route: respx.Route, tmp_path: Path
) -> None:
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "judge-v1.md").write_text("Rate difficulty. v1")
    (prompts / "judge-v2.md").write_text("Rate difficulty. v2")
    for prompt in ("judge-v1", "judge-v1", "judge-v2", "judge-v2"):
        engine = Engine(make_settings(judge={"prompt": prompt, "prompt_dir": str(prompts)}))
        try:
            await engine.route(PROMPT)
        finally:
            engine.close()
    assert judge_route.call_count == 2  # one miss per version, then hits
    # Editing a prompt file in place (same name) invalidates too.
    (prompts / "judge-v2.md").write_text("Rate difficulty. v2, reworded")
    from judge_router.routing.judges.llm import load_prompt

    load_prompt.cache_clear()
    engine = Engine(make_settings(judge={"prompt": "judge-v2", "prompt_dir": str(prompts)}))
    try:
        answer = await engine.route(PROMPT)
    finally:
        engine.close()
    assert answer.source is Source.LLM and judge_route.call_count == 3


async def test_concurrent_identical_prompts_make_one_judge_call(
    engine: Engine, judge_route: respx.Route
) -> None:
    entered = asyncio.Event()
    release = asyncio.Event()

    async def slow_judge(request: object) -> object:
        entered.set()
        await release.wait()
        return verdict_reply(tier="low")

    judge_route.mock(side_effect=slow_judge)
    tasks = [asyncio.create_task(engine.route(PROMPT)) for _ in range(20)]
    await entered.wait()  # the first request is inside the judge call; the rest have queued
    release.set()
    answers = await asyncio.gather(*tasks)
    assert judge_route.call_count == 1
    assert all(a.tier is Tier.LOW for a in answers)
    assert sorted(a.source.value for a in answers) == ["cache"] * 19 + ["llm"]
    assert len([a for a in answers if a.judge_cost_usd > 0]) == 1  # the judge is paid once
    assert len(engine.ledger.rows()) == 20


def test_unwritable_cache_directory_degrades_to_no_cache(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    cache = VerdictCache(blocker / "cache", ttl_s=60)
    assert not cache.available and cache.errors == 1
    cache.put("k", Verdict(tier=Tier.LOW, reason="r", source=Source.LLM))
    assert cache.get("k") is None
    assert not cache.writable()


async def test_corrupt_cache_keeps_routing_and_reports_degraded(
    make_settings: Callable[..., Settings], judge_route: respx.Route, tmp_path: Path
) -> None:
    broken = tmp_path / "corrupt-cache"
    broken.mkdir()
    (broken / "cache.db").write_bytes(b"this is not an sqlite database" * 100)
    engine = Engine(make_settings(cache={"dir": str(broken)}))
    try:
        first = await engine.route(PROMPT)
        second = await engine.route(PROMPT)
    finally:
        engine.close()
    assert not engine.cache.available and engine.cache.errors >= 1
    assert (first.source, second.source) == (Source.LLM, Source.LLM)  # judged every time
    assert judge_route.call_count == 2


class CountingStore:
    """Stands in for diskcache: counts reads, and fails them when told to."""

    def __init__(self, fail: bool = False):
        self.reads = 0
        self.fail = fail

    def get(self, key: str) -> object:
        self.reads += 1
        if self.fail:
            raise OSError("disk gone")
        return None


def test_recent_verdicts_are_answered_from_memory(tmp_path: Path) -> None:
    cache = VerdictCache(tmp_path / "c", ttl_s=60)
    cache.put("k", Verdict(tier=Tier.HIGH, reason="r", source=Source.LLM, cost_usd=0.01))
    disk = cache._store
    cache._store = CountingStore(fail=True)  # type: ignore[assignment]
    hit = cache.get("k")
    assert hit is not None and (hit.tier, hit.source, hit.cost_usd) == (Tier.HIGH, Source.CACHE, 0)
    assert cache._store.reads == 0 and cache.errors == 0  # type: ignore[attr-defined]
    assert cache.get("other") is None and cache.errors == 1  # a miss in memory reads the disk
    cache._store = disk
    cache.close()


def test_verdicts_read_from_disk_are_remembered(tmp_path: Path) -> None:
    writer = VerdictCache(tmp_path / "c", ttl_s=60)  # e.g. another worker process
    writer.put("k", Verdict(tier=Tier.LOW, reason="r", source=Source.LLM))
    writer.close()
    reader = VerdictCache(tmp_path / "c", ttl_s=60)
    assert reader.get("k") is not None
    disk = reader._store
    reader._store = CountingStore()  # type: ignore[assignment]
    assert reader.get("k") is not None and reader._store.reads == 0  # type: ignore[attr-defined]
    reader._store = disk
    reader.close()


def test_without_memory_entries_every_read_goes_to_disk(tmp_path: Path) -> None:
    cache = VerdictCache(tmp_path / "c", ttl_s=60, memory_entries=0)
    cache.put("k", Verdict(tier=Tier.LOW, reason="r", source=Source.LLM))
    disk = cache._store
    store = cache._store = CountingStore()  # type: ignore[assignment]
    assert cache.get("k") is None and store.reads == 1
    cache._store = disk
    cache.close()


def test_a_verdict_the_disk_refused_is_not_remembered(tmp_path: Path) -> None:
    cache = VerdictCache(tmp_path / "c", ttl_s=60)

    class Refusing:
        def set(self, *args: object, **kwargs: object) -> None:
            raise OSError("disk full")

        def get(self, key: str) -> None:
            return None

    disk = cache._store
    cache._store = Refusing()  # type: ignore[assignment]
    cache.put("k", Verdict(tier=Tier.LOW, reason="r", source=Source.LLM))
    assert cache.errors == 1 and cache.get("k") is None
    cache._store = disk
    cache.close()


@pytest.fixture
def readings(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per time the router works out what the judge sees (tokenizing the prompt)."""
    calls: list[int] = []
    real = router_module.judged_view

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(router_module, "judged_view", counting)
    return calls


async def test_a_repeated_prompt_is_read_and_tokenized_once(
    make_settings: Callable[..., Settings], judge_route: respx.Route, readings: list[int]
) -> None:
    engine = Engine(make_settings())
    try:
        message = {"role": "user", "content": "Prove that sqrt(2) is irrational.", "name": "ann"}
        reordered = dict(reversed(list(message.items())))
        first = await engine.route([message])
        second = await engine.route([reordered])
        other = await engine.route(
            [{"role": "user", "content": "Prove that sqrt(3) is irrational."}]
        )
    finally:
        engine.close()
    assert len(readings) == 2  # the reordered copy was recognised; the other prompt was read
    assert second.prompt_tokens == first.prompt_tokens and second.source is Source.CACHE
    assert other.source is Source.LLM and judge_route.call_count == 2
    rows = engine.ledger.rows()
    assert rows[0]["prompt_hash"] == rows[1]["prompt_hash"] != rows[2]["prompt_hash"]


async def test_without_memory_entries_every_prompt_is_read_again(
    make_settings: Callable[..., Settings], judge_route: respx.Route, readings: list[int]
) -> None:
    engine = Engine(make_settings(cache={"memory_entries": 0}))
    try:
        await engine.route(PROMPT)
        again = await engine.route(PROMPT)
    finally:
        engine.close()
    assert len(readings) == 2 and again.source is Source.CACHE  # still a (disk) cache hit
