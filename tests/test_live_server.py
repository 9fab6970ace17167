"""The real service in a subprocess on a loopback port: the quick start with no keys, and a live judge."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import yaml

from judge_router.fake_upstream import FakeUpstream

from fakes import settings_data

EXAMPLE = Path(__file__).parent.parent / "judge-router.example.yaml"
STARTUP_DEADLINE_S = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def running_server(config: Path, env: dict[str, str], log: Path) -> Iterator[str]:
    port = free_port()
    with log.open("w") as log_file:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "judge_router.cli",
                "serve",
                "--config",
                str(config),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],  # fmt: skip
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + STARTUP_DEADLINE_S
            while True:
                assert process.poll() is None, log.read_text()
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "server did not start:\n" + log.read_text()
                time.sleep(0.1)  # polling for readiness, bounded by the deadline above
            yield base
        finally:
            process.terminate()
            process.wait(timeout=20)


def clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env["JUDGE_ROUTER_CACHE__DIR"] = str(tmp_path / "cache")
    env["JUDGE_ROUTER_LEDGER__PATH"] = str(tmp_path / "ledger.sqlite")
    return env


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
