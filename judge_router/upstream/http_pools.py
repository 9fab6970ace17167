"""The direct transport's HTTP: requests built by one httpx client (the OpenAI SDK's defaults:
its headers, redirects followed, the environment's proxies and certificates) and sent, on the
usual path, straight to one of several connection pools.

Why not `client.send`: its auth, redirect and cookie layers cost 110-126 µs of CPU a call here
(benchmarks/bench_http_clients.py) and do nothing for a POST that is answered, not redirected. A
redirect is handed to the client, which follows it as the SDK would; with a proxy in the
environment every request goes through the client, whose proxy mounts apply. Cookies a provider
sets are not kept (the SDK's client would keep them, and send them with every tenant's requests).

Why several pools: httpcore's pool tidies itself on every request and response with a pass over
its connections that, for each idle one, counts them all again, so its cost grows with the
square of the connections open (a quarter of the router's CPU at 64 concurrent requests, by the
profile in benchmarks/README.md). A request takes the pool with the fewest requests in flight,
the first of them on a tie, each pool with a share of the limits: at a hundred concurrent
requests each holds a few connections (at 64, one pool cost 2,082 µs of CPU a call, eight 942
and 32 559: bench_http_clients.py's pool runs), and at a trickle every request finds the first
pool's warm connection. (Taking the pools in turn, as this did first, gave a request every two
seconds a pool idle for a minute, its connection expired: a new connect, and TLS handshake, each.)
"""

from __future__ import annotations

import asyncio
import importlib.util
import ssl
import urllib.request
from collections.abc import AsyncIterator

import httpcore
import httpx

from judge_router.upstream.asyncio_network import AsyncioBackend

# HTTP/2 (one connection multiplexing every request to an https provider) when h2 is installed.
HTTP2 = importlib.util.find_spec("h2") is not None
POOLS = 32
MAX_CONNECTIONS, MAX_KEEPALIVE, KEEPALIVE_S = 1000, 200, 60.0
_KEPT = 1024  # parsed URLs and merged header sets kept (a few per model)
LIMITS = httpx.Limits(
    max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_KEEPALIVE,
    keepalive_expiry=KEEPALIVE_S,
)  # fmt: skip


class HttpPools:
    """The client and pools of one event loop (connections belong to the loop they opened on);
    `pools` other than POOLS only to measure them (benchmarks/bench_http_clients.py)."""

    def __init__(self, pools: int = POOLS) -> None:
        # One certificate store for the client and every pool: loading it takes ~20 ms each.
        tls = httpx.create_ssl_context(trust_env=True)
        self.client = httpx.AsyncClient(
            http2=HTTP2, limits=LIMITS, timeout=None, follow_redirects=True, verify=tls
        )
        self.loop = asyncio.get_running_loop()
        # Read once, as the client reads them when it is made (NO_PROXY alone is no proxy).
        self._proxied = any(scheme != "no" for scheme in urllib.request.getproxies())
        share = httpx.Limits(
            max_connections=MAX_CONNECTIONS // pools,
            max_keepalive_connections=max(MAX_KEEPALIVE // pools, 1),
            keepalive_expiry=KEEPALIVE_S,
        )
        self._pools = [asyncio_transport(tls, share) for _ in range(pools)]
        self._in_flight = [0] * pools  # requests sent and not yet closed, per pool
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
        in_flight = self._in_flight
        index = in_flight.index(min(in_flight))
        in_flight[index] += 1
        try:
            response = await self._pools[index].handle_async_request(request)
        except BaseException:
            in_flight[index] -= 1
            raise
        response.request = request
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _Counted(response.stream, in_flight, index)
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
        for pool in self._pools:
            await pool.aclose()


def asyncio_transport(tls: ssl.SSLContext, limits: httpx.Limits) -> httpx.AsyncHTTPTransport:
    """httpx's transport (its request and error mapping) over a pool on asyncio's own sockets
    (asyncio_network.py), not anyio's."""
    transport = httpx.AsyncHTTPTransport(http2=HTTP2, limits=limits, verify=tls)
    transport._pool = httpcore.AsyncConnectionPool(  # noqa: SLF001  (tests/test_asyncio_network.py)
        ssl_context=tls,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        http2=HTTP2,
        network_backend=AsyncioBackend(),
    )
    return transport


class _Counted(httpx.AsyncByteStream):
    """A response's body that takes its request off its pool's count when first closed."""

    def __init__(self, stream: httpx.AsyncByteStream, in_flight: list[int], index: int):
        self._stream, self._in_flight, self._index = stream, in_flight, index
        self._open = True

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for piece in self._stream:
            yield piece

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            if self._open:
                self._open = False
                self._in_flight[self._index] -= 1
