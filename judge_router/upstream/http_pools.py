"""The direct transport's HTTP: requests built by one httpx client (the OpenAI SDK's defaults:
its headers, redirects followed, the environment's proxies and certificates) and sent, on the
usual path, straight to httpx's transport over aiohttp's connections (aiohttp_pool.py).

Why not `client.send`: its auth, redirect and cookie layers cost 110-126 µs of CPU a call here
(benchmarks/bench_http_clients.py) and do nothing for a POST that is answered, not redirected. A
redirect is handed to the client, which follows it as the SDK would; with a proxy in the
environment every request goes through the client, whose proxy mounts apply. Cookies a provider
sets are not kept (the SDK's client would keep them, and send them with every tenant's requests).

Why aiohttp's connections: httpcore's pool and h11's parser were most of a routed request's CPU
(benchmarks/README.md), and httpcore's pool tidies itself on every request with a pass whose cost
grows with the square of its connections (this module once spread requests over 32 pools to keep
that down). aiohttp's pool takes a connection in constant time and its parser is C. Both speak
HTTP/1.1 here, as the OpenAI SDK's own client does unless told otherwise.
"""

from __future__ import annotations

import asyncio
import ssl
import urllib.request

import httpx

from judge_router.upstream.aiohttp_pool import AiohttpPool

MAX_CONNECTIONS, MAX_KEEPALIVE, KEEPALIVE_S = 1000, 200, 60.0
_KEPT = 1024  # parsed URLs and merged header sets kept (a few per model)
LIMITS = httpx.Limits(
    max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_KEEPALIVE,
    keepalive_expiry=KEEPALIVE_S,
)  # fmt: skip


class HttpPools:
    """The client and connection pool of one event loop (connections belong to the loop they
    opened on)."""

    def __init__(self) -> None:
        # One certificate store for the client and the pool: loading one takes ~20 ms.
        tls = httpx.create_ssl_context(trust_env=True)
        self.client = httpx.AsyncClient(
            limits=LIMITS, timeout=None, follow_redirects=True, verify=tls
        )
        self.loop = asyncio.get_running_loop()
        # Read once, as the client reads them when it is made (NO_PROXY alone is no proxy).
        self._proxied = any(scheme != "no" for scheme in urllib.request.getproxies())
        self._transport = aiohttp_transport(tls, LIMITS)
        self._urls: dict[str, httpx.URL] = {}
        self._headers: dict[tuple[tuple[str, str], ...], httpx.Headers] = {}

    def build(
        self, url: str, content: bytes, headers: dict[str, str], timeout_s: float
    ) -> httpx.Request:
        """The request `client.build_request` makes (the client's default headers under
        `headers`, the timeout as an extension), from a parsed URL and merged headers kept per
        URL and header set instead of merged and parsed again on every call."""
        parsed = self._urls.get(url)
        if parsed is None:
            parsed = self._urls[url] = httpx.URL(url)
        key = tuple(headers.items())
        merged = self._headers.get(key)
        if merged is None:
            merged = self.client.headers.copy()
            merged.update(headers)
            self._headers[key] = merged
        if len(self._urls) > _KEPT or len(self._headers) > _KEPT:  # not a model's: fresh each time
            self._urls.clear()
            self._headers.clear()
        timeout = {"timeout": httpx.Timeout(timeout_s).as_dict()}
        return httpx.Request("POST", parsed, content=content, headers=merged, extensions=timeout)

    async def send(self, request: httpx.Request, stream: bool = False) -> httpx.Response:
        """`request`'s response (read, unless `stream`), as `client.send` gives it."""
        if self._proxied:
            return await self.client.send(request, stream=stream)
        response = await self._transport.handle_async_request(request)
        response.request = request
        if response.has_redirect_location:  # rare: the client follows it, as the SDK's does
            await response.aclose()
            return await self.client.send(request, stream=stream)
        if not stream:
            try:
                await response.aread()
            finally:
                await response.aclose()
        return response

    async def aclose(self) -> None:
        await self.client.aclose()
        await self._transport.aclose()

    def abandon(self) -> None:
        """Lets go of the pools of an event loop that has ended (aiohttp_pool.AiohttpPool.abandon)."""
        pool = self._transport._pool  # noqa: SLF001  (set by aiohttp_transport)
        assert isinstance(pool, AiohttpPool)
        pool.abandon()


def aiohttp_transport(tls: ssl.SSLContext, limits: httpx.Limits) -> httpx.AsyncHTTPTransport:
    """httpx's transport (its request and error mapping) over aiohttp's connections."""
    transport = httpx.AsyncHTTPTransport(limits=limits, verify=tls)
    assert limits.max_connections is not None and limits.keepalive_expiry is not None
    transport._pool = AiohttpPool(  # type: ignore[assignment]  # noqa: SLF001  (the pool's interface)
        tls, limits.max_connections, limits.keepalive_expiry
    )
    return transport
