"""`serve --workers N` (serving/workers.py), as real processes: each worker listens on a socket of its
own, so a burst of keep-alive connections spreads over them; a worker that dies is replaced;
SIGHUP replaces every worker with no failed request; a taken port is a clear error.

Which worker holds a connection is read from /proc (the socket inodes each process has open).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from test_process import stop, write_config

from judge_router.testing.fake_upstream import FakeUpstream

from servers import STARTUP_DEADLINE_S, clean_env, start_server

pytestmark = [
    pytest.mark.slow,  # real processes: run with -m slow, or all
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]


def workers_of(supervisor: int) -> list[int]:
    """The worker processes (multiprocessing's spawned children, not its resource tracker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue  # it has just exited
        if ppid == supervisor and b"spawn_main" in command:
            found.append(int(entry.name))
    return sorted(found)


def sockets_on(port: int, state: str) -> list[int]:
    """Inodes of the sockets bound to `port` in `state` (0A listening, 01 established)."""
    inodes = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == state:
            inodes.append(int(fields[9]))
    return inodes


def owners(pids: list[int], inodes: list[int]) -> dict[int, int]:
    """How many of `inodes` each of `pids` holds."""
    held = dict.fromkeys(pids, 0)
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) in wanted:
                    held[pid] += 1
            except OSError:
                continue
    return held


def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + STARTUP_DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {STARTUP_DEADLINE_S} s: {what}")
        time.sleep(0.1)  # polling a process's state, bounded by the deadline


def serving_workers(process: subprocess.Popen[bytes], port: int) -> list[int]:
    """The workers, once both are up and each listens on a socket of its own."""
    until(lambda: len(workers_of(process.pid)) == 2, "two workers")
    until(lambda: len(sockets_on(port, "0A")) == 2, "two listening sockets")
    return workers_of(process.pid)


def two_workers(tmp_path: Path, upstream: FakeUpstream) -> tuple[subprocess.Popen[bytes], str, int]:
    """`serve --workers 2` on the fake provider: the process, its base URL and its port."""
    config = write_config(tmp_path, upstream)
    log = tmp_path / "server.log"
    process, base = start_server(config, clean_env(tmp_path), log, "--workers", "2")
    return process, base, int(base.rsplit(":", 1)[1])


def test_a_burst_of_kept_connections_spreads_over_the_workers(tmp_path: Path) -> None:
    with FakeUpstream() as upstream:
        process, _, port = two_workers(tmp_path, upstream)
        try:
            workers = serving_workers(process, port)
            connections = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
            for connection in connections:  # one request each: every connection is accepted
                connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            for connection in connections:
                assert connection.recv(65536).startswith(b"HTTP/1.1 200")
            held = owners(workers, sockets_on(port, "01"))
            for connection in connections:
                connection.close()
        finally:
            stop(process)
    # The kernel spreads connections by a hash: both hold some (all 20 on one: p ≈ 2e-6).
    assert sum(held.values()) == 20 and all(count > 0 for count in held.values()), held


def test_a_dead_worker_is_replaced_and_sighup_replaces_every_worker(tmp_path: Path) -> None:
    with FakeUpstream() as upstream:
        process, base, port = two_workers(tmp_path, upstream)
        try:
            first = serving_workers(process, port)
            os.kill(first[0], signal.SIGKILL)
            until(lambda: first[0] not in workers_of(process.pid), "the killed worker gone")
            second = serving_workers(process, port)
            assert first[1] in second and first[0] not in second

            def route(n: int) -> int:
                body = {"prompt": f"question {n} [[tier:low]]"}
                try:
                    return httpx.post(f"{base}/route", json=body, timeout=30).status_code
                except httpx.RemoteProtocolError:
                    # A stopping worker closes the connections it holds with no request read yet
                    # (as uvicorn's own supervisor's workers do); like the OpenAI SDK, send again.
                    # A reset (a connection lost in a closed socket's queue) is not retried.
                    return httpx.post(f"{base}/route", json=body, timeout=30).status_code

            os.kill(process.pid, signal.SIGHUP)
            with ThreadPoolExecutor(4) as pool:  # requests all along the replacement
                statuses = []
                deadline = time.monotonic() + STARTUP_DEADLINE_S
                while set(workers_of(process.pid)) & set(second):
                    assert time.monotonic() < deadline, "SIGHUP did not replace the workers"
                    statuses += pool.map(route, range(len(statuses), len(statuses) + 4))
            third = serving_workers(process, port)
            statuses += [route(n) for n in range(4)]
        finally:
            stop(process)
    assert not set(third) & set(second)
    assert statuses and set(statuses) == {200}, statuses


def test_a_taken_port_is_a_clear_error(tmp_path: Path) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        with FakeUpstream() as upstream:
            config = write_config(tmp_path, upstream)
            serve = [sys.executable, "-m", "judge_router.cli", "serve", "--config", str(config)]
            done = subprocess.run(
                [*serve, "--port", str(port), "--workers", "2"],
                env=clean_env(tmp_path),
                capture_output=True,
                text=True,
                timeout=120,
            )
    finally:
        taken.close()
    assert done.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr, done.stderr
