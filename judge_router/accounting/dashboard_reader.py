"""The dashboard's reads of the ledger: on a small pool of threads of their own, each with its own
connection, each read one snapshot, none longer than a time limit.

Off the event loop, and off the default thread pool the ledger's own reads use, so a page that asks
six questions at once neither stalls requests nor queues ahead of a budget's read. A read takes no
lock (SQLite's WAL: writers go on meanwhile) and holds its snapshot for at most `limit_s`, so it
never keeps the WAL from being checkpointed for long.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from judge_router.accounting.migrations import connect, migrate
from judge_router.accounting.stats_scan import ScanTooLong
from judge_router.thread_priority import lower_this_thread

T = TypeVar("T")

READ_LIMIT_S = 10.0
THREADS = 2


class PooledReads:
    """What the dashboard's endpoints read through: a small pool of low-priority threads, each
    keeping the connections it opens (closed with the pool); a subclass's `_run(read, args)` does
    one read on the thread's connection (this module's for SQLite, postgres_dashboard_reader.py's
    for PostgreSQL)."""

    def __init__(self, threads: int, limit_s: float):
        self.limit_s = limit_s
        # At a lower CPU priority: a page being read never takes the CPU from a request.
        self._pool = ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="dashboard-read", initializer=lower_this_thread
        )
        self._local = threading.local()
        self._opened: list[Any] = []
        self._lock = threading.Lock()

    def _kept(self, conn: Any) -> None:
        self._local.conn = conn
        with self._lock:
            self._opened.append(conn)

    async def read(self, read: Callable[..., T], *args: Any) -> T:
        """`read(conn, *args)` in one snapshot on a pool thread; ScanTooLong past the limit."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._run, read, args)

    def _run(self, read: Callable[..., T], args: tuple[Any, ...]) -> T:
        raise NotImplementedError

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        with self._lock:
            for conn in self._opened:
                conn.close()
            self._opened.clear()


class DashboardReader(PooledReads):
    def __init__(self, path: Path, threads: int = THREADS, limit_s: float = READ_LIMIT_S):
        super().__init__(threads, limit_s)
        self.path = path

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path)
            migrate(conn)  # a ledger the service has not written to yet has its tables too
            self._kept(conn)
        return conn

    def _run(self, read: Callable[..., T], args: tuple[Any, ...]) -> T:
        conn = self._connection()
        deadline = time.monotonic() + self.limit_s
        # Checked every 100k SQLite instructions: cheap, and no thread is held past the limit.
        conn.set_progress_handler(lambda: time.monotonic() > deadline, 100_000)
        conn.execute("BEGIN")  # one snapshot for every statement of the read
        try:
            return read(conn, *args)
        except sqlite3.OperationalError as exc:
            if "interrupt" not in str(exc):
                raise
            raise ScanTooLong(
                f"reading the ledger for this view took over {self.limit_s:g} s (a view that "
                "names two of api_key and metadata keys, or a nested metadata key, reads every "
                "row in range): narrow the range or the filters"
            ) from None
        finally:
            conn.set_progress_handler(None, 0)
            if conn.in_transaction:
                conn.execute("ROLLBACK")  # nothing was written: only temporary tables
