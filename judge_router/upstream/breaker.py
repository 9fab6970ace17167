"""Circuit breakers: after N consecutive failures a model (or the judge) is skipped for a cooldown."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from judge_router.config import CircuitBreakerConfig


class Breaker(Protocol):
    """Per-name failure memory. Async so that a shared back end (Redis) can implement it."""

    async def allows(self, name: str) -> bool: ...

    async def success(self, name: str) -> None: ...

    async def failure(self, name: str) -> None: ...

    async def open_circuits(self) -> dict[str, float]:
        """Name -> seconds until it is tried again, for every open circuit (for /healthz)."""
        ...


@dataclass(slots=True)
class _State:
    consecutive_failures: int = 0
    open_until: float = 0.0


class MemoryBreaker:
    """This process's breaker. Once the cooldown has passed one call is let through (half-open): its
    success closes the circuit, its failure opens it again for another cooldown."""

    def __init__(self, config: CircuitBreakerConfig, clock: Callable[[], float] = time.monotonic):
        self.failures = config.failures
        self.cooldown_s = config.cooldown_s
        self._clock = clock
        self._states: dict[str, _State] = {}

    async def allows(self, name: str) -> bool:
        state = self._states.get(name)
        return state is None or state.open_until <= self._clock()

    async def success(self, name: str) -> None:
        self._states.pop(name, None)

    async def failure(self, name: str) -> None:
        state = self._states.setdefault(name, _State())
        state.consecutive_failures += 1
        if state.consecutive_failures >= self.failures:
            state.open_until = self._clock() + self.cooldown_s

    async def open_circuits(self) -> dict[str, float]:
        now = self._clock()
        return {
            name: round(state.open_until - now, 3)
            for name, state in self._states.items()
            if state.open_until > now
        }
