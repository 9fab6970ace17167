"""Recent verdicts kept in process in front of any verdict store, each until its exact expiry."""

from __future__ import annotations

import time
from collections.abc import Callable

from cachetools import TLRUCache

from judge_router.routing.verdict_store import StoredVerdict, StoreHealth, VerdictStore
from judge_router.types import Verdict


def _expiry(key: str, value: StoredVerdict, now: float) -> float:
    return value.expires_at


class MemoryLayer:
    """A VerdictStore: a hit here costs a dict lookup, not a SQLite read (or a Redis round trip)
    and an unpickle. An entry leaves at the moment the store's entry expires (same clock); a verdict
    the store refused is not remembered either, so it is judged again."""

    def __init__(self, store: VerdictStore, entries: int, clock: Callable[[], float] = time.time):
        self.store = store
        self._recent: TLRUCache[str, StoredVerdict] = TLRUCache(entries, ttu=_expiry, timer=clock)

    async def get(self, key: str) -> StoredVerdict | None:
        found = self._recent.get(key)
        if found is None:
            found = await self.store.get(key)
            if found is not None:
                self._recent[key] = found
        return found

    async def put(self, key: str, verdict: Verdict) -> StoredVerdict | None:
        kept = await self.store.put(key, verdict)
        if kept is not None:
            self._recent[key] = kept
        return kept

    async def health(self) -> StoreHealth:
        return await self.store.health()

    def close(self) -> None:
        self.store.close()
