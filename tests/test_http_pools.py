"""The direct transport's HTTP pools: a request takes the pool with the fewest in flight (so no pool
holds more than a share of the connections, and a trickle keeps to one warm connection), a
redirect is followed as the OpenAI SDK's client follows it, and with a proxy in the environment
every request goes through the client's proxy mounts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import respx

from judge_router.testing.fake_upstream import FakeUpstream
from judge_router.upstream.http_pools import POOLS, HttpPools

BODY = json.dumps({"model": "cheap", "messages": [{"role": "user", "content": "hi"}]}).encode()
HEADERS = {"Content-Type": "application/json", "Authorization": "Bearer sk-test"}


def connections(pools: HttpPools) -> list[int]:
    """How many connections each pool holds (httpcore's pool behind each transport)."""
    return [len(pool._pool.connections) for pool in pools._pools]  # noqa: SLF001


def no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)


async def test_one_request_at_a_time_keeps_to_one_warm_connection(
    fake_provider: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_proxies(monkeypatch)
    pools = HttpPools()
    url = f"{fake_provider.base_url}/chat/completions"
    try:
        for _ in range(POOLS * 2):
            response = await pools.send(pools.build(url, BODY, HEADERS, 10.0))
            assert response.status_code == 200 and response.json()["choices"]
            assert response.request.url == url  # set, as client.send sets it (errors read it)
        # The first pool's one keep-alive connection, reused by every request: a trickle of
        # traffic never meets a pool idle long enough for its connection to have expired.
        assert connections(pools) == [1] + [0] * (POOLS - 1)
        assert len({request.client for request in fake_provider.requests}) == 1
        assert len(fake_provider.requests) == POOLS * 2
    finally:
        await pools.aclose()


class HeldPool(httpx.AsyncBaseTransport):
    """A pool stand-in that answers once `gate` opens, counting the requests it was given."""

    def __init__(self, gate: asyncio.Event, arrived: list[int], everyone: asyncio.Event, n: int):
        self.gate, self.arrived, self.everyone, self.n = gate, arrived, everyone, n
        self.given = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.given += 1
        self.arrived.append(1)
        if len(self.arrived) == self.n:
            self.everyone.set()
        await self.gate.wait()
        if request.headers.get("x-fail"):
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, stream=Body(b'{"choices": []}'))


class Body(httpx.AsyncByteStream):
    """A body still to be read, as a real pool answers (httpx reads a `json=` one at once)."""

    def __init__(self, data: bytes):
        self.data = data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.data


async def test_concurrent_requests_spread_over_the_pools_and_closing_frees_a_pool(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    no_proxies(monkeypatch)
    pools = HttpPools(pools=4)
    gate, everyone, arrived = asyncio.Event(), asyncio.Event(), []
    held = [HeldPool(gate, arrived, everyone, 10) for _ in range(4)]
    pools._pools = held  # type: ignore[assignment]  # noqa: SLF001
    url = "http://127.0.0.1:9/v1/chat/completions"

    def request(**headers: str) -> httpx.Request:
        return pools.build(url, BODY, {**HEADERS, **headers}, 5.0)

    try:
        calls = [asyncio.ensure_future(pools.send(request())) for _ in range(9)]
        calls.append(asyncio.ensure_future(pools.send(request(**{"x-fail": "1"}))))
        await everyone.wait()
        # Each request took the pool with the fewest in flight, the first on a tie.
        assert [pool.given for pool in held] == [3, 3, 2, 2]
        gate.set()
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert isinstance(results[-1], httpx.ConnectError)  # a failed send frees its pool too
        assert pools._in_flight == [0, 0, 0, 0]  # noqa: SLF001

        streamed = await pools.send(request(), stream=True)  # open until it is closed
        assert pools._in_flight == [1, 0, 0, 0]  # noqa: SLF001
        await pools.send(request())
        assert [pool.given for pool in held] == [4, 4, 2, 2]  # the second pool, not the busy one
        await streamed.aclose()
        await streamed.aclose()  # closing twice frees the pool once
        assert pools._in_flight == [0, 0, 0, 0]  # noqa: SLF001
    finally:
        await pools.aclose()


async def test_a_redirect_is_followed_as_the_sdks_client_follows_it(
    respx_mock: respx.MockRouter,
) -> None:
    first, moved = (
        "http://127.0.0.1:9/v1/chat/completions",
        "http://127.0.0.1:9/v2/chat/completions",
    )
    respx_mock.post(first).mock(return_value=httpx.Response(307, headers={"location": moved}))
    answer = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "moved"}}]}
    landed = respx_mock.post(moved).mock(return_value=httpx.Response(200, json=answer))
    pools = HttpPools()
    try:
        for stream in (False, True):
            response = await pools.send(pools.build(first, BODY, HEADERS, 5.0), stream=stream)
            if stream:
                await response.aread()
                await response.aclose()
            assert response.status_code == 200 and response.json() == answer
        assert landed.call_count == 2
        assert landed.calls[0].request.content == BODY  # a 307 keeps the method and body
    finally:
        await pools.aclose()


async def test_with_a_proxy_in_the_environment_every_request_goes_through_the_client(
    respx_mock: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "http://127.0.0.1:9/v1/chat/completions"
    respx_mock.post(url).mock(return_value=httpx.Response(200, json={"choices": []}))
    sent: list[Any] = []
    monkeypatch.setenv("NO_PROXY", "localhost")  # alone, no proxy
    for proxy in (None, "http://127.0.0.1:3128"):
        if proxy is not None:
            monkeypatch.setenv("HTTP_PROXY", proxy)
        else:
            for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
                monkeypatch.delenv(name, raising=False)
        pools = HttpPools()

        async def recorded(
            request: httpx.Request,
            through: Any = pools.client.send,
            proxy: Any = proxy,
            **fields: Any,
        ) -> httpx.Response:
            sent.append(proxy)
            return await through(request, **fields)  # type: ignore[no-any-return]

        monkeypatch.setattr(pools.client, "send", recorded)
        try:
            response = await pools.send(pools.build(url, BODY, HEADERS, 5.0))
            assert response.status_code == 200
        finally:
            await pools.aclose()
    assert sent == ["http://127.0.0.1:3128"]  # the pools alone without one, the client with one


async def test_a_request_is_built_as_the_clients_build_request_builds_it() -> None:
    pools = HttpPools()
    url = "http://127.0.0.1:9/v1/chat/completions"
    try:
        for timeout in (5.0, 30.0):  # kept URLs and header sets do not keep a timeout
            built = pools.build(url, BODY, HEADERS, timeout)
            expected = pools.client.build_request(
                "POST", url, content=BODY, headers=HEADERS, timeout=httpx.Timeout(timeout)
            )
            assert (built.method, built.url) == (expected.method, expected.url)
            assert built.headers.multi_items() == expected.headers.multi_items()
            assert built.extensions == expected.extensions
            assert built.read() == BODY
        other = pools.build(url, BODY, {**HEADERS, "Authorization": "Bearer sk-other"}, 5.0)
        assert other.headers["authorization"] == "Bearer sk-other"  # its own header set
        assert pools.build(url, BODY, HEADERS, 5.0).headers["authorization"] == "Bearer sk-test"
    finally:
        await pools.aclose()
