"""The access log: one line per request with what the answer's headers say, refusals included."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import httpx
import pytest
import respx

from judge_router.cli.logs import JsonFormatter, logging_config
from judge_router.serving.access_log import AccessLog

from fakes import fake_upstream, verdict_reply

ACCESS = "judge_router.access"
ASK = {"model": "auto", "messages": [{"role": "user", "content": "Write a haiku about caching."}]}


def access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == ACCESS]


async def test_a_proxied_answer_is_one_line_with_its_tier_model_and_request_id(
    client: httpx.AsyncClient,
    judge_route: respx.Route,
    respx_mock: respx.MockRouter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    judge_route.mock(return_value=verdict_reply(tier="medium"))
    fake_upstream(respx_mock, {})
    caplog.set_level(logging.INFO, logger=ACCESS)
    response = await client.post("/v1/chat/completions", json=ASK)
    assert response.status_code == 200, response.text
    (record,) = access_records(caplog)
    fields: dict[str, Any] = record.access  # type: ignore[attr-defined]
    assert fields["method"] == "POST" and fields["path"] == "/v1/chat/completions"
    assert (fields["status"], fields["tier"], fields["model"]) == (200, "medium", "openai/mid-a")
    assert fields["request_id"] == response.headers["x-judge-router-request-id"]
    assert fields["latency_ms"] > 0
    message = record.getMessage()
    assert '"POST /v1/chat/completions" 200 tier=medium model=openai/mid-a' in message
    assert f"request_id={fields['request_id']}" in message


async def test_refusals_and_other_paths_are_logged_too(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS)
    too_big = await client.post("/route", json={"prompt": "x" * 30_000})  # max_body_bytes 20,000
    missing = await client.get("/no-such-path")
    health = await client.get("/healthz")
    assert [too_big.status_code, missing.status_code, health.status_code] == [413, 404, 200]
    logged = [
        (r.access["path"], r.access["status"], r.access["tier"]) for r in access_records(caplog)
    ]  # type: ignore[attr-defined]
    assert logged == [("/route", 413, None), ("/no-such-path", 404, None), ("/healthz", 200, None)]


async def test_nothing_is_logged_when_the_access_logger_is_off(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=ACCESS)
    assert (await client.get("/healthz")).status_code == 200
    assert access_records(caplog) == []


async def test_an_app_that_raises_is_logged_as_500(caplog: pytest.LogCaptureFixture) -> None:
    async def broken(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    caplog.set_level(logging.INFO, logger=ACCESS)
    scope = {"type": "http", "method": "GET", "path": "/x", "client": ("127.0.0.1", 5)}
    with pytest.raises(RuntimeError):
        await AccessLog(broken)(scope, None, None)  # type: ignore[arg-type]
    (record,) = access_records(caplog)
    assert record.access["status"] == 500  # type: ignore[attr-defined]


async def test_a_client_that_left_before_the_answer_is_logged_as_499(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def abandoned(scope: Any, receive: Any, send: Any) -> None:
        raise asyncio.CancelledError  # what the server does to a request whose client left

    caplog.set_level(logging.INFO, logger=ACCESS)
    scope = {"type": "http", "method": "POST", "path": "/route", "client": ("127.0.0.1", 5)}
    with pytest.raises(asyncio.CancelledError):
        await AccessLog(abandoned)(scope, None, None)  # type: ignore[arg-type]
    (record,) = access_records(caplog)
    assert record.access["status"] == 499  # type: ignore[attr-defined]


def test_json_lines_carry_the_access_fields() -> None:
    record = logging.LogRecord(ACCESS, logging.INFO, __file__, 1, "%s done", ("GET /x",), None)
    record.access = {"method": "GET", "path": "/x", "status": 200, "tier": None}
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "GET /x done" and line["level"] == "INFO"
    assert (line["logger"], line["path"], line["status"], line["tier"]) == (ACCESS, "/x", 200, None)
    assert line["time"].endswith("Z")


def test_the_logging_config_hides_litellm_info_and_can_turn_the_access_log_off() -> None:
    config = logging_config("info", "text", access_log=False, secrets=[])
    assert config["loggers"]["LiteLLM"]["level"] == "WARNING"
    assert config["loggers"][ACCESS]["level"] == "WARNING"
    assert config["loggers"]["uvicorn.access"]["propagate"] is False
    debug = logging_config("debug", "json", access_log=True, secrets=["sk-secret-123456"])
    assert debug["loggers"]["LiteLLM"]["level"] == "DEBUG"
    assert debug["loggers"][ACCESS]["level"] == "DEBUG"
    assert debug["filters"]["redact"]["secrets"] == ["sk-secret-123456"]
