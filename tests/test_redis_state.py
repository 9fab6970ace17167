"""The Redis pieces one at a time against a real redis-server: verdicts and their claim, the rate
limit's token bucket, the breaker's transitions, and what each does while Redis is unreachable.
Two links (two connection pools) stand for two replicas."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from judge_router.config import CircuitBreakerConfig
from judge_router.redis_link import RedisDown, RedisLink
from judge_router.routing.redis_store import LOCK_PREFIX, PREFIX, RedisVerdictStore
from judge_router.service.redis_limits import RedisRateLimiter
from judge_router.types import Source, Tier, Verdict
from judge_router.upstream.redis_breaker import RedisBreaker

from servers import free_port
from store_servers import RedisServer

pytestmark = pytest.mark.slow  # starts a real redis-server

VERDICT = Verdict(tier=Tier.HIGH, reason="hard", source=Source.LLM, judge_model="openai/j")


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    yield server
    server.close()


@pytest.fixture
async def links(redis_server: RedisServer) -> AsyncIterator[tuple[RedisLink, RedisLink]]:
    if redis_server.process is None:  # a test that stopped it failed before starting it again
        redis_server.start()
    redis_server.flush()
    first, second = RedisLink(redis_server.url), RedisLink(redis_server.url)
    yield first, second
    await first.aclose()
    await second.aclose()


async def until(condition: object, what: str, deadline_s: float = 10.0) -> None:
    """Await `condition()` until it is true; fail naming `what` at the deadline."""
    deadline = time.monotonic() + deadline_s
    while not await condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_a_verdict_is_kept_under_its_key_with_the_ttl(
    links: tuple[RedisLink, RedisLink],
) -> None:
    first, second = links
    store = RedisVerdictStore(first, ttl_s=3600, lock_s=5)
    kept = await store.put("k1", VERDICT)
    assert kept is not None and kept.verdict.source is Source.CACHE
    ttl = await first.client.ttl(PREFIX + "k1")
    assert 3590 <= ttl <= 3600
    found = await RedisVerdictStore(second, ttl_s=3600, lock_s=5).get("k1")
    assert found is not None
    assert (found.verdict.tier, found.verdict.reason, found.verdict.judge_model) == (
        Tier.HIGH,
        "hard",
        "openai/j",
    )
    assert await store.get("missing") is None


async def test_an_unreadable_entry_is_a_miss(links: tuple[RedisLink, RedisLink]) -> None:
    first, _ = links
    await first.client.set(PREFIX + "bad", b"not json")
    store = RedisVerdictStore(first, ttl_s=60, lock_s=5)
    assert await store.get("bad") is None
    claim = await store.claim("bad")
    assert claim.found is None and claim.token is None  # judge, and the put replaces it


async def test_one_claim_wins_and_the_waiters_read_its_verdict(
    links: tuple[RedisLink, RedisLink],
) -> None:
    first, second = links
    owner_store = RedisVerdictStore(first, ttl_s=60, lock_s=5)
    other_store = RedisVerdictStore(second, ttl_s=60, lock_s=5)
    owner = await owner_store.claim("k")
    assert owner.token is not None and owner.found is None
    waiters = [asyncio.create_task(other_store.claim("k")) for _ in range(5)]
    await until(lambda: _lock_held(first, "k"), "the lock")
    assert not any(task.done() for task in waiters)  # they wait while the owner judges
    await owner_store.put("k", VERDICT)
    await owner_store.release("k", owner)
    claims = await asyncio.wait_for(asyncio.gather(*waiters), 5)
    assert all(c.found is not None and c.token is None for c in claims)
    assert await first.client.exists(LOCK_PREFIX + "k") == 0


async def _lock_held(link: RedisLink, key: str) -> bool:
    return bool(await link.client.exists(LOCK_PREFIX + key))


async def test_a_crashed_owners_claim_expires_and_a_waiter_judges(
    links: tuple[RedisLink, RedisLink],
) -> None:
    first, second = links
    crashed = await RedisVerdictStore(first, ttl_s=60, lock_s=0.3).claim("k")
    assert crashed.token is not None  # never released, no verdict: as if the replica died
    started = time.monotonic()
    claim = await asyncio.wait_for(RedisVerdictStore(second, ttl_s=60, lock_s=0.3).claim("k"), 5)
    assert claim.token is not None and claim.token != crashed.token
    assert time.monotonic() - started >= 0.2  # it waited for the lock to lapse


async def test_a_release_without_verdict_hands_the_claim_on(
    links: tuple[RedisLink, RedisLink],
) -> None:
    first, second = links
    owner_store = RedisVerdictStore(first, ttl_s=60, lock_s=10)
    owner = await owner_store.claim("k")
    waiter = asyncio.create_task(RedisVerdictStore(second, ttl_s=60, lock_s=10).claim("k"))
    await owner_store.release("k", owner)  # e.g. the judge failed: nothing cacheable
    claim = await asyncio.wait_for(waiter, 5)
    assert claim.token is not None  # long before the 10 s lock would have lapsed


async def test_a_release_with_someone_elses_token_leaves_the_lock(
    links: tuple[RedisLink, RedisLink],
) -> None:
    first, _ = links
    store = RedisVerdictStore(first, ttl_s=60, lock_s=0.2)
    stale = await store.claim("k")
    await until(lambda: _lock_gone(first, "k"), "the first lock to lapse")
    current = await store.claim("k")
    await store.release("k", stale)  # the stale owner finishing late must not free it
    assert await first.client.get(LOCK_PREFIX + "k") == (current.token or "").encode()


async def _lock_gone(link: RedisLink, key: str) -> bool:
    return not await _lock_held(link, key)


async def test_the_rate_limit_admits_n_across_replicas(
    links: tuple[RedisLink, RedisLink],
) -> None:
    first, second = links
    limiters = [RedisRateLimiter(first, per_minute=5), RedisRateLimiter(second, per_minute=5)]
    waits = await asyncio.gather(*(limiters[i % 2].take("key-a") for i in range(20)))
    assert sum(1 for wait in waits if wait == 0) == 5
    assert all(0 < wait <= 12.5 for wait in waits if wait)  # one token every 12 s
    assert await limiters[0].take("key-b") == 0  # callers have their own buckets


async def test_the_rate_limit_refills_on_redis_time(links: tuple[RedisLink, RedisLink]) -> None:
    first, _ = links
    limiter = RedisRateLimiter(first, per_minute=60)  # one a second
    seconds, micros = await first.client.time()
    # An empty bucket last touched 2.5 s ago by Redis's clock: two and a half tokens since.
    await first.client.hset("jr:rate:k", mapping={"tokens": 0, "at": seconds + micros / 1e6 - 2.5})
    assert [await limiter.take("k") == 0 for _ in range(3)] == [True, True, False]
    assert 0 < await limiter.take("k") <= 1


async def test_a_circuit_opened_by_one_replica_is_open_for_the_other(
    links: tuple[RedisLink, RedisLink],
) -> None:
    first, second = links
    config = CircuitBreakerConfig(failures=2, cooldown_s=0.3)
    mine, theirs = RedisBreaker(first, config, "models"), RedisBreaker(second, config, "models")
    await mine.failure("m")
    assert await theirs.allows("m") and not await theirs.blocked("m")  # one failure: closed
    await theirs.failure("m")  # consecutive across replicas: now open
    assert await mine.blocked("m") and not await mine.allows("m")
    assert await theirs.blocked("m")
    assert set(await theirs.open_circuits()) == {"m"}
    assert await RedisBreaker(second, config, "judge").allows("m")  # scopes keep apart
    await until(lambda: _not_blocked(mine, "m"), "the cooldown to pass")
    trials = await asyncio.gather(*(b.allows("m") for b in (mine, theirs) * 5))
    assert sum(trials) == 1  # half-open: one trial among every caller of both replicas
    assert await mine.blocked("m")  # while the trial runs
    await theirs.success("m")
    assert await mine.allows("m") and await mine.open_circuits() == {}


async def test_a_failed_trial_opens_the_circuit_again(links: tuple[RedisLink, RedisLink]) -> None:
    first, second = links
    config = CircuitBreakerConfig(failures=1, cooldown_s=0.2)
    mine, theirs = RedisBreaker(first, config, "models"), RedisBreaker(second, config, "models")
    await mine.failure("m")
    await until(lambda: _not_blocked(theirs, "m"), "the cooldown to pass")
    assert await theirs.allows("m")
    await theirs.failure("m")
    assert await mine.blocked("m")


async def _not_blocked(breaker: RedisBreaker, name: str) -> bool:
    return not await breaker.blocked(name)


async def test_without_redis_everything_falls_back_to_this_process() -> None:
    link = RedisLink(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    store = RedisVerdictStore(link, ttl_s=60, lock_s=5)
    assert await store.get("k") is None
    assert await store.put("k", VERDICT) is not None  # the memory layer in front keeps it
    claim = await store.claim("k")
    assert claim.found is None and claim.token is None  # judge here
    await store.release("k", claim)
    limiter = RedisRateLimiter(link, per_minute=2)
    assert [await limiter.take("c") == 0 for _ in range(3)] == [True, True, False]
    breaker = RedisBreaker(link, CircuitBreakerConfig(failures=1, cooldown_s=60), "models")
    await breaker.failure("m")
    assert await breaker.blocked("m") and set(await breaker.open_circuits()) == {"m"}
    assert not link.reachable and link.errors >= 1
    assert {"cache_read", "cache_write", "judged_alone", "rate_limit", "breaker"} <= set(
        link.fallbacks
    )
    assert not (await store.health()).writable
    with pytest.raises(RedisDown):
        await link.run(lambda client: client.ping())
    await link.aclose()


async def test_a_link_reconnects_when_redis_is_back(
    redis_server: RedisServer, links: tuple[RedisLink, RedisLink]
) -> None:
    first, _ = links
    store = RedisVerdictStore(first, ttl_s=60, lock_s=5)
    await store.put("k", VERDICT)
    redis_server.stop()
    try:
        assert await store.get("k") is None  # a miss, not an exception
        assert not first.reachable
    finally:
        redis_server.start()
    await until(first.ping, "the link to reconnect")  # retried after its backoff
    assert first.reachable
    await store.put("k2", VERDICT)
    assert await store.get("k2") is not None
