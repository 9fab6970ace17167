"""The ledger's read methods, written once over each backend's `read` (a connection of its own,
off the event loop): SqliteLedger's and PostgresReads'."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from judge_router.accounting.budgets import SpendScope, spend_by_scope
from judge_router.accounting.ledger_reads import (
    decision,
    decision_rows,
    outcome_rows,
    request_outcomes,
)
from judge_router.accounting.stats import summarise
from judge_router.accounting.stats_view import StatsView

T = TypeVar("T")


class ReadMethods:
    async def read(self, read: Callable[..., T], *args: Any) -> T:
        """`read(conn, *args)` on a connection of its own, off the event loop."""
        raise NotImplementedError

    async def rows(self, since: str | None = None) -> list[dict[str, Any]]:
        return await self.read(decision_rows, since)

    async def decision(self, request_id: str) -> dict[str, Any] | None:
        return await self.read(decision, request_id)

    async def outcomes(
        self, since: str | None = None, source: str | None = None
    ) -> list[dict[str, Any]]:
        return await self.read(outcome_rows, since, source)

    async def outcomes_of(self, request_id: str) -> list[dict[str, Any]]:
        return await self.read(request_outcomes, request_id)

    async def summary(
        self, since: str | None = None, view: StatsView | None = None
    ) -> dict[str, Any]:
        return await self.read(summarise, since, view)

    async def spend(self, scopes: Sequence[SpendScope], start: str, end: str) -> list[float]:
        return await self.read(spend_by_scope, scopes, start, end)
