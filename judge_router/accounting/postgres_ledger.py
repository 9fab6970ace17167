"""The PostgreSQL ledger (`ledger.url`), shared by every replica; SqliteLedger's promises, kept.

While the database answers, `record` commits the row itself on a pooled connection (autocommit,
one INSERT) before it returns: an answered request's row is committed before its answer. If that
fails or takes longer than `commit_wait_s`, or rows are already waiting, the row joins the queue in
memory (at most `max_pending` rows: beyond that the oldest are dropped and counted) and a flusher
task writes the queue in batches, retrying with backoff, so requests answer while PostgreSQL is
away; once it is known to be failing, `record` queues without waiting (the answer then goes out
before its row is committed: it waits in memory, counted in `pending_rows`). A queued row is
written idempotently (postgres_writes.py). At shutdown, rows still unwritten go to the recovery
file, replayed at the next start. Reads (stats, reports, budgets) are postgres_reads.py's.

Recovery is the flusher's: the pool's own reconnection gives up after RECONNECT_S (its backoff
would otherwise grow without bound over a long outage), and after a failed batch the pool drops
its broken connections, so the first retry after PostgreSQL is back finds a live one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg_pool import AsyncConnectionPool

from judge_router.accounting import recovery
from judge_router.accounting.ledger import LedgerHealth
from judge_router.accounting.ledger_row import LedgerRow
from judge_router.accounting.outcome_row import OutcomeRow
from judge_router.accounting.postgres_reads import PostgresReads, connect
from judge_router.accounting.postgres_schema import migrate
from judge_router.accounting.postgres_writes import Stored, params, runs, statement

log = logging.getLogger(__name__)

BATCH_ROWS = 500
BATCH_TIMEOUT_S = 10.0  # a batch (or the migrations) that takes longer counts as a failure
RECONNECT_S = 2.0
STUCK_AFTER_S = 1.0  # rows waiting longer than this make /healthz say degraded
DEFAULT_RECOVERY = Path("~/.judge-router/ledger.postgresql.pending.jsonl")
_FAILURES = (psycopg.Error, OSError, TimeoutError)
# A row the database refuses whatever is retried (a repeated request id, a value out of range).
_REFUSED = (psycopg.IntegrityError, psycopg.DataError)


@dataclass(slots=True)
class _Waiting:
    row: Stored
    replace: bool
    queued_at: float
    done: asyncio.Future[bool] | None = None

    def tell(self, written: bool) -> None:
        """Wake the request waiting for this row (if it still waits)."""
        if self.done is not None and not self.done.done():
            self.done.set_result(written)
        self.done = None


class PostgresLedger(PostgresReads):
    def __init__(
        self,
        url: str,
        pool_size: int = 10,
        max_pending: int = 10_000,
        commit_wait_s: float = 2.0,
        backoff_s: tuple[float, float] = (0.1, 5.0),
        recovery_path: Path | None = None,
    ):
        super().__init__(url)
        self.recovery_path = recovery_path or DEFAULT_RECOVERY.expanduser()
        self.pool_size = pool_size
        self.write_errors = 0
        self.dropped = 0
        self.last_error: str | None = None
        self._max_pending = max_pending
        self._commit_wait_s = commit_wait_s
        self._backoff = backoff_s
        self._failing_since: float | None = None
        self._waiting: deque[_Waiting] = deque()
        self._pool: AsyncConnectionPool | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._closing = False
        pool_log = logging.getLogger("psycopg.pool")
        if pool_log.level == logging.NOTSET:  # a line per reconnection try: this logs the changes
            pool_log.setLevel(logging.ERROR)
        replayed, self._claimed = recovery.claim_all(self.recovery_path)
        now = time.monotonic()
        # Replaces: a spilled row may have been written after all (a crash after the commit).
        self._waiting.extend(_Waiting(row, True, now) for row in replayed)
        self._replaying = len(replayed)
        try:  # at start-up, so the schema exists before the first request; failures are retried
            self._migrate()
        except _FAILURES as exc:
            self._failed(exc, [])

    @property
    def pending(self) -> int:
        return len(self._waiting)

    def _migrate(self) -> None:
        with connect(self.url, timeout_s=self._commit_wait_s) as conn:
            applied = migrate(conn)
        if applied:
            log.warning("ledger: PostgreSQL migrations applied: %s", ", ".join(applied))
        self.migrated = True

    async def _started(self) -> tuple[asyncio.Event, AsyncConnectionPool]:
        """The pool and the flusher, started on first use (they need the event loop)."""
        if self._wake is None or self._pool is None:
            self._wake = asyncio.Event()
            self._pool = AsyncConnectionPool(
                self.url,
                min_size=1,
                max_size=self.pool_size,
                open=False,
                timeout=self._commit_wait_s,
                kwargs={"autocommit": True, "connect_timeout": max(1, round(self._commit_wait_s))},
                reconnect_timeout=RECONNECT_S,
                name="ledger",
            )
            await self._pool.open(wait=False)
            self._flusher = asyncio.create_task(self._flush(), name="ledger-flusher")
        return self._wake, self._pool

    async def record(self, row: LedgerRow, replace: bool = False) -> bool:
        return await self._store(row, replace)

    async def record_outcome(self, outcome: OutcomeRow) -> bool:
        return await self._store(outcome, True)

    async def _store(self, row: Stored, replace: bool) -> bool:
        wake, pool = await self._started()
        if not self._waiting and self._failing_since is None and self.migrated:
            written = await self._write_directly(pool, row, replace)
            if written is not None:
                return written
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(row, replace, time.monotonic(), done))
        while len(self._waiting) > self._max_pending:
            self._waiting.popleft().tell(False)
            self.dropped += 1
        wake.set()
        if self._failing_since is not None:
            return False  # known down: queued and counted in pending_rows, never waited for
        try:
            return await asyncio.wait_for(asyncio.shield(done), self._commit_wait_s)
        except TimeoutError:
            return False  # queued; the flusher commits it later

    async def _write_directly(
        self, pool: AsyncConnectionPool, row: Stored, replace: bool
    ) -> bool | None:
        """Commit `row` now: True if written, False if the schema refused it (dropped and
        counted), None if the database failed or was slow (the flusher takes the row)."""
        try:
            async with asyncio.timeout(self._commit_wait_s):
                async with pool.connection() as conn:
                    await conn.execute(statement(row, replace, queued=False), params(row))
        except _REFUSED as exc:  # never retried: it would block the rows after it
            log.error("ledger row %s refused and dropped: %s", row.request_id, exc)
            self.dropped += 1
            return False
        except _FAILURES as exc:
            self._failed(exc, [])
            return None
        return True

    # -- the flusher ---------------------------------------------------------------------------

    async def _flush(self) -> None:
        assert self._wake is not None
        delay = self._backoff[0]
        while True:
            if not self._waiting and self.migrated:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            if await self._write(list(self._waiting)[:BATCH_ROWS]):
                delay = self._backoff[0]
                continue
            if self._closing:
                return
            self._wake.clear()
            try:  # a failed batch waits its backoff out (close ends it early)
                await asyncio.wait_for(self._wake.wait(), delay)
            except TimeoutError:
                pass
            delay = min(delay * 2, self._backoff[1])

    async def _write(self, batch: list[_Waiting]) -> bool:
        """Commit `batch` in one transaction (the migrations first, if they have not run); on
        failure nothing is removed and False returned."""
        assert self._pool is not None
        try:
            async with asyncio.timeout(BATCH_TIMEOUT_S):
                if not self.migrated:
                    await asyncio.to_thread(self._migrate)
                if batch:
                    async with self._pool.connection(timeout=self._backoff[1]) as conn:
                        async with conn.transaction(), conn.cursor() as cursor:
                            for sql, params in runs((i.row, i.replace) for i in batch):
                                await cursor.executemany(sql, params)
        except _REFUSED:
            return await self._write_each(batch)
        except _FAILURES as exc:
            self._failed(exc, batch)
            await self._drop_broken()
            return False
        self._written(batch)
        return True

    async def _write_each(self, batch: list[_Waiting]) -> bool:
        """A row the schema refuses is dropped and counted, so it cannot block the rows after
        it; the others are written one by one."""
        assert self._pool is not None
        written: list[_Waiting] = []
        try:
            async with asyncio.timeout(BATCH_TIMEOUT_S), self._pool.connection() as conn:
                for item in batch:
                    try:
                        sql = statement(item.row, item.replace, queued=True)
                        await conn.execute(sql, params(item.row))
                        written.append(item)
                    except _REFUSED as exc:
                        log.error("ledger row %s refused and dropped: %s", item.row.request_id, exc)
                        self.dropped += 1
                        self._remove([item], written=False)
        except _FAILURES as exc:
            self._failed(exc, batch)
            self._written(written)
            return False
        self._written(written)
        return True

    async def _drop_broken(self) -> None:
        """Let the pool test its idle connections and drop the dead ones (PostgreSQL restarted:
        every pooled connection is dead), instead of one failed retry per connection."""
        assert self._pool is not None
        try:
            async with asyncio.timeout(self._backoff[1]):
                await self._pool.check()
        except (*_FAILURES, RuntimeError):
            pass

    def _remove(self, items: list[_Waiting], written: bool) -> None:
        gone = {id(item) for item in items}
        self._waiting = deque(i for i in self._waiting if id(i) not in gone)
        for item in items:
            item.tell(written)

    def _written(self, items: list[_Waiting]) -> None:
        self._remove(items, written=True)
        if self._failing_since is not None:
            log.warning("ledger (PostgreSQL) writable again; %d rows waiting", self.pending)
            self._failing_since = None
        if self._replaying and not self.pending:
            self._unclaim()
            log.warning("ledger: %d rows from %s written", self._replaying, self.recovery_path)
            self._replaying = 0

    def _unclaim(self) -> None:
        for path in self._claimed:
            path.unlink(missing_ok=True)
        self._claimed = []

    def _failed(self, exc: BaseException, batch: list[_Waiting]) -> None:
        self.write_errors += 1
        self.last_error = f"write: {type(exc).__name__}: {exc or 'no answer in time'}"
        if self._failing_since is None:  # one line per change of state, not one per request
            self._failing_since = time.monotonic()
            log.error(
                "ledger writes to PostgreSQL failing (%s); %d rows wait in memory, retried with "
                "backoff",
                self.last_error,
                self.pending,
            )
        for item in batch:
            item.tell(False)

    # -- health, shutdown ----------------------------------------------------------------------

    async def health(self) -> LedgerHealth:
        """From the writers' own record, without a round trip to the database. It starts the
        flusher if nothing has yet, so a ledger that could not migrate at start-up retries
        (and recovers) before the first request."""
        await self._started()
        oldest = self._waiting[0].queued_at if self._waiting else None
        stuck = oldest is not None and time.monotonic() - oldest > STUCK_AFTER_S
        writable = self._failing_since is None and not stuck
        return LedgerHealth(
            writable, self.write_errors, self.pending, self.dropped, self.last_error
        )

    async def close(self) -> None:
        """Write what waits (the flusher's last try), spill what it cannot, release the pool."""
        self._closing = True
        if self._waiting and self._flusher is None:  # never written (replayed rows only)
            await self._started()
        if self._flusher is not None and self._wake is not None:
            self._wake.set()
            await self._flusher  # it ends once the queue is empty, or after one failed try
            self._flusher = None
        if self._waiting:
            self._spill([item.row for item in self._waiting])
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def _spill(self, rows: list[Stored]) -> None:
        try:
            spilled = recovery.spill_path(self.recovery_path)
            recovery.save(spilled, rows)  # the claimed files' rows still unwritten among them
            self._unclaim()
            log.error(
                "ledger (PostgreSQL) unwritable at shutdown: %d rows saved to %s, written at "
                "next start",
                len(rows),
                spilled,
            )
        except OSError as exc:
            self.dropped += len(rows)
            log.error("ledger: %d rows lost at shutdown (recovery file: %s)", len(rows), exc)
        for item in self._waiting:
            item.tell(False)
        self._waiting.clear()
