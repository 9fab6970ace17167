"""The PostgreSQL ledger on a real server: the figures SQLite gives for the same rows, migrations run
once when replicas start together, rows queue (bounded, counted) while PostgreSQL is down and
arrive when it is back, and what is still unwritten at shutdown is written at the next start."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from judge_router.accounting.budgets import SpendScope
from judge_router.accounting.ledger import LedgerUnavailable
from judge_router.accounting.ledger_row import LedgerRow
from judge_router.accounting.migrations import MIGRATIONS, SQLITE_ONLY
from judge_router.accounting.migrations import connect as sqlite_connect
from judge_router.accounting.migrations import migrate as sqlite_migrate
from judge_router.accounting.outcome_row import OutcomeRow
from judge_router.accounting.postgres_ledger import PostgresLedger
from judge_router.accounting.postgres_reads import connect
from judge_router.accounting.postgres_schema import migrate
from judge_router.accounting.shadow_report import shadow_facts
from judge_router.accounting.sqlite_ledger import SqliteLedger
from judge_router.accounting.stats import summarise
from judge_router.accounting.stats_scan import ScanTooLong
from judge_router.accounting.stats_view import stats_view
from judge_router.evaluation.ledger_examples import ledger_examples

from fakes import ledger_row
from store_servers import PostgresServer

pytestmark = pytest.mark.slow  # a real PostgreSQL server

FAST = {"backoff_s": (0.05, 0.2), "commit_wait_s": 1.0}

# SQLite's migrations but the dashboard's, by name and in order.
SHARED = [name for name, _ in MIGRATIONS if name not in SQLITE_ONLY]


def varied_rows() -> list[LedgerRow]:
    """Rows that reach every part of the summaries: tiers, sources, statuses, days, rules, arms,
    budgets, keys, metadata of every JSON type (and one SQLite cannot parse), cascades."""
    rows = []
    for index in range(40):
        row = ledger_row(f"r{index:02d}")
        row.created_at = f"2026-11-{27 + index % 4:02d}T{index % 24:02d}:{index:02d}:00+00:00"
        row.tier = ("low", "medium", "high")[index % 3]
        row.model = ("m-low", "m-mid", "m-high", "m-alt")[index % 4]
        row.source = ("llm", "cache", "heuristic", "forced", "rule", "local")[index % 6]
        row.cached = row.source == "cache"
        row.status = ("routed", "ok", "ok", "error", "incomplete")[index % 5]
        row.judge_cost_usd = 0.0001 * (index % 7)
        row.estimated_cost_usd = 0.001 * (index % 5 + 1)
        row.estimated_baseline_cost_usd = 0.004 * (index % 3 + 1)
        if row.status != "routed":
            row.cost_usd = 0.0013 * (index % 6)
            row.baseline_cost_usd = 0.0051 * (index % 4 + 1)
            row.saved_usd = row.baseline_cost_usd - row.cost_usd - row.judge_cost_usd
            row.completion_tokens = 10 * index
        row.api_key_id = (None, "team-a", "team-b")[index % 3]
        row.rule = (None, "short", "code")[index % 3] if index % 2 else None
        row.arm = "holdout" if index % 9 == 0 else "routed"
        row.budget = "monthly" if index % 11 == 0 else None
        row.strategy = "cascade" if index % 8 == 0 else "direct"
        row.grader_cost_usd = 0.0002 if row.strategy == "cascade" else 0.0
        row.metadata = [
            {"team": "search", "n": 1, "flag": True},
            {"team": "ads", "n": 2.5, "flag": False},
            {"team": "search", "n": 2, "nested": {"k": "v"}},
            None,
            {"n": float("nan")},  # Python's json writes NaN: SQLite's json_valid refuses it
            {"team": "équipe", "note": "NaN"},  # \u escapes, and NaN in a string: both valid
        ][index % 6]
        rows.append(row)
    return rows


def outcomes() -> list[OutcomeRow]:
    found = [
        OutcomeRow(f"r{index:02d}", source, "m-cand" if source == "shadow" else "m-low", "low",
                   score=(index % 10) / 10, grade=index % 10 + 1, grader_cost_usd=0.0003,
                   answer_cost_usd=0.001 if source == "shadow" else 0.0,
                   created_at=f"2026-11-{27 + index % 4:02d}T12:00:00+00:00")
        for index in range(0, 40, 3)
        for source in ("sample", "shadow", "feedback")
    ]  # fmt: skip
    at = "2026-11-30T18:00:00+00:00"
    found.append(OutcomeRow("r01", "cascade", "m-low", "low", passed=False, created_at=at))
    found.append(OutcomeRow("r00", "sample", "m-low", "low", 0.9, created_at=at))  # replaces one
    return found


async def record_all(ledger: Any) -> None:
    for row in varied_rows():
        if row.request_id == "r05":  # a stream: its provisional row, then its final one
            first = ledger_row("r05")
            first.status, first.stream = "incomplete", True
            assert await ledger.record(first)
            row.stream = True
            assert await ledger.record(row, replace=True)
        else:
            assert await ledger.record(row)
    for outcome in outcomes():
        assert await ledger.record_outcome(outcome)


VIEWS = [
    None,
    stats_view("tier"),
    stats_view("model"),
    stats_view("day"),
    stats_view("rule"),
    stats_view("arm"),
    stats_view("api_key"),
    stats_view("metadata.team"),
    stats_view("metadata.n"),
    stats_view("metadata.flag"),
    stats_view(None, [("metadata.team", "search")]),
    stats_view(None, [("metadata.team", "équipe")]),
    stats_view("tier", [("api_key", "team-a"), ("api_key", "team-b")]),
    stats_view("model", [("metadata.flag", "true"), ("tier", "low")]),
    stats_view(None, [("rule", "code")]),
]
SCOPES = [
    SpendScope(),
    SpendScope("team", "search"),
    SpendScope("n", 2),
    SpendScope("n", 2.5),
    SpendScope("flag", True),
    SpendScope(api_key_id="team-b"),
]


async def test_the_same_rows_give_the_same_figures_on_postgresql_and_sqlite(
    tmp_path: Path, postgres_url: str
) -> None:
    pg = PostgresLedger(postgres_url, recovery_path=tmp_path / "pending.jsonl")
    sq = SqliteLedger(tmp_path / "ledger.sqlite")
    try:
        for ledger in (pg, sq):
            await record_all(ledger)
        for since in (None, "2026-11-28T12:00:00+00:00"):
            for view in VIEWS:
                assert await pg.summary(since, view) == await sq.summary(since, view), view
        for start, end in [("2026-11-01", "2026-12-01"), ("2026-11-29", "2026-11-30")]:
            assert await pg.spend(SCOPES, start, end) == await sq.spend(SCOPES, start, end)
        assert await pg.rows() == await sq.rows()
        assert await pg.rows("2026-11-29") == await sq.rows("2026-11-29")
        assert await pg.decision("r05") == await sq.decision("r05")
        assert await pg.decision("none") is None
        assert await pg.outcomes() == await sq.outcomes()
        assert await pg.outcomes(None, "shadow") == await sq.outcomes(None, "shadow")
        assert await pg.outcomes_of("r00") == await sq.outcomes_of("r00")
        assert await pg.read(shadow_facts, None) == await sq.read(shadow_facts, None)
        assert await pg.read(ledger_examples) == await sq.read(ledger_examples)
        assert pg.dropped == 0 and pg.pending == 0
    finally:
        await pg.close()
        await sq.close()


def columns_sqlite(path: Path, table: str) -> list[str]:
    conn = sqlite_connect(path)
    try:
        sqlite_migrate(conn)
        return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
    finally:
        conn.close()


def test_the_schema_is_sqlites_through_the_same_named_migrations(
    tmp_path: Path, postgres_url: str
) -> None:
    with connect(postgres_url) as conn:
        assert migrate(conn) == SHARED
        assert migrate(conn) == []
        for table in ("decisions", "outcomes"):
            found = conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
                "ORDER BY ordinal_position",
                (table,),
            ).fetchall()
            assert [row[0] for row in found] == columns_sqlite(tmp_path / "l.sqlite", table)


def test_migrations_run_once_when_replicas_start_together(postgres_url: str) -> None:
    starters = 6
    together = threading.Barrier(starters)
    applied: list[list[str]] = []

    def start() -> None:
        with connect(postgres_url) as conn:
            together.wait()
            applied.append(migrate(conn))

    threads = [threading.Thread(target=start) for _ in range(starters)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(applied, key=len) == [[]] * (starters - 1) + [SHARED]
    with connect(postgres_url) as conn:
        names = [row[0] for row in conn.execute("SELECT name FROM _migrations ORDER BY name")]
        triggers = conn.execute(
            "SELECT count(*) FROM pg_trigger WHERE tgname = 'decisions_rollup'"
        ).fetchone()
    assert names == SHARED and triggers is not None and triggers[0] == 1


async def until(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.02)


def stored_ids(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        found = conn.execute("SELECT request_id FROM decisions ORDER BY request_id").fetchall()
    return [row[0] for row in found]


async def test_rows_queue_while_postgresql_is_down_and_arrive_when_it_is_back(
    tmp_path: Path, postgres_server: PostgresServer, postgres_url: str
) -> None:
    ledger = PostgresLedger(postgres_url, recovery_path=tmp_path / "pending.jsonl", **FAST)
    try:
        assert await ledger.record(ledger_row("a1")) and await ledger.record(ledger_row("a2"))
        postgres_server.stop()
        started = time.monotonic()
        for index in range(5):
            assert not await ledger.record(ledger_row(f"b{index}"))  # answered, row queued
        assert time.monotonic() - started < 3  # the first waits commit_wait_s at most, not each
        health = await ledger.health()
        assert not health.writable and health.pending_rows == 5 and health.write_errors >= 1
        assert health.last_error is not None and ledger.dropped == 0
        with pytest.raises(LedgerUnavailable):
            await ledger.summary()
        postgres_server.start()
        await until(lambda: ledger.pending == 0)
        assert (await ledger.health()).writable
        assert stored_ids(postgres_url) == ["a1", "a2", "b0", "b1", "b2", "b3", "b4"]
        assert await ledger.record(ledger_row("c"))  # committed directly again
        assert (await ledger.summary())["totals"]["requests"] == 8
    finally:
        if postgres_server.process is None:
            postgres_server.start()
        await ledger.close()


async def test_the_queue_is_bounded_and_counts_what_it_drops(
    tmp_path: Path, postgres_server: PostgresServer, postgres_url: str
) -> None:
    ledger = PostgresLedger(
        postgres_url, max_pending=3, recovery_path=tmp_path / "pending.jsonl", **FAST
    )
    try:
        postgres_server.stop()
        for index in range(5):
            assert not await ledger.record(ledger_row(f"q{index}"))
        health = await ledger.health()
        assert health.pending_rows == 3 and health.dropped_rows == 2  # the oldest two
        postgres_server.start()
        await until(lambda: ledger.pending == 0)
        assert stored_ids(postgres_url) == ["q2", "q3", "q4"] and ledger.dropped == 2
    finally:
        if postgres_server.process is None:
            postgres_server.start()
        await ledger.close()


async def test_rows_unwritten_at_shutdown_are_saved_and_written_at_the_next_start(
    tmp_path: Path, postgres_server: PostgresServer, postgres_url: str
) -> None:
    saved = tmp_path / "recovery" / "pending.jsonl"
    ledger = PostgresLedger(postgres_url, recovery_path=saved, **FAST)
    try:
        assert await ledger.record(ledger_row("kept"))
        postgres_server.stop()
        for name in ("s1", "s2"):
            assert not await ledger.record(ledger_row(name))
        assert await ledger.record_outcome(OutcomeRow("s1", "feedback", "m", "low", 1.0)) is False
        await ledger.close()
        assert ledger.dropped == 0 and spilled(saved) == 3  # in this process's own file
    finally:
        if postgres_server.process is None:
            postgres_server.start()
    again = PostgresLedger(postgres_url, recovery_path=saved, **FAST)
    try:
        await again.health()  # starts the flusher, which writes the replayed rows
        await until(lambda: again.pending == 0)
        assert stored_ids(postgres_url) == ["kept", "s1", "s2"]
        assert [row["source"] for row in await again.outcomes_of("s1")] == ["feedback"]
        assert list(saved.parent.iterdir()) == []  # written, so the claimed file is gone
    finally:
        await again.close()


def spilled(saved: Path) -> int:
    """The rows in every file spilled beside `saved`."""
    return sum(len(p.read_text().splitlines()) for p in saved.parent.glob(saved.name + "*"))


async def test_processes_sharing_a_folder_spill_to_files_of_their_own(
    tmp_path: Path, postgres_server: PostgresServer, postgres_url: str
) -> None:
    """Workers or replicas on one machine: two spills never overwrite each other, and the next
    process to start claims both (renamed first, so two starting together do not both)."""
    saved = tmp_path / "pending.jsonl"
    first = PostgresLedger(postgres_url, recovery_path=saved, **FAST)
    postgres_server.stop()
    try:
        assert not await first.record(ledger_row("w1"))
        await first.close()
        (saved.parent / f"{saved.name}.4242").write_text(  # as another process left it
            (saved.parent / f"{saved.name}.{os.getpid()}").read_text().replace("w1", "w2")
        )
        assert spilled(saved) == 2
    finally:
        postgres_server.start()
    again = PostgresLedger(postgres_url, recovery_path=saved, **FAST)
    # Its claims are its own while it lives: a replica starting now finds nothing to claim.
    late = PostgresLedger(postgres_url, recovery_path=saved, **FAST)
    try:
        assert again.pending == 2 and late.pending == 0
        await again.health()
        await until(lambda: again.pending == 0)
        assert stored_ids(postgres_url) == ["w1", "w2"] and list(tmp_path.iterdir()) == []
    finally:
        await again.close()
        await late.close()


async def test_a_repeated_request_id_is_refused_and_counted_not_retried(
    tmp_path: Path, postgres_url: str
) -> None:
    ledger = PostgresLedger(postgres_url, recovery_path=tmp_path / "pending.jsonl", **FAST)
    try:
        assert await ledger.record(ledger_row("x"))
        assert not await ledger.record(ledger_row("x"))  # without replace: refused...
        assert ledger.dropped == 1 and ledger.pending == 0  # ...dropped and counted
        final = ledger_row("x")
        final.status = "ok"
        assert await ledger.record(final, replace=True)
        assert [row["status"] for row in await ledger.rows()] == ["ok"]
    finally:
        await ledger.close()


async def test_a_ledger_started_while_postgresql_is_down_migrates_when_it_is_back(
    tmp_path: Path, postgres_server: PostgresServer, postgres_url: str
) -> None:
    postgres_server.stop()
    try:
        ledger = PostgresLedger(postgres_url, recovery_path=tmp_path / "pending.jsonl", **FAST)
        assert not ledger.migrated and not (await ledger.health()).writable
        assert not await ledger.record(ledger_row("early"))
    finally:
        postgres_server.start()
    try:
        await until(lambda: ledger.pending == 0 and ledger.migrated)
        assert (await ledger.health()).writable and stored_ids(postgres_url) == ["early"]
    finally:
        await ledger.close()


async def test_a_question_that_reads_the_rows_for_too_long_is_cancelled(
    tmp_path: Path, postgres_url: str
) -> None:
    ledger = PostgresLedger(postgres_url, recovery_path=tmp_path / "pending.jsonl")
    try:
        # An hour apart: rows of one day and key in one transaction would each update one
        # rollup row again, which PostgreSQL cannot prune until the transaction ends.
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO decisions (request_id, created_at, endpoint, prompt_hash, tier, model, "
                "source, cached, reason, judge_model, judge_cost_usd, judge_latency_ms, "
                "prompt_tokens, estimated_cost_usd, baseline_model, estimated_baseline_cost_usd, "
                "latency_ms, metadata) SELECT 'g' || i, to_char(timestamp '2020-01-01' + i * "
                "interval '1 hour', 'YYYY-MM-DD\"T\"HH24:MI:SS+00:00'), 'route', 'h', "
                "'low', 'm', 'llm', 0, 'r', 'j', 0, 0, 1, 0, 'b', 0, 0, "
                "'{\"team\": \"t' || (i % 100) || '\"}' FROM generate_series(1, 30000) AS i"
            )
        view = stats_view("metadata.team")
        with pytest.raises(ScanTooLong, match="ask for a later since"):
            await ledger.read(summarise, None, view, 0.001)
        assert len((await ledger.summary(None, view))["groups"]) > 1  # within the usual limit
    finally:
        await ledger.close()


async def test_what_postgresql_refuses_never_blocks_the_rows_after_it(
    tmp_path: Path, postgres_server: PostgresServer, postgres_url: str
) -> None:
    ledger = PostgresLedger(postgres_url, recovery_path=tmp_path / "pending.jsonl", **FAST)
    try:
        nul = ledger_row("nul")
        nul.prompt_text = "a\x00b"  # SQLite keeps a NUL; PostgreSQL's text cannot
        assert await ledger.record(nul)
        huge = ledger_row("huge")
        huge.prompt_tokens = 2**70  # out of a BIGINT's range: refused, dropped and counted
        assert not await ledger.record(huge) and ledger.dropped == 1
        postgres_server.stop()  # the same rows queued: written, or dropped, by the flusher
        queued = [ledger_row("nul2"), ledger_row("huge2"), ledger_row("after")]
        queued[0].prompt_text, queued[1].prompt_tokens = "c\x00", 2**70
        for row in queued:
            assert not await ledger.record(row)
        postgres_server.start()
        await until(lambda: ledger.pending == 0)
        assert stored_ids(postgres_url) == ["after", "nul", "nul2"] and ledger.dropped == 2
        assert (await ledger.decision("nul") or {})["prompt_text"] == "a\ufffdb"
    finally:
        if postgres_server.process is None:
            postgres_server.start()
        await ledger.close()
