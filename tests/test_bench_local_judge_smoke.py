"""benchmarks/bench_local_judge.py runs end to end in --quick mode on the public eval data: every
set trained and measured, every predictor and curve figure present, nothing written but --json.

No figure is asserted beyond its range: a fifth of each file is too few rows to rank the judges.
This keeps the benchmark from rotting. Skipped where the eval data is not on the machine.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from fakes import load_script

pytestmark = pytest.mark.slow  # trains several models: tens of seconds

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks" / "bench_local_judge.py"
DATA = Path(os.environ.get("JUDGE_ROUTER_EVAL_DATA", ROOT.parent / "shared" / "eval-data"))


@pytest.mark.skipif(not (DATA / "shuhao02__RouterDC").is_dir(), reason=f"no eval data at {DATA}")
def test_quick_run_measures_every_set(tmp_path: Path) -> None:
    bench = load_script(BENCH)
    out = tmp_path / "local.json"
    before = sorted(p.name for p in ROOT.iterdir())

    assert bench.main(["--quick", "--data", str(DATA), "--json", str(out)]) == 0

    assert sorted(p.name for p in ROOT.iterdir()) == before  # no model file left in the repository
    results = json.loads(out.read_text(encoding="utf-8"))
    measured = {(entry["task"], entry["test"]) for entry in results["sets"]}
    assert measured == {
        ("MBPP", "mbpp_test.csv"),
        ("ARC-c + MBPP", "arc_challenge_test.csv"),
        ("ARC-c + MBPP", "mbpp_test.csv"),
        ("MATH-500", "test.jsonl"),
    }
    assert "MT-Bench" in results["skipped"]
    for entry in results["sets"]:
        assert set(entry["predictors"]) == {"local", "length_only", "heuristic", "random", "oracle"}
        assert 0 <= entry["predictors"]["local"]["accuracy"] <= 1
        assert 0 <= entry["hybrid"]["answered_locally"] <= 1
        assert entry["latency_ms"]["warm_p50"] > 0 and entry["model_bytes"] > 0
        assert entry["training"]["grid"] and entry["training"]["train_rows"] > 0
        margins = entry["over_length"]
        for name in ("local", "heuristic"):
            assert margins[name]["low"] <= margins[name]["high"]
            assert margins[name]["draws"] > 0
        if entry["task"] == "MATH-500":
            assert "curves" not in entry  # no per-model outcomes
            assert margins["measure"] == "accuracy"
            continue
        assert margins["measure"] == "APGR"
        for pair in ("low_high", "medium_high"):
            for name, curve in entry["curves"][pair].items():
                assert isinstance(curve["apgr"], float), (pair, name)
                assert 0 <= curve["cpt_50"] <= curve["cpt_80"] <= 1, (pair, name)
        assert set(entry["target"]) >= {"apgr_above_length", "local_95pct_at_half_cost"}
