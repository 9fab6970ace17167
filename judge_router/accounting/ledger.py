"""The ledger interface: one row per decision; writes never raise (SQLite: sqlite_ledger.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from judge_router.accounting.ledger_row import LedgerRow


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
