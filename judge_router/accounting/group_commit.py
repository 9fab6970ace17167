"""Group commit: the rows requests hand the ledger in one turn of the event loop are committed in
one transaction, and each request goes on once that transaction has committed.

The promise is the one a commit per row keeps (an answered request's row is committed before its
answer); what changes is its cost under load. A commit writes every page it touched to the WAL
(the table's, its indexes', the daily rollup's), so twenty rows in one transaction cost little more
than one; at concurrency 1 a group is one row, committed one loop turn later (microseconds).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    """Collects items until the loop's next turn, then writes them all with `write`, which answers
    one result per item, in order."""

    def __init__(self, write: Callable[[Sequence[T]], list[R]]):
        self._write = write
        self._items: list[T] = []
        self._waiters: list[asyncio.Future[R]] = []

    async def add(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        if not self._items:
            loop.call_soon(self._flush)
        future: asyncio.Future[R] = loop.create_future()
        self._items.append(item)
        self._waiters.append(future)
        # Shielded: a request cancelled meanwhile still has its row written with the others.
        return await asyncio.shield(future)

    def _flush(self) -> None:
        items, waiters = self._items, self._waiters
        self._items, self._waiters = [], []
        try:
            results = self._write(items)
        except Exception as exc:  # a bug in `write`: every waiter hears of it
            for future in waiters:
                if not future.done():
                    future.set_exception(exc)
            return
        for future, result in zip(waiters, results, strict=True):
            if not future.done():
                future.set_result(result)
