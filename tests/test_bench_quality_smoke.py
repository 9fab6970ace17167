"""benchmarks/bench_quality.py runs end to end in --quick mode: every figure present, every request
ok, the background work done by the quality router and skipped by the request_path one.

No timing is asserted: the figures depend on the machine. This keeps the benchmark from rotting.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.slow  # real processes or servers: run with -m slow, or all

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_quality.py"


def load_benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_quality_under_test", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building classes
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def test_quick_run_measures_every_configuration(tmp_path: Path) -> None:
    bench = load_benchmark()
    out = tmp_path / "quality.json"

    assert bench.main(["--quick", "--json", str(out)]) == 0

    results = json.loads(out.read_text(encoding="utf-8"))
    for name in ("plain", "quality", "request_path"):
        for kind in ("latency", "throughput", "stream"):
            phase = results[name][kind]
            assert phase["ok"] == phase["requests"] > 0, (name, kind, phase["problems"])
    for name in ("quality", "request_path"):
        assert {"p50_ms", "block_p50_ms", "router_cpu_us_per_req"} <= set(
            results["added"][name]["latency"]
        )
    assert results["quality"]["outcomes"]["sample"]["rows"] > 0
    assert all(results["checks"].values()), results["checks"]
    assert 0 < results["shares"]["sample"] < 100
