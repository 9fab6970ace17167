"""benchmarks/bench_stores.py runs end to end in --quick mode on a real redis-server and PostgreSQL:
every figure present, every request answered from a cached verdict, one ledger row per request.

No timing is asserted: the figures depend on the machine. This keeps the benchmark from rotting.
Without the servers' binaries it skips, naming what is missing (fails under
JUDGE_ROUTER_REQUIRE_SERVERS=1, as in .ci/run).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fakes import load_script
from store_servers import absent, missing

pytestmark = pytest.mark.slow  # real processes and servers: run with -m slow, or all

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_stores.py"
PHASE_KEYS = {"requests", "ok", "failed", "problems", "rps", "p50_ms", "p95_ms", "p99_ms"}
CPU_KEYS = {f"{name}_cpu_us_per_req" for name in ("embedded", "replica1", "replica2", "redis")}
CPU_KEYS |= {"postgres_cpu_us_per_req", "upstream_cpu_us_per_req", "client_cpu_us_per_req"}


def test_quick_run_reports_every_figure_and_every_request_succeeds(tmp_path: Path) -> None:
    for reason in absent():
        missing(reason)
    bench = load_script(BENCH)
    out = tmp_path / "stores.json"

    assert bench.main(["--quick", "--json", str(out)]) == 0

    results = json.loads(out.read_text(encoding="utf-8"))
    parts = {"meta", "warm", "measured", "health", "ledger", "stores", "replicas", "noise"}
    assert parts <= set(results)
    assert results["meta"]["quick"] is True
    assert results["meta"]["servers"]["postgresql_fsync"] == "on"
    for kind in ("route", "chat"):
        measured = results["measured"][kind]
        assert set(measured["latency"]) == {"embedded", "shared"}
        assert set(measured["throughput"]) == {"embedded", "shared", "shared_x2"}
        for phase in (*measured["latency"].values(), *measured["throughput"].values()):
            assert PHASE_KEYS <= set(phase)
            assert phase["ok"] == phase["requests"] > 0, phase["problems"]
            assert CPU_KEYS <= set(phase)
        # Cached /route never reaches Redis (the memory layer answers); proxied requests do
        # (the shared circuit breakers); the embedded router never does.
        scripts = measured["latency"]["shared"]["redis_scripts_per_req"]
        assert scripts > 0 if kind == "chat" else scripts == 0
        assert measured["latency"]["embedded"]["redis_calls_per_req"] == 0
        assert results["replicas"][kind]["ratio"] > 0
        assert results["stores"][kind]["rps_ratio"] > 0
    # replica2 judged nothing (its verdicts came from Redis); each ledger has one row per request.
    assert results["checks"] == {
        "all_requests_ok": True,
        "verdicts_shared": True,
        "ledgers_complete": True,
        "routers_healthy": True,
        "no_redis_errors": True,
    }
