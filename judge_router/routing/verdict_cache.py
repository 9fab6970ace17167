"""Verdict cache on diskcache, keyed by a tagged hash of what the judge saw; one judge call per key."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import diskcache
from cachetools import TLRUCache

from judge_router.routing.conversation import JudgedView
from judge_router.types import Source, Tier, Verdict

log = logging.getLogger(__name__)

# Bump when the key's inputs or the stored value change shape: old entries then simply stop matching.
KEY_FORMAT = "jr-verdict-v1"


def cache_key(view: JudgedView, judge_model: str, prompt_version: str) -> str:
    """Tagged blake2b of canonical JSON of {what the judge saw, judge model, prompt version}."""
    canonical = json.dumps(
        {
            "turns": [[turn.role, turn.text] for turn in view.turns],
            "judge_model": judge_model,
            "prompt": prompt_version,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    digest = hashlib.blake2b(canonical.encode("utf-8"), digest_size=16).hexdigest()
    return f"{KEY_FORMAT}:{digest}"


def _expiry(key: str, value: tuple[Verdict, float], now: float) -> float:
    return value[1]


class VerdictCache:
    """get/put verdicts by key. A broken cache is reported and bypassed, never raised to the caller."""

    def __init__(
        self,
        directory: Path,
        ttl_s: int,
        enabled: bool = True,
        clock: Callable[[], float] = time.time,
        memory_entries: int = 4096,
    ):
        self.directory = directory
        self.ttl_s = ttl_s
        self._clock = clock
        self.errors = 0
        self.last_error: str | None = None
        self._store: diskcache.Cache | None = None
        self._inflight: dict[str, asyncio.Future[Verdict]] = {}
        # Recent verdicts with their expiry, so a hit costs a dict lookup, not a SQLite read and an
        # unpickle. Each entry leaves at the moment the disk entry expires (same clock).
        self._recent: TLRUCache[str, tuple[Verdict, float]] | None = None
        if enabled and memory_entries:
            self._recent = TLRUCache(memory_entries, ttu=_expiry, timer=clock)
        if enabled:
            try:
                self._store = diskcache.Cache(str(directory))
            except Exception as exc:  # unwritable or corrupt directory: judge every request
                self._fail("open", exc)

    @property
    def available(self) -> bool:
        return self._store is not None

    def _fail(self, action: str, exc: Exception) -> None:
        self.errors += 1
        self.last_error = f"{action}: {type(exc).__name__}: {exc}"
        log.warning("verdict cache %s failed at %s: %s", action, self.directory, exc)

    def get(self, key: str) -> Verdict | None:
        if self._store is None:
            return None
        if self._recent is not None:
            recent = self._recent.get(key)
            if recent is not None:
                return recent[0]
        try:
            stored = self._store.get(key)
        except Exception as exc:
            self._fail("read", exc)
            return None
        if not isinstance(stored, dict) or stored.get("expires_at", 0) <= self._clock():
            return (
                None  # diskcache also expires entries; this check makes the TTL exact and testable
            )
        try:
            return self._remember(key, stored)
        except (KeyError, ValueError):
            return None  # an entry we cannot read is a miss, not an error

    def _remember(self, key: str, stored: dict[str, Any]) -> Verdict:
        """The stored entry as a later request sees it (from the cache, free), kept in memory."""
        verdict = Verdict(
            tier=Tier(stored["tier"]),
            reason=str(stored["reason"]),
            source=Source.CACHE,
            judge_model=str(stored.get("judge_model", "")),
        )
        if self._recent is not None:
            self._recent[key] = (verdict, float(stored["expires_at"]))
        return verdict

    def put(self, key: str, verdict: Verdict) -> None:
        if self._store is None:
            return
        value: dict[str, Any] = {
            "tier": verdict.tier.value,
            "reason": verdict.reason,
            "judge_model": verdict.judge_model,
            "expires_at": self._clock() + self.ttl_s,
        }
        try:
            self._store.set(key, value, expire=self.ttl_s)
        except Exception as exc:
            self._fail("write", exc)
            return  # not remembered either: a verdict we could not store is judged again
        self._remember(key, value)

    async def get_or_rate(
        self, key: str, rate: Callable[[], Awaitable[Verdict]], cacheable: Callable[[Verdict], bool]
    ) -> tuple[Verdict, bool]:
        """The cached verdict (hit=True), or one `rate()` shared by every concurrent caller of `key`."""
        cached = self.get(key)
        if cached is not None:
            return cached, True
        pending = self._inflight.get(key)
        if pending is not None:
            # Another request is already judging this prompt: wait for its verdict instead of paying
            # again. Waiters did not pay for it, and a shared LLM verdict counts as a cache hit.
            verdict = await asyncio.shield(pending)
            shared: dict[str, Any] = {"cost_usd": 0.0, "latency_ms": 0.0}
            hit = cacheable(verdict)
            if hit:
                shared["source"] = Source.CACHE
            return verdict.model_copy(update=shared), hit
        future: asyncio.Future[Verdict] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            verdict = await rate()
            if cacheable(verdict):
                self.put(key, verdict)
            future.set_result(verdict)
            return verdict, False
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: no waiter is an acceptable outcome
            raise
        finally:
            del self._inflight[key]

    def writable(self) -> bool:
        """Whether a probe value can be written and read back now (for /healthz)."""
        if self._store is None:
            return False
        try:
            self._store.set("jr-health-probe", 1, expire=60)
            return bool(self._store.get("jr-health-probe") == 1)
        except Exception as exc:
            self._fail("probe", exc)
            return False

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
