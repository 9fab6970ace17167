"""What the ledger's read queries run on: a SQLite connection, or the PostgreSQL one of
postgres_reads.py, which takes the same SQL (named `:params`, `?`, SQLite's JSON functions).

The queries in stats*.py, quality_stats.py, budgets.py, ledger_reads.py and shadow_report.py are
written once against this; the few places the dialects differ ask `is_sqlite`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any, Protocol, runtime_checkable


class Rows(Protocol):
    """A query's result: rows that index by position and by column name (and dict() them)."""

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class ReadConnection(Protocol):
    def execute(self, sql: str, parameters: Any = (), /) -> Rows: ...


@runtime_checkable
class TimeLimited(Protocol):
    """A connection that can bound its statements' time (PostgreSQL's statement_timeout)."""

    def time_limit(self, seconds: float) -> AbstractContextManager[None]:
        """Statements in the block that run past `seconds` raise Interrupted."""
        ...


class Interrupted(Exception):
    """A statement ran past its time limit and was cancelled."""


def is_sqlite(conn: ReadConnection) -> bool:
    return isinstance(conn, sqlite3.Connection)
