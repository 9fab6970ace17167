"""Where a streamed answer's first byte goes: the time at each stage of one routed stream, inside
the router, from the moment its request reaches the app to the moment its first chunk is sent.

Run: .venv/bin/python benchmarks/stream_stages.py [--requests 2000] [--rounds 1] [--json OUT]
     [--baseline TREE]   # also a checkout of another revision, the two taking turns

One loopback fake provider, one `judge-router serve` (direct transport, verdicts cached by a
warm-up), streamed `/v1/chat/completions` at concurrency 1 over one keep-alive connection, then
the same streams straight to the fake (the floor). The router runs with probes: each stage's
function is wrapped to note `time.perf_counter_ns()` as it is reached, per request (a context
variable), and the router writes the medians when it is stopped. The probes cost a few
microseconds each, so the stages add up to a little more than an unprobed request's; what they
show is where the time is. overhead.py gives the unprobed figures. With `--baseline TREE` (say
`git worktree add /tmp/before REV`) the router of that checkout is measured too, round by round
in turns with this one's (ABBA), on the same machine in the same minutes: a before-and-after that
the machine's drift moves alike.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_proxy as proxy  # noqa: E402
from loadgen import (  # noqa: E402
    HOST,
    close_stream,
    free_port,
    http_post,
    machine_meta,
    open_stream,
    read_response,
    revision,
    running,
    wait_until_ready,
    write_json,
)

# (stage, what has happened when it is noted), in the order a request reaches them.
STAGES = (
    ("app", "the request reaches the app (its middlewares passed)"),
    ("decided", "the body is read and the decision made (cached verdict)"),
    ("transport", "the direct transport is called (strategy, model chain)"),
    ("send", "the provider request is built and handed to the pools"),
    ("written", "the request's body is written to the provider's connection"),
    ("headers", "the provider's response headers are read"),
    ("first_chunk", "its first event is read and checked"),
    ("first_byte", "the first chunk is sent to the client (uvicorn)"),
)
WARMUP = 100


# -- the probed router (a child process) ---------------------------------------------------------

_marks: contextvars.ContextVar[dict[str, int] | None] = contextvars.ContextVar(
    "marks", default=None
)


def _note(stage: str) -> None:
    marks = _marks.get()
    if marks is not None and stage not in marks:
        marks[stage] = time.perf_counter_ns()


def _noting(owner: Any, name: str, before: str | None, after: str | None) -> None:
    """Wraps the coroutine method `owner.name` to note `before` as it starts, `after` as it ends."""
    original: Callable[..., Awaitable[Any]] = getattr(owner, name)

    async def noted(*args: Any, **kwargs: Any) -> Any:
        if before is not None:
            _note(before)
        result = await original(*args, **kwargs)
        if after is not None:
            _note(after)
        return result

    setattr(owner, name, noted)


def probed_router(out: Path, argv: list[str]) -> None:
    """`judge-router serve argv…` with the stage probes; the medians go to `out` on SIGTERM."""
    from aiohttp.client_reqrep import ClientRequest
    from httpcore._async.http11 import AsyncHTTP11Connection

    from judge_router.cli.main import main as cli
    from judge_router.routing.pipeline import DecisionPipeline
    from judge_router.serving.hot_paths import HotPaths
    from judge_router.upstream.direct_transport import DirectTransport
    from judge_router.upstream.http_pools import HttpPools

    finished: list[dict[str, int]] = []
    entered = HotPaths.__call__

    async def app(self: HotPaths, scope: Any, receive: Any, send: Any) -> None:
        marks: dict[str, int] = {"app": time.perf_counter_ns()}
        _marks.set(marks)

        async def sending(message: Any) -> None:
            await send(message)
            if message["type"] == "http.response.body":
                _note("first_byte")

        await entered(self, scope, receive, sending)
        if len(marks) == len(STAGES):
            finished.append(marks)

    HotPaths.__call__ = app  # type: ignore[method-assign]
    _noting(DecisionPipeline, "decide", None, "decided")
    _noting(DirectTransport, "stream", "transport", "first_chunk")
    _noting(HttpPools, "send", "send", "headers")
    # aiohttp writes the body (upstream/aiohttp_pool.py); a --baseline tree from before it, httpcore.
    _noting(ClientRequest, "write_bytes", None, "written")
    _noting(AsyncHTTP11Connection, "_send_request_body", None, "written")

    def report(*_: Any) -> None:
        kept = finished[WARMUP:] or finished
        medians = {
            stage: statistics.median((m[stage] - m["app"]) / 1000 for m in kept)
            for stage, _ in STAGES
        }
        out.write_text(json.dumps({"requests": len(kept), "us_since_app": medians}))
        os._exit(0)

    signal.signal(signal.SIGTERM, report)
    sys.argv = ["judge-router", *argv]
    cli()


# -- the run --------------------------------------------------------------------------------------


async def _first_bytes(port: int, body: dict[str, Any], n: int) -> list[float]:
    reader, writer = await open_stream(port)
    request = http_post(port, "/v1/chat/completions", json.dumps(body).encode())
    firsts = []
    try:
        for _ in range(n):
            started = time.perf_counter()
            writer.write(request)
            status, _, first = await read_response(reader)
            if status != 200 or first is None:
                raise RuntimeError(f"a stream answered {status}")
            firsts.append(first - started)
    finally:
        await close_stream(writer)
    return sorted(firsts)


def run(requests: int, tree: Path | None = None) -> dict[str, Any]:
    """One round: the stages of this checkout's router, or of the one in `tree`."""
    streamed = {"messages": [{"role": "user", "content": "Name three colours."}], "stream": True}
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-stages-") as tmp:
        directory = Path(tmp)
        fake_log, router_log = directory / "upstream.log", directory / "router.log"
        fake_cmd = [sys.executable, "-m", "judge_router.testing.fake_upstream", "--host", HOST]
        with running([*fake_cmd, "--port", "0"], fake_log, pipes=True) as fake:
            line = proxy.read_line(fake, time.monotonic() + 60, fake_log, "fake upstream")
            base_url = line.rsplit(" ", 1)[1]
            fake_port = int(base_url.rsplit(":", 1)[1].split("/")[0])
            config, port, out = (
                proxy.write_config(directory, base_url),
                free_port(),
                directory / "stages.json",
            )
            serve = ["serve", "--config", str(config), "--host", HOST, "--port", str(port)]
            command = [sys.executable, __file__, "--probed-router", str(out), *serve]
            env = None if tree is None else {"PYTHONPATH": str(tree.resolve())}
            with running([*command, "--log-level", "warning"], router_log, env=env) as router:
                wait_until_ready(router, port, "/healthz", time.monotonic() + 120, router_log)
                routed = {**streamed, "model": "auto"}
                asyncio.run(_first_bytes(port, routed, WARMUP))  # verdict cached, code warm
                firsts = asyncio.run(_first_bytes(port, routed, requests))
                floor = asyncio.run(
                    _first_bytes(fake_port, {**streamed, "model": "fake-low"}, requests)
                )
            if not out.exists():
                raise RuntimeError(f"the probed router wrote no stages:\n{router_log.read_text()}")
            results.update(json.loads(out.read_text()))
    results["router_first_byte_p50_ms"] = round(statistics.median(firsts) * 1000, 3)
    results["floor_first_byte_p50_ms"] = round(statistics.median(floor) * 1000, 3)
    return results


def rounds(requests: int, count: int, baseline: Path | None) -> dict[str, Any]:
    """`count` rounds of this checkout (and of `baseline`, in turns), each figure the median
    of its rounds."""
    trees: dict[str, Path | None] = {"this": None}
    if baseline is not None:
        trees["baseline"] = baseline
    found: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
    for turn in range(count):
        order = list(trees) if turn % 2 == 0 else list(trees)[::-1]
        for name in order:
            found[name].append(run(requests, trees[name]))
    results: dict[str, Any] = {"meta": {**machine_meta(), "revision": revision()}}
    for name, runs in found.items():
        results[name] = {
            "rounds": len(runs),
            "requests": sum(r["requests"] for r in runs),
            "us_since_app": {
                stage: statistics.median(r["us_since_app"][stage] for r in runs)
                for stage, _ in STAGES
            },
            **{
                key: statistics.median(r[key] for r in runs)
                for key in ("router_first_byte_p50_ms", "floor_first_byte_p50_ms")
            },
        }
    if baseline is not None:
        results["baseline"]["tree"] = str(baseline)
    return results


def _table(title: str, figures: dict[str, Any]) -> Table:
    table = Table(title=title)
    for column in ("stage", "since the app", "since the stage before", "what has happened"):
        table.add_column(
            column, justify="left" if column in ("stage", "what has happened") else "right"
        )
    previous = 0.0
    for stage, meaning in STAGES:
        at = figures["us_since_app"][stage]
        table.add_row(stage, f"{at:,.0f}", f"{at - previous:,.0f}", meaning)
        previous = at
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--requests", type=int, default=2000, help="streams measured (default 2000)"
    )
    parser.add_argument("--rounds", type=int, default=1, help="rounds per router (default 1)")
    parser.add_argument("--baseline", type=Path, metavar="TREE", help="another checkout, in turns")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the results here")
    parser.add_argument("--probed-router", type=Path, help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args(argv)
    if args.probed_router is not None:
        probed_router(args.probed_router, rest)
        return 0
    results = rounds(args.requests, args.rounds, args.baseline)
    console = Console(width=130)
    for name in ("this", "baseline"):
        if name not in results:
            continue
        figures = results[name]
        title = f"{name}: one routed stream's stages, median of {figures['requests']} (µs)"
        console.print(_table(title, figures))
        console.print(
            f"first byte p50 at the client: router {figures['router_first_byte_p50_ms']} ms, "
            f"straight to the fake {figures['floor_first_byte_p50_ms']} ms"
        )
    if args.json is not None:
        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
