"""One flight across processes: before judging a prompt, a replica claims it in the shared store;
the others wait for the verdict the claimant stores. The local OneFlight runs first, so a replica
makes one claim per prompt however many of its requests want it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from judge_router.routing.verdict_store import StoredVerdict


@dataclass(frozen=True, slots=True)
class Claim:
    """Either another replica's verdict (`found`), or the right to judge (`token`: released once
    the verdict is stored); neither when the shared store is unreachable (judge locally)."""

    found: StoredVerdict | None = None
    token: str | None = None


class SharedFlight(Protocol):
    async def claim(self, key: str) -> Claim:
        """The stored verdict, or the claim to judge; waits while another replica judges it."""
        ...

    async def release(self, key: str, claim: Claim) -> None:
        """Give the claim up (after the verdict is stored, or when there is none to store)."""
        ...
