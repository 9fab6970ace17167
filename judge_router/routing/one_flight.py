"""One flight: concurrent requests for the same key share one piece of work (one judge call).

If the request doing the work is cancelled (its deadline passed, its client left), its waiters do
not inherit the cancellation: each gets LeaderCancelled, looks again for a stored result, and calls
`run` again, where the first of them does the work and the rest wait on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class LeaderCancelled(Exception):
    """The request doing the work was cancelled before it finished; try again."""


class OneFlight(Generic[T]):
    def __init__(self) -> None:
        self._inflight: dict[str, asyncio.Future[T]] = {}

    async def run(self, key: str, work: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """`work()`'s result, and whether it was shared from another request's call."""
        pending = self._inflight.get(key)
        if pending is not None:
            try:
                return await asyncio.shield(pending), True
            except LeaderCancelled:
                raise LeaderCancelled() from None  # one of its own per waiter
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            result = await work()
        except asyncio.CancelledError:
            future.set_exception(LeaderCancelled())
            future.exception()  # mark retrieved: no waiter is an acceptable outcome
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()
            raise
        finally:
            del self._inflight[key]
        future.set_result(result)
        return result, False
