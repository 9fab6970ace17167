"""The ledger interface: one row per decision; writes never raise (SQLite: sqlite_ledger.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from judge_router.accounting.budgets import SpendScope
from judge_router.accounting.ledger_row import LedgerRow
from judge_router.accounting.outcome_row import OutcomeRow
from judge_router.accounting.stats_view import StatsView


class LedgerUnavailable(Exception):
    """A read found the ledger's database unreachable (PostgreSQL down); writes never raise."""


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

    async def record_outcome(self, outcome: OutcomeRow) -> bool:
        """Store a score for an answer, as `record` stores a row (never raises); it replaces an
        earlier outcome of the same request, source and model."""
        ...

    async def rows(self, since: str | None = None) -> list[dict[str, Any]]:
        """Every row (oldest first), optionally from an ISO timestamp on."""
        ...

    async def decision(self, request_id: str) -> dict[str, Any] | None:
        """The row of one request, or None if there is none."""
        ...

    async def outcomes(
        self, since: str | None = None, source: str | None = None
    ) -> list[dict[str, Any]]:
        """Outcome rows (oldest first), with their request's prompt_hash, arm and metadata."""
        ...

    async def outcomes_of(self, request_id: str) -> list[dict[str, Any]]:
        """One request's outcome rows, by source then model (without the join `outcomes` adds)."""
        ...

    async def summary(
        self, since: str | None = None, view: StatsView | None = None
    ) -> dict[str, Any]:
        """Savings totals and breakdowns (see stats.py); a `view` filters them and adds groups
        (stats_view.py). Raises stats_scan.ScanTooLong when a view reads the rows for too long."""
        ...

    async def spend(self, scopes: Sequence[SpendScope], start: str, end: str) -> list[float]:
        """What each scope spent over the rows created in [start, end) (ISO timestamps, UTC):
        verdicts plus realised answers, /route estimates (see budgets.py). Budgets call it in
        the background, never per request."""
        ...

    async def health(self) -> LedgerHealth: ...

    async def close(self) -> None:
        """Store what is still waiting, if it can, then release the store."""
        ...
