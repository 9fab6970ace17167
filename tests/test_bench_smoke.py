"""Smoke test of benchmarks/bench_route.py in --quick mode, so the benchmark cannot rot unnoticed."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.slow  # real processes or servers: run with -m slow, or all

BENCH = Path(__file__).parent.parent / "benchmarks" / "bench_route.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    # benchmarks/ is a folder of scripts, not a package: load the script by path.
    spec = importlib.util.spec_from_file_location("bench_route", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building the class
    spec.loader.exec_module(module)
    return module


def test_quick_run_measures_everything_and_every_request_succeeds(bench: ModuleType) -> None:
    options, json_out = bench.parse_options(["--quick"])
    assert options.quick and json_out is None

    results = bench.run_benchmark(options)

    assert set(results) >= {
        "meta",
        "targets",
        "cache_fill",
        "cached",
        "judge_tokens",
        "client_ceiling",
        "server_health",
        "ledger",
        "checks",
    }
    cached = results["cached"]
    phases = [results["cache_fill"], cached["warmup"], cached["latency"], *cached["throughput"]]
    for phase in phases:
        assert {"requests", "ok", "failed", "rps", "p50_ms", "p95_ms", "p99_ms"} <= set(phase)
        assert phase["failed"] == 0 and phase["problems"] == [], phase
        assert phase["ok"] == phase["requests"] > 0
    assert [row["concurrency"] for row in cached["throughput"]] == list(options.concurrency)
    assert cached["latency"]["requests"] == options.requests
    for row in results["client_ceiling"]:
        assert row["failed"] == 0, row

    check = results["checks"]
    assert check["all_requests_ok"]
    assert check["server_healthy"], results["server_health"]
    assert check["ledger_complete"], results["ledger"]

    tokens = results["judge_tokens"]
    rows = {row["prompt_tokens"]: row for row in tokens["rows"]}
    assert sorted(rows) == sorted(options.token_sizes)
    max_tokens = tokens["max_input_tokens"]
    for size, row in rows.items():
        assert row["truncated"] is (size > max_tokens)
        assert row["view_tokens"] <= max_tokens
        assert row["router_prompt_tokens"] == size  # the server counted what we generated
        assert row["wire_judge_input_tokens"] > row["view_tokens"]
    # Computed with a fixed nonce, so this is deterministic (the wire count uses a random one).
    assert tokens["flat"] and check["judge_tokens_flat"]


def test_percentile_is_nearest_rank(bench: ModuleType) -> None:
    values = [float(v) for v in range(1, 101)]
    assert [bench.percentile(values, p) for p in (50, 95, 99, 100)] == [50.0, 95.0, 99.0, 100.0]
    assert bench.percentile([], 50) == 0.0
