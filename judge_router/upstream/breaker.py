"""Circuit breakers: after N consecutive failures a model (or the judge) is skipped for a cooldown."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from judge_router.config import CircuitBreakerConfig


class Breaker(Protocol):
    """Per-name failure memory. Async so that a shared back end (Redis) can implement it."""

    async def blocked(self, name: str) -> bool:
        """Whether `name` is skipped now (open, or half-open with its one trial taken); claims nothing."""
        ...

    async def allows(self, name: str) -> bool:
        """Whether a call to `name` may go ahead now; in half-open, only one caller gets True."""
        ...

    async def success(self, name: str) -> None: ...

    async def failure(self, name: str) -> None: ...

    async def open_circuits(self) -> dict[str, float]:
        """Name -> seconds until it is tried again, for every open circuit (for /healthz)."""
        ...


@dataclass(slots=True)
class _State:
    consecutive_failures: int = 0
    open_until: float = 0.0
    trial_until: float = 0.0  # half-open: the one trial's lease (another trial after it lapses)


class MemoryBreaker:
    """This process's breaker. Once the cooldown has passed, exactly one call is let through
    (half-open): its success closes the circuit, its failure opens it for another cooldown. A
    trial that never reports (its request was cancelled) lapses after one cooldown."""

    def __init__(self, config: CircuitBreakerConfig, clock: Callable[[], float] = time.monotonic):
        self.failures = config.failures
        self.cooldown_s = config.cooldown_s
        self._clock = clock
        self._states: dict[str, _State] = {}

    def _open(self, state: _State | None) -> bool:
        return state is not None and state.consecutive_failures >= self.failures

    async def blocked(self, name: str) -> bool:
        state = self._states.get(name)
        now = self._clock()
        if state is None or not self._open(state):
            return False
        return state.open_until > now or state.trial_until > now

    async def allows(self, name: str) -> bool:
        state = self._states.get(name)
        now = self._clock()
        if state is None or not self._open(state):
            return True
        if state.open_until > now or state.trial_until > now:
            return False
        state.trial_until = now + self.cooldown_s  # this caller is the half-open trial
        return True

    async def success(self, name: str) -> None:
        self._states.pop(name, None)

    async def failure(self, name: str) -> None:
        state = self._states.setdefault(name, _State())
        state.consecutive_failures += 1
        state.trial_until = 0.0
        if state.consecutive_failures >= self.failures:
            state.open_until = self._clock() + self.cooldown_s

    async def open_circuits(self) -> dict[str, float]:
        now = self._clock()
        return {
            name: round(state.open_until - now, 3)
            for name, state in self._states.items()
            if state.open_until > now
        }
