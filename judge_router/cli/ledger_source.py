"""The ledger the report commands read (`report`, `shadow-report`, `outcomes`, `train
--from-ledger`): the SQLite file at `ledger.path`, or the PostgreSQL database at `ledger.url`,
which every replica writes to."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

import click

from judge_router.accounting.ledger import LedgerUnavailable
from judge_router.accounting.stats_view import StatsView
from judge_router.config import Settings

T = TypeVar("T")


class ReadableLedger(Protocol):
    async def read(self, read: Callable[..., T], *args: Any) -> T: ...

    async def summary(
        self, since: str | None = None, view: StatsView | None = None
    ) -> dict[str, Any]: ...

    async def outcomes(
        self, since: str | None = None, source: str | None = None
    ) -> list[dict[str, Any]]: ...

    async def close(self) -> None: ...


def open_for_reading(settings: Settings, missing: str) -> ReadableLedger:
    """The configured ledger; for SQLite, a ClickException naming `ledger.path` (and `missing`:
    why that stops the command) when there is no file."""
    ledger = settings.ledger
    if ledger.uses_postgres:
        from judge_router.accounting.postgres_reads import PostgresReads

        assert ledger.url is not None
        return PostgresReads(ledger.url)  # reads only: no pool, no flusher, no recovery file
    from judge_router.accounting.sqlite_ledger import SqliteLedger

    if not ledger.path.exists():
        raise click.ClickException(f"no ledger at {ledger.path} (ledger.path): {missing}")
    return SqliteLedger(ledger.path)


def read_ledger(
    settings: Settings,
    read: Callable[[ReadableLedger], Coroutine[Any, Any, T]],
    missing: str = "nothing to report",
) -> T:
    """`read(ledger)`'s answer; an unreachable database is a ClickException saying so."""
    ledger = open_for_reading(settings, missing)

    async def run() -> T:
        try:
            return await read(ledger)
        finally:
            await ledger.close()

    try:
        return asyncio.run(run())
    except LedgerUnavailable as exc:
        raise click.ClickException(f"{exc} (ledger.url)") from None
