"""The direct transport's connections (upstream/aiohttp_pool.py), against real loopback servers: the
pool behaves as httpcore's pool does where httpx and the direct transport can tell: TLS, a kept
connection, an idle connection the server closed, a body read as it arrives or dropped unread, and
each kind of failure raised as httpcore's exception with httpcore's words."""

from __future__ import annotations

import asyncio
import gc
import gzip
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import httpcore
import httpx
import pytest
import trustme
import uvloop

from judge_router.upstream.aiohttp_pool import AiohttpPool
from judge_router.upstream.direct_transport import DirectTransport
from judge_router.upstream.http_pools import HttpPools

# Each test runs on both loops: the service serves on uvloop, whose transports are its own.
LOOPS: dict[str, Callable[[Coroutine[Any, Any, None]], None]] = {
    "asyncio": asyncio.run,
    "uvloop": uvloop.run,
}


@pytest.fixture(params=list(LOOPS))
def run(request: pytest.FixtureRequest) -> Callable[[Coroutine[Any, Any, None]], None]:
    return LOOPS[request.param]


Runner = Callable[[Coroutine[Any, Any, None]], None]
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
ANSWER = b'{"choices": []}'
SENT = b'{"model": "m"}'


def answer(body: bytes = ANSWER, close: bool = False, extra: str = "") -> bytes:
    head = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
    return (head + extra + ("connection: close\r\n" if close else "") + "\r\n").encode() + body


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """(head, body) of one request with a Content-Length."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.lower().split(b"\r\n")
        if line.startswith(b"content-length:")
    )
    return head, await reader.readexactly(length)


@asynccontextmanager
async def serving(handler: Handler, tls: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=tls)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


def pool(tls: ssl.SSLContext | None = None) -> AiohttpPool:
    return AiohttpPool(tls or ssl.create_default_context(), max_connections=10, keepalive_s=60)


async def send(
    connections: AiohttpPool, url: str, content: bytes = SENT, **extensions: Any
) -> httpcore.Response:
    port = httpcore.URL(url).port
    request = httpcore.Request(
        "POST", url, headers=[(b"Host", f"127.0.0.1:{port}".encode()),
                              (b"Content-Length", str(len(content)).encode())],
        content=content, extensions=extensions,
    )  # fmt: skip
    return await connections.handle_async_request(request)


async def read(response: httpcore.Response) -> bytes:
    try:
        return b"".join([chunk async for chunk in response.stream])  # type: ignore[union-attr]
    finally:
        await response.aclose()


async def post(connections: AiohttpPool, url: str, **extensions: Any) -> bytes:
    response = await send(connections, url, **extensions)
    assert response.status == 200
    return await read(response)


def keep_answering(seen: list[bytes], opened: list[int]) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        opened.append(1)
        while True:
            try:
                head, body = await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            seen.append(head + body)
            writer.write(answer())
            await writer.drain()

    return handler


def test_the_direct_transport_sends_through_this_pool(run: Runner) -> None:
    run(_the_direct_transport_sends_through_this_pool())


async def _the_direct_transport_sends_through_this_pool() -> None:
    pools = HttpPools()
    try:
        assert isinstance(pools._transport._pool, AiohttpPool)  # noqa: SLF001
    finally:
        await pools.aclose()


def test_tls_to_a_trusted_server_keeps_one_connection(run: Runner) -> None:
    run(_tls_to_a_trusted_server_keeps_one_connection())


async def _tls_to_a_trusted_server_keeps_one_connection() -> None:
    authority = trustme.CA()
    served = authority.issue_cert("127.0.0.1")
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.configure_cert(server_tls)
    client_tls = ssl.create_default_context()
    authority.configure_trust(client_tls)
    seen: list[bytes] = []
    opened: list[int] = []

    async with serving(keep_answering(seen, opened), server_tls) as port:
        async with pool(client_tls) as connections:
            for _ in range(3):
                assert await post(connections, f"https://127.0.0.1:{port}/v1") == ANSWER
        async with pool(ssl.create_default_context()) as untrusting:
            with pytest.raises(httpcore.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await post(untrusting, f"https://127.0.0.1:{port}/v1")
    assert [request.endswith(SENT) for request in seen] == [True] * 3
    assert len(opened) == 1  # one handshake for three requests (the refused one never served)


def test_the_request_goes_out_as_httpx_built_it(run: Runner) -> None:
    run(_the_request_goes_out_as_httpx_built_it())


async def _the_request_goes_out_as_httpx_built_it() -> None:
    seen: list[bytes] = []
    async with serving(keep_answering(seen, [])) as port:
        pools = HttpPools()
        try:
            headers = {"Authorization": "Bearer sk-test", "Content-Type": "application/json"}
            request = pools.build(f"http://127.0.0.1:{port}/v1/chat?x=1", SENT, headers, 5.0)
            response = await pools.send(request)
            assert response.status_code == 200 and response.content == ANSWER
        finally:
            await pools.aclose()
    head, _, body = seen[0].partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /v1/chat?x=1 HTTP/1.1"
    names = [line.split(":", 1)[0].lower() for line in lines[1:]]
    assert names.count("content-length") == 1 and "transfer-encoding" not in names
    assert names.count("host") == 1
    assert "authorization: bearer sk-test" in [line.lower() for line in lines]
    assert f"host: 127.0.0.1:{port}" in [line.lower() for line in lines]
    assert body == SENT


def test_a_body_comes_as_it_arrives_and_encoded_bodies_are_decoded_once(run: Runner) -> None:
    run(_a_body_comes_as_it_arrives_and_encoded_bodies_are_decoded_once())


async def _a_body_comes_as_it_arrives_and_encoded_bodies_are_decoded_once() -> None:
    second = asyncio.Event()
    packed = gzip.compress(ANSWER)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head, _ = await read_request(reader)
        if b"/gzip" in head:
            writer.write(answer(packed, extra="content-encoding: gzip\r\n"))
        else:
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n")
            await writer.drain()
            await second.wait()  # the second part only once the first was read
            writer.write(b"6\r\nsecond\r\n0\r\n\r\n")
        await writer.drain()

    async with serving(handler) as port:
        async with pool() as connections:
            response = await send(connections, f"http://127.0.0.1:{port}/stream")
            chunks = response.stream.__aiter__()  # type: ignore[union-attr]
            assert await chunks.__anext__() == b"first"
            second.set()
            assert b"".join([chunk async for chunk in chunks]) == b"second"
            await response.aclose()
        pools = HttpPools()
        try:
            request = pools.build(f"http://127.0.0.1:{port}/gzip", SENT, {}, 5.0)
            assert (await pools.send(request)).content == ANSWER  # httpx decoded it, once
        finally:
            await pools.aclose()


def test_a_body_read_to_its_end_keeps_its_connection_and_one_dropped_does_not(run: Runner) -> None:
    run(_a_body_read_to_its_end_keeps_its_connection_and_one_dropped_does_not())


async def _a_body_read_to_its_end_keeps_its_connection_and_one_dropped_does_not() -> None:
    opened: list[int] = []
    big = b"x" * 200_000

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        opened.append(1)
        while True:
            try:
                head, _ = await read_request(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            writer.write(answer(big if b"/big" in head else ANSWER))
            await writer.drain()

    async with serving(handler) as port:
        async with pool() as connections:
            url = f"http://127.0.0.1:{port}"
            assert await post(connections, f"{url}/small") == ANSWER
            assert await post(connections, f"{url}/small") == ANSWER
            assert len(opened) == 1  # read to the end: the connection went back to the pool
            dropped = await send(connections, f"{url}/big")
            await dropped.aclose()  # unread: its connection cannot carry another answer
            assert await post(connections, f"{url}/small") == ANSWER
            assert len(opened) == 2


def test_an_idle_connection_the_server_closed_is_replaced(run: Runner) -> None:
    run(_an_idle_connection_the_server_closed_is_replaced())


async def _an_idle_connection_the_server_closed_is_replaced() -> None:
    opened, closed = [], asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        opened.append(writer)
        await read_request(reader)
        writer.write(answer())  # keep-alive, as far as the client knows...
        await writer.drain()
        writer.close()  # ...but the server's idle timeout closes it at once
        await writer.wait_closed()
        closed.set()

    async with serving(handler) as port:
        async with pool() as connections:
            url = f"http://127.0.0.1:{port}/v1"
            assert await post(connections, url) == ANSWER
            await closed.wait()  # the FIN is in the client's socket...
            await until(lambda: not open_idle(connections))  # ...and the client has read it
            assert await post(connections, url) == ANSWER  # not a "server disconnected" error
    assert len(opened) == 2


def open_idle(connections: AiohttpPool) -> int:
    """The idle connections aiohttp's connector holds that it still takes for open."""
    held = connections._session.connector._conns  # type: ignore[union-attr]  # noqa: SLF001
    return sum(protocol.is_connected() for idle in held.values() for protocol, _ in idle)


async def until(condition: Callable[[], bool]) -> None:
    """Turns of the event loop until `condition` holds (a condition, not a duration)."""
    for _ in range(10_000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")


def test_a_server_that_stops_reading_is_a_write_timeout(run: Runner) -> None:
    run(_a_server_that_stops_reading_is_a_write_timeout())


async def _a_server_that_stops_reading_is_a_write_timeout() -> None:
    # aiohttp bounds connecting and each read, not the body's writing: the pool bounds the whole.
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.Event().wait()  # accepts, never reads: the client's send buffer fills

    huge = b"x" * (32 * 1024 * 1024)
    limits = {"connect": 0.1, "read": 0.1, "write": 0.1, "pool": 0.1}
    async with serving(handler) as port:
        async with pool() as connections:
            with pytest.raises(httpcore.WriteTimeout):
                await send(connections, f"http://127.0.0.1:{port}/v1", huge, timeout=limits)
        pools = HttpPools()
        try:
            request = pools.build(f"http://127.0.0.1:{port}/v1", huge, {}, 0.1)
            with pytest.raises(httpx.WriteTimeout):
                await pools.send(request)
        finally:
            await pools.aclose()


def test_long_and_many_response_headers_are_taken_as_h11_takes_them(run: Runner) -> None:
    run(_long_and_many_response_headers_are_taken_as_h11_takes_them())


async def _long_and_many_response_headers_are_taken_as_h11_takes_them() -> None:
    many = "".join(f"x-h{i}: {i}\r\n" for i in range(150))
    long = f"x-long: {'v' * 12_000}\r\n"

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(extra=many + long))
        await writer.drain()

    async with serving(handler) as port:
        async with pool() as connections:
            response = await send(connections, f"http://127.0.0.1:{port}/v1")
            assert response.status == 200 and await read(response) == ANSWER
    assert len(response.headers) > 150


def test_pools_of_an_ended_loop_are_let_go_without_an_unclosed_error(
    fake_provider: Any, caplog: pytest.LogCaptureFixture
) -> None:
    transport = DirectTransport(litellm=None)  # type: ignore[arg-type]  # never handed a request
    url = f"{fake_provider.base_url}/chat/completions"
    body = b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}'

    async def use() -> None:
        pools = transport._http()  # noqa: SLF001
        response = await pools.send(pools.build(url, body, {}, 5.0))
        assert response.status_code == 200

    asyncio.run(use())  # the first loop ends with a kept connection in its pool
    asyncio.run(use())  # a second loop: new pools, the first ones let go
    asyncio.run(transport.aclose())  # closed in a third loop, as eval closes its engine
    gc.collect()
    assert not [r for r in caplog.records if "Unclosed" in r.getMessage()]


def test_each_failure_is_httpcores_exception_with_its_words(run: Runner) -> None:
    run(_each_failure_is_httpcores_exception_with_its_words())


async def _each_failure_is_httpcores_exception_with_its_words() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head, _ = await read_request(reader)
        if b"/reset" in head:
            writer.transport.abort()  # an RST, no answer
        elif b"/hang-up" in head:
            writer.close()  # a FIN, no answer
        elif b"/cut" in head:
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n")
            await writer.drain()
            writer.close()  # the body stops half way
        elif b"/garbage" in head:  # the URL (its query too) is not in the error's words
            writer.write(b"SMTP ready\r\n\r\n")
            await writer.drain()
        else:
            await asyncio.Event().wait()  # never answers

    async with serving(handler) as port:
        async with pool() as connections:
            url = f"http://127.0.0.1:{port}"
            with pytest.raises(httpcore.ReadTimeout):
                await send(connections, f"{url}/slow", timeout={"read": 0.05})
            with pytest.raises((httpcore.ReadError, httpcore.RemoteProtocolError)):
                await send(connections, f"{url}/reset")
            with pytest.raises(httpcore.RemoteProtocolError, match="without sending a response"):
                await send(connections, f"{url}/hang-up")
            cut = await send(connections, f"{url}/cut")
            with pytest.raises(httpcore.RemoteProtocolError, match="complete message body"):
                await read(cut)
            with pytest.raises(httpcore.RemoteProtocolError, match="not HTTP") as garbage:
                await send(connections, f"{url}/garbage?key=secret")
            assert "secret" not in str(garbage.value)


def test_a_refused_connection_is_a_connect_error_and_through_httpx_too(run: Runner) -> None:
    run(_a_refused_connection_is_a_connect_error_and_through_httpx_too())


async def _a_refused_connection_is_a_connect_error_and_through_httpx_too() -> None:
    async with serving(lambda reader, writer: asyncio.sleep(0)) as port:
        pass  # the port is free again: nothing listens on it
    async with pool() as connections:
        with pytest.raises(httpcore.ConnectError, match="Connect call failed|refused"):
            await post(connections, f"http://127.0.0.1:{port}/v1")
    pools = HttpPools()
    try:
        request = pools.build(f"http://127.0.0.1:{port}/v1", b"{}", {}, 5.0)
        with pytest.raises(httpx.ConnectError):
            await pools.send(request)
    finally:
        await pools.aclose()
