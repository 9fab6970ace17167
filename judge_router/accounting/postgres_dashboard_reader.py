"""The dashboard's reads of a PostgreSQL ledger: dashboard_reader.py's promises (a small pool of
threads of their own, at a lower priority, each read one snapshot within a time limit) over
psycopg connections, one per thread, opened again when PostgreSQL has dropped them.

A read is one REPEATABLE READ transaction (every statement of a view sees the same rows, as
SQLite's BEGIN gives) under a statement_timeout, and always rolled back: it writes nothing but
temporary tables. PostgreSQL unreachable, or failing a read, is LedgerUnavailable (the page says
so and retries); a read past the limit is ScanTooLong, as on SQLite.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import psycopg

from judge_router.accounting.dashboard_reader import READ_LIMIT_S, THREADS, PooledReads
from judge_router.accounting.ledger import LedgerUnavailable
from judge_router.accounting.postgres_reads import PgConnection, Row, connect
from judge_router.accounting.postgres_schema import migrate
from judge_router.accounting.read_connection import Interrupted
from judge_router.accounting.stats_scan import ScanTooLong

T = TypeVar("T")


class PgDashboardReader(PooledReads):
    """PooledReads on PostgreSQL; LedgerUnavailable when it cannot answer."""

    def __init__(self, url: str, threads: int = THREADS, limit_s: float = READ_LIMIT_S):
        super().__init__(threads, limit_s)
        self.url = url
        self._migrated = False

    def _connection(self, fresh: bool) -> psycopg.Connection[Row]:
        conn: psycopg.Connection[Row] | None = getattr(self._local, "conn", None)
        if conn is not None and not fresh and not conn.closed and not conn.broken:
            return conn
        if conn is not None:
            conn.close()
        conn = connect(self.url)
        if not self._migrated:  # a ledger no replica has written to yet has its tables too
            migrate(conn)
            self._migrated = True
        self._kept(conn)
        return conn

    def _run(self, read: Callable[..., T], args: tuple[Any, ...]) -> T:
        # A connection kept from an earlier read may have been dropped since (a PostgreSQL
        # restart), which only its next statement finds out: then once more on a fresh one.
        reused = getattr(self._local, "conn", None) is not None
        for fresh in (False, True):
            try:
                return self._snapshot(self._connection(fresh), read, args)
            except Interrupted:
                raise ScanTooLong(
                    f"reading the ledger for this view took over {self.limit_s:g} s (a "
                    "PostgreSQL ledger's views read the decisions of their window): narrow the "
                    "range or the filters"
                ) from None
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                if fresh or not reused:
                    raise LedgerUnavailable(
                        f"the PostgreSQL ledger cannot be read now ({type(exc).__name__}: {exc})"
                    ) from None
        raise AssertionError("unreachable: the fresh attempt returns or raises")

    def _snapshot(
        self, conn: psycopg.Connection[Row], read: Callable[..., T], args: tuple[Any, ...]
    ) -> T:
        pg = PgConnection(conn)
        with pg.time_limit(self.limit_s):
            conn.execute(b"BEGIN ISOLATION LEVEL REPEATABLE READ")
            try:
                return read(pg, *args)
            finally:
                if not conn.broken:
                    conn.execute(b"ROLLBACK")  # nothing was written: only temporary tables
