"""The direct transport's sockets (upstream/asyncio_network.py), against real loopback servers: the
pools use them; TLS, an idle connection the server closed, timeouts, a reset, a large body and a
refused connection behave as httpcore's own anyio backend makes them behave."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import httpcore
import httpx
import pytest
import trustme
import uvloop

from judge_router.upstream.asyncio_network import AsyncioBackend
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


def answer(body: bytes = ANSWER, close: bool = False) -> bytes:
    head = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
    return (head + ("connection: close\r\n" if close else "") + "\r\n").encode() + body


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.lower().split(b"\r\n")
        if line.startswith(b"content-length:")
    )
    return await reader.readexactly(length)


@asynccontextmanager
async def serving(handler: Handler, tls: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=tls)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


def pool(tls: ssl.SSLContext | None = None) -> httpcore.AsyncConnectionPool:
    return httpcore.AsyncConnectionPool(ssl_context=tls, network_backend=AsyncioBackend())


async def post(connections: httpcore.AsyncConnectionPool, url: str, **extensions: object) -> bytes:
    response = await connections.request(
        "POST", url, content=b'{"model": "m"}', extensions=extensions
    )
    assert response.status == 200
    return response.content


def test_the_pools_send_through_these_sockets(run: Runner) -> None:
    run(_the_pools_send_through_these_sockets())


async def _the_pools_send_through_these_sockets() -> None:
    pools = HttpPools(pools=2)
    try:
        for transport in pools._pools:  # noqa: SLF001
            backend = transport._pool._network_backend  # noqa: SLF001
            assert isinstance(backend, AsyncioBackend)
    finally:
        await pools.aclose()


def test_tls_to_a_server_whose_certificate_is_trusted(run: Runner) -> None:
    run(_tls_to_a_server_whose_certificate_is_trusted())


async def _tls_to_a_server_whose_certificate_is_trusted() -> None:
    authority = trustme.CA()
    served = authority.issue_cert("127.0.0.1")
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.configure_cert(server_tls)
    client_tls = ssl.create_default_context()
    authority.configure_trust(client_tls)
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                seen.append(await read_request(reader))
            except asyncio.IncompleteReadError:
                return
            writer.write(answer())
            await writer.drain()

    async with serving(handler, server_tls) as port:
        async with pool(client_tls) as connections:
            for _ in range(3):
                assert await post(connections, f"https://127.0.0.1:{port}/v1") == ANSWER
            assert len(connections.connections) == 1  # one handshake, the connection kept
        async with pool(ssl.create_default_context()) as untrusting:
            with pytest.raises(httpcore.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await post(untrusting, f"https://127.0.0.1:{port}/v1")
    assert seen == [b'{"model": "m"}'] * 3


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
            await closed.wait()  # the FIN is in the client's socket: it polls readable
            assert await post(connections, url) == ANSWER  # not a "server disconnected" error
    assert len(opened) == 2


def test_a_read_timeout_and_a_reset_are_httpcores_errors(run: Runner) -> None:
    run(_a_read_timeout_and_a_reset_are_httpcores_errors())


async def _a_read_timeout_and_a_reset_are_httpcores_errors() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        body = await read_request(reader)
        if b"reset" in body:
            writer.transport.abort()  # an RST, no answer
            return
        await asyncio.Event().wait()  # never answers

    async with serving(handler) as port:
        async with pool() as connections:
            url = f"http://127.0.0.1:{port}/v1"
            with pytest.raises(httpcore.ReadTimeout):
                await post(connections, url, timeout={"read": 0.05})
            with pytest.raises((httpcore.ReadError, httpcore.RemoteProtocolError)):
                await connections.request("POST", url, content=b"reset")


def test_a_body_larger_than_the_read_buffer_arrives_whole(run: Runner) -> None:
    run(_a_body_larger_than_the_read_buffer_arrives_whole())


async def _a_body_larger_than_the_read_buffer_arrives_whole() -> None:
    big = b"x" * (3 * 1024 * 1024)  # past the point where the socket stops being read

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received = await read_request(reader)
        writer.write(answer(received))
        await writer.drain()

    async with serving(handler) as port:
        async with pool() as connections:
            response = await connections.request("POST", f"http://127.0.0.1:{port}/v1", content=big)
            assert response.status == 200 and response.content == big


def test_a_refused_connection_is_a_connect_error_and_through_httpx_too(run: Runner) -> None:
    run(_a_refused_connection_is_a_connect_error_and_through_httpx_too())


async def _a_refused_connection_is_a_connect_error_and_through_httpx_too() -> None:
    async with serving(lambda reader, writer: asyncio.sleep(0)) as port:
        pass  # the port is free again: nothing listens on it
    async with pool() as connections:
        with pytest.raises(httpcore.ConnectError):
            await post(connections, f"http://127.0.0.1:{port}/v1")
    pools = HttpPools(pools=1)
    try:
        request = pools.build(f"http://127.0.0.1:{port}/v1", b"{}", {}, 5.0)
        with pytest.raises(httpx.ConnectError):
            await pools.send(request)
    finally:
        await pools.aclose()
