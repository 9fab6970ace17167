"""Shared fixtures: settings on temporary paths, and a judge provider faked at the HTTP level."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
import respx.mocks

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

# respx fakes a provider where httpcore's pools are called; the direct transport's pool has their
# interface (upstream/aiohttp_pool.py), so respx fakes it there too, before aiohttp sends anything.
respx.mocks.HTTPCoreMocker.add_targets("judge_router.upstream.aiohttp_pool.AiohttpPool")

from judge_router.config import Settings  # noqa: E402
from judge_router.service.engine import Engine  # noqa: E402
from judge_router.service.factory import build_engine  # noqa: E402
from judge_router.serving.app import create_app  # noqa: E402
from judge_router.testing.fake_upstream import FakeUpstream  # noqa: E402

from fakes import JUDGE_BASE, settings_data, verdict_reply  # noqa: E402


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        return Settings(**settings_data(tmp_path, **overrides))

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture(scope="module")
def loopback_provider() -> Iterator[FakeUpstream]:
    """One loopback fake provider for a test module (starting one takes ~0.1 s)."""
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture
def fake_provider(loopback_provider: FakeUpstream) -> FakeUpstream:
    """The module's fake provider, with what earlier tests sent to it forgotten."""
    loopback_provider.reset()
    return loopback_provider


@pytest.fixture
def respx_mock() -> Iterator[respx.MockRouter]:
    # Anything not routed here is an error: no test traffic may leave for a real provider.
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as mock:
        yield mock


@pytest.fixture
def judge_route(respx_mock: respx.MockRouter) -> respx.Route:
    """The judge's endpoint; answers "medium" unless a test sets another side effect."""
    return respx_mock.post(f"{JUDGE_BASE}/chat/completions").mock(return_value=verdict_reply())


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[Engine]:
    built = build_engine(settings)
    yield built
    await built.aclose()


@pytest.fixture
async def client(settings: Settings, engine: Engine) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://router.test") as http:
        yield http


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[Any]:
    """A real PostgreSQL for a test module: skipped without the binaries, a failure instead under
    JUDGE_ROUTER_REQUIRE_SERVERS=1 (.ci/run)."""
    from store_servers import PostgresServer

    server = PostgresServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def postgres_url(postgres_server: Any) -> str:
    """A database of its own for one test (the server started again if a test stopped it)."""
    import uuid

    if postgres_server.process is None:
        postgres_server.start()
    url: str = postgres_server.create_database(f"jr_{uuid.uuid4().hex[:12]}")
    return url
