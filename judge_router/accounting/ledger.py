"""The ledger interface (one row per decision; writes never raise) and its SQLite implementation."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from judge_router.accounting.ledger_row import LedgerRow
from judge_router.accounting.migrations import connect, migrate
from judge_router.accounting.stats import summarise

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LedgerHealth:
    writable: bool
    write_errors: int
    pending_rows: int
    dropped_rows: int
    last_error: str | None = None


class Ledger(Protocol):
    async def record(self, row: LedgerRow, replace: bool = False) -> bool:
        """Append `row`; True when it is stored. Never raises: a row it cannot store now waits in
        memory (bounded) and is counted if it is dropped. `replace`: the row supersedes a
        provisional row with the same request id (a stream's, written at its first chunk)."""
        ...

    async def rows(self, since: str | None = None) -> list[dict[str, Any]]:
        """Every row (oldest first), optionally from an ISO timestamp on."""
        ...

    async def summary(self, since: str | None = None) -> dict[str, Any]:
        """Savings totals and breakdowns (see stats.py)."""
        ...

    async def health(self) -> LedgerHealth: ...

    async def close(self) -> None:
        """Store what is still waiting, if it can, then release the store."""
        ...


def _decoded(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for row in rows:
        for blob in ("metadata", "attempts"):
            if row.get(blob):
                row[blob] = json.loads(row[blob])
    return rows


class SqliteLedger:
    """SQLite in WAL mode; when a write fails, keeps up to `max_pending` rows in memory and writes
    them, in order, with the next write that succeeds."""

    def __init__(self, path: Path, max_pending: int = 10_000):
        self.path = path
        self.write_errors = 0
        self.dropped = 0
        self.last_error: str | None = None
        # Rows not yet on disk, each with whether it replaces a provisional row of the same id.
        self._pending: deque[tuple[LedgerRow, bool]] = deque()
        self._max_pending = max_pending
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._insert = self._replace = ""
        self._open()

    def _open(self) -> bool:
        try:
            conn = connect(self.path)
            migrate(conn)
            self._conn = conn
            names = list(LedgerRow.__dataclass_fields__)
            columns = f"decisions ({', '.join(names)}) VALUES ({', '.join(':' + n for n in names)})"
            self._insert = f"INSERT INTO {columns}"
            self._replace = f"INSERT OR REPLACE INTO {columns}"
            return True
        except (sqlite3.Error, OSError) as exc:
            self._note_error("open", exc)
            return False

    def _note_error(self, action: str, exc: Exception) -> None:
        self.write_errors += 1
        self.last_error = f"{action}: {type(exc).__name__}: {exc}"
        log.error("ledger %s failed at %s: %s", action, self.path, exc)

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def record(self, row: LedgerRow, replace: bool = False) -> bool:
        with self._lock:
            self._pending.append((row, replace))
        return self._flush_pending()

    def _flush_pending(self) -> bool:
        with self._lock:
            if self._conn is None and not self._open():
                self._trim()
                return False
            assert self._conn is not None
            rows = list(self._pending)
            try:
                if len(rows) == 1:  # the usual case: one statement, committed on its own
                    self._write(*rows[0])
                else:  # rows that waited out a failure go in together, in order, or not at all
                    self._conn.execute("BEGIN")
                    for row, replace in rows:
                        self._write(row, replace)
                    self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._conn.in_transaction:
                    try:
                        self._conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                self._note_error("write", exc)
                if isinstance(exc, sqlite3.IntegrityError):
                    # Not a passing failure: such a row would block every later write. Write the
                    # rows one by one and drop (and count) only those the schema refuses.
                    return self._write_each()
                self._trim()
                return False
            self._pending.clear()
            return True

    def _write(self, row: LedgerRow, replace: bool) -> None:
        assert self._conn is not None
        self._conn.execute(self._replace if replace else self._insert, row.as_params())

    def _write_each(self) -> bool:
        """Write the waiting rows one at a time; False if any was refused (and dropped) or failed."""
        all_written = True
        while self._pending:
            try:
                self._write(*self._pending[0])
            except sqlite3.IntegrityError as exc:
                log.error(
                    "ledger row %s refused and dropped: %s", self._pending[0][0].request_id, exc
                )
                self.dropped += 1
                all_written = False
            except sqlite3.Error as exc:
                self._note_error("write", exc)
                self._trim()
                return False
            self._pending.popleft()
        return all_written

    def _trim(self) -> None:
        while len(self._pending) > self._max_pending:
            self._pending.popleft()
            self.dropped += 1

    async def rows(self, since: str | None = None) -> list[dict[str, Any]]:
        query = "SELECT * FROM decisions"
        params: tuple[Any, ...] = ()
        if since:
            query += " WHERE created_at >= ?"
            params = (since,)
        query += " ORDER BY created_at"
        if self._conn is not None:
            with self._lock:
                return _decoded([dict(row) for row in self._conn.execute(query, params)])
        # The ledger is not open (it failed): read what is on disk with a short-lived connection.
        conn = connect(self.path)
        try:
            return _decoded([dict(row) for row in conn.execute(query, params)])
        finally:
            conn.close()

    async def summary(self, since: str | None = None) -> dict[str, Any]:
        return await asyncio.to_thread(self._summary, since)

    def _summary(self, since: str | None) -> dict[str, Any]:
        conn = connect(self.path)  # its own connection: a long read never holds the write lock
        try:
            migrate(conn)
            return summarise(conn, since)
        finally:
            conn.close()

    async def health(self) -> LedgerHealth:
        return LedgerHealth(
            self._writable(), self.write_errors, self.pending, self.dropped, self.last_error
        )

    def _writable(self) -> bool:
        with self._lock:
            if self._conn is None and not self._open():
                return False
            assert self._conn is not None
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.execute("ROLLBACK")
                return True
            except sqlite3.Error as exc:
                self._note_error("probe", exc)
                return False

    async def close(self) -> None:
        if self._pending:
            self._flush_pending()
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
