"""Month-to-date spend per budget, kept in memory: read from the ledger at start and every
REFRESH_S in the background, and advanced by every row recorded in between.

No request waits for the ledger, except the first ones after start while the first read runs (at
most FIRST_READ_WAIT_S). The ledger's figure counts the rows created before the moment its read
began (`cutoff`); the rows observed since, created at or after it, are added on top, so a row is
never counted twice. A row created before the cutoff but committed after the read (a write that was
queued) is missed until the next read. A stream's provisional row is not counted: its final row is.

With `shared` (Redis, several replicas) every replica also adds its rows to shared counters and
reads them back at most every SHARED_READ_S; a budget's spend is the larger of the two figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from judge_router.accounting.budgets import SpendScope, month_bounds, row_spend
from judge_router.accounting.ledger import Ledger
from judge_router.accounting.ledger_row import LedgerRow
from judge_router.config_policy import ACTION_RANK, CAP_TIERS, Budget
from judge_router.routing.budget_limits import BudgetLimit
from judge_router.routing.request import RoutingRequest
from judge_router.service.shared_spend import SharedSpend
from judge_router.types import round_usd

log = logging.getLogger(__name__)

REFRESH_S = 30.0
FIRST_READ_WAIT_S = 2.0
SHARED_READ_S = 0.5  # how stale another replica's spend may be here (one MGET per interval)
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def scope_sentence(budget: Budget) -> str:
    scope = SpendScope.of(budget)
    if scope.api_key_id is not None:
        return f"api key {scope.api_key_id}"
    if scope.metadata_key is not None:
        return f"metadata {scope.metadata_key} = {scope.metadata_value}"
    return "everyone"


class BudgetTracker:
    """The engine's `BudgetCheck`, and an observer of every recorded row."""

    def __init__(
        self,
        budgets: Sequence[Budget],
        ledger: Ledger,
        clock: Clock = utc_now,
        refresh_s: float = REFRESH_S,
        shared: SharedSpend | None = None,
    ):
        self.budgets = list(budgets)
        self.scopes = [SpendScope.of(budget) for budget in self.budgets]
        self.ledger = ledger
        self.clock = clock
        self.refresh_s = refresh_s
        self.shared = shared
        self._names = [budget.name for budget in self.budgets]
        self._shared_read_at = -math.inf
        self.rejected = [0] * len(self.budgets)  # since start; refused requests have no row
        self._month = month_bounds(clock())
        self._month_iso = tuple(moment.isoformat() for moment in self._month)
        self._reset()
        self._read_once = asyncio.Event()
        self._waited = False  # the first requests wait for the first read; later ones never
        self._one_read = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    def _reset(self) -> None:
        count = len(self.budgets)
        self._base = [0.0] * count  # the ledger's figure for rows created before `_cutoff`
        self._cutoff = ""  # no read yet: every observed row of the month counts
        self._since_cutoff = [0.0] * count
        # While a read runs: its cutoff, and the rows observed since that are created after it.
        self._reading: tuple[str, list[float]] | None = None
        self._shared_figures = [0.0] * count  # every replica's rows, as Redis last said

    def spent(self, index: int) -> float:
        self._roll_over()
        return max(self._base[index] + self._since_cutoff[index], self._shared_figures[index])

    def _month_key(self) -> str:
        return self._month[0].strftime("%Y-%m")

    async def _read_shared(self) -> None:
        """The shared counters, if the last read is older than SHARED_READ_S (kept if it fails)."""
        now = time.monotonic()
        if self.shared is None or now - self._shared_read_at < SHARED_READ_S:
            return
        self._shared_read_at = now  # concurrent requests go on with the figures they have
        month = self._month
        totals = await self.shared.totals(self._names, self._month_key())
        if totals is not None and month == self._month:
            self._shared_figures = totals

    def _roll_over(self) -> None:
        now = self.clock()
        if self._month[0] <= now < self._month[1]:
            return
        bounds = month_bounds(now)
        if bounds != self._month:  # a new month: every budget starts again from zero
            self._month = bounds
            self._month_iso = tuple(moment.isoformat() for moment in bounds)
            self._reset()

    # -- counting -----------------------------------------------------------------------------

    def observe(self, row: LedgerRow, written: bool, provisional: bool) -> None:
        """An Engine observer: add a recorded row's spend to the budgets whose scope it is in."""
        if provisional:  # the stream's final row replaces it, and is counted then
            return
        self._roll_over()
        start, end = self._month_iso
        if not start <= row.created_at < end:
            return
        cost = row_spend(row)
        if not cost:
            return
        covered = []
        for index, scope in enumerate(self.scopes):
            if not scope.covers(row.metadata, row.api_key_id):
                continue
            covered.append(self._names[index])
            if row.created_at >= self._cutoff:
                self._since_cutoff[index] += cost
            if self._reading is not None and row.created_at >= self._reading[0]:
                self._reading[1][index] += cost
        if self.shared is not None:
            self.shared.add(covered, self._month_key(), cost)

    async def refresh(self) -> bool:
        """Read the month's spend from the ledger; False (and the figures kept) if it fails."""
        async with self._one_read:
            return await self._refresh()

    async def _refresh(self) -> bool:
        self._roll_over()
        month = self._month
        cutoff = self.clock().isoformat()
        reading: tuple[str, list[float]] = (cutoff, [0.0] * len(self.budgets))
        self._reading = reading
        try:
            totals = await self.ledger.spend(self.scopes, month[0].isoformat(), cutoff)
        except Exception as exc:
            if not self._failing:  # one line per change of state
                log.warning("budgets: cannot read spend from the ledger (%s); kept in memory", exc)
            self._failing = True
            return False
        finally:
            if self._reading is reading:
                self._reading = None
        self._failing = False
        if month != self._month:  # the month ended during the read: its figures are last month's
            return False
        self._base, self._cutoff, self._since_cutoff = list(totals), cutoff, reading[1]
        return True

    # -- the background reader ------------------------------------------------------------------

    def start(self) -> None:
        """Start reading the ledger in the background (idempotent; needs a running loop)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="budgets")

    async def _run(self) -> None:
        while True:
            try:
                await self.refresh()
            finally:
                self._read_once.set()
            await asyncio.sleep(self.refresh_s)

    async def ready(self) -> None:
        """Wait for the first read of the ledger (at most FIRST_READ_WAIT_S; then go on)."""
        self.start()
        if self._waited:
            return
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._read_once.wait(), FIRST_READ_WAIT_S)
        finally:
            self._waited = True

    async def aclose(self) -> None:
        if self.shared is not None:
            await self.shared.aclose()
        task, self._task = self._task, None
        if task is None or task.done():
            return
        task.cancel()
        if task.get_loop() is asyncio.get_running_loop():
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- what the pipeline and /stats ask ----------------------------------------------------

    def state(self, index: int) -> str:
        budget, spent = self.budgets[index], self.spent(index)
        if spent >= budget.usd_per_month:
            return "hard"
        return "soft" if spent >= budget.usd_per_month * budget.soft_pct / 100 else "ok"

    async def limit_for(self, request: RoutingRequest) -> BudgetLimit | None:
        """The strictest budget over the request (the first listed among equals). An eval run
        measures the routing itself: budgets do not apply to it."""
        if request.endpoint == "eval":
            return None
        if self._task is None or not self._waited:
            await self.ready()
        await self._read_shared()
        chosen, rank = None, 0
        for index, (budget, scope) in enumerate(zip(self.budgets, self.scopes, strict=True)):
            if not scope.covers(request.metadata, request.api_key_id):
                continue
            state = self.state(index)
            if ACTION_RANK[budget.action(state)] > rank:
                chosen, rank = (index, state), ACTION_RANK[budget.action(state)]
        if chosen is None:
            return None
        index, state = chosen
        limit = self._limit(index, state)
        if limit.refuses:
            self.rejected[index] += 1
        return limit

    def _limit(self, index: int, state: str) -> BudgetLimit:
        budget = self.budgets[index]
        action = budget.action(state)
        resets_at = self._month[1]
        return BudgetLimit(
            budget=budget.name,
            scope=scope_sentence(budget),
            state=state,
            max_tier=CAP_TIERS.get(action or ""),
            usd_per_month=budget.usd_per_month,
            spent_usd=self.spent(index),
            soft_pct=budget.soft_pct,
            resets_at=resets_at,
            retry_after_s=max(1, math.ceil((resets_at - self.clock()).total_seconds())),
        )

    async def report(self) -> list[dict[str, Any]]:
        """Each budget's month so far, for /stats."""
        await self.ready()
        await self._read_shared()
        return [
            {
                "name": budget.name,
                "scope": budget.scope_public(),
                "usd_per_month": budget.usd_per_month,
                "soft_pct": budget.soft_pct,
                "spent_usd": round_usd(self.spent(index)),
                "share_pct": round(100 * self.spent(index) / budget.usd_per_month, 4),
                "state": self.state(index),
                "resets_at": self._month[1].isoformat(),
                "rejected": self.rejected[index],
            }
            for index, budget in enumerate(self.budgets)
        ]
