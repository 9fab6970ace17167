"""The direct transport's HTTP: one request at a time keeps to one warm connection, a redirect is
followed as the OpenAI SDK's client follows it, with a proxy in the environment every request goes
through the client's proxy mounts, and a request is built as the client builds it."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import respx

from judge_router.testing.fake_upstream import FakeUpstream
from judge_router.upstream.http_pools import HttpPools

BODY = json.dumps({"model": "cheap", "messages": [{"role": "user", "content": "hi"}]}).encode()
HEADERS = {"Content-Type": "application/json", "Authorization": "Bearer sk-test"}


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
        for _ in range(40):
            response = await pools.send(pools.build(url, BODY, HEADERS, 10.0))
            assert response.status_code == 200 and response.json()["choices"]
            assert response.request.url == url  # set, as client.send sets it (errors read it)
        # One keep-alive connection, reused by every request (the fake records each one's port).
        assert len({request.client for request in fake_provider.requests}) == 1
        assert len(fake_provider.requests) == 40
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
