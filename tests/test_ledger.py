"""The ledger: failures never fail a request, waiting rows are flushed, migrations run once."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from judge_router.accounting.migrations import connect, migrate
from judge_router.accounting.sqlite_ledger import SqliteLedger
from judge_router.config import Settings
from judge_router.service.factory import build_engine
from judge_router.serving.app import create_app

from fakes import ledger_row

FAST_RETRY = (0.01, 0.01)  # the writer's backoff, shortened so a fixed disk is noticed at once


row = ledger_row


async def test_rows_wait_in_memory_while_the_ledger_is_unwritable_then_flush(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file where the ledger's directory should be")
    ledger = SqliteLedger(blocker / "ledger.sqlite", backoff_s=FAST_RETRY)
    assert not await ledger.record(row("a")) and not await ledger.record(row("b"))
    assert ledger.pending == 2 and ledger.write_errors >= 2 and not (await ledger.health()).writable
    blocker.unlink()  # the operator fixes the disk
    assert await ledger.record(row("c"))
    assert ledger.pending == 0 and ledger.dropped == 0
    assert [r["request_id"] for r in await ledger.rows()] == ["a", "b", "c"]
    await ledger.close()


async def test_memory_bound_counts_what_is_dropped(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("x")
    ledger = SqliteLedger(blocker / "ledger.sqlite", max_pending=3, backoff_s=FAST_RETRY)
    for index in range(5):
        await ledger.record(row(str(index)))
    assert ledger.pending == 3 and ledger.dropped == 2
    await ledger.close()  # still unwritable, and so is the recovery file beside it: counted
    assert ledger.dropped == 5


async def test_unwritable_ledger_never_fails_a_request(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    (tmp_path / "blocked").write_text("x")
    settings = make_settings(
        judge={"model": "heuristic"}, ledger={"path": str(tmp_path / "blocked" / "l.sqlite")}
    )
    engine = build_engine(settings)
    transport = httpx.ASGITransport(app=create_app(settings, engine))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        routed = await client.post("/route", json={"prompt": "hello"})
        health = (await client.get("/healthz")).json()
        metrics = (await client.get("/metrics")).text
    await engine.aclose()
    assert routed.status_code == 200
    assert health["status"] == "degraded"
    assert health["ledger"]["pending_rows"] == 1 and health["ledger"]["write_errors"] >= 1
    assert 'judge_router_errors_total{kind="ledger_write"} 1.0' in metrics


def test_migrations_apply_once(tmp_path: Path) -> None:
    conn = connect(tmp_path / "l.sqlite")
    assert migrate(conn) == [
        "001_decisions",
        "002_completions",
        "003_callers_and_prompts",
        "004_daily_rollups",
        "005_policy",
        "006_quality",
        "007_learning",
        "008_dashboard_rollups",
        "009_dashboard_outcome_rollups",
    ]
    assert migrate(conn) == []
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


async def test_a_final_row_replaces_its_provisional_row_also_after_a_failure(
    tmp_path: Path,
) -> None:
    ledger = SqliteLedger(tmp_path / "ledger.sqlite")
    provisional = row("s")
    provisional.status = "incomplete"
    assert await ledger.record(provisional)
    final = row("s")
    final.status, final.completion_tokens = "ok", 42
    assert await ledger.record(final, replace=True)
    assert [(r["status"], r["completion_tokens"]) for r in await ledger.rows()] == [("ok", 42)]
    assert not await ledger.record(
        row("s")
    )  # without replace, a second row for an id is refused...
    assert ledger.dropped == 1 and ledger.pending == 0  # ...dropped and counted, not retried
    assert await ledger.record(row("u"))  # so it cannot block the rows after it
    await ledger.close()

    blocker = tmp_path / "data"
    blocker.write_text("a file where the ledger's directory should be")
    waiting = SqliteLedger(blocker / "ledger.sqlite", backoff_s=FAST_RETRY)
    assert not await waiting.record(provisional) and not await waiting.record(final, replace=True)
    blocker.unlink()
    assert await waiting.record(row("t"))  # the waiting rows go in, in order: the final one wins
    assert [(r["request_id"], r["status"]) for r in await waiting.rows()] == [
        ("s", "ok"),
        ("t", "routed"),
    ]
    await waiting.close()


async def wait_until_written(ledger: SqliteLedger, seconds: float = 30.0) -> None:
    """Wait (bounded) for the writer to empty its queue."""
    async with asyncio.timeout(seconds):
        while ledger.pending:
            await asyncio.sleep(0.01)


async def test_rows_unwritable_at_shutdown_are_saved_and_written_at_the_next_start(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file where the ledger's directory should be")
    saved = tmp_path / "recovery" / "ledger.pending.jsonl"
    ledger = SqliteLedger(blocker / "ledger.sqlite", backoff_s=FAST_RETRY, recovery_path=saved)
    for name in ("a", "b", "c"):
        assert not await ledger.record(row(name))
    await ledger.close()
    assert ledger.dropped == 0 and len(saved.read_text().splitlines()) == 3  # nothing lost
    blocker.unlink()  # the disk is fixed; the service starts again
    again = SqliteLedger(blocker / "ledger.sqlite", backoff_s=FAST_RETRY, recovery_path=saved)
    await wait_until_written(again)
    assert [r["request_id"] for r in await again.rows()] == ["a", "b", "c"]
    assert not saved.exists()
    await again.close()


async def test_an_unwritable_ledger_logs_when_its_state_changes_not_per_request(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("x")
    ledger = SqliteLedger(blocker / "ledger.sqlite", commit_wait_s=0.05, backoff_s=FAST_RETRY)
    with caplog.at_level(logging.WARNING, logger="judge_router.accounting.sqlite_ledger"):
        for index in range(30):
            await ledger.record(row(str(index)))
        blocker.unlink()
        # Written at once or queued behind the backlog, depending on how soon the writer retries:
        # either way it lands, and the recovery is logged once.
        await ledger.record(row("last"))
        await wait_until_written(ledger)
        assert len(await ledger.rows()) == 31
        await ledger.close()
    lines = [r.getMessage() for r in caplog.records if r.name.endswith("sqlite_ledger")]
    assert len(lines) == 2, lines  # one when writes start failing, one when they recover
    assert "failing" in lines[0] and "writable again" in lines[1]


async def test_the_backlog_is_retried_by_the_writer_not_by_every_request(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("x")
    ledger = SqliteLedger(blocker / "ledger.sqlite", commit_wait_s=0.01, backoff_s=(1.0, 1.0))
    for index in range(50):
        await ledger.record(row(str(index)))
    # 50 requests in well under the 1 s backoff: the first failure, then no retry at all.
    assert ledger.pending == 50 and ledger.write_errors <= 2
    assert not (await ledger.health()).writable
    await ledger.close()


HOLD_LOCK = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("ROLLBACK")
"""


@pytest.mark.slow
async def test_a_held_ledger_lock_freezes_nothing(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(judge={"model": "heuristic"})
    engine = build_engine(settings)
    transport = httpx.ASGITransport(app=create_app(settings, engine))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(settings.ledger.path), "15"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        slowest = 0.0
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            for index in range(10):
                started = time.perf_counter()
                routed = await client.post("/route", json={"prompt": f"question {index}"})
                health = await client.get("/healthz")
                slowest = max(slowest, time.perf_counter() - started)
                assert routed.status_code == 200 and health.status_code == 200
            waiting = health.json()["ledger"]["pending_rows"]
        assert slowest < 1.0  # /route and /healthz answered while another process held the lock
        assert waiting == 10 and holder.poll() is None  # rows queued while the lock was held
    finally:
        holder.wait(timeout=30)
    ledger = engine.ledger
    assert isinstance(ledger, SqliteLedger)
    await wait_until_written(ledger)  # once released, the writer commits every waiting row
    assert len(await ledger.rows()) == 10 and ledger.dropped == 0
    await engine.aclose()
