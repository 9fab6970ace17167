"""The service on a PostgreSQL ledger (`ledger.url`), on a real server: the same traffic gives the
rows and /stats that SQLite gives, an answered request's row is committed before its answer, a
PostgreSQL stopped mid-run leaves requests answering and /healthz degraded while rows queue, and
they arrive once it is back; `report`, `outcomes` and `train --from-ledger` read from it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import respx
from click.testing import CliRunner

from judge_router.accounting.outcome_row import OutcomeRow, grade_score
from judge_router.accounting.postgres_ledger import PostgresLedger
from judge_router.cli.main import main
from judge_router.config import Settings
from judge_router.service.engine import Engine
from judge_router.service.factory import build_engine
from judge_router.serving.app import create_app
from judge_router.testing.fake_upstream import FakeUpstream
from judge_router.types import Tier

from fakes import ask, verdict_reply
from quality_setup import loopback_settings
from store_servers import PostgresServer

pytestmark = pytest.mark.slow  # a real PostgreSQL server

VOLATILE = {"request_id", "created_at", "latency_ms", "judge_latency_ms", "upstream_latency_ms"}


def settings_for(tmp_path: Path, upstream: FakeUpstream, url: str | None) -> Settings:
    ledger: dict[str, Any] = {"path": str(tmp_path / "ledger.sqlite")}
    if url is not None:
        ledger = {**ledger, "url": url, "max_pending_rows": 100}
    return loopback_settings(
        tmp_path, upstream.base_url, judge={"model": "heuristic"}, ledger=ledger,
        cache={"dir": str(tmp_path / "cache")},
    )  # fmt: skip


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[tuple[Engine, httpx.AsyncClient]]:
    engine = build_engine(settings)
    transport = httpx.ASGITransport(app=create_app(settings, engine))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://router.test") as client:
            yield engine, client
    finally:
        await engine.aclose()


def chat(text: str, **fields: Any) -> dict[str, Any]:
    return {"model": "auto", "messages": [{"role": "user", "content": text}], **fields}


async def traffic(client: httpx.AsyncClient) -> list[str]:
    """The same requests, one after another: routes, completions, a stream, metadata, a
    forced tier, a repeated prompt (a cache hit); the request ids answered."""
    requests: list[tuple[str, dict[str, Any]]] = [
        ("/route", {"prompt": "hi"}),
        ("/route", {"prompt": "prove that there are infinitely many primes, step by step"}),
        ("/route", {"prompt": "hi"}),  # the verdict from the cache
        ("/route", {"prompt": "write a haiku", "metadata": {"team": "ads", "n": 3}}),
        ("/v1/chat/completions", chat("summarise this sentence", metadata={"team": "search"})),
        ("/v1/chat/completions", chat("design a distributed database", tier="high")),
        ("/v1/chat/completions", chat("count to three", stream=True)),
        ("/complete", {"messages": [{"role": "user", "content": "hello"}], "tier": "low"}),
    ]
    answered = []
    for path, body in requests:
        response = await client.post(path, json=body)
        assert response.status_code == 200, response.text
        found = response.headers.get("x-judge-router-request-id")
        answered.append(found or response.json()["request_id"])
    return answered


def steady(value: Any) -> Any:
    """`value` without what differs between two runs of the same traffic (ids, times)."""
    if isinstance(value, dict):
        return {k: steady(v) for k, v in value.items() if k not in VOLATILE and "latency" not in k}
    if isinstance(value, list):
        return [steady(item) for item in value]
    return value


async def test_the_same_traffic_gives_the_same_rows_and_stats_as_sqlite(
    tmp_path: Path, fake_provider: FakeUpstream, postgres_url: str
) -> None:
    results = []
    for name, url in (("sqlite", None), ("postgresql", postgres_url)):
        settings = settings_for(tmp_path / name, fake_provider, url)
        async with serving(settings) as (engine, client):
            assert isinstance(engine.ledger, PostgresLedger) is (url is not None)
            await traffic(client)
            stats = [(await client.get("/stats", params=q)).json() for q in STATS_QUERIES]
            results.append((steady(await engine.ledger.rows()), steady(stats)))
            assert (await client.get("/healthz")).json()["status"] == "ok"
    (sqlite_rows, sqlite_stats), (pg_rows, pg_stats) = results
    assert len(pg_rows) == 8 and pg_rows == sqlite_rows
    assert pg_stats == sqlite_stats


STATS_QUERIES: list[dict[str, str]] = [
    {},
    {"group_by": "tier"},
    {"group_by": "metadata.team"},
    {"group_by": "model", "metadata.team": "search"},
    {"since": "2020-01-01"},
]


async def test_an_answered_request_has_its_row_committed_before_its_answer(
    tmp_path: Path, fake_provider: FakeUpstream, postgres_url: str
) -> None:
    settings = settings_for(tmp_path, fake_provider, postgres_url)
    async with (
        serving(settings) as (engine, client),
        await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as observer,
    ):
        lock = asyncio.Lock()  # one observer connection, one query at a time
        missing: list[str] = []

        async def one(index: int) -> None:
            if index % 2:
                response = await client.post("/route", json={"prompt": f"question {index}"})
            else:
                response = await client.post("/v1/chat/completions", json=chat(f"ask {index}"))
            assert response.status_code == 200
            request_id = (
                response.headers.get("x-judge-router-request-id") or (response.json()["request_id"])
            )
            async with lock:  # looked for at once, on a connection of its own
                found = await observer.execute(
                    "SELECT 1 FROM decisions WHERE request_id = %s", (request_id,)
                )
                if await found.fetchone() is None:
                    missing.append(request_id)

        await asyncio.gather(*(one(index) for index in range(60)))
        assert missing == [] and (await engine.ledger.health()).pending_rows == 0


async def until_healthy(client: httpx.AsyncClient, seconds: float = 30.0) -> dict[str, Any]:
    async with asyncio.timeout(seconds):
        while True:
            health: dict[str, Any] = (await client.get("/healthz")).json()
            if health["status"] == "ok":
                return health
            await asyncio.sleep(0.05)


async def test_postgresql_stopped_mid_run_answers_go_on_and_the_rows_arrive_when_it_is_back(
    tmp_path: Path,
    fake_provider: FakeUpstream,
    postgres_server: PostgresServer,
    postgres_url: str,
) -> None:
    settings = settings_for(tmp_path, fake_provider, postgres_url)
    try:
        async with serving(settings) as (engine, client):
            before = await traffic(client)
            postgres_server.stop()
            during = await traffic(client)  # every request answered, PostgreSQL away
            health = (await client.get("/healthz")).json()
            assert health["status"] == "degraded"
            # Counted, in memory: a row per request, and the stream's provisional row too.
            assert health["ledger"]["pending_rows"] == len(during) + 1
            assert health["ledger"]["writable"] is False and health["ledger"]["write_errors"] >= 1
            assert health["ledger"]["dropped_rows"] == 0
            stats = await client.get("/stats")
            assert stats.status_code == 503 and "PostgreSQL" in stats.text
            postgres_server.start()
            health = await until_healthy(client)  # recovered without any more traffic
            assert health["ledger"]["pending_rows"] == 0
            rows = await engine.ledger.rows()
            assert sorted(row["request_id"] for row in rows) == sorted(before + during)
            stats = (await client.get("/stats")).json()
            assert stats["totals"]["requests"] == len(before) + len(during)
    finally:
        if postgres_server.process is None:
            postgres_server.start()


def test_report_and_outcomes_read_from_postgresql(
    tmp_path: Path,
    fake_provider: FakeUpstream,
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = settings_for(tmp_path, fake_provider, postgres_url)

    async def serve() -> dict[str, Any]:
        async with serving(settings) as (engine, client):
            ids = await traffic(client)
            feedback = OutcomeRow(ids[4], "feedback", "openai/cheap-a", "low", score=1.0)
            assert await engine.ledger.record_outcome(feedback)
            stats: dict[str, Any] = (await client.get("/stats")).json()
            return stats

    stats = asyncio.run(serve())
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps(settings.model_dump(mode="json")))
    monkeypatch.setenv("JUDGE_ROUTER_CONFIG", str(config))
    assert not (tmp_path / "ledger.sqlite").exists()  # nothing went to SQLite
    runner = CliRunner()
    report = runner.invoke(main, ["report", "--json"])
    assert report.exit_code == 0, report.output
    assert json.loads(report.output)["totals"] == stats["totals"]
    exported = runner.invoke(main, ["outcomes"])
    assert exported.exit_code == 0, exported.output
    assert [json.loads(line)["source"] for line in exported.output.splitlines()] == ["feedback"]


def test_a_report_on_an_unreachable_postgresql_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_settings: Callable[..., Settings]
) -> None:
    from servers import free_port

    url = f"postgresql://jr@127.0.0.1:{free_port()}/none"  # nothing listens there
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps(make_settings(ledger={"url": url}).model_dump(mode="json")))
    monkeypatch.setenv("JUDGE_ROUTER_CONFIG", str(config))
    result = CliRunner().invoke(main, ["report"])
    assert result.exit_code == 1 and "PostgreSQL ledger cannot be reached" in result.output


def test_train_from_a_postgresql_ledger(
    make_settings: Callable[..., Settings],
    judge_route: respx.Route,
    tmp_path: Path,
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = make_settings(judge={"learn": True}, ledger={"url": postgres_url})
    tiers = [Tier.HIGH if n % 2 else Tier.LOW for n in range(40)]  # the LLM judge's verdicts
    judge_route.side_effect = [verdict_reply(tier=tier.value) for tier in tiers]

    async def serve() -> None:
        engine = build_engine(settings)
        ids = []
        for n in range(40):
            text = f"prove the theorem about graphs {n}" if n % 2 else f"hi there friend {n}"
            ids.append((await engine.route(ask(text))).request_id)
        await engine.ledger.record_outcome(
            OutcomeRow(ids[0], "sample", "openai/cheap-a", "low", score=grade_score(2), grade=2)
        )
        await engine.aclose()

    asyncio.run(serve())
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps(settings.model_dump(mode="json")))
    monkeypatch.setenv("JUDGE_ROUTER_CONFIG", str(config))
    out = tmp_path / "model.json"
    result = CliRunner().invoke(
        main, ["train", "--from-ledger", "--test-share", "0.25", "--out", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    trained = json.loads(result.output)
    assert trained["ledger"]["vectors"] == 40
    assert trained["ledger"]["from_outcomes"] == 1 and trained["ledger"]["from_llm_verdicts"] == 39
