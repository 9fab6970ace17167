"""The SQLite ledger: a writer thread commits rows in batches, so no lock can stall the event loop.

When nothing is waiting, `record` commits the row itself on a connection that never waits for a
lock (busy_timeout 0), with the other rows of the same loop turn (group_commit.py): the usual
case costs no thread hop. Otherwise, or if that commit cannot
take the lock, it hands the row to the writer and waits for its commit up to `commit_wait_s`. So an answered
request has its row committed before the answer, or, when the database is locked or unwritable,
queued in memory and counted in `pending_rows` (never more than `max_pending` rows: beyond that the
oldest are dropped and counted). The writer retries a failed batch with backoff, never the request
path. At shutdown, rows it still cannot write are appended to the recovery file and replayed at the
next start.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from judge_router.accounting import recovery
from judge_router.accounting.group_commit import GroupCommit
from judge_router.accounting.ledger import LedgerHealth
from judge_router.accounting.ledger_methods import ReadMethods
from judge_router.accounting.ledger_row import LedgerRow
from judge_router.accounting.migrations import connect, migrate
from judge_router.accounting.outcome_row import OutcomeRow

log = logging.getLogger(__name__)
T = TypeVar("T")

BATCH_ROWS = 500
STUCK_AFTER_S = 1.0  # rows waiting longer than this make /healthz say degraded


@dataclass(slots=True)
class _Waiting:
    row: LedgerRow | OutcomeRow
    replace: bool
    queued_at: float
    done: asyncio.Future[bool] | None = None
    loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)

    def tell(self, written: bool) -> None:
        """Wake the request waiting for this row (if it still waits)."""
        if self.done is not None and self.loop is not None:
            self.loop.call_soon_threadsafe(_settle, self.done, written)
            self.done = None


def _settle(future: asyncio.Future[bool], written: bool) -> None:
    if not future.done():
        future.set_result(written)


class SqliteLedger(ReadMethods):
    def __init__(
        self,
        path: Path,
        max_pending: int = 10_000,
        commit_wait_s: float = 0.25,
        backoff_s: tuple[float, float] = (0.1, 5.0),
        recovery_path: Path | None = None,
    ):
        self.path = path
        self.recovery_path = recovery_path or path.with_name(path.name + ".pending.jsonl")
        self.write_errors = 0
        self.dropped = 0
        self.last_error: str | None = None
        self._max_pending = max_pending
        self._commit_wait_s = commit_wait_s
        self._backoff = backoff_s
        self._failing_since: float | None = None
        self._waiting: deque[_Waiting] = deque()
        self._wake = threading.Condition()
        self._stop = threading.Event()  # ends the writer (and a backoff early; new rows do not)
        self._conn: sqlite3.Connection | None = None  # the writer thread's
        self._direct: sqlite3.Connection | None = None  # the event loop's: never waits for a lock
        self._group = GroupCommit(self._write_group)
        names = list(LedgerRow.__dataclass_fields__)
        columns = f"decisions ({', '.join(names)}) VALUES ({', '.join(':' + n for n in names)})"
        self._insert, self._replace = f"INSERT INTO {columns}", f"INSERT OR REPLACE INTO {columns}"
        fields = list(OutcomeRow.__dataclass_fields__)
        # An outcome replaces the one before it for the same request, source and model (feedback
        # given twice, a grade retried).
        self._outcome = (
            f"INSERT OR REPLACE INTO outcomes ({', '.join(fields)}) "
            f"VALUES ({', '.join(':' + n for n in fields)})"
        )
        replayed = recovery.load(self.recovery_path)
        now = time.monotonic()
        # Replaces: a spilled row may have been written after all (a crash after the commit).
        self._waiting.extend(_Waiting(row, True, now) for row in replayed)
        self._replaying = len(replayed)
        try:  # at start-up, so the schema exists before the first request; failures are retried
            self._open()
        except (sqlite3.Error, OSError) as exc:
            self._failed(exc, [])
        self._writer = threading.Thread(target=self._run, name="ledger-writer", daemon=True)
        self._writer.start()

    @property
    def pending(self) -> int:
        return len(self._waiting)

    async def record(self, row: LedgerRow, replace: bool = False) -> bool:
        return await self._store(row, replace)

    async def record_outcome(self, outcome: OutcomeRow) -> bool:
        return await self._store(outcome, True)

    def _statement(self, row: LedgerRow | OutcomeRow, replace: bool) -> str:
        if isinstance(row, OutcomeRow):
            return self._outcome
        return self._replace if replace else self._insert

    async def _store(self, row: LedgerRow | OutcomeRow, replace: bool) -> bool:
        if not self._waiting and self._failing_since is None:
            written = await self._group.add((row, replace))
            if written is not None:
                return written
        loop = asyncio.get_running_loop()
        item = _Waiting(row, replace, time.monotonic(), loop.create_future(), loop)
        done = item.done
        assert done is not None
        with self._wake:
            self._waiting.append(item)
            while len(self._waiting) > self._max_pending:
                lost = self._waiting.popleft()
                lost.tell(False)
                self.dropped += 1
            self._wake.notify()
        try:
            return await asyncio.wait_for(asyncio.shield(done), self._commit_wait_s)
        except TimeoutError:
            return False  # queued and counted in pending_rows; the writer commits it later

    def _direct_connection(self) -> sqlite3.Connection:
        if self._direct is None:  # opened here, not in __init__, so a fixed disk is found
            self._direct = connect(self.path, busy_timeout_s=0)
        return self._direct

    def _write_group(
        self, rows: Sequence[tuple[LedgerRow | OutcomeRow, bool]]
    ) -> list[bool | None]:
        """One transaction for the rows of one loop turn (group_commit.py); one row by one if
        the schema refuses one of them, so only that one is dropped."""
        if len(rows) == 1:
            return [self._write_directly(*rows[0])]
        try:
            conn = self._direct_connection()
            conn.execute("BEGIN")
            try:
                for row, replace in rows:
                    conn.execute(self._statement(row, replace), row.as_params())
                conn.execute("COMMIT")
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
        except sqlite3.IntegrityError:
            return [self._write_directly(row, replace) for row, replace in rows]
        except (sqlite3.Error, OSError):
            return [None] * len(rows)  # locked or failing: the writer takes them
        return [True] * len(rows)

    def _write_directly(self, row: LedgerRow | OutcomeRow, replace: bool) -> bool | None:
        """Commit `row` now if the database is free: True if written, False if the schema refused
        it (dropped and counted), None if the database is busy or failing (nothing done)."""
        try:
            self._direct_connection().execute(self._statement(row, replace), row.as_params())
        except sqlite3.IntegrityError as exc:  # never retried: it would block the rows after it
            log.error("ledger row %s refused and dropped: %s", row.request_id, exc)
            self.dropped += 1
            return False
        except (sqlite3.Error, OSError):
            return None  # locked or failing: the writer takes it, with its retries
        return True

    # -- the writer thread ------------------------------------------------------------------

    def _run(self) -> None:
        delay = self._backoff[0]
        while True:
            with self._wake:
                while not self._waiting and not self._stop.is_set():
                    self._wake.wait()
                if not self._waiting:
                    return
                batch = list(self._waiting)[:BATCH_ROWS]
            if self._write(batch):
                delay = self._backoff[0]
                continue
            if self._stop.wait(timeout=delay):  # a failed batch waits its backoff out
                return
            delay = min(delay * 2, self._backoff[1])

    def _open(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = connect(self.path)
            migrate(conn)
            self._conn = conn
        return self._conn

    def _write(self, batch: list[_Waiting]) -> bool:
        """Commit `batch` in one transaction; on failure nothing is removed and False returned."""
        try:
            conn = self._open()
            conn.execute("BEGIN")
            try:
                for item in batch:
                    conn.execute(self._statement(item.row, item.replace), item.row.as_params())
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.IntegrityError:
            return self._write_each(batch)
        except (sqlite3.Error, OSError) as exc:
            self._failed(exc, batch)
            return False
        self._written(batch)
        return True

    def _write_each(self, batch: list[_Waiting]) -> bool:
        """A row the schema refuses (a repeated request id) is dropped and counted, so it cannot
        block the rows after it; the others are written one by one."""
        conn = self._open()
        written = []
        for item in batch:
            try:
                conn.execute(self._statement(item.row, item.replace), item.row.as_params())
                written.append(item)
            except sqlite3.IntegrityError as exc:
                log.error("ledger row %s refused and dropped: %s", item.row.request_id, exc)
                self.dropped += 1
                self._remove([item], written=False)
            except sqlite3.Error as exc:
                self._failed(exc, batch)
                self._written(written)
                return False
        self._written(written)
        return True

    def _remove(self, items: list[_Waiting], written: bool) -> None:
        gone = {id(item) for item in items}
        with self._wake:
            self._waiting = deque(i for i in self._waiting if id(i) not in gone)
        for item in items:
            item.tell(written)

    def _written(self, items: list[_Waiting]) -> None:
        self._remove(items, written=True)
        if self._failing_since is not None:
            log.warning("ledger %s writable again; %d rows waiting", self.path, self.pending)
            self._failing_since = None
        if self._replaying and not self.pending:
            self.recovery_path.unlink(missing_ok=True)
            log.warning("ledger: %d rows from %s written", self._replaying, self.recovery_path)
            self._replaying = 0

    def _failed(self, exc: Exception, batch: list[_Waiting]) -> None:
        self.write_errors += 1
        self.last_error = f"write: {type(exc).__name__}: {exc}"
        if self._conn is not None and not isinstance(exc, sqlite3.OperationalError):
            self._conn = None  # reopened on the next try
        if self._failing_since is None:  # one line per change of state, not one per request
            self._failing_since = time.monotonic()
            log.error(
                "ledger writes to %s failing (%s); %d rows wait in memory, retried with backoff",
                self.path, exc, self.pending,
            )  # fmt: skip
        for item in batch:
            item.tell(False)

    # -- reads, health, shutdown ------------------------------------------------------------

    def _read(self, read: Callable[..., T], *args: Any) -> T:
        conn = connect(self.path)  # its own connection: a long read never holds the write lock
        try:
            migrate(conn)
            return read(conn, *args)
        finally:
            conn.close()

    async def read(self, read: Callable[..., T], *args: Any) -> T:
        """`read(conn, *args)` on a connection of its own, off the event loop (a report's reads)."""
        return await asyncio.to_thread(self._read, read, *args)

    async def health(self) -> LedgerHealth:
        """From the writer's own record, without touching the database on the event loop."""
        with self._wake:
            oldest = self._waiting[0].queued_at if self._waiting else None
        stuck = oldest is not None and time.monotonic() - oldest > STUCK_AFTER_S
        writable = self._failing_since is None and not stuck
        return LedgerHealth(
            writable, self.write_errors, self.pending, self.dropped, self.last_error
        )

    async def close(self) -> None:
        await asyncio.to_thread(self._close)

    def _close(self) -> None:
        with self._wake:
            self._stop.set()
            self._wake.notify()
        self._writer.join()
        left = list(self._waiting)
        if left and self._write(left):
            left = []
        if left:
            rows = [item.row for item in left]
            try:
                recovery.save(self.recovery_path, rows)
                log.error(
                    "ledger %s unwritable at shutdown: %d rows saved to %s, written at next start",
                    self.path, len(rows), self.recovery_path,
                )  # fmt: skip
            except OSError as exc:
                self.dropped += len(rows)
                log.error(
                    "ledger: %d rows lost at shutdown (%s; recovery file: %s)",
                    len(rows),
                    self.path,
                    exc,
                )
        for conn in (self._conn, self._direct):
            if conn is not None:
                conn.close()
        self._conn = self._direct = None
