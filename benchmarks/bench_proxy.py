"""Benchmark of the proxy path: POST /v1/chat/completions through judge-router vs a bare litellm loop.

Run: .venv/bin/python benchmarks/bench_proxy.py [--quick] [--json OUT]; see benchmarks/proxy-figures.md.
Every process is separate: fake upstream, bare-litellm loop, router, and this load generator.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import http.client
import importlib.metadata
import itertools
import json
import os
import selectors
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Protocol

from rich.console import Console
from rich.table import Table

# benchmarks/ is a folder of scripts, not a package: whether run as a script or loaded by path (as
# the smoke tests do), the shared module is found next to this file.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import (  # noqa: E402
    HOST,
    close_stream,
    free_port,
    http_post,
    httpx_client,
    litellm_params,
    machine_cpu_s,
    machine_meta,
    ms,
    open_stream,
    percentile,
    process_cpu_s,
    read_response,
    revision,
    run_async,
    running,
    sample_rows,
    tail,
    thread_cpu_s,
    tier_marked,
    wait_until_ready,
    write_json,
    write_yaml,
    yes,
)

TARGETS = {"router_overhead_p50_ms": 2.0}
# Reference figures measured on the same kind of 2-core machine before our runs: the floor, for comparison.
ENGINEERING_FLOOR = {
    "raw_httpx": {"p50_ms": 1.3, "rps": "~420"},
    "bare_litellm": {"p50_ms": 7.8, "rps": "~100-120"},
    "litellm_proxy": {"p50_ms": 22.0, "rps": "~54"},
}
# Prices written into the config and passed to the bare loop alike (USD per token, in/out).
PRICES = {
    "openai/fake-judge": (5e-8, 4e-7),
    "openai/fake-nano": (5e-8, 4e-7),
    "openai/fake-mini": (2.5e-7, 2e-6),
    "openai/fake-large": (1.25e-6, 1e-5),
}
TIER_MODELS = {"low": "openai/fake-nano", "medium": "openai/fake-mini", "high": "openai/fake-large"}
PROTOCOL = "BENCH "  # prefix of the lines a litellm worker writes for the orchestrator
KINDS = ("latency", "throughput", "stream")  # the measured phases, in order


@dataclasses.dataclass(frozen=True)
class Options:
    requests: int = 2000  # per measured phase and path (streamed: a quarter of it)
    warmup: int = 200  # untimed requests on each path first
    concurrency: int = 20  # for the throughput phase (latency and stream phases use 1)
    prompts: int = 8  # distinct prompts, so distinct cached verdicts
    # Bare loop and router take turns in this many blocks per phase (ABBA...), so a machine that
    # drifts faster or slower during the run moves both alike instead of biasing the difference.
    blocks: int = 20
    aiohttp: bool = True  # also run the bare loop on litellm's default aiohttp transport
    phase_timeout_s: float = 180.0
    startup_timeout_s: float = 90.0
    # cProfile the router and the bare loop (their event-loop threads) during the latency phase
    # only; router.prof and bare-litellm.prof are written here. Profiled figures are inflated.
    profile_dir: Path | None = None
    quick: bool = False

    def count(self, kind: str) -> int:
        # Streaming costs litellm ~30 ms of CPU per request: a quarter of the count is plenty.
        return max(self.requests // 4, 1) if kind == "stream" else self.requests

    def level(self, kind: str) -> int:
        return self.concurrency if kind == "throughput" else 1


QUICK = Options(
    requests=40,
    warmup=10,
    concurrency=4,
    prompts=4,
    blocks=2,
    aiohttp=False,
    phase_timeout_s=30.0,
    quick=True,
)


# -- measuring ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Sample:
    latency_s: float
    first_byte_s: float | None = None  # streamed requests: when the first body chunk arrived
    problem: str | None = None


class Caller(Protocol):
    async def call(self, index: int) -> Sample: ...

    async def close(self) -> None: ...


@dataclasses.dataclass
class Phase:
    """One measured run: samples of the requests that succeeded, and what went wrong."""

    concurrency: int
    requested: int
    samples: list[Sample]
    problems: list[str]
    wall_s: float
    client_cpu_s: float
    watched_cpu_s: dict[str, float | None]
    threads_cpu_s: dict[str, dict[str, float]]
    machine_s: tuple[float, float] | None  # (busy, steal) CPU seconds of the whole machine

    @classmethod
    def merge(cls, phases: Sequence[Phase]) -> Phase:
        """Blocks of one phase as if run in one go: samples pooled, times and CPU added up."""

        def total(values: Iterator[float | None]) -> float | None:
            found = list(values)
            return None if any(v is None for v in found) else sum(v or 0.0 for v in found)

        threads: dict[str, dict[str, float]] = {}
        for phase in phases:
            for name, per_thread in phase.threads_cpu_s.items():
                merged = threads.setdefault(name, {})
                for thread, cpu in per_thread.items():
                    merged[thread] = merged.get(thread, 0.0) + cpu
        return cls(
            concurrency=phases[0].concurrency,
            requested=sum(p.requested for p in phases),
            samples=[s for p in phases for s in p.samples],
            problems=[problem for p in phases for problem in p.problems],
            wall_s=sum(p.wall_s for p in phases),
            client_cpu_s=sum(p.client_cpu_s for p in phases),
            watched_cpu_s={
                name: total(p.watched_cpu_s.get(name) for p in phases)
                for name in phases[0].watched_cpu_s
            },
            threads_cpu_s=threads,
            machine_s=None
            if any(p.machine_s is None for p in phases)
            else (
                sum(p.machine_s[0] for p in phases if p.machine_s),
                sum(p.machine_s[1] for p in phases if p.machine_s),
            ),
        )

    def to_wire(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["samples"] = [[s.latency_s, s.first_byte_s] for s in self.samples]
        return data

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Phase:
        samples = [Sample(latency, first) for latency, first in data["samples"]]
        return cls(**{**data, "samples": samples})

    def summary(self) -> dict[str, Any]:
        latencies = sorted(s.latency_s for s in self.samples)
        firsts = sorted(s.first_byte_s for s in self.samples if s.first_byte_s is not None)
        ok = len(latencies)
        done = max(ok, 1)
        row: dict[str, Any] = {
            "concurrency": self.concurrency,
            "requests": self.requested,
            "ok": ok,
            "failed": self.requested - ok,
            "problems": self.problems[:5],
            "wall_s": round(self.wall_s, 3),
            "rps": round(ok / self.wall_s, 1) if self.wall_s > 0 else 0.0,
            "p50_ms": ms(percentile(latencies, 50)),
            "p95_ms": ms(percentile(latencies, 95)),
            "p99_ms": ms(percentile(latencies, 99)),
            "max_ms": ms(latencies[-1] if latencies else 0.0),
            "mean_ms": ms(statistics.fmean(latencies) if latencies else 0.0),
            # CPU per request on each side says which process is saturated.
            "client_cpu_us_per_req": round(self.client_cpu_s / done * 1e6, 1),
            "client_cpu_share": _share(self.client_cpu_s, self.wall_s),
        }
        if firsts:
            row["first_byte_p50_ms"] = ms(percentile(firsts, 50))
            row["first_byte_p95_ms"] = ms(percentile(firsts, 95))
        for name, cpu in self.watched_cpu_s.items():
            row[f"{name}_cpu_us_per_req"] = None if cpu is None else round(cpu / done * 1e6, 1)
            row[f"{name}_cpu_share"] = None if cpu is None else _share(cpu, self.wall_s)
        if self.machine_s is not None:
            busy, steal = self.machine_s
            ours = self.client_cpu_s + sum(c or 0.0 for c in self.watched_cpu_s.values())
            # Cores busy with anything but this benchmark's processes, and cores taken by the
            # hypervisor: noise in the figures either way.
            row["other_cpu_share"] = _share(max(busy - ours, 0.0), self.wall_s)
            row["steal_cpu_share"] = _share(steal, self.wall_s)
        for name, threads in self.threads_cpu_s.items():
            shares = {t: _share(cpu, self.wall_s) for t, cpu in threads.items()}
            row[f"{name}_threads_cpu_share"] = {t: s for t, s in shares.items() if s >= 0.005}
        return row


def _share(cpu_s: float, wall_s: float) -> float:
    return round(cpu_s / wall_s, 3) if wall_s > 0 else 0.0


async def drive(
    open_caller: Callable[[], Awaitable[Caller]],
    total: int,
    concurrency: int,
    timeout_s: float,
    watch: dict[str, int] | None = None,
    threads_of: dict[str, int] | None = None,
) -> Phase:
    """Send `total` requests from `concurrency` callers (each its own keep-alive connection)."""
    watch = watch or {}
    threads_of = threads_of or {}
    callers = [await open_caller() for _ in range(concurrency)]
    counter = itertools.count()
    samples: list[Sample] = []
    problems: list[str] = []

    async def worker(caller: Caller) -> None:
        while (i := next(counter)) < total:
            try:
                sample = await caller.call(i)
            except Exception as exc:  # noqa: BLE001 - a benchmark counts failures, it doesn't stop
                problems.append(f"request {i}: {type(exc).__name__}: {exc}"[:300])
                return  # this caller's connection is unusable; its share counts as failed
            if sample.problem is None:
                samples.append(sample)
            else:
                problems.append(f"request {i}: {sample.problem}")

    watched_before = {name: process_cpu_s(pid) for name, pid in watch.items()}
    threads_before = {name: thread_cpu_s(pid) for name, pid in threads_of.items()}
    busy_before = machine_cpu_s()
    cpu_before = time.process_time()
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s):
            await asyncio.gather(*(worker(caller) for caller in callers))
    except TimeoutError:
        problems.append(f"phase stopped after its {timeout_s:.0f} s time limit")
    wall = time.perf_counter() - started
    client_cpu = time.process_time() - cpu_before
    busy_after = machine_cpu_s()
    watched: dict[str, float | None] = {}
    for name, pid in watch.items():
        before, after = watched_before[name], process_cpu_s(pid)
        watched[name] = None if before is None or after is None else after - before
    threads: dict[str, dict[str, float]] = {}
    for name, pid in threads_of.items():
        earlier = threads_before[name]
        threads[name] = {t: cpu - earlier.get(t, 0.0) for t, cpu in thread_cpu_s(pid).items()}
    for caller in callers:
        await caller.close()
    machine = None
    if busy_before is not None and busy_after is not None:
        machine = (busy_after[0] - busy_before[0], busy_after[1] - busy_before[1])
    return Phase(concurrency, total, samples, problems, wall, client_cpu, watched, threads, machine)


# -- the load generator: a raw keep-alive HTTP/1.1 client on asyncio streams -------------------------


Check = Callable[[int, bytes, int], str | None]  # (status, body, request index) -> problem or None


def http_request(port: int, path: str, body: dict[str, Any]) -> bytes:
    """A whole HTTP/1.1 POST of `body` as compact JSON, built once so sending costs one write."""
    return http_post(port, path, json.dumps(body, separators=(",", ":")).encode())


class RawConnection:
    """One keep-alive connection sending pre-built requests (see loadgen.read_response).

    The client's cost stays at tens of microseconds per request, so on two cores the server is what
    gets measured (checked by the raw-HTTP floor).
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        requests: Sequence[bytes],
        check: Check,
    ):
        self._reader = reader
        self._writer = writer
        self._requests = requests
        self._check = check

    @classmethod
    def opener(
        cls, port: int, requests: Sequence[bytes], check: Check
    ) -> Callable[[], Awaitable[Caller]]:
        async def open_connection() -> Caller:
            reader, writer = await open_stream(port)
            return cls(reader, writer, requests, check)

        return open_connection

    async def call(self, index: int) -> Sample:
        clock = time.perf_counter
        payload = index % len(self._requests)
        started = clock()
        self._writer.write(self._requests[payload])
        status, body, first_at = await read_response(self._reader)
        first = None if first_at is None else first_at - started
        latency = clock() - started
        return Sample(latency, first, self._check(status, body, payload))

    async def close(self) -> None:
        await close_stream(self._writer)


class HttpxCaller:
    """httpx.AsyncClient on one connection: the client the reference raw floor was measured with."""

    def __init__(self, url: str, bodies: Sequence[dict[str, Any]], check: Check):
        self._client = httpx_client()
        self._url = url
        self._bodies = [json.dumps(b, separators=(",", ":")).encode() for b in bodies]
        self._check = check

    async def call(self, index: int) -> Sample:
        payload = index % len(self._bodies)
        started = time.perf_counter()
        response = await self._client.post(
            self._url,
            content=self._bodies[payload],
            headers={"content-type": "application/json"},
        )
        latency = time.perf_counter() - started
        return Sample(latency, None, self._check(response.status_code, response.content, payload))

    async def close(self) -> None:
        await self._client.aclose()


# -- the bare litellm loop (a worker process of its own) ---------------------------------------------


class LitellmCaller:
    """litellm.acompletion with exactly the keyword arguments the router's proxy path passes."""

    def __init__(self, litellm: Any, task: dict[str, Any], stream: bool):
        self._litellm = litellm
        self._stream = stream
        self._calls = []
        for prompt, model in task["prompts"]:
            input_price, output_price = PRICES[model]
            kwargs: dict[str, Any] = {
                "timeout": 120.0,
                "num_retries": 0,
                "drop_params": True,
                "messages": [{"role": "user", "content": prompt}],
                "model": model,
                "api_base": task["base_url"],
                "api_key": "sk-fake",
                "input_cost_per_token": input_price,
                "output_cost_per_token": output_price,
            }
            if stream:
                kwargs.update(stream=True, stream_options={"include_usage": True})
            self._calls.append(kwargs)

    async def call(self, index: int) -> Sample:
        kwargs = self._calls[index % len(self._calls)]
        started = time.perf_counter()
        response = await self._litellm.acompletion(**kwargs)
        if not self._stream:
            latency = time.perf_counter() - started
            content = response.choices[0].message.content or ""
            return Sample(latency, None, None if content.startswith("echo:") else repr(content))
        first: float | None = None
        chunks = 0
        async for _chunk in response:
            chunks += 1
            if first is None:
                first = time.perf_counter() - started
        latency = time.perf_counter() - started
        return Sample(latency, first, None if chunks > 1 else f"{chunks} chunks")

    async def close(self) -> None:
        return None


async def serve_commands(litellm: Any, task: dict[str, Any]) -> None:
    """Warm up, say ready, then run the orchestrator's commands (one JSON line each) until exit."""
    timeout, watch = task["phase_timeout_s"], {"upstream": task["upstream_pid"]}

    def opener(stream: bool) -> Callable[[], Awaitable[Caller]]:
        async def open_caller() -> Caller:
            return LitellmCaller(litellm, task, stream)

        return open_caller

    # Untimed, and done while other processes still start: first-call costs (client set-up, lazy
    # imports, pydantic schema builds) stay out of the figures.
    warm = await drive(opener(False), task["warmup"], task["concurrency"], timeout)
    warm_stream = await drive(opener(True), max(task["warmup"] // 4, 2), 1, timeout)
    reply({"warmup": warm.summary(), "stream_warmup": warm_stream.summary()})
    profiler: Any = None
    while True:
        # Waiting in a thread leaves the loop free to finish litellm's background work meanwhile.
        line = await asyncio.to_thread(sys.stdin.readline)
        command: dict[str, Any] = json.loads(line) if line.strip() else {"cmd": "exit"}
        if command["cmd"] == "drive":
            stream = command["kind"] == "stream"
            phase = await drive(
                opener(stream), command["n"], command["concurrency"], timeout, watch
            )
            reply(phase.to_wire())
        elif command["cmd"] == "profile":
            import cProfile

            if command["action"] == "start":
                profiler = cProfile.Profile()
                profiler.enable()
            elif profiler is not None:
                profiler.disable()
                profiler.dump_stats(command["path"])
            reply({"profile": command["action"]})
        else:
            return


def reply(data: dict[str, Any]) -> None:
    print(PROTOCOL + json.dumps(data), flush=True)


def litellm_worker(transport: str) -> None:
    """Import litellm as upstream/litellm_runtime.py does, then serve the task read from stdin."""
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    import litellm

    litellm.suppress_debug_info = True
    litellm.disable_aiohttp_transport = transport == "httpx"
    line = sys.stdin.readline()
    if line:
        run_async(serve_commands(litellm, json.loads(line)))
    sys.stdout.flush()
    # Nothing to clean up, and a normal exit of a process that imported litellm takes ~2 s.
    os._exit(0)


# -- child processes ---------------------------------------------------------------------------------


def read_line(process: subprocess.Popen[bytes], deadline: float, log: Path, what: str) -> str:
    """The child's next stdout line, waiting no later than `deadline` (time.monotonic)."""
    stream = process.stdout
    assert stream is not None
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        buffer = bytearray()
        while not buffer.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{what}: no answer in time:\n{tail(log)}")
            if not selector.select(remaining):
                continue
            # Small reads: never take bytes past the line we want (nothing else reads this pipe).
            chunk = os.read(stream.fileno(), 1)
            if not chunk:
                raise RuntimeError(f"{what} exited with {process.wait(5)}:\n{tail(log)}")
            buffer += chunk
    return buffer.decode("utf-8", "replace").rstrip("\n")


def send_line(process: subprocess.Popen[bytes], line: str) -> None:
    assert process.stdin is not None
    process.stdin.write((line + "\n").encode())
    process.stdin.flush()


def read_protocol(process: subprocess.Popen[bytes], deadline: float, log: Path, what: str) -> Any:
    while True:
        line = read_line(process, deadline, log, what)
        if line.startswith(PROTOCOL):
            return json.loads(line.removeprefix(PROTOCOL))


def write_config(directory: Path, base_url: str) -> Path:
    """The judge and every tier model on the loopback fake, priced explicitly."""

    def entry(model: str) -> dict[str, Any]:
        return {"model": model, "litellm_params": litellm_params(base_url, *PRICES[model])}

    data = {
        "judge": {**entry("openai/fake-judge"), "timeout_s": 10, "on_failure": "heuristic"},
        "tiers": {tier: [entry(model)] for tier, model in TIER_MODELS.items()},
        "baseline": TIER_MODELS["high"],
        "cache": {"dir": str(directory / "cache"), "ttl_s": 3600},
        "ledger": {"path": str(directory / "ledger.sqlite")},
    }
    return write_yaml(directory / "config.yaml", data)


def router_command(config: Path, port: int, profile: Path | None) -> list[str]:
    if profile is not None:
        this_file = str(Path(__file__).resolve())
        return [
            sys.executable,
            this_file,
            "--profiled-router",
            str(profile),
            str(config),
            str(port),
        ]
    script = Path(sys.executable).with_name("judge-router")
    # The `judge-router` console script is `python -m judge_router.cli.main` (used if it is missing).
    serve = [str(script)] if script.exists() else [sys.executable, "-m", "judge_router.cli"]
    serve += ["serve", "--config", str(config), "--host", HOST, "--port", str(port)]
    return serve + ["--log-level", "warning"]


PROFILE_PATH = "/__bench_profile/"  # + start | stop; answered by the profiled router only


class ProfileSwitch:
    """ASGI wrapper: POST /__bench_profile/start|stop turns cProfile on and off (event-loop thread).

    Profiling only the measured phases keeps imports, start-up and warm-up out of the profile.
    """

    def __init__(self, app: Any, path: Path):
        import cProfile

        self.app = app
        self.path = path
        self.profiler = cProfile.Profile()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith(PROFILE_PATH):
            action = scope["path"].removeprefix(PROFILE_PATH)
            if action == "start":
                self.profiler.enable()
            elif action == "stop":
                self.profiler.disable()
                self.profiler.dump_stats(self.path)
            headers = [(b"content-length", b"0")]
            await send({"type": "http.response.start", "status": 204, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        await self.app(scope, receive, send)


def profiled_router(profile: Path, config: Path, port: int) -> None:
    """What `judge-router serve` does (one uvicorn worker), with the ProfileSwitch around the app."""
    import logging

    import uvicorn

    from judge_router.config import load_settings
    from judge_router.serving.app import create_app

    logging.basicConfig(level="WARNING", format="%(levelname)s %(name)s: %(message)s")
    app = ProfileSwitch(create_app(load_settings(config)), profile)
    uvicorn.run(app, host=HOST, port=port, log_level="warning", access_log=False)


# -- what is measured --------------------------------------------------------------------------------


def load_prompts(count: int) -> list[tuple[str, str]]:
    """(prompt, tier) from samples.jsonl, taken across tiers; the marker makes the fake judge agree."""
    rows = sample_rows()
    by_tier = {tier: [r for r in rows if r["tier"] == tier] for tier in TIER_MODELS}
    mixed = [r for group in itertools.zip_longest(*by_tier.values()) for r in group if r]
    return tier_marked(mixed, count)


def _user(prompt: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt}]


def upstream_check(status: int, body: bytes, index: int) -> str | None:
    if status != 200:
        return f"HTTP {status}: {body[:200]!r}"
    return None if b'"echo: ' in body else f"unexpected body {body[:200]!r}"


def stream_check(status: int, body: bytes, index: int) -> str | None:
    if status != 200:
        return f"HTTP {status}: {body[:200]!r}"
    # The router's stream ends with its `event: router` trailer after [DONE]; the provider's at it.
    ended = body.endswith(b"data: [DONE]\n\n") or b"data: [DONE]\n\nevent: router\n" in body
    return None if ended else f"stream ended {body[-80:]!r}"


def router_check(source: str, tiers: Sequence[str]) -> Check:
    def check(status: int, body: bytes, index: int) -> str | None:
        if status != 200:
            return f"HTTP {status}: {body[:200]!r}"
        answer = json.loads(body)
        router = answer.get("router") or {}
        if router.get("source") != source:
            return f"router.source {router.get('source')!r}, expected {source!r}"
        if router.get("tier") != tiers[index]:
            return f"router.tier {router.get('tier')!r}, expected {tiers[index]!r}"
        if not str(answer["choices"][0]["message"]["content"]).startswith("echo:"):
            return f"unexpected answer {body[:200]!r}"
        return None

    return check


def measure_raw(
    port: int, prompts: Sequence[tuple[str, str]], options: Options, upstream_pid: int
) -> dict[str, Any]:
    """The raw-HTTP floor: this load generator straight at the fake upstream (and httpx, for scale)."""
    bodies = [
        {"model": TIER_MODELS[tier].removeprefix("openai/"), "messages": _user(prompt)}
        for prompt, tier in prompts
    ]
    path = "/v1/chat/completions"
    plain = [http_request(port, path, body) for body in bodies]
    streamed = [http_request(port, path, {**body, "stream": True}) for body in bodies]
    raw = RawConnection.opener(port, plain, upstream_check)
    raw_stream = RawConnection.opener(port, streamed, stream_check)
    url = f"http://{HOST}:{port}{path}"

    async def open_httpx() -> Caller:
        return HttpxCaller(url, bodies, upstream_check)

    n, level, timeout = options.requests, options.concurrency, options.phase_timeout_s
    watch = {"upstream": upstream_pid}

    async def phases() -> dict[str, Any]:
        await drive(raw, options.warmup, level, timeout)
        await drive(open_httpx, options.warmup, 1, timeout)
        stream_n = options.count("stream")
        return {
            "client": "raw asyncio keep-alive HTTP/1.1 (the load generator)",
            "latency": (await drive(raw, n, 1, timeout, watch)).summary(),
            "throughput": (await drive(raw, n, level, timeout, watch)).summary(),
            "stream": (await drive(raw_stream, stream_n, 1, timeout, watch)).summary(),
            "httpx_latency": (await drive(open_httpx, n, 1, timeout, watch)).summary(),
            "httpx_throughput": (await drive(open_httpx, n, level, timeout, watch)).summary(),
        }

    return run_async(phases())


class Target(Protocol):
    """A path under test that runs one block of a measured phase when asked."""

    def run(self, kind: str, n: int, concurrency: int) -> Phase: ...

    def profile(self, action: str) -> None: ...


class RouterTarget:
    """POST /v1/chat/completions with model "auto": fill the verdict cache, warm up, then measure."""

    def __init__(
        self,
        port: int,
        prompts: Sequence[tuple[str, str]],
        options: Options,
        pids: dict[str, int],
        profiled: bool,
    ):
        bodies = [{"model": "auto", "messages": _user(prompt)} for prompt, _ in prompts]
        tiers = [tier for _, tier in prompts]
        path = "/v1/chat/completions"
        plain = [http_request(port, path, body) for body in bodies]
        streamed = [http_request(port, path, {**body, "stream": True}) for body in bodies]
        self.judged = RawConnection.opener(port, plain, router_check("llm", tiers))
        self.cached = RawConnection.opener(port, plain, router_check("cache", tiers))
        self.streamed = RawConnection.opener(port, streamed, stream_check)
        self.port = port
        self.options = options
        self.pids = pids
        self.profiled = profiled

    def warm(self) -> dict[str, Any]:
        """One judged request per prompt (a cache miss each), then untimed cached requests."""
        o = self.options

        async def phases() -> dict[str, Any]:
            fill = await drive(self.judged, o.prompts, 1, o.phase_timeout_s)
            warm = await drive(self.cached, o.warmup, o.concurrency, o.phase_timeout_s)
            warm_stream = await drive(self.streamed, max(o.warmup // 4, 2), 1, o.phase_timeout_s)
            return {
                "cache_fill": fill.summary(),
                "warmup": warm.summary(),
                "stream_warmup": warm_stream.summary(),
            }

        return run_async(phases())

    def run(self, kind: str, n: int, concurrency: int) -> Phase:
        opener = self.streamed if kind == "stream" else self.cached
        threads = {"router": self.pids["router"]} if kind == "throughput" else None
        timeout = self.options.phase_timeout_s
        return run_async(drive(opener, n, concurrency, timeout, self.pids, threads))

    def profile(self, action: str) -> None:
        if not self.profiled:
            return
        connection = http.client.HTTPConnection(HOST, self.port, timeout=30)
        try:
            connection.request("POST", PROFILE_PATH + action)
            connection.getresponse().read()
        finally:
            connection.close()


class WorkerTarget:
    """The bare litellm loop in its worker process, driven one command at a time."""

    def __init__(
        self, process: subprocess.Popen[bytes], log: Path, options: Options, profile: Path | None
    ):
        self.process = process
        self.log = log
        self.options = options
        self.profile_path = profile

    def _ask(self, command: dict[str, Any], what: str) -> Any:
        send_line(self.process, json.dumps(command))
        deadline = time.monotonic() + self.options.phase_timeout_s + 30
        return read_protocol(self.process, deadline, self.log, what)

    def run(self, kind: str, n: int, concurrency: int) -> Phase:
        command = {"cmd": "drive", "kind": kind, "n": n, "concurrency": concurrency}
        return Phase.from_wire(self._ask(command, f"bare litellm ({kind})"))

    def profile(self, action: str) -> None:
        if self.profile_path is not None:
            command = {"cmd": "profile", "action": action, "path": str(self.profile_path)}
            self._ask(command, "bare litellm profile")

    def finish(self) -> None:
        send_line(self.process, json.dumps({"cmd": "exit"}))
        self.process.wait(timeout=30)  # it must not hold CPU while anything else is measured


def interleaved(
    targets: dict[str, Target], options: Options, blocks: int
) -> dict[str, dict[str, Any]]:
    """Each phase in `blocks` turns per target, the order flipped every block (ABBA...)."""
    results: dict[str, dict[str, Any]] = {name: {} for name in targets}
    order = list(targets)
    for kind in KINDS:
        # The profiles cover the latency phase only: concurrency 1, where the target is set.
        if kind == "latency":
            for target in targets.values():
                target.profile("start")
        total = options.count(kind)
        per_block = [total // blocks + (1 if i < total % blocks else 0) for i in range(blocks)]
        phases: dict[str, list[Phase]] = {name: [] for name in targets}
        for block, n in enumerate(per_block):
            if n == 0:
                continue
            for name in order if block % 2 == 0 else order[::-1]:
                phases[name].append(targets[name].run(kind, n, options.level(kind)))
        if kind == "latency":
            for target in targets.values():
                target.profile("stop")
        for name, runs in phases.items():
            summary = Phase.merge(runs).summary()
            summary["block_p50_ms"] = [ms(_p50(p)) for p in runs]
            summary["block_rps"] = [p.summary()["rps"] for p in runs]
            results[name][kind] = summary
    return results


def _p50(phase: Phase) -> float:
    return percentile(sorted(s.latency_s for s in phase.samples), 50)


def ledger_counts(path: Path) -> dict[str, Any]:
    """What the router wrote for /v1/chat/completions: rows by source, and rows not 'ok'."""
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        return {"error": str(exc)}
    try:
        by_source = dict(
            connection.execute(
                "SELECT source, COUNT(*) FROM decisions WHERE endpoint = 'chat' GROUP BY source"
            ).fetchall()
        )
        not_ok = connection.execute(
            "SELECT COUNT(*) FROM decisions WHERE endpoint = 'chat' AND status != 'ok'"
        ).fetchone()[0]
        return {"by_source": by_source, "not_ok": not_ok}
    except sqlite3.Error as exc:
        return {"error": str(exc)}
    finally:
        connection.close()


class Stopwatch:
    """Wall time of each stage of a run, so a slow run shows where its time went."""

    def __init__(self, laps: dict[str, float]):
        self._laps = laps
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self._laps[name] = round(now - self._last, 2)
        self._last = now


def run_benchmark(options: Options) -> dict[str, Any]:
    """Every measurement, as one JSON-ready dict (see benchmarks/proxy-figures.md for the fields)."""
    results: dict[str, Any] = {
        "meta": meta(options),
        "targets": TARGETS,
        "engineering_floor": ENGINEERING_FLOOR,
    }
    prompts = load_prompts(options.prompts)
    this_file = str(Path(__file__).resolve())
    transports = ["httpx", "aiohttp"] if options.aiohttp else ["httpx"]
    profile = options.profile_dir
    if profile is not None:
        profile.mkdir(parents=True, exist_ok=True)
    stages: dict[str, float] = {}  # wall seconds of each stage, to see where a run's time goes
    clock = Stopwatch(stages)
    with tempfile.TemporaryDirectory(prefix="bench-proxy-") as tmp, ExitStack() as stack:
        directory = Path(tmp)
        deadline = time.monotonic() + options.startup_timeout_s
        fake_log = directory / "upstream.log"
        fake_cmd = [sys.executable, "-m", "judge_router.testing.fake_upstream", "--host", HOST, "--port"]
        fake = stack.enter_context(running([*fake_cmd, "0"], fake_log, pipes=True))
        ready = read_line(fake, deadline, fake_log, "fake upstream")
        base_url = ready.rsplit(" ", 1)[1]  # "fake upstream ready on http://127.0.0.1:PORT/v1"
        upstream_port = int(base_url.rsplit(":", 1)[1].split("/")[0])
        clock.lap("upstream_start")

        # Everything that imports litellm starts now, in parallel; each warms up, then idles until
        # its turn. Warm-ups overlap other processes' start-up: they are not measured.
        router_port = free_port()
        router_log = directory / "router.log"
        config = write_config(directory, base_url)
        command = router_command(config, router_port, profile and profile / "router.prof")
        router = stack.enter_context(running(command, router_log))
        task = {
            "base_url": base_url,
            "prompts": [[prompt, TIER_MODELS[tier]] for prompt, tier in prompts],
            "warmup": options.warmup,
            "concurrency": options.concurrency,
            "phase_timeout_s": options.phase_timeout_s,
            "upstream_pid": fake.pid,
        }
        workers: dict[str, WorkerTarget] = {}
        for transport in transports:
            log = directory / f"litellm-{transport}.log"
            worker_cmd = [sys.executable, this_file, "--litellm-worker", transport]
            process = stack.enter_context(running(worker_cmd, log, pipes=True))
            send_line(process, json.dumps(task))
            worker_profile = (
                profile / "bare-litellm.prof" if profile and transport == "httpx" else None
            )
            workers[transport] = WorkerTarget(process, log, options, worker_profile)
        wait_until_ready(router, router_port, "/healthz", deadline, router_log)
        pids = {"router": router.pid, "upstream": fake.pid}
        router_target = RouterTarget(router_port, prompts, options, pids, profile is not None)
        router_results = router_target.warm()
        warmups = {}
        for transport, worker in workers.items():
            what = f"litellm worker ({transport})"
            warmups[transport] = read_protocol(worker.process, deadline, worker.log, what)
        clock.lap("start_and_warm_up")

        results["raw_http"] = measure_raw(upstream_port, prompts, options, fake.pid)
        clock.lap("raw_http")

        paths: dict[str, Target] = {"bare_litellm": workers["httpx"], "router": router_target}
        measured = interleaved(paths, options, options.blocks)
        results["bare_litellm"] = {
            "transport": "httpx",
            **warmups["httpx"],
            **measured["bare_litellm"],
        }
        router_results.update(measured["router"])
        workers["httpx"].finish()
        clock.lap("bare_litellm_and_router")

        if "aiohttp" in workers:  # for information: litellm's default transport, measured after
            aiohttp = interleaved({"aiohttp": workers["aiohttp"]}, options, 1)["aiohttp"]
            results["bare_litellm_aiohttp"] = {
                "transport": "aiohttp",
                **warmups["aiohttp"],
                **aiohttp,
            }
            workers["aiohttp"].finish()
            clock.lap("bare_litellm_aiohttp")

        router.send_signal(signal.SIGTERM)
        router.wait(timeout=30)  # every ledger row is written and the ledger closed by now
        router_results["ledger"] = ledger_counts(directory / "ledger.sqlite")
        results["router"] = router_results
        clock.lap("router_stop")
    results["meta"]["stage_wall_s"] = stages
    results["meta"]["load_average_end"] = _load_average()
    results["overhead"] = overhead(results)
    results["checks"] = checks(results, options)
    return results


def overhead(results: dict[str, Any]) -> dict[str, Any]:
    router, bare, raw = results["router"], results["bare_litellm"], results["raw_http"]

    def diff(a: dict[str, Any], b: dict[str, Any], key: str) -> float:
        return round(float(a[key]) - float(b[key]), 3)

    per_block = [
        round(r - b, 3)
        for r, b in zip(
            router["latency"]["block_p50_ms"], bare["latency"]["block_p50_ms"], strict=True
        )
    ]
    router_rps, bare_rps = router["throughput"]["rps"], bare["throughput"]["rps"]
    p50 = diff(router["latency"], bare["latency"], "p50_ms")
    return {
        "p50_ms": p50,
        "p95_ms": diff(router["latency"], bare["latency"], "p95_ms"),
        "block_p50_ms": per_block,  # router − bare in each block: the spread shows the noise
        "stream_first_byte_p50_ms": diff(router["stream"], bare["stream"], "first_byte_p50_ms"),
        "cpu_us_per_req": round(
            router["latency"]["router_cpu_us_per_req"] - bare["latency"]["client_cpu_us_per_req"],
            1,
        ),
        "target_p50_ms": TARGETS["router_overhead_p50_ms"],
        "target_met": p50 <= TARGETS["router_overhead_p50_ms"],
        "litellm_over_raw_p50_ms": diff(bare["latency"], raw["latency"], "p50_ms"),
        "router_rps": router_rps,
        "bare_litellm_rps": bare_rps,
        "router_rps_share_of_bare": round(router_rps / bare_rps, 3) if bare_rps else None,
    }


def checks(results: dict[str, Any], options: Options) -> dict[str, Any]:
    router = results["router"]
    paths = [results["raw_http"], results["bare_litellm"], router]
    if "bare_litellm_aiohttp" in results:
        paths.append(results["bare_litellm_aiohttp"])
    phases = [p for path in paths for p in path.values() if isinstance(p, dict) and "ok" in p]
    routed = sum(router[name]["requests"] for name in ("warmup", "stream_warmup", *KINDS))
    ledger = router.get("ledger", {})
    raw_rps = results["raw_http"]["throughput"]["rps"]
    busiest = router["throughput"]
    return {
        "all_requests_ok": all(p["failed"] == 0 and not p["problems"] for p in phases),
        # Cache-fill rows come from the judge; every other row must be a cached verdict.
        "ledger_all_cached": ledger.get("by_source") == {"llm": options.prompts, "cache": routed}
        and ledger.get("not_ok") == 0,
        # The client can drive several times what the router serves, with under half a core.
        "load_generator_not_bottleneck": raw_rps >= 3 * busiest["rps"]
        and busiest["client_cpu_share"] < 0.5,
    }


def meta(options: Options) -> dict[str, Any]:
    return {
        **machine_meta(),
        "litellm": _version("litellm"),
        "uvicorn": _version("uvicorn"),
        "fastapi": _version("fastapi"),
        "quick": options.quick,
        "requests": options.requests,
        "stream_requests": options.count("stream"),
        "warmup": options.warmup,
        "concurrency": options.concurrency,
        "blocks": options.blocks,
        "prompts": options.prompts,
        "load_generator": "raw asyncio keep-alive HTTP/1.1 client on uvloop, orchestrating process",
        "router": "judge-router serve, one uvicorn worker, own process",
        "bare_litellm": "litellm.acompletion loop on uvloop, own process, the router's kwargs",
        "profiled": options.profile_dir is not None,
        "revision": revision(),
        "load_average_start": _load_average(),
    }


def _load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


# -- report ------------------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
    return str(value)


def print_report(results: dict[str, Any], console: Console) -> None:
    level = results["meta"]["concurrency"]
    table = Table(
        title="Proxy path over loopback (fake upstream in its own process)",
        caption="CPU: the load generator (raw rows), the litellm process, the router process",
    )
    columns = ["path", "p50 ms c=1", "p95 ms c=1", "req/s c=1", f"p50 ms c={level}"]
    columns += [f"p95 ms c={level}", f"req/s c={level}", "stream 1st byte p50 ms"]
    for column in [*columns, "CPU µs/req c=1"]:
        table.add_column(column, justify="left" if column == "path" else "right")
    raw = results["raw_http"]
    rows: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any] | None, Any]] = [
        ("raw HTTP floor (load generator)", raw["latency"], raw["throughput"], raw["stream"],
         raw["latency"]["client_cpu_us_per_req"]),
        ("raw httpx", raw["httpx_latency"], raw["httpx_throughput"], None,
         raw["httpx_latency"]["client_cpu_us_per_req"]),
    ]  # fmt: skip
    for name in ("bare_litellm", "bare_litellm_aiohttp"):
        if name in results:
            bare = results[name]
            label = f"bare litellm.acompletion ({bare['transport']})"
            cpu = bare["latency"]["client_cpu_us_per_req"]
            rows.append((label, bare["latency"], bare["throughput"], bare["stream"], cpu))
    router = results["router"]
    cpu = router["latency"]["router_cpu_us_per_req"]
    rows.append(("judge-router /v1/chat/completions", router["latency"], router["throughput"],
                 router["stream"], cpu))  # fmt: skip
    for label, latency, load, stream, cpu in rows:
        table.add_row(
            label,
            _fmt(latency["p50_ms"]),
            _fmt(latency["p95_ms"]),
            _fmt(latency["rps"]),
            _fmt(load["p50_ms"]),
            _fmt(load["p95_ms"]),
            _fmt(load["rps"]),
            _fmt(stream.get("first_byte_p50_ms")) if stream else "-",
            _fmt(cpu),
        )
    console.print(table)

    over, check = results["overhead"], results["checks"]
    verdicts = Table(title="Router overhead and checks")
    for column in ("what", "measured", "target / floor", "met"):
        verdicts.add_column(column)
    floor = results["engineering_floor"]
    per_block = sorted(over["block_p50_ms"])
    spread = (
        f"per block: median {statistics.median(per_block):.2f}, "
        f"{per_block[0]:.2f} to {per_block[-1]:.2f}"
    )
    verdicts.add_row(
        "router p50 − bare litellm p50",
        f"{over['p50_ms']:.2f} ms ({spread})",
        f"≤ {over['target_p50_ms']} ms",
        yes(over["target_met"]),
    )
    verdicts.add_row("router p95 − bare litellm p95", f"{over['p95_ms']:.2f} ms", "", "")
    verdicts.add_row(
        "router CPU − bare CPU, per request", f"{over['cpu_us_per_req']:.0f} µs", "", ""
    )
    verdicts.add_row(
        "streamed first byte, router − bare", f"{over['stream_first_byte_p50_ms']:.2f} ms", "", ""
    )
    verdicts.add_row(
        "throughput router / bare litellm",
        f"{_fmt(over['router_rps'])} / {_fmt(over['bare_litellm_rps'])} req/s",
        f"LiteLLM proxy {floor['litellm_proxy']['rps']} req/s",
        "",
    )
    verdicts.add_row(
        "every response 200, router.source cache", "", "", yes(check["all_requests_ok"])
    )
    ledger = router.get("ledger", {})
    verdicts.add_row(
        "ledger: one row per request, cached", str(ledger), "", yes(check["ledger_all_cached"])
    )
    verdicts.add_row(
        "load generator not the bottleneck",
        f"client {router['throughput']['client_cpu_share']:.2f} cores busy at c={level}",
        "raw floor ≥ 3× router req/s, < 0.5 core",
        yes(check["load_generator_not_bottleneck"]),
    )
    other = max(router[k].get("other_cpu_share") or 0.0 for k in KINDS)
    steal = max(router[k].get("steal_cpu_share") or 0.0 for k in KINDS)
    verdicts.add_row(
        "noise: other processes / hypervisor steal",
        f"up to {other:.2f} / {steal:.2f} cores",
        "",
        "",
    )
    console.print(verdicts)


def parse_options(
    argv: Sequence[str] | None,
) -> tuple[Options, Path | None, str | None, list[str] | None]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, help="requests per measured phase (default 2000)")
    parser.add_argument("--warmup", type=int, help="untimed requests per path first (default 200)")
    parser.add_argument("--concurrency", type=int, help="throughput connections (default 20)")
    parser.add_argument("--prompts", type=int, help="distinct prompts (cached verdicts, default 8)")
    parser.add_argument("--blocks", type=int, help="alternating blocks per phase (default 20)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the results here")
    parser.add_argument(
        "--quick", action="store_true", help="tiny counts: a smoke run, not figures"
    )
    parser.add_argument(
        "--no-aiohttp", action="store_true", help="skip the bare loop on the aiohttp transport"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="cProfile router and bare loop in the latency phase (inflates the figures)",
    )
    parser.add_argument("--litellm-worker", choices=["httpx", "aiohttp"], help=argparse.SUPPRESS)
    parser.add_argument("--profiled-router", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    options = QUICK if args.quick else Options()
    given = {
        "requests": args.requests,
        "warmup": args.warmup,
        "concurrency": args.concurrency,
        "prompts": args.prompts,
        "blocks": args.blocks,
        "profile_dir": args.profile,
    }
    options = dataclasses.replace(options, **{k: v for k, v in given.items() if v is not None})
    if args.no_aiohttp:
        options = dataclasses.replace(options, aiohttp=False)
    if min(options.requests, options.prompts, options.concurrency, options.blocks) < 1:
        parser.error("--requests, --prompts, --concurrency and --blocks must be at least 1")
    if options.warmup < 0:
        parser.error("--warmup must not be negative")
    return options, args.json, args.litellm_worker, args.profiled_router


def main(argv: Sequence[str] | None = None) -> int:
    options, json_out, worker, router = parse_options(argv)
    if worker is not None:
        litellm_worker(worker)
        return 0
    if router is not None:
        profiled_router(Path(router[0]), Path(router[1]), int(router[2]))
        return 0
    results = run_benchmark(options)
    print_report(results, Console(width=max(Console().width, 140)))
    if json_out is not None:
        write_json(json_out, results)
    check = results["checks"]
    return 0 if check["all_requests_ok"] and check["ledger_all_cached"] else 1


if __name__ == "__main__":
    sys.exit(main())
