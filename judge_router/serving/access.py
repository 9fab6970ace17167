"""Who may call: API keys checked in constant time, admin-only paths, per-key rate limits.

A key comes as `Authorization: Bearer KEY` (OpenAI's SDKs) or `x-api-key: KEY` (Anthropic's).
"""

from __future__ import annotations

import hmac
import math

from starlette.types import ASGIApp, Receive, Scope, Send

from judge_router.config import ApiKey, ServerConfig
from judge_router.service.rate_limits import RateLimiter
from judge_router.serving.dashboard import session as dashboard
from judge_router.serving.errors import error_response

OPEN_PATHS = frozenset({"/healthz"})
# Paths under it change the running service (POST /admin/reload): admin keys only, whatever
# server.admin_paths lists, so shortening that list never opens them.
ADMIN_PREFIX = "/admin/"


class AccessControl:
    """Pure ASGI middleware: authenticates, authorises admin paths, rate-limits; sets
    scope["state"]["api_key_id"] for the ledger (None when no keys are configured) and
    scope["state"]["api_key_admin"] (whether that key is an admin key; False without keys)."""

    def __init__(self, app: ASGIApp, server: ServerConfig, limiter: RateLimiter | None):
        self.app = app
        self.keys: list[tuple[bytes, ApiKey]] = [(k.key.encode(), k) for k in server.api_keys]
        self.api_keys = list(server.api_keys)
        self.admin_paths = frozenset(server.admin_paths)
        self.limiter = limiter

    def _admin_only(self, path: str) -> bool:
        return (
            path in self.admin_paths or path.startswith(ADMIN_PREFIX) or dashboard.needs_admin(path)
        )

    def _match(self, headers: list[tuple[bytes, bytes]]) -> ApiKey | None:
        token = b""
        for name, value in headers:
            if name == b"authorization":
                scheme, _, rest = value.partition(b" ")
                if scheme.lower() == b"bearer":
                    token = rest.strip()
            elif name == b"x-api-key" and not token:
                token = value.strip()
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
        admin = False
        if self.keys:
            path, headers = scope["path"], scope.get("headers", [])
            # The dashboard's page is open (it holds no data); its data take a key or the
            # session cookie its sign-in gave, and an admin key either way (dashboard/session).
            key = self._match(headers) or dashboard.session_key(path, headers, self.api_keys)
            if key is None and not dashboard.is_public(path):
                response = error_response(
                    401,
                    "missing or invalid API key: send `Authorization: Bearer <key>` (or "
                    "`x-api-key: <key>`) with a key from server.api_keys",
                )  # fmt: skip
                await response(scope, receive, send)
                return
            if key is not None and self._admin_only(path) and not key.admin:
                await error_response(403, f"{path} needs an admin key")(scope, receive, send)
                return
            if key is not None:
                key_id, admin = key.id, key.admin
        if self.limiter is not None:
            client = scope.get("client") or ("unknown", 0)
            wait = await self.limiter.take(key_id or f"address:{client[0]}")
            if wait > 0:
                retry_after = str(max(1, math.ceil(wait)))
                await error_response(
                    429,
                    f"rate limit of {self.limiter.per_minute} requests a minute reached; retry "
                    f"after {retry_after} s",
                    headers={"retry-after": retry_after},
                )(scope, receive, send)  # fmt: skip
                return
        state = scope.setdefault("state", {})
        state["api_key_id"], state["api_key_admin"] = key_id, admin
        await self.app(scope, receive, send)
