"""Budget spend shared through a real redis-server: what one replica spends counts against the
budget on the others, even with a ledger each; without Redis each counts its own."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from judge_router.config import Settings
from judge_router.routing.budget_limits import BudgetExceeded
from judge_router.service.engine import Engine
from judge_router.service.factory import build_engine
from judge_router.types import Tier

from fakes import FakeJudge, FakeLedger, ask
from servers import free_port
from store_servers import RedisServer

pytestmark = pytest.mark.slow  # starts a real redis-server

EVERYONE = [{"name": "everyone", "usd_per_month": 3.0}]


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    yield server
    server.close()


@pytest.fixture
async def replica(
    make_settings: Callable[..., Settings], redis_server: RedisServer
) -> AsyncIterator[Callable[..., Engine]]:
    """Makes engines (one per replica) on one Redis, each with its own ledger; a judge at $1."""
    redis_server.flush()
    engines: list[Engine] = []

    def make(url: str = redis_server.url) -> Engine:
        settings = make_settings(budgets=EVERYONE, state={"redis_url": url})
        judge = FakeJudge(default=Tier.HIGH, cost_usd=1.0)
        engines.append(build_engine(settings, judges=[judge], ledger=FakeLedger()))
        return engines[-1]

    yield make
    for engine in engines:
        await engine.aclose()


async def spent(engine: Engine) -> float:
    report: list[dict[str, Any]] = await engine.budget_report()
    return float(report[0]["spent_usd"])


async def until_spent(engine: Engine, usd: float, deadline_s: float = 10.0) -> None:
    deadline = time.monotonic() + deadline_s
    while await spent(engine) < usd:
        assert time.monotonic() < deadline, f"spend never reached ${usd}"
        await asyncio.sleep(0.05)


async def test_what_one_replica_spends_counts_on_the_other(
    replica: Callable[..., Engine],
) -> None:
    first, second = replica(), replica()
    assert first.settings.state.backend == "redis"
    for i in range(3):  # $1 of judging each, recorded by the first replica only
        await first.route(ask(f"prompt {i}"))
    await until_spent(second, 3.0)
    with pytest.raises(BudgetExceeded):
        await second.route(ask("one more"))
    with pytest.raises(BudgetExceeded):  # and the first one's own figure says the same
        await first.route(ask("one more"))


async def test_spend_is_summed_across_replicas(replica: Callable[..., Engine]) -> None:
    first, second = replica(), replica()
    await first.route(ask("a"))
    await second.route(ask("b"))  # each ledger holds $1 (and a little), the budget's month $2
    await until_spent(first, 2.0)
    await until_spent(second, 2.0)
    await first.route(ask("c"))
    await until_spent(second, 3.0)  # read again once its figure is SHARED_READ_S old
    with pytest.raises(BudgetExceeded):
        await second.route(ask("d"))


async def test_without_redis_each_replica_counts_its_own(
    replica: Callable[..., Engine],
) -> None:
    lonely = replica(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    for i in range(2):
        await lonely.route(ask(f"prompt {i}"))  # never raises, never waits on Redis
    assert 2.0 <= await spent(lonely) < 2.1  # $1 of judging and the estimated answer, twice
    link = lonely.redis[0]
    assert not link.reachable
    assert lonely.budgets is not None
    await lonely.budgets.aclose()  # the additions in flight have landed (or failed)
    assert {"budget_add", "budget_read"} <= set(link.fallbacks)
