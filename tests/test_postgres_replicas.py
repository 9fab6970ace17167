"""Replicas as real `serve` processes on one real PostgreSQL: started together they migrate once;
every answered request has exactly one row after one of them is SIGKILLed under load; PostgreSQL
stopped mid-run leaves both answering, and their queued rows arrive once it is back."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml

from judge_router.accounting.migrations import MIGRATIONS, SQLITE_ONLY
from judge_router.testing.fake_upstream import FakeUpstream

from fakes import settings_data
from servers import clean_env, start_server
from store_servers import PostgresServer, wait_for

pytestmark = pytest.mark.slow  # real processes and a real PostgreSQL server


def write_config(tmp_path: Path, upstream: FakeUpstream, url: str) -> Path:
    data = settings_data(tmp_path)
    data["judge"]["model"] = "openai/fake-judge"
    for entries in [[data["judge"]], *data["tiers"].values()]:
        for entry in entries:
            entry["litellm_params"]["api_base"] = upstream.base_url
    data["ledger"] = {"url": url}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(data))
    return config


@contextmanager
def replicas(tmp_path: Path, config: Path, count: int = 2) -> Iterator[list[Any]]:
    """`count` serve processes started at the same moment, each with folders of its own; a
    [process, base URL, log] each. Those still running at the end get SIGTERM."""
    started: list[Any] = [None] * count

    def start(index: int) -> None:
        home = tmp_path / f"replica{index}"
        home.mkdir()
        log = home / "server.log"
        process, base = start_server(config, clean_env(home), log)
        started[index] = [process, base, log]

    threads = [threading.Thread(target=start, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    try:
        assert all(started), "a replica did not start"
        yield started
    finally:
        for found in started:
            if found is not None and found[0].poll() is None:
                os.killpg(found[0].pid, signal.SIGTERM)
                found[0].wait(timeout=30)


def ask(http: httpx.Client, base: str, worker: int, index: int) -> str | None:
    """One /route or /complete; the request id if it was answered."""
    prompt = f"q{worker}-{index % 7}"
    if index % 2:
        response = http.post(f"{base}/route", json={"prompt": prompt, "tier": "low"})
    else:
        body = {"messages": [{"role": "user", "content": prompt}], "tier": "low"}
        response = http.post(f"{base}/complete", json=body)
    if response.status_code != 200:
        return None
    found = response.headers.get("x-judge-router-request-id") or response.json()["request_id"]
    return str(found)


def row_counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        found = conn.execute("SELECT request_id, count(*) FROM decisions GROUP BY request_id")
        return {str(request_id): int(n) for request_id, n in found}


def test_replicas_migrate_once_and_a_sigkill_loses_no_answered_row(
    tmp_path: Path, postgres_url: str
) -> None:
    def config(upstream: FakeUpstream) -> Path:
        return write_config(tmp_path, upstream, postgres_url)

    with FakeUpstream() as upstream, replicas(tmp_path, config(upstream)) as started:
        logs = [log.read_text() for _, _, log in started]
        assert sum("migrations applied" in text for text in logs) == 1, logs
        with psycopg.connect(postgres_url) as conn:
            applied = [row[0] for row in conn.execute("SELECT name FROM _migrations")]
        assert sorted(applied) == [name for name, _ in MIGRATIONS if name not in SQLITE_ONLY]

        answered: list[str] = []
        lock = threading.Lock()
        stop = threading.Event()
        victim, survivor = started

        def client(worker: int) -> None:
            base = (victim if worker % 2 else survivor)[1]
            with httpx.Client(timeout=5) as http:
                for index in range(600):  # bounded: the kill comes long before the end
                    if stop.is_set():
                        return
                    try:
                        found = ask(http, base, worker, index)
                    except httpx.TransportError:
                        base = survivor[1]  # the load balancer sends it elsewhere
                        continue
                    if found is not None:
                        with lock:
                            answered.append(found)

        with ThreadPoolExecutor(6) as pool:
            futures = [pool.submit(client, worker) for worker in range(6)]
            wait_for(lambda: len(answered) >= 200, "load to build up", 60)
            os.killpg(victim[0].pid, signal.SIGKILL)
            at_kill = len(answered)
            wait_for(lambda: len(answered) >= at_kill + 100, "the survivor to answer more", 60)
            stop.set()
            for future in futures:
                future.result()
        victim[0].wait(timeout=10)
    counts = row_counts(postgres_url)
    missing = [request_id for request_id in answered if request_id not in counts]
    assert not missing, f"{len(missing)} of {len(answered)} answered requests have no row"
    assert len(set(answered)) == len(answered) and set(counts.values()) == {1}


def test_postgresql_stopped_under_two_replicas_then_back(
    tmp_path: Path, postgres_server: PostgresServer, postgres_url: str
) -> None:
    def config(upstream: FakeUpstream) -> Path:
        return write_config(tmp_path, upstream, postgres_url)

    with FakeUpstream() as upstream, replicas(tmp_path, config(upstream)) as started:
        bases = [base for _, base, _ in started]
        answered: list[str] = []
        with httpx.Client(timeout=10) as http:

            def burst(worker: int) -> None:
                for index in range(20):
                    found = ask(http, bases[index % 2], worker, index)
                    assert found is not None, "a request was not answered"
                    answered.append(found)

            burst(0)
            postgres_server.stop()
            try:
                started_at = time.monotonic()
                burst(1)  # PostgreSQL away: both replicas answer
                assert time.monotonic() - started_at < 20
                healths = [http.get(f"{base}/healthz").json() for base in bases]
                assert [h["status"] for h in healths] == ["degraded", "degraded"]
                assert sum(h["ledger"]["pending_rows"] for h in healths) == 20
                assert all(h["ledger"]["dropped_rows"] == 0 for h in healths)
            finally:
                postgres_server.start()

            def recovered() -> bool:
                return all(http.get(f"{b}/healthz").json()["status"] == "ok" for b in bases)

            wait_for(recovered, "both replicas to write their queued rows", 60)
            stats = http.get(f"{bases[0]}/stats").json()
        assert stats["totals"]["requests"] == 40  # either replica sees every replica's rows
        counts = row_counts(postgres_url)
        assert sorted(counts) == sorted(answered) and set(counts.values()) == {1}


def test_a_replica_with_postgresql_down_at_start_serves_and_catches_up(
    tmp_path: Path, postgres_server: PostgresServer, postgres_url: str
) -> None:
    postgres_server.stop()
    try:
        with FakeUpstream() as upstream:
            config = write_config(tmp_path, upstream, postgres_url)
            home = tmp_path / "replica"
            home.mkdir()
            process, base = start_server(config, clean_env(home), home / "server.log")
            try:
                with httpx.Client(timeout=10) as http:
                    ids = [ask(http, base, 0, index) for index in range(6)]
                    assert http.get(f"{base}/healthz").json()["status"] == "degraded"
                    postgres_server.start()

                    def healthy() -> bool:
                        return bool(http.get(f"{base}/healthz").json()["status"] == "ok")

                    wait_for(healthy, "the replica to migrate and write its rows", 60)
            finally:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=30)
    finally:
        if postgres_server.process is None:
            postgres_server.start()
    assert sorted(row_counts(postgres_url)) == sorted(i for i in ids if i is not None)
    assert None not in ids
