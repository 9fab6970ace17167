"""benchmarks/overhead.py runs end to end with tiny counts: every path measured, every request ok.

No timing is asserted: the figures depend on the machine. LiteLLM's proxy is left out (installing it
takes minutes); the rest keeps the script from rotting.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fakes import load_script

pytestmark = pytest.mark.slow  # real processes: run with -m slow, or all

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "overhead.py"
PATHS = {"raw_http", "bare_litellm", "router_litellm", "router_direct", "router_direct_w2",
         "route_cached"}  # fmt: skip


def test_a_tiny_run_measures_every_path(tmp_path: Path) -> None:
    bench = load_script(BENCH)
    out = tmp_path / "overhead.json"

    assert bench.main(["--quick", "--no-litellm-proxy", "--json", str(out)]) == 0

    results = json.loads(out.read_text(encoding="utf-8"))
    assert set(results["paths"]) == PATHS
    for name, path in results["paths"].items():
        phases = {"c1", "c20", "c64"} | ({"stream"} if name != "route_cached" else set())
        assert set(path) == phases, name
        for phase in path.values():
            assert phase["ok"] == phase["requests"] > 0, (name, phase["problems"])
    assert results["all_requests_ok"] is True
    assert set(results["ratios"]) == PATHS
    assert "rps_c20_vs_floor" in results["ratios"]["router_direct"]
    assert set(results["ratios"]["router_direct_w2"]["rps_vs_one_worker"]) == {"c20", "c64"}
    memory, zipf = results["scale"]["memory"], results["scale"]["zipf"]
    assert memory["distinct_prompts"] == [50, 200] and memory["failed"] == 0
    assert all(mb > 0 for mb in memory["rss_mb"])
    # Every drawn prompt judged once (a cold cache, one flight), every other request a hit.
    assert zipf["requests"] == 300 and zipf["failed"] == 0
    assert zipf["judge_calls"] == zipf["distinct_drawn"]
    assert zipf["cache_hits"] == zipf["requests"] - zipf["distinct_drawn"]
