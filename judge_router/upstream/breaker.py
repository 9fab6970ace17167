"""Circuit breakers: after N consecutive failures a model (or the judge) is skipped for a cooldown."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _State:
    consecutive_failures: int = 0
    open_until: float = 0.0


class CircuitBreaker:
    """Per-name breaker. Once the cooldown has passed one call is let through (half-open): its
    success closes the circuit, its failure opens it again for another cooldown."""

    def __init__(
        self, failures: int, cooldown_s: float, clock: Callable[[], float] = time.monotonic
    ):
        self.failures = failures
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._states: dict[str, _State] = {}

    def allows(self, name: str) -> bool:
        state = self._states.get(name)
        return state is None or state.open_until <= self._clock()

    def success(self, name: str) -> None:
        self._states.pop(name, None)

    def failure(self, name: str) -> None:
        state = self._states.setdefault(name, _State())
        state.consecutive_failures += 1
        if state.consecutive_failures >= self.failures:
            state.open_until = self._clock() + self.cooldown_s

    def open_circuits(self) -> dict[str, float]:
        """Name -> seconds until it is tried again, for every open circuit (for /healthz)."""
        now = self._clock()
        return {
            name: round(state.open_until - now, 3)
            for name, state in self._states.items()
            if state.open_until > now
        }
