"""The direct transport's sockets: an httpcore network backend on asyncio's own transports.

httpcore reads and writes its connections through a pluggable network backend (its public
`network_backend=`); the one it picks on asyncio goes through anyio, whose socket streams yield to
the event loop on every read and write and open a cancel scope around each for its timeout. Here a
read that finds bytes already received returns them without waiting, a write hands its bytes to
the transport and waits only when the transport asks it to, and timeouts are asyncio's: 736
against 898 µs of CPU a call (benchmarks/bench_http_clients.py, 2026-12-04).

What httpcore asks of a stream is all here: reads and writes with timeouts, TLS by upgrading the
connection (`loop.start_tls`, so HTTP/2's ALPN is read off the same SSL object), and the
`is_readable` check by which a pool drops an idle connection the server has closed.
"""

from __future__ import annotations

import asyncio
import select
import socket
import ssl
from collections.abc import Iterable
from typing import Any, cast

import httpcore

_PAUSE_AT = 256 * 1024  # received bytes held unread before the socket stops being read


class _Connection(asyncio.Protocol):
    """What the event loop hands over: received bytes, end of stream, write pressure."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.received = bytearray()
        self.ended = False
        self.error: BaseException | None = None
        self.reading_paused = self.writing_paused = False
        self._readable: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports quack like asyncio.Transport without deriving from it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.received += data
        if len(self.received) > _PAUSE_AT and self.transport is not None:
            self.transport.pause_reading()
            self.reading_paused = True
        self._wake_reader()

    def eof_received(self) -> bool:
        self.ended = True
        self._wake_reader()
        return False  # close the transport: HTTP/1.1 has no use for a half-closed connection

    def connection_lost(self, exc: BaseException | None) -> None:
        self.ended, self.error = True, exc
        self._wake_reader()
        self._wake_writer()

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._wake_writer()

    def _wake_reader(self) -> None:
        waiter, self._readable = self._readable, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wake_writer(self) -> None:
        waiter, self._writable = self._writable, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def until_readable(self) -> asyncio.Future[None]:
        self._readable = asyncio.get_running_loop().create_future()
        return self._readable

    def until_writable(self) -> asyncio.Future[None]:
        self._writable = asyncio.get_running_loop().create_future()
        return self._writable


async def _wait(
    waiter: asyncio.Future[None], timeout: float | None, error: type[Exception]
) -> None:
    try:
        if timeout is None:
            await waiter
        else:
            async with asyncio.timeout(timeout):
                await waiter
    except TimeoutError as exc:
        raise error(exc) from exc  # as httpcore maps anyio's: an empty message


class AsyncioStream(httpcore.AsyncNetworkStream):
    def __init__(self, connection: _Connection):
        self._connection = connection

    @property
    def _transport(self) -> asyncio.Transport:
        transport = self._connection.transport
        assert transport is not None
        return transport

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        connection = self._connection
        while not connection.received and not connection.ended:
            await _wait(connection.until_readable(), timeout, httpcore.ReadTimeout)
        received = connection.received
        if received:
            if len(received) <= max_bytes:
                data = bytes(received)
                received.clear()
            else:
                data = bytes(received[:max_bytes])
                del received[:max_bytes]
            if connection.reading_paused and len(received) <= _PAUSE_AT // 2:
                connection.reading_paused = False
                self._transport.resume_reading()
            return data
        if connection.error is not None:  # as anyio's, with the reason chained
            raise httpcore.ReadError() from connection.error
        return b""  # the server closed the connection: httpcore reads that as the end

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        connection = self._connection
        transport = self._transport
        if connection.ended or transport.is_closing():
            raise httpcore.WriteError() from connection.error
        transport.write(buffer)
        while connection.writing_paused and not connection.ended:
            await _wait(connection.until_writable(), timeout, httpcore.WriteTimeout)
        if connection.error is not None:
            raise httpcore.WriteError() from connection.error

    async def aclose(self) -> None:
        self._transport.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                upgraded = await loop.start_tls(
                    self._transport, self._connection, ssl_context, server_hostname=server_hostname
                )
        except TimeoutError as exc:
            self._transport.close()
            raise httpcore.ConnectTimeout(exc) from exc
        except (OSError, ssl.SSLError) as exc:  # ssl.SSLError is an OSError; named for the reader
            self._transport.close()
            raise httpcore.ConnectError(exc) from exc
        if upgraded is None:  # the connection was lost during the handshake
            raise httpcore.ConnectError("the connection closed during the TLS handshake")
        self._connection.transport = upgraded
        return self

    def get_extra_info(self, info: str) -> Any:
        transport = self._transport
        if info == "ssl_object":
            return transport.get_extra_info("ssl_object")
        if info == "client_addr":
            return transport.get_extra_info("sockname")
        if info == "server_addr":
            return transport.get_extra_info("peername")
        if info == "socket":
            return transport.get_extra_info("socket")
        if info == "is_readable":  # an idle connection with something to read has been closed
            connection = self._connection
            if connection.received or connection.ended:
                return True
            return _polls_readable(transport.get_extra_info("socket"))
        return None


def _polls_readable(sock: socket.socket | None) -> bool:
    """Whether the socket has something to read (or is gone), without waiting."""
    if sock is None or sock.fileno() < 0:
        return True
    poller = select.poll()  # not select.select: it fails on descriptors past 1,023
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        local = (local_address, 0) if local_address else None
        try:
            async with asyncio.timeout(timeout):
                transport, connection = await loop.create_connection(
                    _Connection, host, port, local_addr=local
                )
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(exc) from exc
        except OSError as exc:
            raise httpcore.ConnectError(exc) from exc
        sock = transport.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)  # asyncio has already set TCP_NODELAY
        return AsyncioStream(connection)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("the direct transport does not connect to unix sockets")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
