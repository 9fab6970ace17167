"""Verdict cache: hits, TTL, invalidation by judge prompt or model, and one judge call per key."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path

import diskcache
import respx

from judge_router.config import Settings
from judge_router.routing.cache_key import cache_key
from judge_router.routing.conversation import Turn, judged_view
from judge_router.routing.memory_layer import MemoryLayer
from judge_router.routing.one_flight import OneFlight
from judge_router.routing.verdict_store import DiskVerdictStore
from judge_router.service.engine import Engine
from judge_router.service.factory import build_engine
from judge_router.types import Source, Tier, Verdict

from fakes import FakeJudge, FakeVerdictStore, ask, verdict_reply

PROMPT = [{"role": "user", "content": "Explain the CAP theorem with an example."}]
VERDICT = Verdict(tier=Tier.HIGH, reason="r", source=Source.LLM, cost_usd=0.01)


async def test_second_identical_prompt_is_a_cache_hit(
    engine: Engine, judge_route: respx.Route
) -> None:
    judge_route.mock(return_value=verdict_reply(tier="high"))
    first = await engine.route(ask(PROMPT))
    second = await engine.route(ask(PROMPT))
    assert (first.source, first.cached) == (Source.LLM, False)
    assert (second.source, second.cached, second.tier) == (Source.CACHE, True, Tier.HIGH)
    assert second.judge_cost_usd == 0 and first.judge_cost_usd > 0
    assert judge_route.call_count == 1
    rows = await engine.ledger.rows()
    assert rows[0]["prompt_hash"] == rows[1]["prompt_hash"]


async def test_cache_stores_hash_and_verdict_never_prompt_text(tmp_path: Path) -> None:
    store = DiskVerdictStore(tmp_path / "c", ttl_s=60)
    secret = "my password is hunter2"
    view = judged_view([Turn("user", secret)], 1000)
    key = cache_key(view, "judge", "judge-v1@abc")
    await store.put(key, Verdict(tier=Tier.LOW, reason="short", source=Source.LLM))
    store.close()
    assert key.startswith("jr-verdict-v1:") and secret not in key
    for path in (tmp_path / "c").rglob("*"):
        if path.is_file():
            assert b"hunter2" not in path.read_bytes()


async def test_ttl_expiry(tmp_path: Path) -> None:
    now = [1_000_000.0]
    store = DiskVerdictStore(tmp_path / "c", ttl_s=60, clock=lambda: now[0])
    await store.put("k", VERDICT)
    now[0] += 59
    hit = await store.get("k")
    assert hit is not None and hit.verdict.tier is Tier.HIGH and hit.verdict.source is Source.CACHE
    assert hit.verdict.cost_usd == 0  # a later request gets it for free
    now[0] += 2
    assert await store.get("k") is None
    store.close()


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
        engine = build_engine(make_settings(judge={"prompt": prompt, "prompt_dir": str(prompts)}))
        try:
            await engine.route(ask(PROMPT))
        finally:
            await engine.aclose()
    assert judge_route.call_count == 2  # one miss per version, then hits
    # Editing a prompt file in place (same name) invalidates too.
    (prompts / "judge-v2.md").write_text("Rate difficulty. v2, reworded")
    from judge_router.routing.judges.llm import load_prompt

    load_prompt.cache_clear()
    engine = build_engine(make_settings(judge={"prompt": "judge-v2", "prompt_dir": str(prompts)}))
    try:
        answer = await engine.route(ask(PROMPT))
    finally:
        await engine.aclose()
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
    tasks = [asyncio.create_task(engine.route(ask(PROMPT))) for _ in range(20)]
    await entered.wait()  # the first request is inside the judge call; the rest have queued
    release.set()
    answers = await asyncio.gather(*tasks)
    assert judge_route.call_count == 1
    assert all(a.tier is Tier.LOW for a in answers)
    assert sorted(a.source.value for a in answers) == ["cache"] * 19 + ["llm"]
    assert len([a for a in answers if a.judge_cost_usd > 0]) == 1  # the judge is paid once
    assert len(await engine.ledger.rows()) == 20


async def test_unwritable_cache_directory_degrades_to_no_cache(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    store = DiskVerdictStore(blocker / "cache", ttl_s=60)
    assert store.errors == 1
    assert await store.put("k", VERDICT) is None
    assert await store.get("k") is None
    health = await store.health()
    assert health.enabled and not health.writable


async def test_a_corrupt_entry_is_a_miss_not_an_error(tmp_path: Path) -> None:
    store = DiskVerdictStore(tmp_path / "c", ttl_s=60)
    store.close()
    with diskcache.Cache(str(tmp_path / "c")) as disk:
        disk.set("wrong-shape", {"tier": "enormous", "reason": "r", "expires_at": 1e12})
        disk.set("not-a-dict", "low")
    store = DiskVerdictStore(tmp_path / "c", ttl_s=60)
    assert await store.get("wrong-shape") is None and await store.get("not-a-dict") is None
    assert store.errors == 0
    store.close()


async def test_corrupt_cache_keeps_routing_and_reports_degraded(
    make_settings: Callable[..., Settings], judge_route: respx.Route, tmp_path: Path
) -> None:
    broken = tmp_path / "corrupt-cache"
    broken.mkdir()
    (broken / "cache.db").write_bytes(b"this is not an sqlite database" * 100)
    engine = build_engine(make_settings(cache={"dir": str(broken)}))
    try:
        first = await engine.route(ask(PROMPT))
        second = await engine.route(ask(PROMPT))
    finally:
        await engine.aclose()
    assert (await engine.verdicts.health()).errors >= 1
    assert (first.source, second.source) == (Source.LLM, Source.LLM)  # judged every time
    assert judge_route.call_count == 2


async def test_recent_verdicts_are_answered_from_memory() -> None:
    store = FakeVerdictStore()
    memory = MemoryLayer(store, entries=16)
    await memory.put("k", VERDICT)
    store.failing = True  # the store behind it is gone: memory still answers
    hit = await memory.get("k")
    assert hit is not None and (hit.verdict.tier, hit.verdict.source) == (Tier.HIGH, Source.CACHE)
    assert store.gets == 0
    assert await memory.get("other") is None and store.gets == 1  # a miss asks the store


async def test_verdicts_read_from_the_store_are_remembered() -> None:
    store = FakeVerdictStore()
    await store.put("k", VERDICT)  # e.g. written by another worker process
    memory = MemoryLayer(store, entries=16)
    assert await memory.get("k") is not None and store.gets == 1
    assert await memory.get("k") is not None and store.gets == 1


async def test_memory_entries_expire_with_the_store_entry(tmp_path: Path) -> None:
    now = [1_000_000.0]
    disk = DiskVerdictStore(tmp_path / "c", ttl_s=60, clock=lambda: now[0])
    memory = MemoryLayer(disk, entries=16, clock=lambda: now[0])
    await memory.put("k", VERDICT)
    now[0] += 59
    assert await memory.get("k") is not None
    now[0] += 2
    assert await memory.get("k") is None
    disk.close()


async def test_a_verdict_the_store_refused_is_not_remembered() -> None:
    store = FakeVerdictStore()
    store.failing = True
    memory = MemoryLayer(store, entries=16)
    assert await memory.put("k", VERDICT) is None
    store.failing = False
    assert await memory.get("k") is None


async def test_without_memory_entries_every_read_goes_to_the_store(
    make_settings: Callable[..., Settings],
) -> None:
    store = FakeVerdictStore()
    judge = FakeJudge()
    settings = make_settings(cache={"memory_entries": 0})
    engine = build_engine(settings, judges=[judge], verdicts=store)
    try:
        await engine.route(ask(PROMPT))
        before = store.gets
        again = await engine.route(ask(PROMPT))
    finally:
        await engine.aclose()
    assert again.source is Source.CACHE and store.gets == before + 1 and len(judge.seen) == 1


async def test_a_repeated_prompt_is_read_and_tokenized_once(
    make_settings: Callable[..., Settings],
) -> None:
    judge = FakeJudge()
    engine = build_engine(make_settings(), judges=[judge], verdicts=FakeVerdictStore())
    try:
        message = {"role": "user", "content": "Prove that sqrt(2) is irrational.", "name": "ann"}
        reordered = dict(reversed(list(message.items())))
        first = await engine.route(ask([message]))
        second = await engine.route(ask([reordered]))
        other = await engine.route(
            ask([{"role": "user", "content": "Prove that sqrt(3) is irrational."}])
        )
        reader = engine.pipeline.reader
        # The reordered copy is recognised: the very view worked out for the first is reused.
        assert reader.read([reordered]).view is reader.read([message]).view
    finally:
        await engine.aclose()
    assert second.prompt_tokens == first.prompt_tokens and second.source is Source.CACHE
    assert other.source is Source.LLM and len(judge.seen) == 2
    rows = await engine.ledger.rows()
    assert rows[0]["prompt_hash"] == rows[1]["prompt_hash"] != rows[2]["prompt_hash"]


async def test_without_memory_entries_every_prompt_is_read_again(
    make_settings: Callable[..., Settings],
) -> None:
    engine = build_engine(
        make_settings(cache={"memory_entries": 0}),
        judges=[FakeJudge()],
        verdicts=FakeVerdictStore(),
    )
    try:
        reader = engine.pipeline.reader
        assert reader.read(PROMPT).view is not reader.read(PROMPT).view
        assert reader.read(PROMPT).view == reader.read(PROMPT).view
    finally:
        await engine.aclose()


async def test_a_cancelled_leader_does_not_fail_its_followers(
    make_settings: Callable[..., Settings],
) -> None:
    """The request calling the judge is cancelled (deadline, disconnect): the requests waiting on
    its verdict judge for themselves, one of them calling the judge for all the rest."""
    judge = FakeJudge(default=Tier.LOW)
    judge.gate = asyncio.Event()
    engine = build_engine(make_settings(), judges=[judge], verdicts=FakeVerdictStore())
    try:
        leader = asyncio.create_task(engine.route(ask(PROMPT)))
        while not judge.seen:  # the leader is inside the judge call
            await asyncio.sleep(0)
        followers = [asyncio.create_task(engine.route(ask(PROMPT))) for _ in range(5)]
        await asyncio.sleep(0)  # the followers are now waiting on the leader's verdict
        leader.cancel()
        judge.seen.clear()
        judge.gate.set()
        # Bounded, so that a follower failing with the leader's CancelledError fails the test here.
        async with asyncio.timeout(5):
            answers = await asyncio.gather(*followers)
    finally:
        await engine.aclose()
    assert leader.cancelled()
    assert len(judge.seen) == 1  # one new judge call for the five waiting requests
    assert all(a.tier is Tier.LOW for a in answers)
    assert sorted(a.source.value for a in answers) == ["cache"] * 4 + ["llm"]


async def test_a_verdict_stored_while_a_slow_store_answered_a_miss_is_used(
    make_settings: Callable[..., Settings],
) -> None:
    """With a store that answers after a delay, the first request can finish (and store its
    verdict) after a second one's lookup missed: the second must not judge again."""
    judge = FakeJudge(default=Tier.HIGH)
    judge.gate = asyncio.Event()
    store = FakeVerdictStore(latency=5)
    engine = build_engine(make_settings(), judges=[judge], verdicts=store)
    first = asyncio.create_task(engine.route(ask(PROMPT)))
    while not judge.seen:
        await asyncio.sleep(0)
    second = asyncio.create_task(engine.route(ask(PROMPT)))
    await asyncio.sleep(0)  # the second request's lookup has read the store (a miss) and waits
    judge.gate.set()
    async with asyncio.timeout(5):
        answers = await asyncio.gather(first, second)
    await engine.aclose()
    assert len(judge.seen) == 1
    assert [(a.source, a.cached) for a in answers] == [(Source.LLM, False), (Source.CACHE, True)]


async def test_one_flight_shares_a_result_and_passes_errors_on() -> None:
    flight: OneFlight[int] = OneFlight()
    release = asyncio.Event()
    calls = 0

    async def work() -> int:
        nonlocal calls
        calls += 1
        await release.wait()
        return 42

    first = asyncio.create_task(flight.run("k", work))
    await asyncio.sleep(0)
    second = asyncio.create_task(flight.run("k", work))
    await asyncio.sleep(0)
    release.set()
    assert (await first, await second) == ((42, False), (42, True)) and calls == 1

    async def broken() -> int:
        raise RuntimeError("judge exploded")

    failing = [asyncio.create_task(flight.run("e", broken)) for _ in range(2)]
    results = await asyncio.gather(*failing, return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)


async def test_a_fixed_cache_directory_is_used_again_without_a_restart(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    directory = tmp_path / "cache"
    directory.mkdir()
    (directory / "cache.db").write_bytes(b"this is not an sqlite database" * 100)
    now = [0.0]
    store = DiskVerdictStore(directory, ttl_s=60, monotonic=lambda: now[0])
    judge = FakeJudge()
    engine = build_engine(make_settings(), judges=[judge], verdicts=store)
    assert not (await store.health()).writable
    shutil.rmtree(directory)  # the operator deletes the corrupt cache
    await engine.route(ask(PROMPT))  # within the backoff: not retried yet, judged
    now[0] += 1.0  # the backoff has passed
    await engine.route(ask(PROMPT))  # opens the cache again, and stores this verdict
    again = await engine.route(ask(PROMPT))
    health = await store.health()
    await engine.aclose()
    assert again.source is Source.CACHE and len(judge.seen) == 2
    assert health.writable and (directory / "cache.db").exists()


async def test_a_cache_directory_deleted_while_open_is_noticed_and_recreated(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    directory = tmp_path / "cache"
    now = [0.0]
    store = DiskVerdictStore(directory, ttl_s=60, monotonic=lambda: now[0])
    judge = FakeJudge()
    engine = build_engine(make_settings(), judges=[judge], verdicts=store)
    await engine.route(ask(PROMPT))
    shutil.rmtree(directory)  # writes would now go to an unlinked file
    other = [{"role": "user", "content": "Another question entirely."}]
    await engine.route(ask(other))  # noticed on this write: not stored, reopened after backoff
    now[0] += 1.0
    await engine.route(ask(other))
    repeat = await engine.route(ask(other))
    await engine.aclose()
    assert store.errors == 1 and (directory / "cache.db").exists()
    assert repeat.source is Source.CACHE
