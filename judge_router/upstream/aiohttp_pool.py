"""The direct transport's connections: aiohttp's client behind httpcore's pool interface.

httpx's transport turns a request into httpcore's form, hands it to a connection pool and maps the
pool's errors to its own; everything above it (the request's building, the error mapping of
direct_errors.py, the SSE relay) works on httpx's objects. This is that pool, sending through
aiohttp: its HTTP/1.1 parser and connection pool are C and constant-time per request, where
httpcore's and h11's are Python, the most expensive part of a routed request (benchmarks/README.md:
a third less CPU a call in bench_http_clients.py, 130 µs less a routed request). It speaks HTTP/1.1
only, as the OpenAI SDK's own client does by default.

What a caller sees is httpcore's: `handle_async_request(httpcore.Request) -> httpcore.Response`,
its exception classes (which httpx maps to `httpx.ConnectError`, `ReadTimeout`, ...), a response
body that returns its connection to the pool once read to its end and closes it when dropped
unread. The body comes as aiohttp reads it off the socket, undecoded: httpx decodes it, as it
decodes httpcore's. Where the two differ: waiting for a free connection and connecting share
one budget (the longer of the two), so a full pool is a ConnectTimeout, not a PoolTimeout; and a
request that meets a kept connection the server closed just then is "Server disconnected without
sending a response.", as with httpcore when the close comes after its check (not retried: the
server may have acted on a request it read).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import contextmanager
from typing import Any

import aiohttp
import httpcore
import yarl
from aiohttp.http_exceptions import TransferEncodingError

# h11's words for a connection closed before an answer, and in the middle of one.
_NO_RESPONSE = "Server disconnected without sending a response."
_BODY_CUT = "peer closed connection without sending complete message body"
_CHUNK_CUT = f"{_BODY_CUT} (incomplete chunked read)"
# h11 takes a response head of up to 100 KiB in any number of lines; aiohttp's defaults are lines
# of 8 KiB and 128 headers. A provider's long header is not a broken answer.
_HEAD_LINE, _HEAD_LINES = 100 * 1024, 1000
_BODYLESS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})  # no Content-Length: 0 for these
_KEPT = 1024  # parsed URLs kept
# Headers aiohttp sets from the body it sends; httpx's copies would be sent twice.
_FRAMING = frozenset({"content-length", "transfer-encoding"})


class AiohttpPool:
    """One aiohttp session of one event loop, with httpcore's pool methods."""

    def __init__(self, tls: ssl.SSLContext, max_connections: int, keepalive_s: float):
        # Every idle connection is kept for keepalive_s, up to max_connections open in all.
        connector = aiohttp.TCPConnector(
            limit=max_connections, limit_per_host=0, keepalive_timeout=keepalive_s, ssl=tls
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,  # httpx decodes what it reads, as it does httpcore's bodies
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            cookie_jar=aiohttp.DummyCookieJar(),  # a provider's cookies are not every tenant's
            timeout=aiohttp.ClientTimeout(total=None),
            max_line_size=_HEAD_LINE,
            max_field_size=_HEAD_LINE,
            max_headers=_HEAD_LINES,
        )
        self._urls: dict[tuple[bytes, bytes, int | None, bytes], yarl.URL] = {}

    def _parsed(self, url: httpcore.URL) -> yarl.URL:
        """`url` as aiohttp takes it, parsed once per URL (a few per model), not per request."""
        key = (url.scheme, url.host, url.port, url.target)
        parsed = self._urls.get(key)
        if parsed is None:
            if len(self._urls) >= _KEPT:  # not a model's URLs: start again
                self._urls.clear()
            parsed = self._urls[key] = yarl.URL(_url(url), encoded=True)
        return parsed

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in request.headers
            if name.lower().decode("latin-1") not in _FRAMING
        ]
        body = b"".join([part async for part in request.stream])  # type: ignore[union-attr]
        method, url = request.method.decode("ascii"), self._parsed(request.url)
        limits = request.extensions.get("timeout", {})
        sent = self._session.request(
            method, url, headers=headers, timeout=_timeout(limits),
            data=body if body or method not in _BODYLESS else None,
            allow_redirects=False,  # httpx's client follows them, as the SDK's does
        )  # fmt: skip
        with _as_httpcore_errors():
            response = await _within(_until_answered(limits), sent)
        return httpcore.Response(
            status=response.status,
            headers=list(response.raw_headers),
            content=_Body(response),
            extensions={
                "http_version": _version(response),
                "reason_phrase": (response.reason or "").encode("latin-1"),
            },
        )

    async def aclose(self) -> None:
        await self._session.close()

    def abandon(self) -> None:
        """Lets go of a pool whose event loop has ended, where nothing can be closed any more: its
        sockets close as they are collected (as httpcore's did), and aiohttp does not log the
        session and connector as left open."""
        connector = self._session.connector
        self._session.detach()
        # The connector's idle connections, which its collection would close on the ended loop.
        idle = getattr(connector, "_conns", None)
        if isinstance(idle, dict):
            idle.clear()

    async def __aenter__(self) -> AiohttpPool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _version(response: aiohttp.ClientResponse) -> bytes:
    version = response.version
    return b"HTTP/1.1" if version is None else f"HTTP/{version.major}.{version.minor}".encode()


def _url(url: httpcore.URL) -> str:
    host = url.host.decode("ascii")
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    port = f":{url.port}" if url.port is not None else ""
    return f"{url.scheme.decode('ascii')}://{host}{port}{url.target.decode('ascii')}"


async def _within(
    budget: float | None, sending: Awaitable[aiohttp.ClientResponse]
) -> aiohttp.ClientResponse:
    """`sending`'s response, or httpcore's WriteTimeout once `budget` has passed: aiohttp bounds
    connecting and each read but not writing the body, which a server that stops reading (its
    receive window full) would otherwise hold for ever. Raised as a WriteTimeout: the one phase
    aiohttp leaves unbounded (its connect and read timeouts are shorter, and fire first)."""
    if budget is None:
        return await sending
    try:
        async with asyncio.timeout(budget) as deadline:
            return await sending
    except TimeoutError:
        if deadline.expired():
            raise httpcore.WriteTimeout(TimeoutError()) from None
        raise


def _until_answered(limits: dict[str, Any]) -> float | None:
    """How long a request may take until its response's head: getting a connection (the longer of
    the pool's and the connect timeout), then sending it and waiting for the answer (the longer of
    the write and read timeouts). With one `timeout` for all four, as the service sets them, that
    is twice it: 240 s at `routing.upstream_timeout_s`' default, inside `server.request_timeout_s`."""
    found = [limits.get(name) for name in ("pool", "connect", "write", "read")]
    known = [float(value) for value in found if value is not None]
    if len(known) < len(found):
        return None
    pool, connect, write, read = known
    return max(pool, connect) + max(write, read)


def _timeout(limits: dict[str, Any]) -> aiohttp.ClientTimeout:
    """httpx's timeouts as aiohttp's: waiting for a free connection and connecting share aiohttp's
    `connect` (the longer of the two), the socket's connect has its own, and `read` bounds the
    wait between two bytes of the answer. Writing is bounded by `_within`."""
    connect, pool = limits.get("connect"), limits.get("pool")
    waits = [t for t in (connect, pool) if t is not None]
    return aiohttp.ClientTimeout(
        total=None,
        connect=max(waits) if waits else None,
        sock_connect=connect,
        sock_read=limits.get("read"),
    )


class _Body:
    """A response's body as httpcore gives it: chunks as they arrive; closing returns the
    connection to the pool when the body was read to its end, and closes it otherwise."""

    def __init__(self, response: aiohttp.ClientResponse):
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _as_httpcore_errors():
            async for chunk in self._response.content.iter_any():
                yield chunk

    async def aclose(self) -> None:
        if self._response.content.at_eof():
            self._response.release()
        else:
            self._response.close()


@contextmanager
def _as_httpcore_errors() -> Iterator[None]:
    """aiohttp's failures as the exceptions httpcore raises for the same event, with the same
    messages (litellm's error text quotes them, and the transports must read alike)."""
    try:
        yield
    except aiohttp.ConnectionTimeoutError as exc:
        raise httpcore.ConnectTimeout(TimeoutError()) from exc
    except TimeoutError as exc:  # aiohttp's read timeouts are TimeoutErrors
        raise httpcore.ReadTimeout(TimeoutError()) from exc
    except aiohttp.ClientConnectorError as exc:
        raise httpcore.ConnectError(exc.os_error) from exc
    except aiohttp.ServerDisconnectedError as exc:
        raise httpcore.RemoteProtocolError(_NO_RESPONSE) from exc
    except aiohttp.ClientPayloadError as exc:
        chunked = isinstance(exc.__cause__, TransferEncodingError)
        raise httpcore.RemoteProtocolError(_CHUNK_CUT if chunked else _BODY_CUT) from exc
    except aiohttp.ClientResponseError as exc:  # an answer that is not HTTP (its URL left out)
        raise httpcore.RemoteProtocolError(
            f"the server's answer is not HTTP: {exc.message}"
        ) from exc
    except (aiohttp.ClientOSError, ConnectionError) as exc:
        raise httpcore.ReadError() from exc
    except aiohttp.ClientError as exc:  # anything else aiohttp gives up on
        raise httpcore.NetworkError(str(exc) or type(exc).__name__) from exc
