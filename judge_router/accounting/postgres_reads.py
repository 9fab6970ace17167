"""The ledger's reads on PostgreSQL: the queries SQLite runs (stats, budgets, reports, training),
on a connection that takes their SQL as written (read_connection.py).

PgConnection translates each statement once: `:name` and `?` become psycopg's placeholders, `%`
is escaped, `temp.` is `pg_temp.`, REAL is DOUBLE PRECISION, SQLite's json_* become
postgres_schema.py's jr_json_*.
Parameters are bound client-side, so they may sit where a server-side parameter cannot (in a
CREATE TABLE AS). numeric results (PostgreSQL's SUM of a bigint) come back as int or float, as
SQLite's do. Reads run on their own connections, off the event loop, as SqliteLedger's do.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from functools import lru_cache
from typing import Any, TypeVar

import psycopg
from psycopg.rows import RowMaker
from psycopg.types.numeric import NumericLoader

from judge_router.accounting.ledger import LedgerUnavailable
from judge_router.accounting.ledger_methods import ReadMethods
from judge_router.accounting.postgres_schema import migrate
from judge_router.accounting.read_connection import Interrupted, Rows

T = TypeVar("T")
CONNECT_TIMEOUT_S = 5

# Single-quoted literals (kept as they are), or what is translated outside them.
_TOKENS = re.compile(
    r"('(?:[^']|'')*')|(?<![:\w]):([A-Za-z_]\w*)|(\?)|(%)|\b(json_\w+)\(|\b(REAL)\b|\btemp\."
)
_JSON = {"json_valid", "json_type", "json_extract"}


@lru_cache(maxsize=512)
def translate(sql: str, bound: bool = True) -> str:
    """`sql` (SQLite's dialect, as the shared queries are written) in psycopg's; `bound`: with
    parameters, so a `%` is escaped."""

    def one(found: re.Match[str]) -> str:
        literal, name, positional, percent, function, real = found.groups()
        if literal is not None:
            return literal.replace("%", "%%") if bound else literal
        if name is not None:
            return f"%({name})s"
        if positional is not None:
            return "%s"
        if percent is not None:
            return "%%" if bound else "%"
        if function is not None:
            return f"jr_{function}(" if function in _JSON else found.group(0)
        if real is not None:
            return "DOUBLE PRECISION"  # PostgreSQL's REAL has 4 bytes
        return "pg_temp."

    return _TOKENS.sub(one, sql)


class Row(tuple[Any, ...]):
    """A row by position or by column name, and a mapping for dict() (as sqlite3.Row)."""

    names: tuple[str, ...] = ()

    def keys(self) -> tuple[str, ...]:
        return self.names

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self.names.index(key))
        return tuple.__getitem__(self, key)


def _rows(cursor: psycopg.Cursor[Any]) -> RowMaker[Row]:
    names = tuple(column.name for column in cursor.description or ())
    kind = type("Row", (Row,), {"names": names})
    return lambda values: kind(values)


class _Numbers(NumericLoader):
    def load(self, data: Any) -> Any:
        value = super().load(data)
        if isinstance(value, Decimal):
            return int(value) if value == value.to_integral_value() else float(value)
        return value


class _Result:
    def __init__(self, cursor: psycopg.Cursor[Row]):
        self._cursor = cursor

    def fetchone(self) -> Any:
        return self._cursor.fetchone() if self._cursor.description else None

    def fetchall(self) -> list[Any]:
        return self._cursor.fetchall() if self._cursor.description else []

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())


class PgConnection:
    """A psycopg connection that runs the shared queries (ReadConnection, TimeLimited)."""

    def __init__(self, conn: psycopg.Connection[Row]):
        self.conn = conn

    def execute(self, sql: str, parameters: Any = (), /) -> Rows:
        params = _bound(parameters)
        query = translate(sql, params is not None)
        cursor = self.conn.cursor()
        try:
            cursor.execute(query.encode(), params)
        except psycopg.errors.QueryCanceled as exc:
            raise Interrupted(str(exc)) from None
        return _Result(cursor)

    @contextmanager
    def time_limit(self, seconds: float) -> Iterator[None]:
        limit_ms = str(max(1, round(seconds * 1000)))  # whole milliseconds: 0 would mean none
        self.conn.execute(b"SELECT set_config('statement_timeout', %s, false)", (limit_ms,))
        try:
            yield
        finally:
            self.conn.execute(b"RESET statement_timeout")


def _bound(parameters: Any) -> Any:
    """Parameters as psycopg takes them (None: none, so a `%` in the SQL stays as it is); booleans
    as integers, as SQLite binds them."""
    if isinstance(parameters, dict):
        return {k: int(v) if isinstance(v, bool) else v for k, v in parameters.items()}
    if isinstance(parameters, Sequence) and not isinstance(parameters, str | bytes):
        return [int(v) if isinstance(v, bool) else v for v in parameters] if parameters else None
    return parameters


def connect(url: str, timeout_s: float = CONNECT_TIMEOUT_S) -> psycopg.Connection[Row]:
    conn = psycopg.connect(
        url,
        autocommit=True,
        connect_timeout=max(1, round(timeout_s)),
        row_factory=_rows,
        cursor_factory=psycopg.ClientCursor,
    )
    conn.adapters.register_loader("numeric", _Numbers)
    return conn


class PostgresReads(ReadMethods):
    """The ledger's read methods (and `read`, for a report's own query) over PostgreSQL."""

    def __init__(self, url: str):
        self.url = url
        self.migrated = False

    def _read(self, read: Callable[..., T], *args: Any) -> T:
        try:
            conn = connect(self.url)
        except psycopg.OperationalError as exc:
            raise LedgerUnavailable(f"the PostgreSQL ledger cannot be reached: {exc}") from None
        with conn:
            if not self.migrated:  # once per process: the schema exists before it is read
                migrate(conn)
                self.migrated = True
            return read(PgConnection(conn), *args)

    async def read(self, read: Callable[..., T], *args: Any) -> T:
        """`read(conn, *args)` on a connection of its own, off the event loop."""
        return await asyncio.to_thread(self._read, read, *args)

    async def close(self) -> None:
        """Nothing is held between reads."""
