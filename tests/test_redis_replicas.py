"""Several `judge-router serve` processes sharing one real redis-server: one judge call per prompt
across them, one rate limit, one set of circuits; Redis stopped mid-run, then back."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml

from judge_router.testing.fake_upstream import FakeUpstream

from fakes import model_entry, settings_data
from servers import clean_env, start_server
from store_servers import RedisServer, wait_for

pytestmark = pytest.mark.slow  # real processes and a real redis-server


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    yield server
    server.close()


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


class Replicas:
    """`count` serve processes on one config, each with its own SQLite ledger."""

    def __init__(self, tmp_path: Path, data: dict[str, Any], count: int):
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump(data))

        def start(index: int) -> tuple[subprocess.Popen[bytes], str]:
            home = tmp_path / f"replica-{index}"
            home.mkdir()
            return start_server(config, clean_env(home), home / "server.log")

        with ThreadPoolExecutor(count) as pool:  # litellm's import takes seconds: start together
            started = list(pool.map(start, range(count)))
        self.processes = [process for process, _ in started]
        self.bases = [base for _, base in started]

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.wait(timeout=30)


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[list[Replicas]]:
    made: list[Replicas] = []
    yield made
    for group in made:
        group.stop()


def shared_config(tmp_path: Path, redis: RedisServer, upstream: FakeUpstream) -> dict[str, Any]:
    data = settings_data(tmp_path, cache={"backend": "redis", "redis_url": redis.url})
    # Slow enough that every request of a burst is in flight while the first is judged.
    data["judge"]["model"] = "openai/slow-500-judge"
    for entries in [[data["judge"]], *data["tiers"].values()]:
        for entry in entries:
            entry["litellm_params"]["api_base"] = upstream.base_url
    return data


def judge_calls(upstream: FakeUpstream, marker: str) -> int:
    """Calls the fake provider got for the judge about a prompt containing `marker`."""
    return sum(
        1
        for request in upstream.requests
        if "judge" in str((request.body or {}).get("model")) and marker in str(request.body)
    )


def route(http: httpx.Client, base: str, prompt: str, **extra: Any) -> httpx.Response:
    body = {"messages": [{"role": "user", "content": prompt}], **extra}
    return http.post(f"{base}/route", json=body)


def test_a_burst_of_one_new_prompt_over_three_replicas_makes_one_judge_call(
    tmp_path: Path, redis_server: RedisServer, upstream: FakeUpstream, replicas: list[Replicas]
) -> None:
    group = Replicas(tmp_path, shared_config(tmp_path, redis_server, upstream), 3)
    replicas.append(group)
    prompt = "burst-prompt-7f3a: prove that the halting problem is undecidable"
    with httpx.Client(timeout=20) as http, ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda i: route(http, group.bases[i % 3], prompt), range(20)))
    assert [a.status_code for a in answers] == [200] * 20
    assert judge_calls(upstream, "burst-prompt-7f3a") == 1
    sources = [a.json()["source"] for a in answers]
    assert sources.count("llm") == 1 and sources.count("cache") == 19, sources
    assert {a.json()["tier"] for a in answers} == {"medium"}


def test_a_rate_limit_admits_n_a_minute_across_the_replicas(
    tmp_path: Path, redis_server: RedisServer, upstream: FakeUpstream, replicas: list[Replicas]
) -> None:
    data = shared_config(tmp_path, redis_server, upstream)
    data["server"]["rate_limit_per_minute"] = 3  # a token every 20 s: none comes back mid-test
    group = Replicas(tmp_path, data, 3)
    replicas.append(group)
    with httpx.Client(timeout=20) as http:
        statuses = [
            route(http, group.bases[i % 3], "hi", tier="low").status_code for i in range(12)
        ]
    assert statuses.count(200) == 3 and statuses.count(429) == 9, statuses


def test_a_circuit_opened_by_one_replica_is_open_for_the_others(
    tmp_path: Path, redis_server: RedisServer, upstream: FakeUpstream, replicas: list[Replicas]
) -> None:
    data = shared_config(tmp_path, redis_server, upstream)
    data["routing"] = {"circuit_breaker": {"failures": 2, "cooldown_s": 300}}
    data["tiers"]["low"] = [
        model_entry("fail-500-cheap", base=upstream.base_url),
        model_entry("cheap-b", base=upstream.base_url),
    ]
    group = Replicas(tmp_path, data, 2)
    replicas.append(group)
    first, second = group.bases
    body = {"model": "auto:low", "messages": [{"role": "user", "content": "hello"}]}

    def failing_calls() -> int:
        return sum(1 for r in upstream.requests if (r.body or {}).get("model") == "fail-500-cheap")

    with httpx.Client(timeout=20) as http:
        for _ in range(2):  # two failures in a row on the first replica open the circuit
            answer = http.post(f"{first}/v1/chat/completions", json=body)
            assert answer.status_code == 200 and answer.json()["model"] == "cheap-b"
        assert failing_calls() == 2
        health = http.get(f"{second}/healthz").json()
        assert "openai/fail-500-cheap" in health["open_circuits"]["models"]
        answer = http.post(f"{second}/v1/chat/completions", json=body)
        assert answer.status_code == 200 and answer.json()["model"] == "cheap-b"
    assert failing_calls() == 2  # the second replica skipped it: it never saw the failures


class Load:
    """Requests with fresh prompts to every replica from a thread, until stopped."""

    def __init__(self, bases: list[str]):
        self.bases = bases
        self.statuses: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=20) as http:
            for i in itertools.count():
                if self._stop.is_set():
                    return
                base = self.bases[i % len(self.bases)]
                self.statuses.append(route(http, base, f"load-{i}").status_code)

    def more_than(self, count: int) -> bool:
        return len(self.statuses) > count

    def stop(self) -> list[int]:
        self._stop.set()
        self._thread.join(timeout=30)
        return self.statuses


def test_redis_stopped_mid_run_answers_go_on_and_sharing_resumes(
    tmp_path: Path, redis_server: RedisServer, upstream: FakeUpstream, replicas: list[Replicas]
) -> None:
    data = shared_config(tmp_path, redis_server, upstream)
    data["judge"]["model"] = "openai/fake-judge"  # fast: the load should be many requests
    group = Replicas(tmp_path, data, 2)
    replicas.append(group)
    first, second = group.bases
    load = Load(group.bases)
    with httpx.Client(timeout=20) as http:
        try:
            outage_and_back(http, load, redis_server, group.bases)
        finally:
            statuses = load.stop()
        assert statuses.count(200) == len(statuses), statuses  # never an error, throughout
        assert route(http, first, "after-outage").json()["source"] == "llm"
        assert route(http, second, "after-outage").json()["source"] == "cache"
    assert judge_calls(upstream, "after-outage") == 1
    assert judge_calls(upstream, "outage-prompt") == 1


def outage_and_back(
    http: httpx.Client, load: Load, redis_server: RedisServer, bases: list[str]
) -> None:
    """Stop Redis under load, check one replica's degraded state, start Redis, wait for both."""
    first = bases[0]
    wait_for(lambda: load.more_than(5), "requests before the outage")
    redis_server.stop()
    during = len(load.statuses)
    wait_for(lambda: load.more_than(during + 10), "requests during the outage")
    repeated = [route(http, first, "outage-prompt") for _ in range(2)]
    assert [a.json()["source"] for a in repeated] == ["llm", "cache"]  # this replica's memory
    health = http.get(f"{first}/healthz").json()
    assert health["status"] == "degraded"
    assert [(link["reachable"], link["uses"]) for link in health["redis"]] == [
        (False, ["cache", "state"])
    ]
    metrics = http.get(f"{first}/metrics").text
    assert 'judge_router_redis_up{uses="cache,state"} 0.0' in metrics
    assert 'judge_router_redis_fallbacks_total{kind="judged_alone",uses="cache,state"}' in (metrics)

    redis_server.start()  # empty: a restarted Redis without persistence
    for base in bases:
        wait_for(lambda b=base: http.get(f"{b}/healthz").json()["status"] == "ok",
                 f"{base} to see Redis again")  # fmt: skip
    after = len(load.statuses)
    wait_for(lambda: load.more_than(after + 5), "requests after the outage")


def test_a_killed_replicas_claim_lapses_and_another_replica_judges(
    tmp_path: Path, redis_server: RedisServer, upstream: FakeUpstream, replicas: list[Replicas]
) -> None:
    data = shared_config(tmp_path, redis_server, upstream)
    data["judge"]["model"] = "openai/slow-2000-judge"
    data["judge"]["timeout_s"] = 6
    data["cache"]["lock_s"] = 3  # above the judge's 2 s, as the docs advise
    group = Replicas(tmp_path, data, 2)
    replicas.append(group)
    doomed, survivor = group.bases
    prompt = "orphaned-claim-91c2: summarise the proof"

    def doomed_request() -> None:
        with contextlib.suppress(httpx.TransportError):  # its server dies under it
            with httpx.Client(timeout=20) as http:
                route(http, doomed, prompt)

    pending = threading.Thread(target=doomed_request, daemon=True)
    pending.start()
    wait_for(lambda: judge_calls(upstream, "orphaned-claim-91c2") == 1, "the first judge call")
    os.killpg(group.processes[0].pid, signal.SIGKILL)  # holding the claim, verdict unstored
    group.processes[0].wait(timeout=10)
    pending.join(timeout=20)
    client = redis.Redis(host="127.0.0.1", port=redis_server.port)
    try:
        orphaned = client.keys("jr:judging:*")
    finally:
        client.close()
    assert len(orphaned) == 1  # the dead replica's claim is still there: the survivor must wait
    with httpx.Client(timeout=20) as http:
        answer = route(http, survivor, prompt)
    assert answer.status_code == 200 and answer.json()["source"] == "llm"
    assert judge_calls(upstream, "orphaned-claim-91c2") == 2  # the survivor judged it itself
