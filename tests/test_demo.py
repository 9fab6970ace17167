"""`judge-router demo`: run for real (fake provider + the real service on loopback), it routes across
every tier, serves repeats from the cache, prints the savings, and leaves nothing behind."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from judge_router.cli.demo import PROMPTS, REPEATS, TIER_MODELS, print_demo

from servers import clean_env


def listening(url: str) -> bool:
    host, port = url.removeprefix("http://").split("/")[0].split(":")
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, int(port))) == 0


@pytest.mark.slow
def test_the_demo_routes_across_tiers_and_leaves_nothing_behind(tmp_path: Path) -> None:
    home, scratch = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    scratch.mkdir()
    env = clean_env(tmp_path)  # points JUDGE_ROUTER_LEDGER__PATH and __CACHE__DIR at tmp_path
    env.update(HOME=str(home), TMPDIR=str(scratch))
    env.pop("LITELLM_LOCAL_MODEL_COST_MAP", None)
    done = subprocess.run(
        [sys.executable, "-m", "judge_router.cli", "demo", "--json"],
        env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    requests = result["requests"]
    assert len(requests) == len(PROMPTS) + REPEATS
    assert {r["tier"] for r in requests} == {"low", "medium", "high"}
    assert {r["tier"]: r["model"] for r in requests} == TIER_MODELS
    assert [r["source"] for r in requests] == ["llm"] * len(PROMPTS) + ["cache"] * REPEATS
    assert all(r["cost_usd"] > 0 for r in requests)  # litellm's prices for the named models
    totals = result["stats"]["totals"]
    assert totals["requests"] == len(requests) and totals["errors"] == 0
    assert totals["judge_spend_usd"] > 0 and totals["net_savings_usd"] > 0
    # Its own cache and ledger, removed: not the user's, nor the ones the environment names.
    assert not (home / ".judge-router").exists()
    assert not (tmp_path / "ledger.sqlite").exists() and not (tmp_path / "cache").exists()
    assert os.listdir(scratch) == []
    assert not listening(result["service"]) and not listening(result["provider"])


def test_the_demo_prints_the_routing_and_the_savings() -> None:
    requests = [
        {"prompt": text, "tier": tier, "model": TIER_MODELS[tier], "source": "llm",
         "cost_usd": 1e-5, "baseline_cost_usd": 1e-4}
        for text, tier in PROMPTS
    ]  # fmt: skip
    zero = {"requests": 9, "judge_spend_usd": 1e-5, "realised_spend_usd": 9e-5,
            "baseline_spend_usd": 9e-4, "net_savings_usd": 8e-4, "savings_pct": 88.9}  # fmt: skip
    totals = {**zero, "proxied": 9, "errors": 0, "incomplete": 0, "cache_hit_rate": 0.0,
              "gross_savings_usd": 8.1e-4, "judge_roi": 81.0}  # fmt: skip
    stats = {"since": None, "totals": totals, "verdicts_by_source": {"llm": 9},
             "by_tier": [{"tier": "low", **zero}], "by_model": [], "by_day": []}  # fmt: skip
    console = Console(record=True, width=100)
    result = {"requests": requests, "stats": stats, "seconds": 6.5}
    print_demo(result, console)
    text = console.export_text()
    assert "Translate 'good morning' into French." in text and "gpt-5-mini" in text
    assert "net savings (after judge and grading)" in text and "88.9%" in text and "by tier" in text
    assert "done in 6.5 s" in text
