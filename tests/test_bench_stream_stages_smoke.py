"""benchmarks/stream_stages.py runs end to end with a tiny count: every stage noted, in order.

No timing is asserted beyond the order of the stages (the figures are the machine's); this keeps
the probes from rotting when a probed function is renamed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fakes import load_script

pytestmark = pytest.mark.slow  # real processes: run with -m slow, or all

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "stream_stages.py"


def test_a_tiny_run_notes_every_stage_in_order(tmp_path: Path) -> None:
    bench = load_script(BENCH)
    out = tmp_path / "stages.json"

    assert bench.main(["--requests", "20", "--json", str(out)]) == 0

    results = json.loads(out.read_text(encoding="utf-8"))["this"]
    stages = [results["us_since_app"][stage] for stage, _ in bench.STAGES]
    assert stages == sorted(stages) and stages[-1] > 0
    assert results["requests"] >= 20
    assert results["router_first_byte_p50_ms"] > results["floor_first_byte_p50_ms"] > 0
