"""The direct transport's HTTP pools: requests take the pools in turn (so no pool holds more than a
share of the connections), a redirect is followed as the OpenAI SDK's client follows it, and with a
proxy in the environment every request goes through the client's proxy mounts."""

from __future__ import annotations

import json
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


async def test_requests_take_the_pools_in_turn(
    fake_provider: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    pools = HttpPools()
    url = f"{fake_provider.base_url}/chat/completions"
    try:
        for _ in range(POOLS * 3):
            response = await pools.send(pools.build(url, BODY, HEADERS, 10.0))
            assert response.status_code == 200 and response.json()["choices"]
            assert response.request.url == url  # set, as client.send sets it (errors read it)
        # One keep-alive connection each, reused: not one pool holding them all.
        assert connections(pools) == [1] * POOLS
        assert len(fake_provider.requests) == POOLS * 3
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
