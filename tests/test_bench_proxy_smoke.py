"""benchmarks/bench_proxy.py runs end to end in --quick mode: every figure present, every request ok.

No timing is asserted: the figures depend on the machine. This keeps the benchmark from rotting.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from fakes import load_script

pytestmark = pytest.mark.slow  # real processes or servers: run with -m slow, or all

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_proxy.py"
PHASE_KEYS = {"requests", "ok", "failed", "problems", "rps", "p50_ms", "p95_ms", "block_p50_ms"}


def load_benchmark() -> ModuleType:
    return load_script(BENCH)


def test_quick_run_reports_every_figure_and_every_request_succeeds(tmp_path: Path) -> None:
    bench = load_benchmark()
    out = tmp_path / "proxy.json"

    assert bench.main(["--quick", "--json", str(out)]) == 0

    results = json.loads(out.read_text(encoding="utf-8"))
    assert {"meta", "raw_http", "bare_litellm", "router", "overhead", "checks"} <= set(results)
    assert results["meta"]["quick"] is True
    for path in ("bare_litellm", "router"):
        for kind in ("latency", "throughput", "stream"):
            phase = results[path][kind]
            assert PHASE_KEYS <= set(phase), (path, kind)
            assert phase["ok"] == phase["requests"] > 0, (path, kind, phase["problems"])
            assert phase["failed"] == 0 and phase["problems"] == []
        assert "first_byte_p50_ms" in results[path]["stream"]
    for kind in ("latency", "throughput", "stream"):
        assert results["raw_http"][kind]["failed"] == 0
    assert results["router"]["cache_fill"]["ok"] == results["meta"]["prompts"]

    checks = results["checks"]
    assert checks["all_requests_ok"] is True
    # Every routed request came back 200 with router.source "cache", and the ledger agrees.
    assert checks["ledger_all_cached"] is True
    overhead = results["overhead"]
    assert {"p50_ms", "target_p50_ms", "target_met", "router_rps", "bare_litellm_rps"} <= set(
        overhead
    )
