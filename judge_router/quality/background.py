"""Bounded background work: a queue the request path puts jobs on without waiting, a few workers,
and a daily USD limit.

A job is an async callable that returns the USD it spent. Nothing here ever blocks or fails the
request that submitted it: a full queue drops the job, a spent day skips it, a job that raises is
logged; each is counted by reason (`dropped`), which /metrics shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[float]]  # returns the USD it spent
Clock = Callable[[], datetime]

# Reasons a job did not run to its end (the `reason` label of judge_router_background_dropped).
QUEUE_FULL = "queue_full"
DAILY_LIMIT = "daily_limit"
FAILED = "failed"
SHUTDOWN = "shutdown"
# At shutdown, jobs already running get this long to finish (their calls are paid for); queued
# jobs are dropped at once: a stopping server should not start new provider calls.
SHUTDOWN_GRACE_S = 2.0


def utc_now() -> datetime:
    return datetime.now(UTC)


def day_start(day: date) -> datetime:
    """Midnight UTC opening `day` (outcome rows since then are the day's spend)."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


class DailyLimit:
    """USD spent per UTC day against a limit (None: no limit); the count starts again each day."""

    def __init__(self, max_usd: float | None, clock: Clock = utc_now):
        self.max_usd = max_usd
        self._clock = clock
        self._day = clock().date()
        self._spent = 0.0

    def _roll(self) -> None:
        today = self._clock().date()
        if today != self._day:
            self._day, self._spent = today, 0.0

    @property
    def spent_today(self) -> float:
        self._roll()
        return self._spent

    def add(self, usd: float) -> None:
        self._roll()
        self._spent += usd

    def reached(self) -> bool:
        return self.max_usd is not None and self.spent_today >= self.max_usd

    def today(self) -> date:
        self._roll()
        return self._day


class BackgroundWork:
    """`max_queued` jobs waiting, `max_concurrent` running, at most `limit` USD a day.

    `submit` is synchronous (the request path calls it and moves on). Workers start with
    `start()`, or with the first job if nothing started them (an app run without its lifespan);
    `aclose()` drops what is queued, gives running jobs `grace_s` to finish, then cancels them.
    """

    def __init__(
        self,
        name: str,
        max_queued: int,
        max_concurrent: int,
        limit: DailyLimit,
        grace_s: float = SHUTDOWN_GRACE_S,
    ):
        self.name = name
        self.max_concurrent = max_concurrent
        self.limit = limit
        self.grace_s = grace_s
        self.dropped: Counter[str] = Counter()  # reason -> jobs
        self.done = 0
        self.spent_usd = 0.0  # since start (the limit's count is the day's)
        self.in_flight = 0
        self._queue: asyncio.Queue[Job] = asyncio.Queue(max_queued)
        self._workers: list[asyncio.Task[None]] = []
        self._closed = False

    @property
    def started(self) -> bool:
        return bool(self._workers)

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    def submit(self, job: Job) -> bool:
        """Queue `job` if there is room and the day's limit allows; never waits. Whether queued."""
        if self._closed:
            self.dropped[SHUTDOWN] += 1
            return False
        if self.limit.reached():
            self.dropped[DAILY_LIMIT] += 1
            return False
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            self.dropped[QUEUE_FULL] += 1
            return False
        if not self._workers:
            self.start()
        return True

    def start(self) -> None:
        """Start the workers on the running event loop (idempotent)."""
        if self._workers or self._closed:
            return
        self._workers = [
            asyncio.get_running_loop().create_task(self._work(), name=f"{self.name}-{index}")
            for index in range(self.max_concurrent)
        ]

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                if self.limit.reached():  # the day was spent while the job waited
                    self.dropped[DAILY_LIMIT] += 1
                    continue
                self.in_flight += 1
                try:
                    spent = await job()
                finally:
                    self.in_flight -= 1
                self.limit.add(spent)
                self.spent_usd += spent
                self.done += 1
            except Exception:  # a job's bug never stops the worker
                self.dropped[FAILED] += 1
                log.exception("%s: a background job failed", self.name)
            finally:
                self._queue.task_done()

    async def idle(self) -> None:
        """Wait until every job submitted so far has ended (tests; a report after a batch)."""
        await self._queue.join()

    async def aclose(self) -> None:
        self._closed = True
        while not self._queue.empty():  # not started: dropped, not begun on a stopping server
            self._queue.get_nowait()
            self._queue.task_done()
            self.dropped[SHUTDOWN] += 1
        # Workers of another event loop (an app served in a thread whose loop is gone) cannot be
        # awaited from here; their jobs ended with that loop.
        loop = asyncio.get_running_loop()
        ours = [task for task in self._workers if task.get_loop() is loop]
        if ours and self.in_flight:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), self.grace_s)
        if self.in_flight:  # cut short by the cancel below
            self.dropped[SHUTDOWN] += self.in_flight
        for task in ours:
            task.cancel()
        for task in ours:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers = []
