"""Serves the endpoints every request hits straight from ASGI, ahead of FastAPI's routing.

Between the access-control and body-limit middlewares and the endpoint, FastAPI runs its exception
and exit-stack middlewares, matches the route, builds the request, solves dependencies and wraps the
response: ~0.1 ms a request in a tight loop, and 3-4x that on the proxy path, where the CPU caches
are cold after each litellm call. POST /route, /complete and /v1/chat/completions are therefore
dispatched here to the very functions FastAPI has registered for them, with the app's own exception
handlers. FastAPI still declares these endpoints (OpenAPI) and serves every other path and method.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

Endpoint = Callable[[Request], Awaitable[Response]]
# As FastAPI keeps them: exception class (or status code) -> handler, sync or async.
ErrorHandlers = Mapping[Any, Callable[[Request, Any], Response | Awaitable[Response]]]


class HotPaths:
    def __init__(
        self,
        app: ASGIApp,
        endpoints: Mapping[str, Endpoint],
        error_handlers: ErrorHandlers,
    ):
        self.app = app
        self.endpoints = endpoints  # POST path -> endpoint
        self.error_handlers = error_handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self._endpoint(scope)
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await endpoint(request)
        except Exception as exc:
            response = await self._error_response(request, exc)
        await response(scope, receive, send)

    def _endpoint(self, scope: Scope) -> Endpoint | None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return None
        path: str = scope["path"]
        root_path: str = scope.get("root_path", "")
        if root_path and path.startswith(root_path):  # mounted under a prefix: match what follows
            path = path[len(root_path) :]
        return self.endpoints.get(path)

    async def _error_response(self, request: Request, exc: Exception) -> Response:
        # The handler registered for the nearest class of the exception, as Starlette looks it up.
        for cls in type(exc).__mro__:
            handler = self.error_handlers.get(cls)
            if handler is not None:
                response = handler(request, exc)
                return await response if inspect.isawaitable(response) else response
        raise exc
