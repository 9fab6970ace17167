"""POST /route and GET /healthz through the ASGI app: answers, ledger rows and every bad input."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
import respx

from judge_router.config import Settings
from judge_router.service.engine import Engine
from judge_router.service.factory import build_engine
from judge_router.serving.app import create_app

from fakes import verdict_reply


async def test_route_answer_has_the_contract_fields(
    client: httpx.AsyncClient, engine: Engine, judge_route: respx.Route
) -> None:
    judge_route.mock(return_value=verdict_reply(tier="medium"))
    response = await client.post(
        "/route",
        json={
            "messages": [{"role": "user", "content": "Summarise: ..."}],
            "metadata": {"team": "a"},
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) >= {
        "request_id", "tier", "model", "fallbacks", "source", "cached", "reason",
        "judge_cost_usd", "judge_latency_ms", "estimated_cost_usd", "baseline_model",
        "estimated_baseline_cost_usd",
    }  # fmt: skip
    assert (body["tier"], body["model"], body["source"]) == ("medium", "openai/mid-a", "llm")
    assert response.headers["x-judge-router-tier"] == "medium"
    assert response.headers["x-judge-router-model"] == "openai/mid-a"
    assert response.headers["x-judge-router-request-id"] == body["request_id"]
    assert body["baseline_model"] == "openai/big-a"
    # Estimates: prompt tokens plus 300 expected output tokens, on each model's price.
    tokens = body["prompt_tokens"]
    assert body["estimated_cost_usd"] == pytest.approx(tokens * 5e-7 + 300 * 2e-6)
    assert body["estimated_baseline_cost_usd"] == pytest.approx(tokens * 2e-6 + 300 * 1e-5)


async def test_ledger_rows_match_answers(
    client: httpx.AsyncClient, engine: Engine, judge_route: respx.Route
) -> None:
    judge_route.mock(side_effect=[verdict_reply(tier="low"), verdict_reply(tier="high")])
    answers = []
    for body in (
        {"prompt": "hi there", "metadata": {"user": "u1"}},
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "Prove it."}]}]},
        {"prompt": "hi there"},
        {"prompt": "anything", "tier": "medium"},
    ):
        response = await client.post("/route", json=body)
        assert response.status_code == 200, response.text
        answers.append(response.json())
    rows = {row["request_id"]: row for row in await engine.ledger.rows()}
    assert len(rows) == 4
    for answer in answers:
        row = rows[answer["request_id"]]
        for field in ("tier", "model", "source", "reason", "judge_cost_usd", "prompt_tokens",
                      "estimated_cost_usd", "estimated_baseline_cost_usd", "baseline_model"):  # fmt: skip
            assert row[field] == answer[field], field
        assert bool(row["cached"]) == answer["cached"]
        assert row["endpoint"] == "route" and row["latency_ms"] > 0
    assert [a["source"] for a in answers] == ["llm", "llm", "cache", "forced"]
    assert rows[answers[0]["request_id"]]["metadata"] == {"user": "u1"}


async def test_forced_tier_skips_the_judge(
    client: httpx.AsyncClient, judge_route: respx.Route
) -> None:
    response = await client.post("/route", json={"prompt": "Prove P != NP", "tier": "low"})
    assert response.json()["tier"] == "low" and response.json()["source"] == "forced"
    assert judge_route.call_count == 0


@pytest.mark.parametrize(
    ("content", "headers", "fragment"),
    [
        (b"{not json", {"content-type": "application/json"}, "not valid JSON"),
        (b"[1, 2]", {"content-type": "application/json"}, "must be a JSON object, not an array"),
        (b'{"metadata": {}}', {"content-type": "application/json"}, "send `messages`"),
        (b'{"messages": []}', {"content-type": "application/json"}, "`messages` is empty"),
        (
            b'{"messages": [{"role": "wizard", "content": "hi"}]}',
            {"content-type": "application/json"},
            "messages.0.role",
        ),
        (b'{"prompt": "hi", "tier": "extreme"}', {"content-type": "application/json"}, "tier"),
        (b'{"prompt": "hi", "messages": []}', {"content-type": "application/json"}, "not both"),
        (b'{"prompt": 5}', {"content-type": "application/json"}, "prompt"),
        (b'{"prompt": "hi", "colour": "red"}', {"content-type": "application/json"}, "colour"),
    ],
)
async def test_bad_input_gets_400_with_error_body(
    client: httpx.AsyncClient,
    judge_route: respx.Route,
    content: bytes,
    headers: dict[str, str],
    fragment: str,
) -> None:
    response = await client.post("/route", content=content, headers=headers)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert fragment in error["message"]
    assert judge_route.call_count == 0


async def test_body_over_limit_is_413(client: httpx.AsyncClient, settings: Settings) -> None:
    big = json.dumps({"prompt": "x" * (settings.server.max_body_bytes + 10)}).encode()
    response = await client.post(
        "/route", content=big, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "request_too_large"
    assert str(settings.server.max_body_bytes) in response.json()["error"]["message"]


async def test_chunked_body_over_limit_is_413(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"prompt": "'
        for _ in range(30):
            yield b"y" * 1000
        yield b'"}'

    response = await client.post(
        "/route", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


async def test_chunked_body_under_limit_is_read(
    client: httpx.AsyncClient, judge_route: respx.Route
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"prompt": "hello '
        yield b'world", "tier": "low"}'

    response = await client.post(
        "/route", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 200 and response.json()["tier"] == "low"


async def test_unknown_path_and_method_use_the_error_body(client: httpx.AsyncClient) -> None:
    missing = await client.get("/nope")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"
    wrong = await client.get("/route")
    assert wrong.status_code == 405 and "error" in wrong.json()


async def test_healthz_reports_judge_cache_and_ledger(client: httpx.AsyncClient) -> None:
    body = (await client.get("/healthz")).json()
    assert body["status"] == "ok"
    assert body["judge"]["reachable_by_config"] is True and body["judge"]["mode"] == "llm"
    assert body["cache"]["writable"] and body["ledger"]["writable"]


async def test_healthz_degraded_with_broken_cache_and_no_judge_credentials(
    make_settings: Callable[..., Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    (tmp_path / "blocker").write_text("file, not a directory")
    settings = make_settings(
        judge={"model": "gpt-5-nano", "litellm_params": {}},
        cache={"dir": str(tmp_path / "blocker" / "cache")},
    )
    engine = build_engine(settings)
    app = create_app(settings, engine)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        health = (await c.get("/healthz")).json()
        routed = await c.post("/route", json={"prompt": "What is 2+2?"})
    await engine.aclose()
    assert health["status"] == "degraded" and health["cache"]["writable"] is False
    assert health["judge"]["reachable_by_config"] is False
    assert health["judge"]["missing_credentials"] == ["OPENAI_API_KEY"]
    assert routed.status_code == 200 and routed.json()["source"] == "heuristic"


@pytest.mark.parametrize("since", ["9999-12-31T12:00", "0001-01-01T00:00:00+05:00"])
async def test_a_since_at_the_calendars_edge_is_a_400_not_a_crash(
    client: httpx.AsyncClient, since: str
) -> None:
    response = await client.get("/stats", params={"since": since})
    assert response.status_code == 400
    assert "out of range" in response.json()["error"]["message"]
