"""benchmarks/bench_quality.py runs end to end in --quick mode: every figure present, every request
ok, the background work done by the quality router and skipped by the request_path one.

No timing is asserted: the figures depend on the machine. This keeps the benchmark from rotting.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from fakes import load_script

pytestmark = pytest.mark.slow  # real processes or servers: run with -m slow, or all

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_quality.py"


def load_benchmark() -> ModuleType:
    return load_script(BENCH)


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
