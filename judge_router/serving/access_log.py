"""One access log line per request: method, path, status, tier, model, latency and request id.

The outermost middleware, so refusals (401, 413, 429) are logged too. Tier, model and request id are
read from the answer's own `x-judge-router-*` headers. It is on every request's path: when the
access logger is off it costs one level check, and otherwise a header scan and one log call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("judge_router.access")

_TIER = b"x-judge-router-tier"
_MODEL = b"x-judge-router-model"
_REQUEST_ID = b"x-judge-router-request-id"


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        response: dict[str, Any] = {}

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                response["status"] = message["status"]
                response["headers"] = message.get("headers")
            await send(message)

        unanswered = 500  # an exception before the answer started: Starlette's handler answers 500
        try:
            await self.app(scope, receive, sending)
        except asyncio.CancelledError:
            unanswered = 499  # the client left first (nginx's code for it)
            raise
        finally:
            _log(scope, response.get("status", unanswered), response.get("headers"), started)


def _log(scope: Scope, status: int, headers: Any, started: float) -> None:
    latency_ms = round((time.perf_counter() - started) * 1000, 2)
    tier = model = request_id = "-"
    for name, value in headers or ():
        if name.startswith(b"x-judge-router-"):
            if name == _TIER:
                tier = value.decode("latin-1")
            elif name == _MODEL:
                model = value.decode("latin-1")
            elif name == _REQUEST_ID:
                request_id = value.decode("latin-1")
    client = scope.get("client")
    address = f"{client[0]}:{client[1]}" if client else "-"
    method, path = scope["method"], scope["path"]
    fields = {
        "client": address,
        "method": method,
        "path": path,
        "status": status,
        "tier": None if tier == "-" else tier,
        "model": None if model == "-" else model,
        "latency_ms": latency_ms,
        "request_id": None if request_id == "-" else request_id,
    }
    log.info(
        '%s "%s %s" %d tier=%s model=%s %.2fms request_id=%s',
        address, method, path, status, tier, model, latency_ms, request_id,
        extra={"access": fields},
    )  # fmt: skip
