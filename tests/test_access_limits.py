"""API keys, admin paths, rate limits, message and time limits, and circuit breakers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import respx
from click.testing import CliRunner

from judge_router.cli.main import main
from judge_router.config import CircuitBreakerConfig, Settings
from judge_router.service.engine import Engine
from judge_router.service.factory import build_engine
from judge_router.service.rate_limits import MemoryRateLimiter
from judge_router.serving.app import create_app
from judge_router.upstream.breaker import MemoryBreaker

from fakes import chat_reply, fake_upstream, never_answering, verdict_reply

USER_KEY = "user-key-0123456789abcdef"
ADMIN_KEY = "admin-key-0123456789abcdef"
KEYS = [{"id": "team-a", "key": USER_KEY}, {"id": "ops", "key": ADMIN_KEY, "admin": True}]
ASK = {"messages": [{"role": "user", "content": "Summarise the design doc."}]}


@asynccontextmanager
async def app_client(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Engine]]:
    engine = build_engine(settings)
    transport = httpx.ASGITransport(app=create_app(settings, engine))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield client, engine
    await engine.aclose()


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


async def test_keys_are_required_everywhere_but_healthz(
    make_settings: Callable[..., Settings], judge_route: respx.Route
) -> None:
    async with app_client(make_settings(server={"api_keys": KEYS})) as (client, engine):
        assert (await client.get("/healthz")).status_code == 200
        for headers in ({}, bearer("wrong-key-0123456789abcdef"), {"authorization": USER_KEY}):
            denied = await client.post("/route", json={"prompt": "hi"}, headers=headers)
            assert denied.status_code == 401
            assert denied.json()["error"]["type"] == "authentication_error"
        models = await client.get("/v1/models")
        assert models.status_code == 401
        allowed = await client.post("/route", json={"prompt": "hi"}, headers=bearer(USER_KEY))
        assert allowed.status_code == 200
        rows = await engine.ledger.rows()
    assert [row["api_key_id"] for row in rows] == ["team-a"]
    assert judge_route.call_count == 1  # refused requests never reached the judge


async def test_a_key_may_come_as_x_api_key_as_anthropic_clients_send_it(
    make_settings: Callable[..., Settings], judge_route: respx.Route
) -> None:
    async with app_client(make_settings(server={"api_keys": KEYS})) as (client, engine):
        wrong = await client.post(
            "/route", json={"prompt": "hi"}, headers={"x-api-key": "wrong-key-0123456789abcdef"}
        )
        allowed = await client.post("/route", json={"prompt": "hi"}, headers={"x-api-key": ADMIN_KEY})
        rows = await engine.ledger.rows()
    assert wrong.status_code == 401 and "x-api-key" in wrong.json()["error"]["message"]
    assert allowed.status_code == 200
    assert [row["api_key_id"] for row in rows] == ["ops"]


async def test_admin_paths_need_an_admin_key(
    make_settings: Callable[..., Settings],
) -> None:
    async with app_client(make_settings(server={"api_keys": KEYS})) as (client, _):
        for path in ("/stats", "/metrics"):
            forbidden = await client.get(path, headers=bearer(USER_KEY))
            assert forbidden.status_code == 403
            assert forbidden.json()["error"]["type"] == "permission_error"
            assert (await client.get(path, headers=bearer(ADMIN_KEY))).status_code == 200


def test_key_from_a_missing_environment_variable_is_a_config_error(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JR_TEST_KEY", raising=False)
    with pytest.raises(ValueError, match="JR_TEST_KEY"):
        make_settings(server={"api_keys": [{"id": "a", "key": "os.environ/JR_TEST_KEY"}]})
    monkeypatch.setenv("JR_TEST_KEY", USER_KEY)
    settings = make_settings(server={"api_keys": [{"id": "a", "key": "os.environ/JR_TEST_KEY"}]})
    assert settings.server.api_keys[0].key == USER_KEY


def test_serve_refuses_a_public_address_without_keys(tmp_path: Any) -> None:
    result = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0", "--port", "1"])
    assert result.exit_code == 1
    assert (
        "refusing to listen on 0.0.0.0" in result.output and "--insecure-no-auth" in result.output
    )


async def test_rate_limit_answers_429_with_retry_after(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(
        judge={"model": "heuristic"},
        server={"api_keys": KEYS, "rate_limit_per_minute": 2},
    )
    async with app_client(settings) as (client, _):
        statuses = [
            (
                await client.post("/route", json={"prompt": "hi"}, headers=bearer(USER_KEY))
            ).status_code
            for _ in range(3)
        ]
        limited = await client.post("/route", json={"prompt": "hi"}, headers=bearer(USER_KEY))
        other_key = await client.post("/route", json={"prompt": "hi"}, headers=bearer(ADMIN_KEY))
    assert statuses == [200, 200, 429]
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert limited.json()["error"]["type"] == "rate_limit_error"
    assert other_key.status_code == 200  # limits are per key


async def test_rate_limiter_refills_over_time() -> None:
    now = [0.0]
    limiter = MemoryRateLimiter(per_minute=60, clock=lambda: now[0])
    assert [await limiter.take("k") for _ in range(60)] == [0] * 60
    assert await limiter.take("k") == pytest.approx(1.0)
    now[0] += 1.0
    assert await limiter.take("k") == 0


async def test_message_count_limit(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(judge={"model": "heuristic"}, server={"max_messages": 3})
    async with app_client(settings) as (client, _):
        many = [{"role": "user", "content": "x"}] * 4
        response = await client.post("/route", json={"messages": many})
    assert response.status_code == 400
    assert "server.max_messages (3)" in response.json()["error"]["message"]


async def test_request_deadline_answers_504(
    make_settings: Callable[..., Settings], respx_mock: respx.MockRouter
) -> None:
    never_answering(respx_mock)
    settings = make_settings(judge={"model": "heuristic"}, server={"request_timeout_s": 0.2})
    async with app_client(settings) as (client, _):
        response = await client.post("/complete", json={**ASK, "tier": "low"})
    assert response.status_code == 504
    assert "server.request_timeout_s" in response.json()["error"]["message"]


async def test_breaker_opens_after_consecutive_failures_and_half_opens() -> None:
    now = [0.0]
    config = CircuitBreakerConfig(failures=2, cooldown_s=10)
    breaker = MemoryBreaker(config, clock=lambda: now[0])
    await breaker.failure("m")
    assert await breaker.allows("m")
    await breaker.failure("m")
    assert not await breaker.allows("m") and await breaker.open_circuits() == {"m": 10}
    now[0] += 10
    assert await breaker.allows("m")  # half-open: one try
    await breaker.failure("m")
    assert not await breaker.allows("m")
    now[0] += 10
    await breaker.success("m")
    assert await breaker.allows("m") and await breaker.open_circuits() == {}


async def test_half_open_admits_exactly_one_trial() -> None:
    now = [0.0]
    breaker = MemoryBreaker(CircuitBreakerConfig(failures=1, cooldown_s=10), clock=lambda: now[0])
    await breaker.failure("m")
    now[0] += 10  # the cooldown is over: half-open
    assert not await breaker.blocked("m")
    admitted = [await breaker.allows("m") for _ in range(8)]  # eight requests arrive at once
    assert admitted == [True] + [False] * 7
    assert await breaker.blocked("m")  # the others skip it, as while open
    now[0] += 10  # the trial never reported (cancelled): after a cooldown, another trial
    assert await breaker.allows("m") and not await breaker.allows("m")
    await breaker.failure("m")  # that trial failed: open for another cooldown
    now[0] += 5
    assert not await breaker.allows("m")


async def test_concurrent_requests_send_one_trial_to_a_half_open_model(
    make_settings: Callable[..., Settings], respx_mock: respx.MockRouter
) -> None:
    calls: list[str] = []

    async def slow_then_fine(request: httpx.Request) -> httpx.Response:
        model = json.loads(request.content)["model"]
        calls.append(model)
        await asyncio.sleep(0.05)
        return chat_reply(model)

    respx_mock.post("http://127.0.0.1:9/upstream/v1/chat/completions").mock(
        side_effect=slow_then_fine
    )
    now = [0.0]
    breaker = MemoryBreaker(CircuitBreakerConfig(failures=1, cooldown_s=30), clock=lambda: now[0])
    await breaker.failure("openai/cheap-a")  # open
    now[0] += 30  # and its cooldown has just passed
    settings = make_settings(judge={"model": "heuristic"}, routing={"fallback": "next_tier"})
    engine = build_engine(settings, model_breaker=breaker)
    transport = httpx.ASGITransport(app=create_app(settings, engine))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        answers = await asyncio.gather(
            *(client.post("/complete", json={**ASK, "tier": "low"}) for _ in range(8))
        )
    await engine.aclose()
    assert all(a.status_code == 200 for a in answers)
    assert calls.count("cheap-a") == 1  # the trial; the other seven skipped it
    assert calls.count("mid-a") == 7


async def test_failing_model_is_skipped_once_its_circuit_opens(
    make_settings: Callable[..., Settings], respx_mock: respx.MockRouter, judge_route: respx.Route
) -> None:
    judge_route.mock(return_value=verdict_reply(tier="high"))
    failing = httpx.Response(500, json={"error": {"message": "down"}})
    upstream = fake_upstream(respx_mock, {"big-a": failing})
    settings = make_settings(routing={"circuit_breaker": {"failures": 2, "cooldown_s": 300}})
    async with app_client(settings) as (client, _):
        for _ in range(3):
            answer = (await client.post("/complete", json=ASK)).json()["router"]
        health = (await client.get("/healthz")).json()
    tried = [call.request.content for call in upstream.calls]
    assert sum(b'"big-a"' in body for body in tried) == 2  # the third request skipped it
    assert answer["model"] == "openai/big-b"
    assert answer["attempts"][0]["error"].startswith("skipped: circuit open")
    assert "openai/big-a" in health["open_circuits"]["models"]


async def test_failing_judge_is_skipped_once_its_circuit_opens(
    make_settings: Callable[..., Settings], judge_route: respx.Route
) -> None:
    judge_route.mock(return_value=httpx.Response(503, json={"error": {"message": "down"}}))
    settings = make_settings(judge={"circuit_breaker": {"failures": 2, "cooldown_s": 300}})
    async with app_client(settings) as (client, engine):
        for index in range(4):
            await client.post("/route", json={"prompt": f"question {index}"})
        rows = await engine.ledger.rows()
    assert judge_route.call_count == 2
    assert [row["source"] for row in rows] == ["heuristic"] * 4
    assert rows[-1]["judge_error"].startswith("circuit_open")


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", None]
)
async def test_a_body_that_is_not_declared_json_gets_415(
    client: httpx.AsyncClient, judge_route: respx.Route, content_type: str | None
) -> None:
    """A web page can POST text/plain or a form to a loopback service without a preflight."""
    headers = {"content-type": content_type} if content_type else {}
    body = b'{"messages": [{"role": "user", "content": "spend my credits"}]}'
    for path in ("/route", "/complete", "/v1/chat/completions"):
        response = await client.post(path, content=body, headers=headers)
        assert response.status_code == 415, (path, response.text)
        error = response.json()["error"]
        assert error["type"] == "unsupported_media_type"
        assert "application/json" in error["message"]
    assert judge_route.call_count == 0


async def test_json_with_a_charset_or_a_json_suffix_is_accepted(client: httpx.AsyncClient) -> None:
    body = b'{"prompt": "hi", "tier": "low"}'
    for content_type in ("application/json; charset=utf-8", "application/vnd.api+json"):
        response = await client.post("/route", content=body, headers={"content-type": content_type})
        assert response.status_code == 200, content_type


async def test_no_cors_headers_unless_configured(
    make_settings: Callable[..., Settings],
) -> None:
    origin = {"origin": "https://app.example.com"}
    preflight = {**origin, "access-control-request-method": "POST"}
    plain = make_settings(judge={"model": "heuristic"})
    async with app_client(plain) as (client, _):
        answer = await client.post("/route", json={"prompt": "hi"}, headers=origin)
        options = await client.options("/route", headers=preflight)
    assert answer.status_code == 200
    assert not any(name.startswith("access-control-") for name in answer.headers)
    assert not any(name.startswith("access-control-") for name in options.headers)
    allowed = make_settings(
        judge={"model": "heuristic"}, server={"cors_allow_origins": ["https://app.example.com"]}
    )
    async with app_client(allowed) as (client, _):
        options = await client.options("/route", headers=preflight)
        answer = await client.post("/route", json={"prompt": "hi"}, headers=origin)
        other = await client.post(
            "/route", json={"prompt": "hi"}, headers={"origin": "https://evil.example"}
        )
    assert options.status_code == 200
    assert options.headers["access-control-allow-origin"] == "https://app.example.com"
    assert answer.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "access-control-allow-origin" not in other.headers
