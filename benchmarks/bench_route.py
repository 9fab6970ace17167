"""Benchmark of POST /route over loopback (cached-verdict latency and throughput) and judge input size.

Run: .venv/bin/python benchmarks/bench_route.py [--quick] [--json OUT]; see benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import http.client
import itertools
import json
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import httpx
from rich.console import Console
from rich.table import Table

# Before judge_router imports litellm: its price map must come from the package, not the network.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
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
    tier_marked,
    wait_until_ready,
    write_json,
    write_yaml,
    yes,
)

from judge_router.routing.conversation import extract_turns, judged_view  # noqa: E402
from judge_router.routing.judges.llm import load_prompt, render_conversation  # noqa: E402
from judge_router.routing.tokens import count_tokens, encoding  # noqa: E402
from judge_router.testing.fake_upstream import FakeUpstream  # noqa: E402

JUDGE_INPUT_PRICE = 5e-8  # USD per input token, the judge price written into the config below
TARGETS = {"cached_p50_ms": 2.0, "cached_rps": 1000.0}
# Figures measured while other work kept more than this many cores busy are flagged as noisy.
QUIET_CORES = 0.15
# Flat means: every prompt at or above max_input_tokens costs the judge the same, within this share.
FLAT_TOLERANCE = 0.02
FIXED_NONCE = "0123456789abcdef"  # the judge uses a random one; fixed here so the counts repeat

Check = Callable[[int, bytes, int], str | None]  # (status, body, payload index) -> problem or None


@dataclasses.dataclass(frozen=True)
class Options:
    requests: int = 5000
    concurrency: tuple[int, ...] = (16, 32)
    warmup: int = 500
    prompts: int = 50
    token_sizes: tuple[int, ...] = (100, 1_000, 10_000, 100_000)
    max_input_tokens: int = 1000
    repeats: int = 5  # timings of judged_view and of each large cached prompt
    ceiling: bool = True  # also measure what the load generator itself can drive
    phase_timeout_s: float = 120.0
    startup_timeout_s: float = 60.0
    profile_server: Path | None = None  # run the server under cProfile, stats written here
    quick: bool = False
    policy: bool = False  # 20 rules and 3 budgets configured (none matches)


QUICK = Options(requests=40, concurrency=(4,), warmup=5, prompts=5, repeats=1, quick=True)


# -- a load generator cheap enough not to be the bottleneck --------------------------------------


class Sender(Protocol):
    async def send(self, payload: Payload) -> tuple[int, bytes]: ...

    async def close(self) -> None: ...


@dataclasses.dataclass(frozen=True, slots=True)
class Payload:
    raw: bytes  # the whole HTTP/1.1 request, for the raw client
    path: str
    body: bytes


def make_payload(port: int, path: str, body: bytes) -> Payload:
    return Payload(http_post(port, path, body), path, body)


class RawClient:
    """One keep-alive HTTP/1.1 connection on asyncio streams (see loadgen.read_response).

    Pre-built request bytes and a minimal parser keep the client's cost per request to a few tens of
    microseconds, so on two cores the server, not the client, is what gets measured.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, port: int) -> RawClient:
        return cls(*await open_stream(port))

    async def send(self, payload: Payload) -> tuple[int, bytes]:
        self._writer.write(payload.raw)
        await self._writer.drain()
        status, body, _first = await read_response(self._reader)
        return status, body

    async def close(self) -> None:
        await close_stream(self._writer)


class HttpxClient:
    """The same interface over one httpx.AsyncClient connection, to compare its cost with RawClient."""

    def __init__(self, port: int):
        self._base = f"http://{HOST}:{port}"
        self._client = httpx_client()

    async def send(self, payload: Payload) -> tuple[int, bytes]:
        response = await self._client.post(
            self._base + payload.path,
            content=payload.body,
            headers={"content-type": "application/json"},
        )
        return response.status_code, response.content

    async def close(self) -> None:
        await self._client.aclose()


async def open_raw(port: int) -> Sender:
    return await RawClient.open(port)


async def open_httpx(port: int) -> Sender:
    return HttpxClient(port)


def machine_busy_s() -> float | None:
    """CPU seconds all processes have used so far, summed over cores (Linux /proc/stat).

    Steal counts as busy here: time another virtual machine took is time this one lost too.
    """
    times = machine_cpu_s()
    return None if times is None else times[0] + times[1]


@dataclasses.dataclass
class Phase:
    """The outcome of one measured run: latencies of successful requests and what went wrong."""

    concurrency: int
    requested: int
    latencies_s: list[float]
    problems: list[str]
    wall_s: float
    client_cpu_s: float
    server_cpu_s: float | None
    machine_cpu_s: float | None = None

    @property
    def ok(self) -> int:
        return len(self.latencies_s)

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies_s)
        done = max(self.ok, 1)
        server_cpu = self.server_cpu_s
        return {
            "concurrency": self.concurrency,
            "requests": self.requested,
            "ok": self.ok,
            "failed": self.requested - self.ok,
            "problems": self.problems[:5],
            "wall_s": round(self.wall_s, 3),
            "rps": round(self.ok / self.wall_s, 1) if self.wall_s > 0 else 0.0,
            "p50_ms": ms(percentile(ordered, 50)),
            "p95_ms": ms(percentile(ordered, 95)),
            "p99_ms": ms(percentile(ordered, 99)),
            "mean_ms": ms(statistics.fmean(ordered) if ordered else 0.0),
            # CPU per request on each side says which one is saturated (2 cores: one each).
            "client_cpu_us_per_req": round(self.client_cpu_s / done * 1e6, 1),
            "server_cpu_us_per_req": (
                None if server_cpu is None else round(server_cpu / done * 1e6, 1)
            ),
            "server_cpu_share": (
                None
                if server_cpu is None or self.wall_s <= 0
                else round(server_cpu / self.wall_s, 2)
            ),
            # Cores kept busy by anything but this client and server: other work on the machine
            # competes for the same two cores, and figures taken under it are not comparable.
            "other_cores_busy": self.other_cores_busy(),
        }

    def other_cores_busy(self) -> float | None:
        if self.machine_cpu_s is None or self.server_cpu_s is None or self.wall_s <= 0:
            return None
        other = self.machine_cpu_s - self.server_cpu_s - self.client_cpu_s
        return round(max(other, 0.0) / self.wall_s, 2)


async def drive(
    open_sender: Callable[[int], Awaitable[Sender]],
    port: int,
    payloads: Sequence[Payload],
    total: int,
    concurrency: int,
    check: Check,
    timeout_s: float,
    server_pid: int | None = None,
) -> Phase:
    """Send `total` requests over `concurrency` keep-alive connections, cycling through `payloads`."""
    senders = [await open_sender(port) for _ in range(concurrency)]
    counter = itertools.count()
    latencies: list[float] = []
    problems: list[str] = []
    clock = time.perf_counter

    async def worker(sender: Sender) -> None:
        while (i := next(counter)) < total:
            index = i % len(payloads)
            started = clock()
            try:
                status, body = await sender.send(payloads[index])
            except (OSError, ValueError, asyncio.IncompleteReadError, httpx.HTTPError) as exc:
                problems.append(f"request {i}: {type(exc).__name__}: {exc}")
                return  # this connection is unusable; its share of requests counts as failed
            elapsed = clock() - started
            problem = check(status, body, index)
            if problem is None:
                latencies.append(elapsed)
            else:
                problems.append(f"request {i}: {problem}")

    server_before = None if server_pid is None else process_cpu_s(server_pid)
    machine_before = machine_busy_s()
    cpu_before = time.process_time()
    started = clock()
    try:
        async with asyncio.timeout(timeout_s):
            await asyncio.gather(*(worker(sender) for sender in senders))
    except TimeoutError:
        problems.append(f"phase stopped after its {timeout_s:.0f} s time limit")
    wall = clock() - started
    client_cpu = time.process_time() - cpu_before
    server_after = None if server_pid is None else process_cpu_s(server_pid)
    machine_after = machine_busy_s()
    for sender in senders:
        await sender.close()
    server_cpu = (
        None if server_before is None or server_after is None else server_after - server_before
    )
    machine_cpu = (
        None if machine_before is None or machine_after is None else machine_after - machine_before
    )
    return Phase(concurrency, total, latencies, problems, wall, client_cpu, server_cpu, machine_cpu)


# -- the service under test ---------------------------------------------------------------------


def model_entry(
    name: str, base_url: str, input_price: float, output_price: float
) -> dict[str, Any]:
    return {
        "model": f"openai/{name}",
        "litellm_params": litellm_params(base_url, input_price, output_price),
    }


def policy_sections() -> dict[str, Any]:
    """20 rules and 3 budgets that every benchmark request is checked against and none matches:
    the most work the policy can add to a decision (every rule tried, the regexes last)."""
    rules: list[dict[str, Any]] = [
        {"name": f"team-{i}", "match": {"metadata": {"team": f"team-{i}"}}, "tier": "low"}
        for i in range(15)
    ]
    rules += [
        {"name": f"long-{i}", "match": {"min_prompt_tokens": 50_000 + i}, "max_tier": "medium"}
        for i in range(2)
    ]
    rules += [
        {"name": f"regex-{i}", "match": {"last_user_regex": pattern}, "tier": "high"}
        for i, pattern in enumerate(
            [r"(?i)review (this|my) (code|pull request)", r"\bSELECT\b.+\bFROM\b", r"^translate:"]
        )
    ]
    budgets = [
        {"name": "team-search", "scope": {"metadata": "team"}, "value": "search",
         "usd_per_month": 500, "over_soft": "max_tier_medium", "over_hard": "reject"},
        {"name": "team-ads", "scope": {"metadata": "team"}, "value": "ads",
         "usd_per_month": 500, "over_hard": "max_tier_low"},
        {"name": "everyone", "usd_per_month": 1_000_000, "over_hard": "max_tier_low"},
    ]  # fmt: skip
    return {"rules": rules, "budgets": budgets}


def write_config(
    directory: Path, judge_base_url: str, max_input_tokens: int, policy: bool = False
) -> Path:
    """A config whose judge and tier models all live on the loopback fake, with explicit prices."""
    data: dict[str, Any] = {
        "judge": {
            "model": "openai/fake-judge",
            "litellm_params": litellm_params(judge_base_url, JUDGE_INPUT_PRICE, 4e-7),
            "timeout_s": 10,
            "max_input_tokens": max_input_tokens,
            "on_failure": "heuristic",
        },
        "tiers": {
            "low": [model_entry("fake-nano", judge_base_url, 5e-8, 4e-7)],
            "medium": [model_entry("fake-mini", judge_base_url, 2.5e-7, 2e-6)],
            "high": [model_entry("fake-large", judge_base_url, 1.25e-6, 1e-5)],
        },
        "baseline": "openai/fake-large",
        "cache": {"dir": str(directory / "cache"), "ttl_s": 3600},
        "ledger": {"path": str(directory / "ledger.sqlite")},
        # The largest judge-token prompt (100,000 tokens) is about 0.5 MB of JSON.
        "server": {"max_body_bytes": 4_000_000},
    }
    if policy:
        data.update(policy_sections())
    return write_yaml(directory / "config.yaml", data)


@contextmanager
def router_server(
    config: Path, log: Path, options: Options
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """`judge-router serve` (one uvicorn worker) on a free loopback port, ready when /healthz is."""
    port = free_port()
    # `python -m judge_router.cli.main` is the `judge-router` console script without relying on PATH.
    command = [sys.executable, "-m", "judge_router.cli", "serve", "--config", str(config)]
    command += ["--host", HOST, "--port", str(port), "--log-level", "warning"]
    if options.profile_server is not None:
        profiler = [sys.executable, "-m", "cProfile", "-o", str(options.profile_server)]
        command = profiler + command[1:]
    # uvicorn re-raises the signal that stopped it once it has shut down: SIGTERM then kills the
    # process before cProfile writes its file, while SIGINT becomes a KeyboardInterrupt it survives.
    stop = signal.SIGTERM if options.profile_server is None else signal.SIGINT
    with running(command, log, stop) as process:
        deadline = time.monotonic() + options.startup_timeout_s
        wait_until_ready(process, port, "/healthz", deadline, log)
        yield port, process


# -- what is measured -----------------------------------------------------------------------------


def load_prompts(count: int) -> list[tuple[str, str]]:
    """(prompt, expected tier) from samples.jsonl; the marker makes the fake judge answer that tier."""
    return tier_marked(sample_rows(), count)


def route_payload(port: int, prompt: str) -> Payload:
    return make_payload(port, "/route", json.dumps({"prompt": prompt}).encode("utf-8"))


def decision_check(expected_source: str, tiers: Sequence[str] | None) -> Check:
    def check(status: int, body: bytes, index: int) -> str | None:
        if status != 200:
            return f"HTTP {status}: {body[:200]!r}"
        decision = json.loads(body)
        if decision.get("source") != expected_source:
            return f"source {decision.get('source')!r}, expected {expected_source!r}"
        if decision.get("cached") is not (expected_source == "cache"):
            return f"cached is {decision.get('cached')!r} with source {expected_source!r}"
        if tiers is not None and decision.get("tier") != tiers[index]:
            return f"tier {decision.get('tier')!r}, expected {tiers[index]!r}"
        return None

    return check


def synthetic_text(tokens: int, seed: int = 11) -> str:
    """Deterministic English-like text of exactly `tokens` o200k tokens (what count_tokens counts)."""
    words = (
        "the of and to in is that for it as with was on be by this are from at or an have not which "
        "system cache model request latency token judge prompt router server value error result "
        "design query table index memory thread queue retry budget price tier answer reason"
    ).split()
    rng = random.Random(seed)
    # Common words with a leading space are one token each, so ~1.1 words per token is ample.
    text = " ".join(rng.choice(words) for _ in range(int(tokens * 1.1) + 10))
    enc = encoding()
    cut = enc.decode(enc.encode_ordinary(text)[:tokens])
    if count_tokens(cut) != tokens:
        raise AssertionError(
            f"synthetic text re-encodes to {count_tokens(cut)} tokens, not {tokens}"
        )
    return cut


def judge_input_tokens(prompt: str, max_input_tokens: int, repeats: int) -> dict[str, Any]:
    """Tokens of exactly what the judge is sent for `prompt`, and how long judged_view takes."""
    turns = extract_turns([{"role": "user", "content": prompt}])
    timings = []
    for _ in range(max(repeats, 1)):
        started = time.perf_counter()
        view = judged_view(turns, max_input_tokens)
        timings.append(time.perf_counter() - started)
    system_tokens = count_tokens(load_prompt("judge-v1"))
    user_tokens = count_tokens(render_conversation(view, FIXED_NONCE))
    total = system_tokens + user_tokens
    return {
        "prompt_tokens": view.prompt_tokens,
        "truncated": view.truncated,
        "view_tokens": view.view_tokens,
        "template_tokens": total - view.view_tokens,  # system prompt, wrapper, JSON framing
        "judge_input_tokens": total,
        "judge_input_cost_usd": total * JUDGE_INPUT_PRICE,
        "judged_view_ms": ms(statistics.median(timings)),
        "judged_view_min_ms": ms(min(timings)),
    }


def is_flat(rows: Sequence[dict[str, Any]], key: str, max_input_tokens: int) -> tuple[bool, int]:
    """Whether prompts at or above max_input_tokens all cost the judge the same (within tolerance)."""
    values = [
        row[key]
        for row in rows
        if row["prompt_tokens"] >= max_input_tokens and row.get(key) is not None
    ]
    if len(values) < 2:
        return False, 0
    spread = max(values) - min(values)
    return spread <= FLAT_TOLERANCE * max_input_tokens, spread


async def fill_cache(
    port: int, pid: int | None, prompts: Sequence[tuple[str, str]], timeout_s: float
) -> Phase:
    """One request per distinct prompt: each is a judge call (a cache miss) whose verdict is stored."""
    payloads = [route_payload(port, prompt) for prompt, _ in prompts]
    check = decision_check("llm", [tier for _, tier in prompts])
    return await drive(open_raw, port, payloads, len(payloads), 1, check, timeout_s, pid)


async def judge_tokens_on_the_wire(
    port: int, upstream: FakeUpstream, texts: dict[int, str], options: Options
) -> dict[int, dict[str, Any]]:
    """Send each large prompt through the server; count what the fake judge actually received.

    Then time cached repeats of the same prompt: the router re-tokenizes it on every request.
    """
    measured: dict[int, dict[str, Any]] = {}
    client = await RawClient.open(port)
    try:
        async with asyncio.timeout(options.phase_timeout_s):
            for size, text in texts.items():
                payload = route_payload(port, text)
                upstream.reset()
                status, body = await client.send(payload)
                decision = json.loads(body)
                if status != 200 or decision.get("source") != "llm":
                    raise RuntimeError(f"{size}-token prompt: HTTP {status}: {body[:300]!r}")
                calls = [r for r in upstream.requests if r.path.endswith("/chat/completions")]
                sent = calls[-1].body["messages"]
                hits = []
                for _ in range(max(options.repeats, 1)):
                    started = time.perf_counter()
                    status, body = await client.send(payload)
                    hits.append(time.perf_counter() - started)
                    if status != 200 or json.loads(body).get("source") != "cache":
                        raise RuntimeError(f"{size}-token prompt, cached: {body[:300]!r}")
                measured[size] = {
                    "wire_judge_input_tokens": sum(count_tokens(m["content"]) for m in sent),
                    "router_prompt_tokens": decision["prompt_tokens"],
                    "cached_route_ms": ms(statistics.median(hits)),
                }
    finally:
        await client.close()
    return measured


async def measure_cached(
    port: int, pid: int, prompts: Sequence[tuple[str, str]], options: Options
) -> dict[str, Any]:
    payloads = [route_payload(port, prompt) for prompt, _ in prompts]
    check = decision_check("cache", [tier for _, tier in prompts])
    timeout = options.phase_timeout_s
    # Untimed: first-request costs (imports, pydantic schema builds, connection set-up) stay out.
    warm = await drive(open_raw, port, payloads, options.warmup, 4, check, timeout)
    latency = await drive(open_raw, port, payloads, options.requests, 1, check, timeout, pid)
    loads = [
        await drive(open_raw, port, payloads, options.requests, level, check, timeout, pid)
        for level in options.concurrency
    ]
    return {
        "warmup": warm.summary(),
        "latency": latency.summary(),
        "throughput": [phase.summary() for phase in loads],
    }


def measure_client_ceiling(options: Options, log: Path) -> list[dict[str, Any]]:
    """Each client against the bare fake upstream (a raw ASGI app on uvicorn) in its own process.

    Whatever rate a client reaches here bounds what it can measure: it must sit well above the router.
    """
    port = free_port()
    command = [sys.executable, "-m", "judge_router.testing.fake_upstream", "--host", HOST]
    command += ["--port", str(port)]
    body = json.dumps({"model": "echo", "messages": [{"role": "user", "content": "hi"}]})
    payloads = [make_payload(port, "/v1/chat/completions", body.encode())]

    def check(status: int, body: bytes, index: int) -> str | None:
        return None if status == 200 else f"HTTP {status}"

    rows = []
    with running(command, log) as process:
        deadline = time.monotonic() + options.startup_timeout_s
        wait_until_ready(process, port, "/v1/models", deadline, log)
        for name, opener in (("raw-asyncio", open_raw), ("httpx", open_httpx)):
            for level in (1, max(options.concurrency)):
                phase = run_async(
                    drive(
                        opener,
                        port,
                        payloads,
                        options.requests,
                        level,
                        check,
                        options.phase_timeout_s,
                        process.pid,
                    )
                )
                rows.append({"client": name, **phase.summary()})
    return rows


def server_health(port: int) -> dict[str, Any]:
    """What /healthz says after the run: a ledger or cache that failed would make the figures moot."""
    connection = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        connection.request("GET", "/healthz")
        health: dict[str, Any] = json.loads(connection.getresponse().read())
    finally:
        connection.close()
    ledger, cache = health.get("ledger", {}), health.get("cache", {})
    return {
        "status": health.get("status"),
        "ledger_write_errors": ledger.get("write_errors"),
        "ledger_dropped_rows": ledger.get("dropped_rows"),
        "cache_errors": cache.get("errors"),
        "judge_failures": health.get("judge", {}).get("failures"),
    }


def ledger_rows(path: Path) -> int | None:
    """Decisions the server wrote for /route; None if the ledger cannot be read."""
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return None
    try:
        row = connection.execute("SELECT COUNT(*) FROM decisions WHERE endpoint = 'route'")
        count: int = row.fetchone()[0]
        return count
    except sqlite3.Error:
        return None
    finally:
        connection.close()


def expected_ledger_rows(results: dict[str, Any], options: Options) -> int:
    """Every /route request this run sent, each of which must leave one ledger row."""
    cached = results["cached"]
    phases = [results["cache_fill"], cached["warmup"], cached["latency"], *cached["throughput"]]
    sent: int = sum(row["requests"] for row in phases)
    return sent + len(options.token_sizes) * (1 + max(options.repeats, 1))


def run_benchmark(options: Options) -> dict[str, Any]:
    """Every measurement, as one JSON-ready dict (see README for the fields)."""
    results: dict[str, Any] = {"meta": meta(options), "targets": TARGETS}
    texts = {size: synthetic_text(size) for size in options.token_sizes}
    # Measured before any server runs, so nothing else competes for the CPU.
    token_rows = {
        size: judge_input_tokens(text, options.max_input_tokens, options.repeats)
        for size, text in texts.items()
    }
    with tempfile.TemporaryDirectory(prefix="bench-route-") as tmp, FakeUpstream() as upstream:
        directory = Path(tmp)
        config = write_config(
            directory, upstream.base_url, options.max_input_tokens, options.policy
        )
        with router_server(config, directory / "server.log", options) as (port, process):
            prompts = load_prompts(options.prompts)
            fill = run_async(fill_cache(port, process.pid, prompts, options.phase_timeout_s))
            results["cache_fill"] = fill.summary()
            results["cached"] = run_async(measure_cached(port, process.pid, prompts, options))
            wire = run_async(judge_tokens_on_the_wire(port, upstream, texts, options))
            results["server_health"] = server_health(port)
        results["ledger"] = {
            "rows": ledger_rows(directory / "ledger.sqlite"),
            "expected_rows": expected_ledger_rows(results, options),
        }
        if options.ceiling:
            results["client_ceiling"] = measure_client_ceiling(options, directory / "fake.log")
    rows = [{**token_rows[size], **wire[size]} for size in options.token_sizes]
    flat, spread = is_flat(rows, "judge_input_tokens", options.max_input_tokens)
    wire_flat, wire_spread = is_flat(rows, "wire_judge_input_tokens", options.max_input_tokens)
    results["judge_tokens"] = {
        "max_input_tokens": options.max_input_tokens,
        "rows": rows,
        "flat": flat,
        "spread_tokens": spread,
        "wire_flat": wire_flat,
        "wire_spread_tokens": wire_spread,
    }
    results["checks"] = checks(results)
    return results


def meta(options: Options) -> dict[str, Any]:
    return {
        **machine_meta(),
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "quick": options.quick,
        "requests": options.requests,
        "concurrency": list(options.concurrency),
        "warmup": options.warmup,
        "prompts": options.prompts,
        "max_input_tokens": options.max_input_tokens,
        "load_generator": "raw-asyncio keep-alive client, separate process from the server",
        "server": "judge-router serve, one uvicorn worker",
        "profiled": options.profile_server is not None,
        "revision": revision(),
    }


def checks(results: dict[str, Any]) -> dict[str, Any]:
    cached = results["cached"]
    phases = [results["cache_fill"], cached["warmup"], cached["latency"], *cached["throughput"]]
    best_rps = max((row["rps"] for row in cached["throughput"]), default=0.0)
    health = results["server_health"]
    other = [row["other_cores_busy"] for row in (cached["latency"], *cached["throughput"])]
    return {
        "all_requests_ok": all(row["failed"] == 0 and not row["problems"] for row in phases),
        "cached_p50_ms": cached["latency"]["p50_ms"],
        "cached_p50_ok": cached["latency"]["p50_ms"] <= TARGETS["cached_p50_ms"],
        "best_rps": best_rps,
        "rps_ok": best_rps >= TARGETS["cached_rps"],
        "judge_tokens_flat": results["judge_tokens"]["flat"],
        "server_healthy": health.get("status") == "ok"
        and health.get("ledger_write_errors") == 0
        and health.get("ledger_dropped_rows") == 0
        and health.get("cache_errors") == 0
        and health.get("judge_failures") == 0,
        "ledger_complete": results["ledger"]["rows"] == results["ledger"]["expected_rows"],
        # None when /proc is missing: quietness could not be checked.
        "machine_quiet": None if None in other else all(v <= QUIET_CORES for v in other),
        "other_cores_busy_max": max((v for v in other if v is not None), default=None),
    }


# -- report ---------------------------------------------------------------------------------------


HEADERS = {
    "concurrency": "conc",
    "requests": "reqs",
    "failed": "failed",
    "rps": "req/s",
    "p50_ms": "p50 ms",
    "p95_ms": "p95 ms",
    "p99_ms": "p99 ms",
    "client_cpu_us_per_req": "client CPU µs/req",
    "server_cpu_us_per_req": "server CPU µs/req",
    "server_cpu_share": "server cores busy",
    "other_cores_busy": "other cores busy",
    "prompt_tokens": "prompt tokens",
    "truncated": "cut",
    "view_tokens": "shown",
    "template_tokens": "template",
    "judge_input_tokens": "judge input",
    "wire_judge_input_tokens": "on the wire",
    "judge_input_cost_usd": "judge input $",
    "judged_view_ms": "judged_view ms",
    "cached_route_ms": "cached /route ms",
}
LOAD_COLUMNS = ["concurrency", "requests", "failed", "rps", "p50_ms", "p95_ms", "p99_ms"]
TOKEN_COLUMNS = [
    "prompt_tokens",
    "truncated",
    "view_tokens",
    "template_tokens",
    "judge_input_tokens",
    "wire_judge_input_tokens",
    "judge_input_cost_usd",
    "judged_view_ms",
    "cached_route_ms",
]


def _fmt(value: Any, column: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if column == "judge_input_cost_usd":
        return f"{value:.6f}"
    if isinstance(value, float):
        return f"{value:,.3f}" if value < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _table(title: str, first: str | None, columns: Sequence[str]) -> Table:
    table = Table(title=title)
    if first is not None:
        table.add_column(first)
    for column in columns:
        table.add_column(HEADERS.get(column, column), justify="right")
    return table


def print_report(results: dict[str, Any], console: Console) -> None:
    columns = [*LOAD_COLUMNS, "client_cpu_us_per_req", "server_cpu_us_per_req"]
    columns += ["server_cpu_share", "other_cores_busy"]
    table = _table("POST /route over loopback (one uvicorn worker)", "phase", columns)
    cached = results["cached"]
    phases = [("cache fill (judge call)", results["cache_fill"])]
    phases += [("cached, latency", cached["latency"])]
    phases += [("cached, throughput", row) for row in cached["throughput"]]
    for name, row in phases:
        table.add_row(name, *(_fmt(row[column], column) for column in columns))
    console.print(table)

    if "client_ceiling" in results:
        columns = [*LOAD_COLUMNS, "client_cpu_us_per_req"]
        ceiling = _table(
            "Load-generator ceiling: clients vs the bare fake upstream", "client", columns
        )
        for row in results["client_ceiling"]:
            ceiling.add_row(row["client"], *(_fmt(row[column], column) for column in columns))
        console.print(ceiling)

    tokens = results["judge_tokens"]
    title = f"Judge input tokens per verdict (max_input_tokens {tokens['max_input_tokens']})"
    token_table = _table(title, None, TOKEN_COLUMNS)
    for row in tokens["rows"]:
        token_table.add_row(*(_fmt(row[column], column) for column in TOKEN_COLUMNS))
    console.print(token_table)

    check = results["checks"]
    verdicts = Table(title="Targets")
    for column in ("target", "measured", "met"):
        verdicts.add_column(column)
    verdicts.add_row(
        f"cached p50 <= {TARGETS['cached_p50_ms']} ms",
        f"{check['cached_p50_ms']:.3f} ms",
        yes(check["cached_p50_ok"]),
    )
    verdicts.add_row(
        f">= {TARGETS['cached_rps']:,.0f} req/s, one worker",
        f"{check['best_rps']:,.0f} req/s",
        yes(check["rps_ok"]),
    )
    verdicts.add_row(
        "judge input flat beyond max_input_tokens",
        f"spread {tokens['spread_tokens']} (wire {tokens['wire_spread_tokens']}) tokens",
        yes(check["judge_tokens_flat"]),
    )
    verdicts.add_row(
        "every response 200 with the expected source", "", yes(check["all_requests_ok"])
    )
    verdicts.add_row(
        f"machine quiet (other work <= {QUIET_CORES} cores) while measuring",
        f"other work peaked at {_fmt(check['other_cores_busy_max'])} cores",
        "-" if check["machine_quiet"] is None else yes(check["machine_quiet"]),
    )
    ledger = results["ledger"]
    verdicts.add_row(
        "one ledger row per request",
        f"{_fmt(ledger['rows'])} of {ledger['expected_rows']:,}",
        yes(check["ledger_complete"]),
    )
    health = results["server_health"]
    verdicts.add_row(
        "no ledger, cache or judge errors (/healthz)",
        f"status {health['status']}; errors: ledger {_fmt(health['ledger_write_errors'])}, "
        f"cache {_fmt(health['cache_errors'])}, judge {_fmt(health['judge_failures'])}; "
        f"dropped rows {_fmt(health['ledger_dropped_rows'])}",
        yes(check["server_healthy"]),
    )
    console.print(verdicts)


def parse_options(argv: Sequence[str] | None) -> tuple[Options, Path | None]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, help="requests per measured phase (default 5000)")
    parser.add_argument(
        "--concurrency", type=int, nargs="+", help="connections for throughput (default 16 32)"
    )
    parser.add_argument("--warmup", type=int, help="untimed cached requests first (default 500)")
    parser.add_argument("--prompts", type=int, help="distinct prompts cached (default 50)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the results here")
    parser.add_argument(
        "--quick", action="store_true", help="tiny counts: a smoke run, not figures"
    )
    parser.add_argument("--no-ceiling", action="store_true", help="skip the load-generator ceiling")
    parser.add_argument(
        "--policy", action="store_true", help="configure 20 rules and 3 budgets (none matches)"
    )
    parser.add_argument(
        "--profile-server", type=Path, metavar="PROF", help="run the server under cProfile"
    )
    args = parser.parse_args(argv)
    options = QUICK if args.quick else Options()
    given = {
        "requests": args.requests,
        "concurrency": tuple(args.concurrency) if args.concurrency else None,
        "warmup": args.warmup,
        "prompts": args.prompts,
        "profile_server": args.profile_server,
    }
    options = dataclasses.replace(options, **{k: v for k, v in given.items() if v is not None})
    if args.no_ceiling:
        options = dataclasses.replace(options, ceiling=False)
    if args.policy:
        options = dataclasses.replace(options, policy=True)
    if options.requests < 1 or options.prompts < 1 or min(options.concurrency) < 1:
        parser.error("--requests, --prompts and --concurrency must be at least 1")
    return options, args.json


def main(argv: Sequence[str] | None = None) -> int:
    options, json_out = parse_options(argv)
    results = run_benchmark(options)
    # Wide enough for the tables when the output is piped (rich assumes 80 columns then).
    print_report(results, Console(width=max(Console().width, 170)))
    if json_out is not None:
        write_json(json_out, results)
    check = results["checks"]
    valid = check["all_requests_ok"] and check["server_healthy"] and check["ledger_complete"]
    return 0 if valid else 1


if __name__ == "__main__":
    sys.exit(main())
