"""benchmarks/bench_http_clients.py runs end to end with tiny counts: every client measured.

No timing is asserted (the figures are the machine's); this keeps the script from rotting.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fakes import load_script

pytestmark = pytest.mark.slow  # real processes: run with -m slow, or all

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_http_clients.py"


def test_a_tiny_run_measures_every_client(tmp_path: Path) -> None:
    bench = load_script(BENCH)
    out = tmp_path / "clients.json"

    assert bench.main(["--requests", "30", "--rounds", "2", "--json", str(out)]) == 0

    results = json.loads(out.read_text(encoding="utf-8"))
    assert set(results["at_64"]) == set(bench.SENDERS)
    assert all(run["cpu_us_per_call"] > 0 for run in results["at_64"].values())
    clients = results["clients"]
    assert set(clients) == set(bench.CLIENTS)
    for figures in clients.values():
        assert figures["cpu_us_per_call"] > 0 and figures["p50_ms"] > 0
        assert figures["stream_first_chunk_p50_ms"] > 0
