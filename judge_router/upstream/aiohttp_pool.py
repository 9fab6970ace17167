"""The direct transport's connections: aiohttp's client behind httpcore's pool interface.

httpx's transport turns a request into httpcore's form, hands it to a connection pool and maps the
pool's errors to its own; everything above it (the request's building, the error mapping of
direct_errors.py, the SSE relay) works on httpx's objects. This is that pool, sending through
aiohttp: its HTTP/1.1 parser and connection pool are C and constant-time per request, where
httpcore's and h11's are Python, the most expensive part of a routed request (benchmarks/README.md:
~440 µs of CPU a call less, in bench_http_clients.py). It speaks HTTP/1.1 only, as the OpenAI SDK's
own client does by default.

What a caller sees is httpcore's: `handle_async_request(httpcore.Request) -> httpcore.Response`,
its exception classes (which httpx maps to `httpx.ConnectError`, `ReadTimeout`, ...), a response
body that returns its connection to the pool once read to its end and closes it when dropped
unread. The body comes as aiohttp reads it off the socket, undecoded: httpx decodes it, as it
decodes httpcore's.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import aiohttp
import httpcore
import yarl

# h11's words for a connection closed before an answer, and in the middle of one.
_NO_RESPONSE = "Server disconnected without sending a response."
_BODY_CUT = "peer closed connection without sending complete message body (incomplete chunked read)"
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
        timeout = _timeout(request.extensions.get("timeout", {}))

        async def send() -> aiohttp.ClientResponse:
            return await self._session.request(
                method, url, headers=headers, data=body, timeout=timeout,
                allow_redirects=False,  # httpx's client follows them, as the SDK's does
            )  # fmt: skip

        with _as_httpcore_errors():
            try:
                response = await send()
            except aiohttp.ClientOSError as exc:
                if not _never_sent(exc):
                    raise
                # A kept connection the server had closed, noticed as the request was written:
                # nothing reached the server, so it goes once more, on another connection.
                response = await send()
        return httpcore.Response(
            status=response.status,
            headers=list(response.raw_headers),
            content=_Body(response),
            extensions={
                "http_version": b"HTTP/1.1",
                "reason_phrase": (response.reason or "").encode("latin-1"),
            },
        )

    async def aclose(self) -> None:
        await self._session.close()

    async def __aenter__(self) -> AiohttpPool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _url(url: httpcore.URL) -> str:
    host = url.host.decode("ascii")
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    port = f":{url.port}" if url.port is not None else ""
    return f"{url.scheme.decode('ascii')}://{host}{port}{url.target.decode('ascii')}"


def _never_sent(error: BaseException) -> bool:
    """Whether the request failed on a connection already closing, before a byte was written."""
    return any(
        isinstance(cause, aiohttp.ClientConnectionResetError)
        for cause in (error, error.__cause__, error.__context__)
    )


def _timeout(limits: dict[str, Any]) -> aiohttp.ClientTimeout:
    """httpx's four timeouts as aiohttp's: waiting for a free connection and connecting share
    aiohttp's `connect`; a read, and a write, may each take `read` between two bytes."""
    connect, pool = limits.get("connect"), limits.get("pool")
    waits = [t for t in (connect, pool) if t is not None]
    return aiohttp.ClientTimeout(
        total=None,
        connect=sum(waits) if waits else None,
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
        raise httpcore.RemoteProtocolError(_BODY_CUT) from exc
    except aiohttp.ClientResponseError as exc:  # an answer that is not HTTP
        raise httpcore.RemoteProtocolError(str(exc)) from exc
    except (aiohttp.ClientOSError, ConnectionError) as exc:
        raise httpcore.ReadError() from exc
    except aiohttp.ClientError as exc:  # anything else aiohttp gives up on
        raise httpcore.NetworkError(str(exc) or type(exc).__name__) from exc
