"""Verdicts in Redis (same key and TTL as on disk), shared by every replica, and the claim that
makes one judge call per prompt across them.

The claim is one Lua script: the verdict if it is there, else the lock (`SET NX PX`) with a
random owner token, else "wait". Checking and claiming in one step is what keeps two replicas
from both judging. A waiter repeats the script every few milliseconds until the verdict lands or
the lock is gone (released without a verdict, or expired after `lock_s`: a crashed owner), and
then judges itself. Redis unreachable: a miss, and a claim that lets this replica judge (counted).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Callable
from typing import Any

from judge_router.redis_link import RedisDown, RedisLink
from judge_router.routing.shared_flight import Claim
from judge_router.routing.verdict_store import StoredVerdict, StoreHealth, storable, stored
from judge_router.types import Verdict

PREFIX = "jr:verdict:"
LOCK_PREFIX = "jr:judging:"
POLL_S = (0.005, 0.05)  # a waiter's first and longest pause between looks

_VERDICT_OR_CLAIM = """
local found = redis.call('GET', KEYS[1])
if found then return {1, found} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {2, ''} end
return {0, ''}
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _decode(raw: Any) -> StoredVerdict | None:
    try:
        value = json.loads(raw)
        return stored(value) if isinstance(value, dict) else None
    except (ValueError, KeyError, TypeError):
        return None  # an entry we cannot read is a miss


class RedisVerdictStore:
    """A VerdictStore and a SharedFlight on one Redis."""

    def __init__(
        self,
        link: RedisLink,
        ttl_s: int,
        lock_s: float,
        clock: Callable[[], float] = time.time,
    ):
        self.link = link
        self.ttl_s = ttl_s
        self.lock_ms = max(1, int(lock_s * 1000))
        self._clock = clock
        client = link.client
        self._claim = client.register_script(_VERDICT_OR_CLAIM)
        self._release = client.register_script(_RELEASE)

    async def get(self, key: str) -> StoredVerdict | None:
        try:
            raw = await self.link.run(lambda client: client.get(PREFIX + key))
        except RedisDown:
            self.link.fell_back("cache_read")
            return None
        return None if raw is None else _decode(raw)

    async def put(self, key: str, verdict: Verdict) -> StoredVerdict | None:
        value = storable(verdict, self._clock() + self.ttl_s)
        text = json.dumps(value, separators=(",", ":"))
        try:
            await self.link.run(lambda client: client.set(PREFIX + key, text, ex=self.ttl_s))
        except RedisDown:
            self.link.fell_back("cache_write")
            return None  # not kept anywhere: the memory layer does not remember it either
        return stored(value)

    async def claim(self, key: str) -> Claim:
        token = secrets.token_hex(8)
        keys = [PREFIX + key, LOCK_PREFIX + key]
        pause = POLL_S[0]
        # A claim lapses after lock_ms, so a waiter gets the verdict or the claim by then;
        # twice that bounds a wait even if clocks or Redis misbehave.
        deadline = time.monotonic() + 2 * self.lock_ms / 1000
        while True:
            try:
                kind, raw = await self.link.run(
                    lambda client: self._claim(keys, [token, self.lock_ms], client)
                )
            except RedisDown:
                self.link.fell_back("judged_alone")
                return Claim()
            if int(kind) == 1:
                found = _decode(raw)
                if found is not None:
                    return Claim(found=found)
                return Claim()  # unreadable entry: judge, and the put replaces it
            if int(kind) == 2:
                return Claim(token=token)
            if time.monotonic() > deadline:
                self.link.fell_back("claim_timeout")
                return Claim()
            await asyncio.sleep(pause)
            pause = min(pause * 1.5, POLL_S[1])

    async def release(self, key: str, claim: Claim) -> None:
        token = claim.token
        if token is None:
            return
        try:
            await self.link.run(lambda client: self._release([LOCK_PREFIX + key], [token], client))
        except RedisDown:
            pass  # the claim expires by itself after lock_s

    async def health(self) -> StoreHealth:
        writable = await self.link.ping()
        return StoreHealth(True, writable, self.link.errors, self.link.last_error)

    def close(self) -> None:
        pass  # the link is shared with the state; the engine closes it
