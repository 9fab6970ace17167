"""Start the real `judge-router serve` in a subprocess on a free loopback port, for process tests."""

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

STARTUP_DEADLINE_S = 120  # a bound, not a wait: two workers importing litellm on a busy 2-core machine


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env(tmp_path: Path) -> dict[str, str]:
    """The environment without any provider key, with cache and ledger under `tmp_path`."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env["JUDGE_ROUTER_CACHE__DIR"] = str(tmp_path / "cache")
    env["JUDGE_ROUTER_LEDGER__PATH"] = str(tmp_path / "ledger.sqlite")
    return env


def start_server(
    config: Path, env: dict[str, str], log: Path, *extra: str
) -> tuple[subprocess.Popen[bytes], str]:
    """The process (in its own session, so a signal reaches every worker) and its base URL."""
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
                *extra,
            ],  # fmt: skip
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_DEADLINE_S
    while True:
        if process.poll() is not None:
            raise AssertionError("server exited:\n" + log.read_text())
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return process, base
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("server did not start:\n" + log.read_text())
        time.sleep(0.1)  # polling for readiness, bounded by the deadline


@contextmanager
def running_server(config: Path, env: dict[str, str], log: Path) -> Iterator[str]:
    process, base = start_server(config, env, log)
    try:
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)
