"""Benchmark of the stores: cached POST /route and proxied POST /v1/chat/completions with diskcache
+ SQLite (one machine) against Redis + PostgreSQL (shared by replicas), one uvicorn worker each;
then two replicas on the same Redis and PostgreSQL against one.

Run: .venv/bin/python benchmarks/bench_stores.py [--quick] [--json OUT]; see benchmarks/README.md.
Every process is separate: the loopback fake provider, redis-server, PostgreSQL (tests/
store_servers.py starts both on free loopback ports), three routers (`embedded`; `replica1` and
`replica2` on Redis + PostgreSQL) and this load generator. Configurations take turns in alternating
blocks (ABC, CBA, ...), so a machine that drifts moves them alike.
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import itertools
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import ExitStack
from pathlib import Path
from types import FrameType
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

# benchmarks/ is a folder of scripts, not a package: whether run as a script or loaded by path (as
# the smoke tests do), the shared modules are found next to this file; the real-server starters are
# the tests' own (tests/store_servers.py), appended so nothing there shadows anything else.
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.append(str(HERE.parent / "tests"))

import bench_proxy as proxy  # noqa: E402
from bench_route import decision_check  # noqa: E402
from loadgen import (  # noqa: E402
    HOST,
    free_port,
    machine_meta,
    ms,
    open_stream,
    percentile,
    revision,
    run_async,
    running,
    tree_cpu_s,
    wait_until_ready,
    write_json,
    write_yaml,
    yes,
)

import store_servers  # noqa: E402

KINDS = ("route", "chat")
PHASES = ("latency", "throughput")
CONFIGS = ("embedded", "shared", "shared_x2")
LABELS = {
    "embedded": "diskcache+SQLite",
    "shared": "Redis+PG, 1 replica",
    "shared_x2": "Redis+PG, 2 replicas",
}
KIND_LABELS = {"route": "POST /route (cached)", "chat": "/v1/chat/completions (proxied)"}
# Redis commands that are round trips of their own; the commands a script runs count apart.
SCRIPT_CALLS = ("evalsha", "eval", "evalsha_ro", "eval_ro", "fcall", "fcall_ro")
ROUTERS = ("embedded", "replica1", "replica2")
# The routers each configuration sends to; replica2 alone only while warming up.
PORTS_OF = {
    "embedded": ("embedded",),
    "shared": ("replica1",),
    "shared_x2": ("replica1", "replica2"),
    "replica2": ("replica2",),
}
WARMED_AS = {"embedded": "embedded", "replica1": "shared", "replica2": "replica2"}
PATHS = {"route": "/route", "chat": "/v1/chat/completions"}
ENDPOINTS = {"route": "route", "chat": "chat"}  # the ledger's `endpoint` of each kind
# Every process of the benchmark whose CPU is read: what the two cores are shared between.
PROCESSES = ("embedded", "replica1", "replica2", "redis", "postgres", "upstream")
DATABASE = "judge_router_bench"
PROFILED = ("embedded", "replica1")  # the routers --profile runs under cProfile
QUIET_CORES = 0.15  # other work above this many cores makes a run noisy (as in bench_route)


@dataclasses.dataclass(frozen=True)
class Options:
    route_latency: int = 2000  # requests per configuration in each measured phase
    route_throughput: int = 6000
    chat_latency: int = 600
    chat_throughput: int = 1600
    concurrency: int = 16  # connections in the throughput phases (spread over the replicas)
    blocks: int = 8  # alternating blocks per phase
    warmup: int = 200  # untimed cached requests per router and kind, first
    prompts: int = 8  # distinct prompts: distinct cached verdicts
    pg_fsync: bool = True  # PostgreSQL's durable defaults (off: as the tests run it)
    phase_timeout_s: float = 180.0
    startup_timeout_s: float = 120.0
    # cProfile the embedded router and replica1 during the latency phases (both kinds); router-
    # embedded.prof and router-replica1.prof are written here. Profiled figures are inflated.
    profile_dir: Path | None = None
    quick: bool = False

    def count(self, kind: str, phase: str) -> int:
        counts: int = getattr(self, f"{kind}_{phase}")
        return counts

    def level(self, phase: str) -> int:
        return self.concurrency if phase == "throughput" else 1


QUICK = Options(
    route_latency=40,
    route_throughput=120,
    chat_latency=12,
    chat_throughput=36,
    concurrency=4,
    blocks=2,
    warmup=8,
    prompts=4,
    phase_timeout_s=60.0,
    quick=True,
)


# -- the servers --------------------------------------------------------------------------------


@dataclasses.dataclass
class Router:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path


class Stores:
    """The running redis-server and PostgreSQL, and what the benchmark reads from them."""

    def __init__(self, redis: store_servers.RedisServer, postgres: store_servers.PostgresServer):
        import redis as redis_client

        self.redis = redis
        self.postgres = postgres
        self.database_url = postgres.create_database(DATABASE)
        self._client = redis_client.Redis(host=HOST, port=redis.port)

    @property
    def pids(self) -> dict[str, int]:
        assert self.redis.process is not None and self.postgres.process is not None
        return {"redis": self.redis.process.pid, "postgres": self.postgres.process.pid}

    def redis_calls(self) -> Counter[str]:
        """Commands Redis has run so far, by name (this benchmark's own INFO calls left out)."""
        stats: dict[str, dict[str, int]] = self._client.info("commandstats")
        calls = Counter(
            {name.removeprefix("cmdstat_"): row["calls"] for name, row in stats.items()}
        )
        del calls["info"]
        return calls

    def versions(self) -> dict[str, Any]:
        import psycopg

        with psycopg.connect(self.database_url) as conn:
            found = conn.execute("SHOW server_version").fetchone()
            fsync = conn.execute("SHOW fsync").fetchone()
            commit = conn.execute("SHOW synchronous_commit").fetchone()
        server: dict[str, Any] = self._client.info("server")
        return {
            "redis": server.get("redis_version"),
            "postgresql": found[0] if found else None,
            "postgresql_fsync": fsync[0] if fsync else None,
            "postgresql_synchronous_commit": commit[0] if commit else None,
        }

    def ledger_counts(self) -> dict[str, Any]:
        """Rows by endpoint in the shared PostgreSQL ledger, and chat rows not 'ok'."""
        import psycopg

        try:
            with psycopg.connect(self.database_url) as conn:
                rows = conn.execute("SELECT endpoint, count(*) FROM decisions GROUP BY endpoint")
                by_endpoint = {str(endpoint): int(n) for endpoint, n in rows}
                row = conn.execute(
                    "SELECT count(*) FROM decisions WHERE endpoint = 'chat' AND status != 'ok'"
                ).fetchone()
        except psycopg.Error as exc:
            return {"error": str(exc)}
        return {"by_endpoint": by_endpoint, "chat_not_ok": int(row[0]) if row else None}

    def close(self) -> None:
        self._client.close()


def sqlite_counts(path: Path) -> dict[str, Any]:
    """Rows by endpoint in the embedded router's SQLite ledger, and chat rows not 'ok'."""
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        return {"error": str(exc)}
    try:
        rows = connection.execute("SELECT endpoint, COUNT(*) FROM decisions GROUP BY endpoint")
        by_endpoint = {str(endpoint): int(n) for endpoint, n in rows}
        not_ok = connection.execute(
            "SELECT COUNT(*) FROM decisions WHERE endpoint = 'chat' AND status != 'ok'"
        ).fetchone()[0]
        return {"by_endpoint": by_endpoint, "chat_not_ok": int(not_ok)}
    except sqlite3.Error as exc:
        return {"error": str(exc)}
    finally:
        connection.close()


def write_configs(directory: Path, base_url: str, stores: Stores) -> dict[str, Path]:
    """bench_proxy's config (judge and tiers on the fake, explicit prices) for each router: its own
    folder each; replica1 and replica2 with verdicts and state on Redis and the ledger on PostgreSQL
    (ledger.path then only places the recovery file)."""
    configs = {}
    for name in ROUTERS:
        home = directory / name
        home.mkdir()
        config = proxy.write_config(home, base_url)
        if name != "embedded":
            data = yaml.safe_load(config.read_text(encoding="utf-8"))
            data["cache"] = {**data["cache"], "backend": "redis", "redis_url": stores.redis.url}
            data["state"] = {"redis_url": stores.redis.url}
            data["ledger"] = {**data["ledger"], "url": stores.database_url}
            write_yaml(config, data)
        configs[name] = config
    return configs


def get_json(port: int, path: str) -> dict[str, Any]:
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        connection.request("GET", path)
        found: dict[str, Any] = json.loads(connection.getresponse().read())
        return found
    finally:
        connection.close()


def router_health(port: int) -> dict[str, Any]:
    """What /healthz says after the run: errors in a store would make the figures moot."""
    health = get_json(port, "/healthz")
    ledger, cache = health.get("ledger", {}), health.get("cache", {})
    redis = health.get("redis", [])
    return {
        "status": health.get("status"),
        "ledger_write_errors": ledger.get("write_errors"),
        "ledger_dropped_rows": ledger.get("dropped_rows"),
        "ledger_pending_rows": ledger.get("pending_rows"),
        "cache_errors": cache.get("errors"),
        "judge_failures": health.get("judge", {}).get("failures"),
        "redis_errors": sum(link.get("errors", 0) for link in redis),
        "redis_fallbacks": sum(sum(link.get("fallbacks", {}).values()) for link in redis),
    }


def healthy(health: dict[str, Any]) -> bool:
    return health["status"] == "ok" and not any(
        health[key]
        for key in ("ledger_write_errors", "ledger_dropped_rows", "cache_errors", "judge_failures")
    )  # fmt: skip


def profile_switch(port: int, action: str) -> None:
    """Turn the profiled router's cProfile on or off (bench_proxy's ProfileSwitch)."""
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        connection.request("POST", proxy.PROFILE_PATH + action)
        connection.getresponse().read()
    finally:
        connection.close()


# -- the load -----------------------------------------------------------------------------------


def request_bodies(kind: str, prompts: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    if kind == "route":
        return [{"prompt": prompt} for prompt, _ in prompts]
    return [{"model": "auto", "messages": [{"role": "user", "content": p}]} for p, _ in prompts]


def fill_check(kind: str, tiers: Sequence[str], seen: Counter[str]) -> proxy.Check:
    """A first request per prompt: judged here (`llm`) or found in a shared cache (`cache`)."""

    def check(status: int, body: bytes, index: int) -> str | None:
        if status != 200:
            return f"HTTP {status}: {body[:200]!r}"
        answer = json.loads(body)
        decision = answer if kind == "route" else answer.get("router") or {}
        source = str(decision.get("source"))
        seen[source] += 1
        if source not in ("llm", "cache"):
            return f"source {source!r}"
        if decision.get("tier") != tiers[index]:
            return f"tier {decision.get('tier')!r}, expected {tiers[index]!r}"
        return None

    return check


def cached_check(kind: str, tiers: Sequence[str]) -> proxy.Check:
    """Every measured request: 200 from a cached verdict, of the prompt's tier."""
    if kind == "route":
        return decision_check("cache", list(tiers))
    return proxy.router_check("cache", tiers)


def spread_opener(
    ports: Sequence[int], requests: dict[int, list[bytes]], check: proxy.Check
) -> Callable[[], Awaitable[proxy.Caller]]:
    """Keep-alive connections dealt round-robin over `ports`: a load balancer over the replicas."""
    turn = itertools.count()

    async def open_connection() -> proxy.Caller:
        port = ports[next(turn) % len(ports)]
        reader, writer = await open_stream(port)
        return proxy.RawConnection(reader, writer, requests[port], check)

    return open_connection


@dataclasses.dataclass
class Block:
    phase: proxy.Phase
    redis_calls: Counter[str]


class Bench:
    """The routers, the stores and the processes watched, driven one block at a time."""

    def __init__(
        self,
        routers: dict[str, Router],
        stores: Stores,
        upstream_pid: int,
        prompts: Sequence[tuple[str, str]],
        options: Options,
    ):
        self.routers = routers
        self.stores = stores
        self.options = options
        self.prompts = prompts
        self.tiers = [tier for _, tier in prompts]
        self.requests = {
            kind: {
                router.port: [
                    proxy.http_request(router.port, PATHS[kind], body)
                    for body in request_bodies(kind, prompts)
                ]
                for router in routers.values()
            }
            for kind in KINDS
        }
        pids = {name: router.process.pid for name, router in routers.items()}
        self.watch = {**pids, "redis": stores.pids["redis"], "upstream": upstream_pid}
        self.trees = {"postgres": stores.pids["postgres"]}  # a backend process per connection

    def ports(self, config: str) -> list[int]:
        return [self.routers[name].port for name in PORTS_OF[config]]

    def block(
        self, kind: str, config: str, n: int, concurrency: int, check: proxy.Check | None = None
    ) -> Block:
        """`n` requests of `kind` over `concurrency` connections to the routers of `config`."""
        ports = self.ports(config)
        check = check or cached_check(kind, self.tiers)
        opener = spread_opener(ports, self.requests[kind], check)
        redis_before = self.stores.redis_calls()
        trees_before = {name: tree_cpu_s(pid) for name, pid in self.trees.items()}
        timeout = self.options.phase_timeout_s
        phase = run_async(proxy.drive(opener, n, concurrency, timeout, self.watch))
        for name, pid in self.trees.items():
            before, after = trees_before[name], tree_cpu_s(pid)
            phase.watched_cpu_s[name] = None if before is None or after is None else after - before
        return Block(phase, self.stores.redis_calls() - redis_before)

    def warm(self) -> dict[str, Any]:
        """Per router and kind: one request per prompt (judged, or found in Redis), then untimed
        cached requests. replica2 comes after replica1: it must find every verdict in Redis."""
        o, found = self.options, {}
        for kind in KINDS:
            for name in ROUTERS:
                seen: Counter[str] = Counter()
                check = fill_check(kind, self.tiers, seen)
                config = WARMED_AS[name]
                fill = self.block(kind, config, len(self.prompts), 1, check)
                warm = self.block(kind, config, o.warmup, o.concurrency)
                found[f"{kind}_{name}"] = {
                    "fill": fill.phase.summary(),
                    "fill_sources": dict(seen),
                    "warmup": warm.phase.summary(),
                }
        return found

    def profile(self, action: str) -> None:
        if self.options.profile_dir is not None:
            for name in PROFILED:
                profile_switch(self.routers[name].port, action)

    def measure(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Each phase of each kind in `blocks` turns per configuration, the order flipped each
        block; the two-replica configuration joins the throughput phases."""
        o = self.options
        results: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in KINDS}
        for kind, phase_name in itertools.product(KINDS, PHASES):
            configs = list(CONFIGS if phase_name == "throughput" else CONFIGS[:2])
            total, level = o.count(kind, phase_name), o.level(phase_name)
            per_block = [total // o.blocks + (i < total % o.blocks) for i in range(o.blocks)]
            runs: dict[str, list[Block]] = {config: [] for config in configs}
            if phase_name == "latency":
                self.profile("start")
            for index, n in enumerate(per_block):
                if n == 0:
                    continue
                for config in configs if index % 2 == 0 else configs[::-1]:
                    runs[config].append(self.block(kind, config, n, level))
            if phase_name == "latency":
                self.profile("stop")
            results[kind][phase_name] = {
                config: phase_summary(blocks) for config, blocks in runs.items()
            }
        return results


def phase_summary(blocks: Sequence[Block]) -> dict[str, Any]:
    merged = proxy.Phase.merge([block.phase for block in blocks])
    row = merged.summary()
    row["block_rps"] = [block.phase.summary()["rps"] for block in blocks]
    row["block_p50_ms"] = [
        ms(percentile(sorted(s.latency_s for s in block.phase.samples), 50)) for block in blocks
    ]
    calls: Counter[str] = Counter()
    for block in blocks:
        calls.update(block.redis_calls)
    done = max(row["ok"], 1)
    # Commands a script runs are counted by Redis too: scripts (one round trip each) apart.
    row["redis_calls_per_req"] = round(sum(calls.values()) / done, 3)
    row["redis_scripts_per_req"] = round(sum(calls[name] for name in SCRIPT_CALLS) / done, 3)
    row["redis_commands_per_req"] = {
        name: round(count / done, 3) for name, count in calls.most_common() if count
    }
    row["routers_cpu_us_per_req"] = _sum_or_none(
        row.get(f"{name}_cpu_us_per_req") for name in ROUTERS
    )
    row["routers_cpu_share"] = _sum_or_none(row.get(f"{name}_cpu_share") for name in ROUTERS)
    ours = [row.get(f"{name}_cpu_us_per_req") for name in PROCESSES]
    total = _sum_or_none(ours)
    row["all_cpu_us_per_req"] = (
        None if total is None else round(total + row["client_cpu_us_per_req"], 1)
    )
    shares = _sum_or_none(row.get(f"{name}_cpu_share") for name in PROCESSES)
    row["all_cpu_share"] = None if shares is None else round(shares + row["client_cpu_share"], 3)
    return row


def _sum_or_none(values: Iterable[float | None]) -> float | None:
    found = list(values)
    if any(v is None for v in found):
        return None
    return round(sum(v or 0.0 for v in found), 3)


# -- the run ------------------------------------------------------------------------------------


def start_routers(
    stack: ExitStack, configs: dict[str, Path], directory: Path, options: Options
) -> dict[str, Router]:
    """All three at once (each imports litellm for seconds), ready when /healthz answers."""
    started = {}
    for name in ROUTERS:
        port, log = free_port(), directory / f"router-{name}.log"
        profile = None
        if options.profile_dir is not None and name in PROFILED:
            profile = options.profile_dir / f"router-{name}.prof"
        command = proxy.router_command(configs[name], port, profile)
        started[name] = Router(name, port, stack.enter_context(running(command, log)), log)
    deadline = time.monotonic() + options.startup_timeout_s
    for router in started.values():
        wait_until_ready(router.process, router.port, "/healthz", deadline, router.log)
    return started


def run_benchmark(options: Options) -> dict[str, Any]:
    """Every measurement, as one JSON-ready dict (see benchmarks/README.md for the fields)."""
    if options.profile_dir is not None:
        options.profile_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"meta": meta(options)}
    prompts = proxy.load_prompts(options.prompts)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-stores-") as tmp, ExitStack() as stack:
        directory = Path(tmp)
        deadline = time.monotonic() + options.startup_timeout_s
        fake_log = directory / "upstream.log"
        fake_cmd = [sys.executable, "-m", "judge_router.testing.fake_upstream", "--host", HOST]
        fake = stack.enter_context(running([*fake_cmd, "--port", "0"], fake_log, pipes=True))
        base_url = proxy.read_line(fake, deadline, fake_log, "fake upstream").rsplit(" ", 1)[1]
        redis = store_servers.RedisServer()
        stack.callback(redis.close)
        postgres = store_servers.PostgresServer(fsync=options.pg_fsync)
        stack.callback(postgres.close)
        stores = Stores(redis, postgres)
        stack.callback(stores.close)
        results["meta"]["servers"] = stores.versions()
        configs = write_configs(directory, base_url, stores)
        routers = start_routers(stack, configs, directory, options)
        results["meta"]["start_s"] = round(time.perf_counter() - started, 1)

        bench = Bench(routers, stores, fake.pid, prompts, options)
        results["warm"] = bench.warm()
        results["measured"] = bench.measure()
        results["health"] = {name: router_health(r.port) for name, r in routers.items()}
        for router in routers.values():  # every row written and each ledger closed
            router.process.send_signal(signal.SIGINT if options.profile_dir else signal.SIGTERM)
        for router in routers.values():
            router.process.wait(timeout=60)
        results["ledger"] = {
            "embedded": sqlite_counts(directory / "embedded" / "ledger.sqlite"),
            "shared": stores.ledger_counts(),
            "sent_by_kind": sent_by_kind(results),
        }
    results["meta"]["wall_s"] = round(time.perf_counter() - started, 1)
    results["meta"]["load_average_end"] = load_average()
    results["stores"] = store_comparison(results["measured"])
    results["replicas"] = replica_comparison(results["measured"], results["meta"]["cpu_count"])
    results["noise"] = noise(results["measured"])
    results["checks"] = checks(results, options)
    return results


def noise(measured: dict[str, Any]) -> dict[str, Any]:
    """Cores other work took while measuring: figures taken beside it are not comparable."""
    rows = [row for kind in KINDS for phase in measured[kind].values() for row in phase.values()]
    other = [row.get("other_cpu_share") for row in rows]
    steal = [row.get("steal_cpu_share") for row in rows]
    if None in other:
        return {"other_cores_max": None, "steal_cores_max": None, "quiet": None}
    most = max(v or 0.0 for v in other)
    return {
        "other_cores_max": most,
        "other_cores_median": statistics.median(v or 0.0 for v in other),
        "steal_cores_max": max(v or 0.0 for v in steal),
        "quiet": most <= QUIET_CORES,
    }


def sent_by_kind(results: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Requests of each kind sent to the embedded router and to the shared replicas together."""
    sent: dict[str, dict[str, int]] = {"embedded": {}, "shared": {}}
    for kind in KINDS:
        to_embedded = sum(
            results["warm"][f"{kind}_embedded"][part]["requests"] for part in ("fill", "warmup")
        )
        to_shared = sum(
            results["warm"][f"{kind}_{name}"][part]["requests"]
            for name in ("replica1", "replica2")
            for part in ("fill", "warmup")
        )
        for phase in results["measured"][kind].values():
            to_embedded += phase["embedded"]["requests"]
            to_shared += sum(phase[c]["requests"] for c in ("shared", "shared_x2") if c in phase)
        sent["embedded"][ENDPOINTS[kind]] = to_embedded
        sent["shared"][ENDPOINTS[kind]] = to_shared
    return sent


def store_comparison(measured: dict[str, Any]) -> dict[str, Any]:
    """Redis + PostgreSQL against diskcache + SQLite, one replica each, per kind."""
    found = {}
    for kind in KINDS:
        latency, load = measured[kind]["latency"], measured[kind]["throughput"]
        disk, shared = latency["embedded"], latency["shared"]
        blocks = zip(disk["block_p50_ms"], shared["block_p50_ms"], strict=True)
        found[kind] = {
            "added_p50_ms": round(shared["p50_ms"] - disk["p50_ms"], 3),
            "added_p99_ms": round(shared["p99_ms"] - disk["p99_ms"], 3),
            "block_added_p50_ms": [round(b - a, 3) for a, b in blocks],
            "added_router_cpu_us_per_req": round(
                shared["replica1_cpu_us_per_req"] - disk["embedded_cpu_us_per_req"], 1
            ),
            "stores_cpu_us_per_req": round(
                shared["redis_cpu_us_per_req"] + shared["postgres_cpu_us_per_req"], 1
            ),
            "rps": [load["embedded"]["rps"], load["shared"]["rps"]],
            "rps_ratio": _ratio(load["shared"]["rps"], load["embedded"]["rps"]),
            "redis_calls_per_req": shared["redis_calls_per_req"],
            "redis_scripts_per_req": shared["redis_scripts_per_req"],
            "redis_commands_per_req": shared["redis_commands_per_req"],
        }
    return found


def replica_comparison(measured: dict[str, Any], cores: int | None) -> dict[str, Any]:
    """Two replicas against one, and what bounds the ratio on this machine's cores.

    The ceiling: with all our processes' CPU per request (routers, Redis, PostgreSQL, the fake
    provider, this load generator) as measured with one replica, the cores left by other work can
    serve at most (cores − other) / CPU per request. On an idle machine: one replica (one event
    loop) serves at most a core's worth, 1 / its CPU per request, so two can add at most
    cores × router CPU / all CPU per request, and never more than 2×.
    """
    found = {}
    for kind in KINDS:
        one, two = measured[kind]["throughput"]["shared"], measured[kind]["throughput"]["shared_x2"]
        other = _other(one) or 0.0
        per_req = one["all_cpu_us_per_req"]
        ceiling = None
        if cores and per_req:
            ceiling = round(max(cores - other, 0.0) / (per_req / 1e6), 1)
        found[kind] = {
            "rps": [one["rps"], two["rps"]],
            "ratio": _ratio(two["rps"], one["rps"]),
            "block_ratios": [
                _ratio(b, a) for a, b in zip(one["block_rps"], two["block_rps"], strict=True)
            ],
            "one_router_cores": one["replica1_cpu_share"],
            "two_routers_cores": [two["replica1_cpu_share"], two["replica2_cpu_share"]],
            "cpu_us_per_req": [per_req, two["all_cpu_us_per_req"]],
            "cores_busy": [
                _busy(one),
                _busy(two),
            ],
            "ceiling_rps": ceiling,
            "ceiling_ratio": _ratio(ceiling, one["rps"]) if ceiling else None,
            "idle_machine_ratio_bound": idle_bound(one, cores),
        }
    return found


def idle_bound(one: dict[str, Any], cores: int | None) -> float | None:
    """The most two replicas could gain over one on an otherwise idle machine of `cores` cores."""
    router, total = one.get("replica1_cpu_us_per_req"), one.get("all_cpu_us_per_req")
    if not cores or not router or not total:
        return None
    return round(min(2.0, cores * float(router) / float(total)), 2)


def _other(row: dict[str, Any]) -> float | None:
    """Cores taken from this benchmark: other work on the machine and the hypervisor's steal."""
    if row.get("other_cpu_share") is None:
        return None
    return round(float(row["other_cpu_share"]) + float(row.get("steal_cpu_share") or 0.0), 2)


def _busy(row: dict[str, Any]) -> float | None:
    """Cores busy in all: ours, other work and the hypervisor's steal."""
    ours = row.get("all_cpu_share")
    if ours is None:
        return None
    return round(float(ours) + (_other(row) or 0.0), 2)


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def checks(results: dict[str, Any], options: Options) -> dict[str, Any]:
    warm, measured = results["warm"], results["measured"]
    phases = [row[part] for row in warm.values() for part in ("fill", "warmup")]
    phases += [row for kind in KINDS for phase in measured[kind].values() for row in phase.values()]
    ledger, sent = results["ledger"], results["ledger"]["sent_by_kind"]
    judged = {
        name: sum(warm[f"{kind}_{name}"]["fill_sources"].get("llm", 0) for kind in KINDS)
        for name in ROUTERS
    }
    return {
        "all_requests_ok": all(p["failed"] == 0 and not p["problems"] for p in phases),
        # replica2 judged nothing: it found replica1's verdicts in Redis.
        "verdicts_shared": judged["replica2"] == 0 and judged["replica1"] == judged["embedded"] > 0,
        "ledgers_complete": all(
            ledger[name].get("by_endpoint") == sent[name] and ledger[name].get("chat_not_ok") == 0
            for name in ("embedded", "shared")
        ),
        "routers_healthy": all(healthy(h) for h in results["health"].values()),
        "no_redis_errors": all(
            h["redis_errors"] == 0 and h["redis_fallbacks"] == 0
            for name, h in results["health"].items()
            if name != "embedded"
        ),
    }


def load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def meta(options: Options) -> dict[str, Any]:
    data = dataclasses.asdict(options)
    data["profile_dir"] = None if options.profile_dir is None else str(options.profile_dir)
    return {
        **machine_meta(),
        **data,
        "load_average_start": load_average(),
        "load_generator": "raw asyncio keep-alive HTTP/1.1 client on uvloop, its own process",
        "router": "judge-router serve, one uvicorn worker per replica, own process each",
        "revision": revision(),
    }


# -- report -------------------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def print_report(results: dict[str, Any], console: Console) -> None:
    o = results["meta"]
    table = Table(
        title="Stores: one uvicorn worker per replica, everything on this machine's "
        f"{o['cpu_count']} cores",
        caption="CPU µs per request of each process; Redis scripts / commands per request (INFO "
        "commandstats, a script's own commands included); cores busy: this benchmark's processes; "
        "other: work outside it, and the hypervisor's steal",
    )
    columns = ["path", "phase", "stores", "req/s", "p50 ms", "p95 ms", "p99 ms", "router(s) µs"]
    columns += ["Redis µs", "PG µs", "fake µs", "client µs", "Redis", "cores busy", "other"]
    for column in columns:
        table.add_column(column, justify="left" if column in columns[:3] else "right")
    for kind in KINDS:
        for phase_name in PHASES:
            rows = results["measured"][kind][phase_name]
            for index, (config, row) in enumerate(rows.items()):
                first = index == 0
                table.add_row(
                    KIND_LABELS[kind] if first and phase_name == "latency" else "",
                    f"{phase_name} c={row['concurrency']}" if first else "",
                    LABELS[config],
                    _fmt(row["rps"]),
                    _fmt(row["p50_ms"]),
                    _fmt(row["p95_ms"]),
                    _fmt(row["p99_ms"]),
                    _fmt(row["routers_cpu_us_per_req"], 0),
                    _fmt(row["redis_cpu_us_per_req"], 0),
                    _fmt(row["postgres_cpu_us_per_req"], 0),
                    _fmt(row["upstream_cpu_us_per_req"], 0),
                    _fmt(row["client_cpu_us_per_req"], 0),
                    f"{row['redis_scripts_per_req']:g} / {row['redis_calls_per_req']:g}",
                    _fmt(row["all_cpu_share"]),
                    _fmt(_other(row)),
                )
    console.print(table)

    ratios = Table(title="Ratios")
    for column in ("path", "what", "measured", "per block"):
        ratios.add_column(column, justify="left")
    for kind in KINDS:
        stores, reps = results["stores"][kind], results["replicas"][kind]
        added = sorted(stores["block_added_p50_ms"])
        ratios.add_row(
            KIND_LABELS[kind],
            "Redis + PG p50 − diskcache + SQLite p50 (c=1)",
            f"{stores['added_p50_ms']:+.3f} ms (p99 {stores['added_p99_ms']:+.2f} ms)",
            f"median {statistics.median(added):+.3f}, {added[0]:+.3f} to {added[-1]:+.3f}",
        )
        ratios.add_row(
            "",
            "router CPU added per request; Redis + PG CPU per request",
            f"{stores['added_router_cpu_us_per_req']:+.0f} µs; {stores['stores_cpu_us_per_req']:.0f} µs",
            f"Redis per request: {stores['redis_scripts_per_req']:g} scripts, "
            f"{stores['redis_calls_per_req']:g} commands",
        )
        ratios.add_row(
            "",
            f"req/s, Redis + PG / diskcache + SQLite (c={o['concurrency']})",
            f"{_fmt(stores['rps_ratio'], 3)} ({_fmt(stores['rps'][1])} / {_fmt(stores['rps'][0])})",
            "",
        )
        blocks = [r for r in reps["block_ratios"] if r is not None]
        ratios.add_row(
            "",
            "req/s, 2 replicas / 1 replica",
            f"{_fmt(reps['ratio'], 3)} ({_fmt(reps['rps'][1])} / {_fmt(reps['rps'][0])})",
            f"{min(blocks):.2f} to {max(blocks):.2f}" if blocks else "",
        )
        ratios.add_row(
            "",
            "bound: cores left ÷ all CPU per request (1 replica)",
            f"{_fmt(reps['ceiling_rps'])} req/s = {_fmt(reps['ceiling_ratio'], 2)}× one replica",
            f"all CPU/req {_fmt(reps['cpu_us_per_req'][0], 0)} → {_fmt(reps['cpu_us_per_req'][1], 0)} µs",
        )
        ratios.add_row(
            "",
            "bound on an idle machine: cores × router CPU ÷ all CPU per request (≤ 2)",
            f"{_fmt(reps['idle_machine_ratio_bound'])}×",
            "",
        )
        ratios.add_row(
            "",
            "router cores busy: 1 replica; 2 replicas",
            f"{_fmt(reps['one_router_cores'])}; "
            + " + ".join(_fmt(c) for c in reps["two_routers_cores"]),
            f"machine cores busy {_fmt(reps['cores_busy'][0])} → {_fmt(reps['cores_busy'][1])}",
        )
    console.print(ratios)

    verdicts = Table(title="Checks")
    verdicts.add_column("check")
    verdicts.add_column("met")
    for name, ok in results["checks"].items():
        verdicts.add_row(name, yes(bool(ok)))
    console.print(verdicts)
    quiet = results["noise"]
    console.print(
        f"other work: up to {_fmt(quiet['other_cores_max'])} cores "
        f"(median {_fmt(quiet.get('other_cores_median'))}), steal up to "
        f"{_fmt(quiet['steal_cores_max'])}: "
        + ("quiet" if quiet["quiet"] else f"[red]not quiet[/red] (> {QUIET_CORES} cores)")
    )
    servers = results["meta"].get("servers", {})
    console.print(
        f"servers: {servers}; load average {results['meta']['load_average_start']} → "
        f"{results['meta']['load_average_end']}; {results['meta']['wall_s']} s"
    )


# -- command line -------------------------------------------------------------------------------


def parse_options(argv: Sequence[str] | None) -> tuple[Options, Path | None]:
    parser = argparse.ArgumentParser(description=__doc__)
    defaults = Options()
    for kind in KINDS:
        for phase_name in PHASES:
            flag = f"--{kind}-{phase_name}"
            default = defaults.count(kind, phase_name)
            parser.add_argument(
                flag, type=int, help=f"requests per configuration (default {default})"
            )
    parser.add_argument("--concurrency", type=int, help="throughput connections (default 16)")
    parser.add_argument("--blocks", type=int, help="alternating blocks per phase (default 8)")
    parser.add_argument("--warmup", type=int, help="untimed requests per router and kind (200)")
    parser.add_argument("--prompts", type=int, help="distinct prompts (cached verdicts, default 8)")
    parser.add_argument(
        "--pg-fsync",
        choices=["on", "off"],
        help="PostgreSQL fsync: on, its durable default (default), or off, as the tests run it",
    )
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the results here")
    parser.add_argument(
        "--quick", action="store_true", help="tiny counts: a smoke run, not figures"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="cProfile the embedded router and replica1 in the latency phases (inflates them)",
    )
    args = parser.parse_args(argv)
    options = QUICK if args.quick else Options()
    given: dict[str, Any] = {
        f"{kind}_{phase_name}": getattr(args, f"{kind}_{phase_name}")
        for kind in KINDS
        for phase_name in PHASES
    }
    given.update(
        concurrency=args.concurrency,
        blocks=args.blocks,
        warmup=args.warmup,
        prompts=args.prompts,
        profile_dir=args.profile,
        pg_fsync=None if args.pg_fsync is None else args.pg_fsync == "on",
    )
    options = dataclasses.replace(options, **{k: v for k, v in given.items() if v is not None})
    counts = [options.count(kind, phase_name) for kind in KINDS for phase_name in PHASES]
    if min(*counts, options.concurrency, options.blocks, options.prompts) < 1:
        parser.error("request counts, --concurrency, --blocks and --prompts must be at least 1")
    if options.concurrency < 2:
        parser.error("--concurrency must be at least 2: one connection per replica at least")
    if options.warmup < 0:
        parser.error("--warmup must not be negative")
    return options, args.json


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")  # unwinds every context: each process is stopped


def main(argv: Sequence[str] | None = None) -> int:
    options, json_out = parse_options(argv)
    reasons = store_servers.absent()
    if reasons:
        print("bench_stores needs real servers: " + "; ".join(reasons), file=sys.stderr)
        return 2
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _stop) if main_thread else None
    try:
        results = run_benchmark(options)
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    print_report(results, Console(width=max(Console().width, 200)))
    if json_out is not None:
        write_json(json_out, results)
    return 0 if all(results["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
