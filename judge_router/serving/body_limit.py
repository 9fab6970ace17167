"""Rejects request bodies over the limit with 413 before they are read into memory (pure ASGI)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from judge_router.serving.errors import error_response
from judge_router.serving.json_response import FastJSONResponse as JSONResponse


class BodySizeLimit:
    def __init__(self, app: ASGIApp, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                if not value.isdigit() or int(value) > self.limit:
                    await self.too_large()(scope, receive, send)
                    return
                await self.app(scope, receive, send)
                return
        # No declared length (chunked upload): read up to the limit here, then replay the body.
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before finishing its request
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.limit:
                await self.too_large()(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def too_large(self) -> JSONResponse:
        message = f"request body is larger than server.max_body_bytes ({self.limit} bytes)"
        return error_response(413, message)
