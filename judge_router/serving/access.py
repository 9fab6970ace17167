"""Who may call: bearer API keys checked in constant time, admin-only paths, per-key rate limits."""

from __future__ import annotations

import hmac
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from judge_router.config import ApiKey, ServerConfig
from judge_router.serving.json_response import FastJSONResponse as JSONResponse

OPEN_PATHS = frozenset({"/healthz"})


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token bucket per caller: `per_minute` requests a minute, bursts up to the same number."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic):
        self.capacity = float(per_minute)
        self.refill_per_s = per_minute / 60.0
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, caller: str) -> float:
        """0 when the request may go ahead, else the seconds until it may."""
        now = self._clock()
        bucket = self._buckets.get(caller)
        if bucket is None:
            bucket = self._buckets[caller] = _Bucket(self.capacity, now)
        bucket.tokens = min(
            self.capacity, bucket.tokens + (now - bucket.updated) * self.refill_per_s
        )
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.refill_per_s


def _error(
    status: int, kind: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"type": kind, "message": message}}, status_code=status, headers=headers
    )


class AccessControl:
    """Pure ASGI middleware: authenticates, authorises admin paths, rate-limits; sets
    scope["state"]["api_key_id"] for the ledger (None when no keys are configured)."""

    def __init__(self, app: ASGIApp, server: ServerConfig):
        self.app = app
        self.keys: list[tuple[bytes, ApiKey]] = [(k.key.encode(), k) for k in server.api_keys]
        self.admin_paths = frozenset(server.admin_paths)
        per_minute = server.rate_limit_per_minute
        self.limiter = RateLimiter(per_minute) if per_minute else None

    def _match(self, headers: list[tuple[bytes, bytes]]) -> ApiKey | None:
        token = b""
        for name, value in headers:
            if name == b"authorization":
                scheme, _, rest = value.partition(b" ")
                if scheme.lower() == b"bearer":
                    token = rest.strip()
        found = None
        for secret, key in self.keys:  # compare with every key: timing says nothing about which
            if hmac.compare_digest(secret, token):
                found = key
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        key_id: str | None = None
        if self.keys:
            key = self._match(scope.get("headers", []))
            if key is None:
                response = _error(
                    401, "authentication_error",
                    "missing or invalid API key: send `Authorization: Bearer <key>` with a key "
                    "from server.api_keys",
                )  # fmt: skip
                await response(scope, receive, send)
                return
            if scope["path"] in self.admin_paths and not key.admin:
                await _error(403, "permission_error", f"{scope['path']} needs an admin key")(
                    scope, receive, send
                )
                return
            key_id = key.id
        if self.limiter is not None:
            client = scope.get("client") or ("unknown", 0)
            wait = self.limiter.take(key_id or f"address:{client[0]}")
            if wait > 0:
                retry_after = str(max(1, math.ceil(wait)))
                await _error(
                    429, "rate_limit_error",
                    f"rate limit of {int(self.limiter.capacity)} requests a minute reached; retry "
                    f"after {retry_after} s",
                    {"retry-after": retry_after},
                )(scope, receive, send)  # fmt: skip
                return
        scope.setdefault("state", {})["api_key_id"] = key_id
        await self.app(scope, receive, send)
