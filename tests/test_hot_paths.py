"""The per-request endpoints are served ahead of FastAPI's routing, with the app's error handlers."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import respx
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from judge_router.config import Settings
from judge_router.service.engine import Engine
from judge_router.serving.app import create_app
from judge_router.serving.hot_paths import HotPaths


async def test_the_app_serves_hot_endpoints_and_falls_through_for_the_rest(
    settings: Settings, engine: Engine, judge_route: respx.Route
) -> None:
    transport = httpx.ASGITransport(app=create_app(settings, engine))
    async with httpx.AsyncClient(transport=transport, base_url="http://router.test") as client:
        hot = await client.post("/route", json={"prompt": "What is 2 + 2?"})
        bad = await client.post("/route", json={"prompt": 5})
        wrong_method = await client.get("/route")
        health = await client.get("/healthz")
    assert hot.status_code == 200 and hot.json()["tier"] == "medium"
    assert bad.status_code == 400 and "prompt" in bad.json()["error"]["message"]
    assert wrong_method.status_code == 405 and wrong_method.json()["error"]["type"]
    assert health.status_code == 200


async def test_only_posts_to_hot_paths_skip_the_inner_app() -> None:
    """HotPaths' inner app is FastAPI's routing: a POST to a hot path never reaches it."""
    reached: list[tuple[str, str]] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        reached.append((scope["method"], scope["path"]))
        await fallback(scope, receive, send)

    async def endpoint(request: Request) -> Response:
        return PlainTextResponse("hot")

    app = HotPaths(inner, {"/route": endpoint}, {})
    assert await call(app, "/route") == (200, b"hot")
    assert await call(app, "/route", method="GET") == (404, b"fell through")
    assert await call(app, "/healthz") == (404, b"fell through")
    assert reached == [("GET", "/route"), ("POST", "/healthz")]


class Nearer(ValueError):
    pass


async def call(
    app: HotPaths, path: str, root_path: str = "", method: str = "POST"
) -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": root_path,
        "headers": [],
        "query_string": b"",
    }
    await app(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


async def fallback(scope: Any, receive: Any, send: Any) -> None:
    await PlainTextResponse("fell through", status_code=404)(scope, receive, send)


async def test_errors_go_to_the_handler_of_the_nearest_class() -> None:
    async def failing(request: Request) -> Response:
        raise Nearer("bad value")

    def value_error(request: Request, exc: Exception) -> Response:  # sync handlers are allowed
        return PlainTextResponse(f"value: {exc}", status_code=400)

    async def anything(request: Request, exc: Exception) -> Response:
        return PlainTextResponse("internal", status_code=500)

    app = HotPaths(fallback, {"/x": failing}, {ValueError: value_error, Exception: anything})
    assert await call(app, "/x") == (400, b"value: bad value")
    bare = HotPaths(fallback, {"/x": failing}, {})
    with pytest.raises(Nearer):  # no handler at all: the server's own error handling takes it
        await call(bare, "/x")


async def test_paths_are_matched_below_the_root_path() -> None:
    async def ok(request: Request) -> Response:
        return PlainTextResponse("served")

    app = HotPaths(fallback, {"/route": ok}, {})
    assert await call(app, "/api/route", root_path="/api") == (200, b"served")
    assert await call(app, "/route") == (200, b"served")
    assert await call(app, "/api/other", root_path="/api") == (404, b"fell through")
