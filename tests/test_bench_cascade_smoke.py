"""benchmarks/bench_cascade_stream.py runs end to end in --quick mode: every case streams, and the
figures keep the floor the fake provider's sleeps put under them (a buffered cascade that climbs
once waits for two whole answers before its first byte). No machine-dependent timing is asserted.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fakes import load_script

pytestmark = pytest.mark.slow  # real servers: run with -m slow, or all

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_cascade_stream.py"


def test_quick_run_measures_every_case(tmp_path: Path) -> None:
    bench = load_script(BENCH)
    out = tmp_path / "cascade.json"
    assert bench.main(["--quick", "--json", str(out)]) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    results, answer_ms = report["results"], report["args"]["answer_ms"]
    assert set(results) == set(bench.CASES)
    for figures in results.values():
        assert figures["requests"] == 3
        assert figures["whole_ms_p50"] >= figures["first_byte_ms_p50"] >= answer_ms
    assert results["cascade, climbs once"]["first_byte_ms_p50"] >= 2 * answer_ms
