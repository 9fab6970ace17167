"""What one call to an OpenAI-compatible provider costs in each Python HTTP client the direct
transport could use, on the loopback fake provider, in one run (the clients take turns).

Run: .venv/bin/python benchmarks/bench_http_clients.py [--requests 3000] [--rounds 2] [--json OUT]

Clients: httpx's AsyncClient.send (what upstream/direct_transport.py used first: auth, redirects
and cookies around the transport), httpx's transport called directly (httpcore's connection pool
and h11's parser, none of the client's layers), httpx's transport over aiohttp's connections (what
the direct transport uses now: upstream/aiohttp_pool.py), and aiohttp's ClientSession alone (the
floor of that: no httpx objects). Each sends a whole answer and a stream at concurrency 1 over one
keep-alive connection, under uvloop as the service runs: CPU per call (this process's), p50
latency and, for the stream, the p50 of its first chunk. Then 64 concurrent calls through
httpcore's one pool and through the direct transport's (upstream/http_pools.py): CPU per call,
which httpcore's pool upkeep grows with the connections it holds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import uvloop
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_proxy import read_line  # noqa: E402
from loadgen import HOST, machine_meta, percentile, revision, running, write_json  # noqa: E402

from judge_router.upstream.http_pools import LIMITS, HttpPools, aiohttp_transport  # noqa: E402

HEADERS = {"Content-Type": "application/json", "Accept": "application/json",
           "Authorization": "Bearer sk-fake"}  # fmt: skip
MESSAGES = [{"role": "user", "content": "Summarise the plot of a short story in one line."}]
WHOLE = json.dumps({"model": "fake-low", "messages": MESSAGES}).encode()
STREAM = json.dumps({"model": "fake-low", "messages": MESSAGES, "stream": True}).encode()

Call = Callable[[], Awaitable[None]]


async def _measure(whole: Call, stream: Callable[[], Awaitable[float]], n: int) -> dict[str, Any]:
    for _ in range(max(n // 10, 20)):  # warm: the connection open, the code paths hot
        await whole()
    latencies = []
    cpu = time.process_time()
    for _ in range(n):
        started = time.perf_counter()
        await whole()
        latencies.append(time.perf_counter() - started)
    cpu_us = (time.process_time() - cpu) / n * 1e6
    firsts = sorted([await stream() for _ in range(max(n // 6, 10))])
    latencies.sort()
    return {
        "cpu_us_per_call": round(cpu_us, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 3),
        "p99_ms": round(percentile(latencies, 99) * 1000, 3),
        "stream_first_chunk_p50_ms": round(percentile(firsts, 50) * 1000, 3),
    }


async def httpx_client(url: str, n: int) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=200)
    async with httpx.AsyncClient(limits=limits, timeout=None, follow_redirects=True) as client:

        async def whole() -> None:
            request = client.build_request("POST", url, content=WHOLE, headers=HEADERS)
            await (await client.send(request)).aread()

        async def stream() -> float:
            started = time.perf_counter()
            request = client.build_request("POST", url, content=STREAM, headers=HEADERS)
            response = await client.send(request, stream=True)
            chunks = response.aiter_bytes()
            await chunks.__anext__()
            first = time.perf_counter() - started
            async for _ in chunks:
                pass
            await response.aclose()
            return first

        return await _measure(whole, stream, n)


async def httpx_transport(url: str, n: int, over_aiohttp: bool = False) -> dict[str, Any]:
    if over_aiohttp:  # upstream/http_pools.py's transport, as it builds it
        transport = aiohttp_transport(httpx.create_ssl_context(), LIMITS)
    else:
        transport = httpx.AsyncHTTPTransport(limits=LIMITS)
    async with transport:

        async def whole() -> None:
            request = httpx.Request("POST", url, content=WHOLE, headers=HEADERS)
            response = await transport.handle_async_request(request)
            await response.aread()

        async def stream() -> float:
            started = time.perf_counter()
            request = httpx.Request("POST", url, content=STREAM, headers=HEADERS)
            response = await transport.handle_async_request(request)
            chunks = response.aiter_raw()
            await chunks.__anext__()
            first = time.perf_counter() - started
            async for _ in chunks:
                pass
            await response.aclose()
            return first

        return await _measure(whole, stream, n)


async def aiohttp_session(url: str, n: int) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=1000)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def whole() -> None:
            async with session.post(url, data=WHOLE, headers=HEADERS) as response:
                await response.read()

        async def stream() -> float:
            started = time.perf_counter()
            async with session.post(url, data=STREAM, headers=HEADERS) as response:
                chunks = response.content.iter_any()
                await chunks.__anext__()
                first = time.perf_counter() - started
                async for _ in chunks:
                    pass
            return first

        return await _measure(whole, stream, n)


class HttpcorePool:
    """httpx's transport on httpcore's one pool, with HttpPools' two methods."""

    def __init__(self) -> None:
        self.transport = httpx.AsyncHTTPTransport(limits=LIMITS)

    def build(self, url: str, content: bytes, headers: dict[str, str], _: float) -> httpx.Request:
        return httpx.Request("POST", url, content=content, headers=headers)

    async def send(self, request: httpx.Request) -> httpx.Response:
        response = await self.transport.handle_async_request(request)
        await response.aread()
        await response.aclose()
        return response

    async def aclose(self) -> None:
        await self.transport.aclose()


async def under_load(url: str, make: Callable[[], Any], n: int, concurrency: int) -> dict[str, Any]:
    """`n` calls from `concurrency` callers through `make()`'s sender: CPU per call and calls/s."""
    sender = make()

    async def drain(calls: Iterator[int]) -> None:
        for _ in calls:
            await sender.send(sender.build(url, WHOLE, HEADERS, 30.0))

    async def callers(total: int) -> None:
        calls = iter(range(total))  # shared: each caller takes the next call
        await asyncio.gather(*(drain(calls) for _ in range(concurrency)))

    try:
        await callers(concurrency * 5)  # every caller's connection open
        cpu, started = time.process_time(), time.perf_counter()
        await callers(n)
        return {
            "cpu_us_per_call": round((time.process_time() - cpu) / n * 1e6, 1),
            "calls_per_s": round(n / (time.perf_counter() - started), 1),
        }
    finally:
        await sender.aclose()


SENDERS: dict[str, Callable[[], Any]] = {
    "httpcore's one pool": HttpcorePool,
    "the direct transport's (aiohttp's pool)": HttpPools,
}
CLIENTS: dict[str, Callable[[str, int], Awaitable[dict[str, Any]]]] = {
    "httpx AsyncClient.send": httpx_client,
    "httpx transport (httpcore's pool, h11)": httpx_transport,
    "httpx transport over aiohttp's connections (the direct transport now)": partial(
        httpx_transport, over_aiohttp=True
    ),
    "aiohttp ClientSession alone": aiohttp_session,
}


def run(requests: int, rounds: int) -> dict[str, Any]:
    results: dict[str, Any] = {"meta": {**machine_meta(), "revision": revision()}, "clients": {}}
    fake_cmd = [sys.executable, "-m", "judge_router.testing.fake_upstream", "--host", HOST]
    with tempfile.TemporaryDirectory(prefix="bench-clients-") as tmp:
        log = Path(tmp) / "upstream.log"
        with running([*fake_cmd, "--port", "0"], log, pipes=True) as fake:
            line = read_line(fake, time.monotonic() + 60, log, "fake upstream")
            base_url = line.rsplit(" ", 1)[1]
            runs = _rounds(base_url, requests, rounds)
            url = base_url.rstrip("/") + "/chat/completions"
            results["at_64"] = {
                name: uvloop.run(under_load(url, make, requests, 64))
                for name, make in SENDERS.items()
            }
    for name, found in runs.items():  # the median round of each figure
        results["clients"][name] = {
            key: sorted(r[key] for r in found)[len(found) // 2] for key in found[0]
        }
    return results


def _rounds(base_url: str, requests: int, rounds: int) -> dict[str, list[dict[str, Any]]]:
    """Every client `rounds` times, the order reversed every other round."""
    url = base_url.rstrip("/") + "/chat/completions"
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in CLIENTS}
    for turn in range(rounds):
        order = list(CLIENTS) if turn % 2 == 0 else list(CLIENTS)[::-1]
        for name in order:
            runs[name].append(uvloop.run(CLIENTS[name](url, requests)))
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000, help="calls per client and round")
    parser.add_argument("--rounds", type=int, default=2, help="turns of every client (ABBA)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the results here")
    args = parser.parse_args(argv)
    results = run(args.requests, args.rounds)
    table = Table(title="one call to the loopback fake provider, concurrency 1 (uvloop)")
    for column in ("client", "CPU µs/call", "p50 ms", "p99 ms", "stream first chunk p50 ms"):
        table.add_column(column, justify="left" if column == "client" else "right")
    for name, figures in results["clients"].items():
        table.add_row(name, *(str(value) for value in figures.values()))
    Console().print(table)
    loaded = Table(title="64 concurrent calls")
    for column in ("sender", "CPU µs/call", "calls/s"):
        loaded.add_column(column, justify="left" if column == "sender" else "right")
    for name, figures in results["at_64"].items():
        loaded.add_row(name, str(figures["cpu_us_per_call"]), str(figures["calls_per_s"]))
    Console().print(loaded)
    if args.json is not None:
        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
