"""Bounded background work: never waits on submit, drops and counts past its bounds, stops for the
day at its USD limit, survives a failing job, and shuts down without starting queued work."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest

from judge_router.quality.background import (
    DAILY_LIMIT,
    FAILED,
    QUEUE_FULL,
    SHUTDOWN,
    BackgroundWork,
    DailyLimit,
    Job,
)


class MovableClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 14, 23, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def gated(gate: asyncio.Event, started: asyncio.Event | None = None, cost: float = 0.0) -> Job:
    """A job that says it started, then waits for `gate` before it ends, having spent `cost`."""

    async def job() -> float:
        if started is not None:
            started.set()
        await gate.wait()
        return cost

    return job


def spending(cost: float) -> Job:
    async def job() -> float:
        return cost

    return job


def work(max_queued: int = 10, max_concurrent: int = 1, limit: float | None = None,
         clock: MovableClock | None = None, grace_s: float = 10.0) -> BackgroundWork:  # fmt: skip
    return BackgroundWork("test", max_queued, max_concurrent,
                          DailyLimit(limit, clock or MovableClock()), grace_s)  # fmt: skip


async def test_a_full_queue_drops_the_job_and_counts_it_without_waiting() -> None:
    background = work(max_queued=2, max_concurrent=1)
    gate, started = asyncio.Event(), asyncio.Event()

    assert background.submit(gated(gate, started)) is True
    assert background.submit(gated(gate)) is True
    assert background.submit(gated(gate)) is False  # two waiting: no room
    assert background.dropped[QUEUE_FULL] == 1
    await started.wait()  # the worker took the first: one place is free again
    assert background.in_flight == 1 and background.queued == 1
    assert background.submit(gated(gate)) is True
    assert background.submit(gated(gate)) is False
    assert background.dropped[QUEUE_FULL] == 2

    gate.set()
    await background.idle()
    assert background.done == 3
    await background.aclose()


async def test_no_more_jobs_run_at_once_than_max_concurrent() -> None:
    background = work(max_concurrent=2)
    gate = asyncio.Event()
    started = [asyncio.Event() for _ in range(3)]
    for event in started:
        background.submit(gated(gate, event))
    await started[0].wait()
    await started[1].wait()
    assert background.in_flight == 2 and background.queued == 1 and not started[2].is_set()
    gate.set()
    await background.idle()
    assert background.done == 3 and started[2].is_set()
    await background.aclose()


async def test_a_failing_job_is_logged_and_counted_and_the_worker_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    background = work(max_concurrent=1)

    async def broken() -> float:
        raise RuntimeError("a bug in a job")

    with caplog.at_level(logging.ERROR, logger="judge_router.quality.background"):
        background.submit(broken)
        background.submit(spending(0.25))
        await background.idle()

    assert background.dropped[FAILED] == 1
    assert background.done == 1 and background.spent_usd == 0.25
    assert "a background job failed" in caplog.text and "a bug in a job" in caplog.text
    await background.aclose()


async def test_the_daily_limit_stops_jobs_until_the_next_utc_day() -> None:
    clock = MovableClock()
    background = work(limit=1.0, clock=clock)
    background.submit(spending(0.6))
    await background.idle()
    background.submit(spending(0.6))  # 0.6 spent is under the limit: it runs, and passes it
    await background.idle()
    assert background.limit.spent_today == pytest.approx(1.2)

    assert background.submit(spending(0.6)) is False
    assert background.dropped[DAILY_LIMIT] == 1 and background.done == 2

    clock.now += timedelta(hours=1)  # past midnight UTC: a new day, a new count
    assert background.submit(spending(0.6)) is True
    await background.idle()
    assert background.done == 3 and background.limit.spent_today == pytest.approx(0.6)
    assert background.spent_usd == pytest.approx(1.8)  # since start, across days
    await background.aclose()


async def test_a_job_queued_before_the_day_was_spent_is_skipped_when_its_turn_comes() -> None:
    background = work(limit=1.0, max_concurrent=1)
    gate, started = asyncio.Event(), asyncio.Event()
    background.submit(gated(gate, started, cost=5.0))
    background.submit(spending(0.1))  # queued while nothing is spent yet
    await started.wait()
    gate.set()
    await background.idle()
    assert background.done == 1 and background.dropped[DAILY_LIMIT] == 1
    assert background.spent_usd == 5.0
    await background.aclose()


async def test_shutdown_drops_queued_jobs_and_cuts_running_ones_after_the_grace() -> None:
    background = work(max_concurrent=1, grace_s=0.05)
    never, started = asyncio.Event(), asyncio.Event()
    background.submit(gated(never, started))
    background.submit(spending(1.0))
    await started.wait()

    await background.aclose()

    # The queued job was never begun; the running one did not end within the grace.
    assert background.dropped[SHUTDOWN] == 2 and background.done == 0
    assert background.submit(spending(1.0)) is False
    assert background.dropped[SHUTDOWN] == 3


async def test_a_running_job_that_ends_within_the_grace_is_counted_done() -> None:
    background = work(max_concurrent=1, grace_s=30.0)
    gate, started = asyncio.Event(), asyncio.Event()
    background.submit(gated(gate, started, cost=0.5))
    background.submit(spending(1.0))
    await started.wait()

    closing = asyncio.create_task(background.aclose())
    while background.queued:  # aclose drops the queued job first, then waits for the running one
        await asyncio.sleep(0)
    assert not closing.done()
    gate.set()
    await closing

    assert background.done == 1 and background.spent_usd == 0.5
    assert background.dropped[SHUTDOWN] == 1  # the queued one


def test_daily_limit_without_a_maximum_is_never_reached() -> None:
    limit = DailyLimit(None, MovableClock())
    limit.add(1e9)
    assert limit.reached() is False
