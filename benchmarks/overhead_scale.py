"""overhead.py's measurements at scale, each on a router of its own: `serve --workers 2` against one
worker (throughput), the service's memory after 1,000 and after 100,000 distinct prompts, and a
Zipf workload's cache hit rate and judge calls.

- Workers: the direct-transport config served by `--workers 2` joins the alternating blocks of
  overhead.py's phases as `router_direct_w2` once both workers listen; its CPU is its two
  workers' (found as the supervisor's children), not the supervisor's.
- Memory: `/route` with distinct prompts (the heuristic judge, so 100,000 fit the run: an LLM
  judge call through litellm costs ~7 ms of CPU each) at concurrency 20; the resident set (VmRSS)
  after the first 1,000 and after 100,000. What grows with distinct prompts is the service's: the
  verdict memory layer (bounded by `cache.memory_entries`), the cache's and the ledger's files
  (on disk), the one-flight table (emptied as calls end).
- Zipf: 100,000 `/route` requests over 10,000 distinct prompts, rank k drawn with weight 1/k^s,
  at concurrency 20, through the LLM judge on the fake provider; judge calls are the router's own
  count (judge_router_judge_latency_seconds_count in /metrics), so a verdict shared by one flight
  counts once.
"""

from __future__ import annotations

import collections
import http.client
import json
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bench_proxy as proxy
from loadgen import HOST, http_post, run_async

_WORDS = ("index", "budget", "thread", "queue", "prove", "table", "design", "retry", "price",
          "cache", "merge", "parse", "route", "model", "tier", "judge", "answer", "token")  # fmt: skip


@dataclass(frozen=True)
class Scale:
    memory_small: int = 1_000
    memory_large: int = 100_000
    zipf_distinct: int = 10_000
    zipf_requests: int = 100_000
    zipf_s: float = 1.0
    concurrency: int = 20
    seed: int = 16


QUICK_SCALE = Scale(memory_small=50, memory_large=200, zipf_distinct=50, zipf_requests=300)


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


def worker_pids(pid: int, expected: int, deadline: float) -> list[int]:
    """The `expected` worker processes of a uvicorn supervisor, once they are all up (not
    multiprocessing's resource tracker, which is a child too)."""
    while True:
        found = [child for child in children(pid) if b"spawn_main" in _cmdline(child)]
        if len(found) >= expected:
            return found[:expected]
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(found)} of {expected} workers of {pid} started")
        time.sleep(0.1)  # bounded by the deadline above


def wait_listening(port: int, expected: int, deadline: float) -> None:
    """Until `expected` sockets listen on `port` (each worker's own, serving/workers.py): the
    load generator's connections opened before would all go to the workers already listening."""
    while True:
        listening = 0
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            listening += fields[3] == "0A" and int(fields[1].split(":")[1], 16) == port
        if listening >= expected:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{listening} of {expected} sockets listen on port {port}")
        time.sleep(0.1)  # bounded by the deadline above


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def rss_mb(pid: int) -> float:
    """The resident set of `pid` in MB (VmRSS)."""
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return round(int(found.group(1)) / 1024, 1) if found else float("nan")


def distinct_prompt(index: int) -> str:
    """A prompt of its own for each index, of ordinary length (~25 words)."""
    rng = random.Random(index)
    words = " ".join(rng.choice(_WORDS) for _ in range(24))
    return f"request {index}: {words}?"


def _route_requests(port: int, prompts: list[str]) -> list[bytes]:
    return [
        http_post(port, "/route", json.dumps({"prompt": p}, separators=(",", ":")).encode())
        for p in prompts
    ]


class _Tally:
    """A check that also counts each answer's verdict source."""

    def __init__(self) -> None:
        self.sources: collections.Counter[str] = collections.Counter()

    def __call__(self, status: int, body: bytes, index: int) -> str | None:
        if status != 200:
            return f"HTTP {status}: {body[:200]!r}"
        self.sources[json.loads(body).get("source", "?")] += 1
        return None


def _send(port: int, requests: list[bytes], concurrency: int, timeout_s: float) -> proxy.Phase:
    tally = _Tally()
    opener = proxy.RawConnection.opener(port, requests, tally)
    return run_async(proxy.drive(opener, len(requests), concurrency, timeout_s))


def memory_growth(port: int, pid: int, scale: Scale, timeout_s: float) -> dict[str, Any]:
    """RSS after `memory_small` distinct prompts and after `memory_large` (the same run)."""
    prompts = [distinct_prompt(i) for i in range(scale.memory_large)]
    first = _send(port, _route_requests(port, prompts[: scale.memory_small]), 4, timeout_s)
    small = rss_mb(pid)
    rest = _route_requests(port, prompts[scale.memory_small :])
    started = time.perf_counter()
    second = _send(port, rest, scale.concurrency, timeout_s)
    large = rss_mb(pid)
    return {
        "distinct_prompts": [scale.memory_small, scale.memory_large],
        "rss_mb": [small, large],
        "growth_mb": round(large - small, 1),
        "rps": round(len(rest) / (time.perf_counter() - started), 1),
        "failed": first.summary()["failed"] + second.summary()["failed"],
    }


def _judge_calls(port: int) -> float:
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        connection.request("GET", "/metrics")
        text = connection.getresponse().read().decode()
    finally:
        connection.close()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("judge_router_judge_latency_seconds_count")
    )


def zipf(port: int, scale: Scale, timeout_s: float) -> dict[str, Any]:
    """`zipf_requests` requests over `zipf_distinct` prompts, rank k with weight 1/k^s."""
    rng = random.Random(scale.seed)
    weights = [1 / (rank**scale.zipf_s) for rank in range(1, scale.zipf_distinct + 1)]
    ranks = rng.choices(range(scale.zipf_distinct), weights, k=scale.zipf_requests)
    texts = [f"zipf {rank}: {distinct_prompt(scale.seed * 1_000_003 + rank)}" for rank in ranks]
    requests = _route_requests(port, texts)
    before = _judge_calls(port)
    tally = _Tally()
    opener = proxy.RawConnection.opener(port, requests, tally)
    started = time.perf_counter()
    phase = run_async(proxy.drive(opener, len(requests), scale.concurrency, timeout_s))
    wall = time.perf_counter() - started
    calls = _judge_calls(port) - before
    answered = sum(tally.sources.values())
    return {
        "requests": len(requests),
        "distinct_prompts": scale.zipf_distinct,
        "distinct_drawn": len(set(ranks)),
        "s": scale.zipf_s,
        "judge_calls": int(calls),
        "cache_hits": tally.sources.get("cache", 0),
        "cache_hit_rate": round(tally.sources.get("cache", 0) / answered, 4) if answered else None,
        "sources": dict(tally.sources),
        "rps": round(len(requests) / wall, 1),
        "p50_ms": phase.summary()["p50_ms"],
        "failed": phase.summary()["failed"],
    }
