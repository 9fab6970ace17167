"""One Redis connection pool per URL, shared by the verdict cache and the shared state, and what
happens when Redis cannot be reached: each call fails fast (`RedisDown`) for a backoff (0.25 s
doubling to 5 s) after a failure, so the callers fall back to this process at once instead of
waiting on a dead server per request; the first call after the backoff tries again.

`redis` is an optional dependency (`pip install 'judge-router[scale]'`), imported only here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from judge_router.config_stores import safe_url

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)
T = TypeVar("T")

OP_TIMEOUT_S = 0.5  # a Redis call slower than this counts as Redis being unreachable
BACKOFF_S = (0.25, 5.0)


class RedisDown(Exception):
    """Redis could not be reached (now, or within the backoff after the last failure)."""


class RedisLink:
    def __init__(self, url: str, password: str | None = None, name: str = "redis"):
        try:
            from redis.asyncio import Redis
        except ImportError:  # pragma: no cover - the extra is part of dev
            raise RuntimeError(
                "a redis:// URL needs the redis client: pip install 'judge-router[scale]'"
            ) from None
        self.url = safe_url(url)
        self.name = name
        self.client: Redis = Redis.from_url(
            url,
            password=password,
            socket_timeout=OP_TIMEOUT_S,
            socket_connect_timeout=OP_TIMEOUT_S,
            health_check_interval=30,
            max_connections=200,
        )
        self.errors = 0
        self.fallbacks: dict[str, int] = {}  # what was done locally instead, by kind
        self.last_error: str | None = None
        self._retry_at = 0.0
        self._backoff_s = BACKOFF_S[0]
        self._down_since: float | None = None

    @property
    def reachable(self) -> bool:
        return self._down_since is None

    async def run(self, call: Callable[[Redis], Awaitable[T]]) -> T:
        """`call(client)`'s result; RedisDown if Redis fails or is in its backoff."""
        from redis.exceptions import RedisError

        if self._down_since is not None and time.monotonic() < self._retry_at:
            raise RedisDown(self.last_error or "redis unreachable")
        try:
            result = await call(self.client)
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed(exc)
            raise RedisDown(str(exc)) from exc
        if self._down_since is not None:
            log.warning(
                "%s at %s reachable again after %.1f s; shared again",
                self.name, self.url, time.monotonic() - self._down_since,
            )  # fmt: skip
            self._down_since = None
            self._backoff_s = BACKOFF_S[0]
        return result

    def fell_back(self, kind: str) -> None:
        """Count one thing done in this process because Redis was unreachable."""
        self.fallbacks[kind] = self.fallbacks.get(kind, 0) + 1

    def _failed(self, exc: BaseException) -> None:
        self.errors += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        if self._down_since is None:  # one line per change of state
            self._down_since = time.monotonic()
            log.error(
                "%s at %s unreachable (%s); each replica uses its own memory until it is back",
                self.name, self.url, self.last_error,
            )  # fmt: skip
        self._retry_at = time.monotonic() + self._backoff_s
        self._backoff_s = min(self._backoff_s * 2, BACKOFF_S[1])

    async def ping(self) -> bool:
        try:
            return bool(await self.run(lambda client: client.ping()))
        except RedisDown:
            return False

    def health(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "reachable": self.reachable,
            "errors": self.errors,
            "fallbacks": dict(self.fallbacks),
            "last_error": self.last_error,
        }

    async def aclose(self) -> None:
        await self.client.aclose()
