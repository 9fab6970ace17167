"""The real service in a subprocess on a loopback port: the quick start with no keys, and a live judge."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import yaml

from judge_router.testing.fake_upstream import FakeUpstream

from fakes import settings_data
from servers import clean_env, running_server

pytestmark = pytest.mark.slow  # real processes or servers: run with -m slow, or all

EXAMPLE = Path(__file__).parent.parent / "judge-router.example.yaml"


def test_example_config_serves_with_no_keys_and_says_what_is_missing(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with running_server(EXAMPLE, clean_env(tmp_path), log) as base:
        health = httpx.get(f"{base}/healthz").json()
        routed = httpx.post(f"{base}/route", json={"prompt": "What is the capital of Peru?"})
        bad = httpx.post(f"{base}/route", json={"messages": []})
    assert health["judge"]["reachable_by_config"] is False
    assert health["judge"]["missing_credentials"] == ["OPENAI_API_KEY"]
    assert routed.status_code == 200
    assert routed.json()["source"] == "heuristic" and routed.json()["tier"] == "low"
    assert bad.status_code == 400 and "error" in bad.json()
    output = log.read_text()
    assert output.count("missing credentials") == 1
    assert "OPENAI_API_KEY" in output and "ANTHROPIC_API_KEY" in output
    assert (tmp_path / "ledger.sqlite").exists()


def test_live_server_with_a_loopback_judge(tmp_path: Path) -> None:
    with FakeUpstream() as upstream:
        data = settings_data(tmp_path)
        data["judge"]["model"] = "openai/fake-judge"
        data["judge"]["litellm_params"]["api_base"] = upstream.base_url
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump(data))
        with running_server(config, clean_env(tmp_path), tmp_path / "server.log") as base:
            body = {"prompt": "Design a consensus protocol [[tier:high]]"}
            first = httpx.post(f"{base}/route", json=body).json()
            second = httpx.post(f"{base}/route", json=body).json()
        judge_calls = [r for r in upstream.requests if r.path.endswith("/chat/completions")]
    assert (first["tier"], first["source"], first["cached"]) == ("high", "llm", False)
    assert first["judge_cost_usd"] > 0
    assert (second["tier"], second["source"], second["cached"]) == ("high", "cache", True)
    assert len(judge_calls) == 1
