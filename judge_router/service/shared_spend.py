"""Budget spend counters shared by every replica: one float per budget and month in Redis, raised
with INCRBYFLOAT (atomic, so concurrent replicas never lose an addition) by each replica as it
records a row. Each replica's own figure (the ledger's, plus its rows since) stays in force; a
budget's spend is the larger of the two, since each counts a part of the truth and neither counts
anything twice. Redis unreachable: additions are dropped and counted, the own figure decides."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from judge_router.redis_link import RedisDown, RedisLink

if TYPE_CHECKING:
    from redis.asyncio import Redis

MAX_PENDING = 1000  # additions in flight; beyond that they are dropped (the ledger has the rows)
KEEP_S = 40 * 86_400  # a month's counter outlives its month, then goes


class SharedSpend(Protocol):
    def add(self, names: Sequence[str], month: str, usd: float) -> None:
        """Add `usd` to each named budget's `month` (YYYY-MM) in the background; never waits."""
        ...

    async def totals(self, names: Sequence[str], month: str) -> list[float] | None:
        """Each named budget's shared spend this `month`; None when it cannot be read now."""
        ...

    async def aclose(self) -> None: ...


def _key(month: str, name: str) -> str:
    return f"jr:spend:{month}:{name}"


class RedisSpend:
    def __init__(self, link: RedisLink):
        self.link = link
        self._pending: set[asyncio.Task[None]] = set()

    def add(self, names: Sequence[str], month: str, usd: float) -> None:
        if not names or usd <= 0:
            return
        if len(self._pending) >= MAX_PENDING:
            self.link.fell_back("budget_add")
            return
        task = asyncio.get_running_loop().create_task(self._add(list(names), month, usd))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _add(self, names: list[str], month: str, usd: float) -> None:
        async def increments(client: Redis) -> None:
            pipe = client.pipeline(transaction=True)
            for name in names:
                pipe.incrbyfloat(_key(month, name), usd)
                pipe.expire(_key(month, name), KEEP_S)
            await pipe.execute()

        try:
            await self.link.run(increments)
        except RedisDown:
            self.link.fell_back("budget_add")

    async def totals(self, names: Sequence[str], month: str) -> list[float] | None:
        if not names:
            return []
        keys = [_key(month, name) for name in names]
        try:
            found = await self.link.run(lambda client: client.mget(keys))
        except RedisDown:
            self.link.fell_back("budget_read")
            return None
        return [float(value) if value is not None else 0.0 for value in found]

    async def aclose(self) -> None:
        """Let the additions in flight land (each fails fast if Redis is away)."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
