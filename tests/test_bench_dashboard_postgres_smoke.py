"""benchmarks/bench_dashboard_postgres.py runs end to end with tiny counts on a real PostgreSQL:
every view timed on both backends. No timing is asserted; this keeps the script from rotting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fakes import load_script
from store_servers import missing, postgres_absent

pytestmark = pytest.mark.slow  # a real PostgreSQL server

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_dashboard_postgres.py"


def test_a_tiny_run_times_every_view_on_both_backends(tmp_path: Path) -> None:
    if reason := postgres_absent():
        missing(reason)
    bench = load_script(BENCH)
    out = tmp_path / "dashboard.json"

    assert bench.main(["--rows", "300", "--repeats", "1", "--json", str(out)]) == 0

    results = json.loads(out.read_text(encoding="utf-8"))
    assert results["meta"]["rows"] == 300
    expected = {f"{view}, {window}" for view in bench.VIEWS for window in ("all", "7 days")}
    for backend in ("postgresql", "sqlite"):
        assert set(results["views"][backend]) == expected
        assert all(timing["p50_ms"] > 0 for timing in results["views"][backend].values())
