"""Where verdicts are kept: the interface, the diskcache store (one machine), and "no cache".

A store that fails is reported in its health and bypassed; it never raises to the caller.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import diskcache

from judge_router.types import Source, Tier, Verdict

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StoredVerdict:
    """A verdict as a later request sees it (source: cache, free), and when it expires (epoch s)."""

    verdict: Verdict
    expires_at: float


@dataclass(frozen=True, slots=True)
class StoreHealth:
    enabled: bool
    writable: bool
    errors: int
    last_error: str | None = None


class VerdictStore(Protocol):
    async def get(self, key: str) -> StoredVerdict | None: ...

    async def put(self, key: str, verdict: Verdict) -> StoredVerdict | None:
        """Keep `verdict` for the store's TTL; what a later get returns, or None if not kept."""
        ...

    async def health(self) -> StoreHealth: ...

    def close(self) -> None: ...


def stored(value: dict[str, Any]) -> StoredVerdict:
    """A stored entry back as a verdict; KeyError or ValueError if it is not one."""
    verdict = Verdict(
        tier=Tier(value["tier"]),
        reason=str(value["reason"]),
        source=Source.CACHE,
        judge_model=str(value.get("judge_model", "")),
    )
    return StoredVerdict(verdict, float(value["expires_at"]))


def storable(verdict: Verdict, expires_at: float) -> dict[str, Any]:
    """What is kept of a verdict: its tier, reason and judge, never the prompt."""
    return {
        "tier": verdict.tier.value,
        "reason": verdict.reason,
        "judge_model": verdict.judge_model,
        "expires_at": expires_at,
    }


class DiskVerdictStore:
    """diskcache under `directory` (multi-process safe, so workers share it); exact TTL.

    A failure closes the cache, and it is opened again on first use after a backoff (1 s,
    doubling to 60 s): an operator who fixes the directory's permissions or deletes a corrupt
    cache needs no restart. A directory deleted while open would take writes into an unlinked
    file, so each write and health probe first checks that the database file is still there.
    """

    BACKOFF_S = (1.0, 60.0)

    def __init__(
        self,
        directory: Path,
        ttl_s: int,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.directory = directory
        self.ttl_s = ttl_s
        self._clock = clock
        self._monotonic = monotonic
        self.errors = 0
        self.last_error: str | None = None
        self._disk: diskcache.Cache | None = None
        self._retry_at = 0.0
        self._backoff_s = self.BACKOFF_S[0]
        self._usable()

    def _fail(self, action: str, exc: Exception) -> None:
        self.errors += 1
        self.last_error = f"{action}: {type(exc).__name__}: {exc}"
        log.warning(
            "verdict cache %s failed at %s: %s; retried in %.0f s",
            action, self.directory, exc, self._backoff_s,
        )  # fmt: skip
        if self._disk is not None:
            try:
                self._disk.close()
            except Exception:  # closing a broken cache may fail too; it is dropped either way
                pass
            self._disk = None
        self._retry_at = self._monotonic() + self._backoff_s
        self._backoff_s = min(self._backoff_s * 2, self.BACKOFF_S[1])

    def _usable(self, check_file: bool = False) -> diskcache.Cache | None:
        """The open cache, opening it again if its backoff has passed; None while it is broken."""
        if self._disk is not None and check_file and not (self.directory / "cache.db").exists():
            self._fail("check", FileNotFoundError(f"{self.directory / 'cache.db'} was removed"))
        if self._disk is None and self._monotonic() >= self._retry_at:
            try:
                self._disk = diskcache.Cache(str(self.directory))
            except Exception as exc:  # unwritable or corrupt directory: judge every request
                self._fail("open", exc)
            else:
                self._backoff_s = self.BACKOFF_S[0]
        return self._disk

    async def get(self, key: str) -> StoredVerdict | None:
        disk = self._usable()
        if disk is None:
            return None
        try:
            value = disk.get(key)
        except Exception as exc:
            self._fail("read", exc)
            return None
        # diskcache also expires entries; this check makes the TTL exact and testable.
        if not isinstance(value, dict) or value.get("expires_at", 0) <= self._clock():
            return None
        try:
            return stored(value)
        except (KeyError, ValueError, TypeError):
            return None  # an entry we cannot read is a miss, not an error

    async def put(self, key: str, verdict: Verdict) -> StoredVerdict | None:
        disk = self._usable(check_file=True)
        if disk is None:
            return None
        value = storable(verdict, self._clock() + self.ttl_s)
        try:
            disk.set(key, value, expire=self.ttl_s)
        except Exception as exc:
            self._fail("write", exc)
            return None
        return stored(value)

    async def health(self) -> StoreHealth:
        """Whether a probe value can be written and read back now (for /healthz)."""
        writable = False
        disk = self._usable(check_file=True)
        if disk is not None:
            try:
                disk.set("jr-health-probe", 1, expire=60)
                writable = disk.get("jr-health-probe") == 1
            except Exception as exc:
                self._fail("probe", exc)
        return StoreHealth(True, writable, self.errors, self.last_error)

    def close(self) -> None:
        if self._disk is not None:
            self._disk.close()


class NoVerdictStore:
    """`cache.enabled: false`: nothing is kept, every request is judged."""

    async def get(self, key: str) -> StoredVerdict | None:
        return None

    async def put(self, key: str, verdict: Verdict) -> StoredVerdict | None:
        return None

    async def health(self) -> StoreHealth:
        return StoreHealth(enabled=False, writable=True, errors=0)

    def close(self) -> None:
        pass
