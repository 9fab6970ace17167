"""Proxied completions through the ASGI app, providers faked with respx: answers, fallbacks, pricing."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable

import httpx
import pytest
import respx

from judge_router.accounting.migrations import MIGRATIONS
from judge_router.config import Settings
from judge_router.service.engine import Engine
from judge_router.service.factory import build_engine
from judge_router.serving.app import create_app

from fakes import fake_upstream, judge_request, verdict_reply

ASK = {"messages": [{"role": "user", "content": "Write a haiku about caching."}]}
ERROR_500 = httpx.Response(500, json={"error": {"message": "upstream exploded"}})


def body_of(route: respx.Route, index: int = -1) -> dict[str, object]:
    return json.loads(route.calls[index].request.content)  # type: ignore[no-any-return]


async def test_complete_answers_with_router_info_headers_and_savings(
    client: httpx.AsyncClient,
    engine: Engine,
    judge_route: respx.Route,
    respx_mock: respx.MockRouter,
) -> None:
    judge_route.mock(return_value=verdict_reply(tier="medium"))
    upstream = fake_upstream(respx_mock, {})
    response = await client.post("/complete", json={**ASK, "temperature": 0.3, "max_tokens": 80})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"] == "hello from upstream"
    sent = body_of(upstream)
    assert sent["model"] == "mid-a" and sent["temperature"] == 0.3 and sent["max_tokens"] == 80
    router = body["router"]
    assert (router["tier"], router["model"], router["source"]) == ("medium", "openai/mid-a", "llm")
    assert router["attempts"] == [{"model": "openai/mid-a", "error": None}]
    # 100 prompt + 50 completion tokens: mid-a at 5e-7/2e-6, baseline big-a at 2e-6/1e-5.
    assert router["cost_usd"] == pytest.approx(100 * 5e-7 + 50 * 2e-6)
    assert router["baseline_cost_usd"] == pytest.approx(100 * 2e-6 + 50 * 1e-5)
    assert router["saved_usd"] == pytest.approx(
        router["baseline_cost_usd"] - router["cost_usd"] - router["judge_cost_usd"]
    )
    assert response.headers["x-judge-router-tier"] == "medium"
    assert response.headers["x-judge-router-model"] == "openai/mid-a"
    assert response.headers["x-judge-router-request-id"] == router["request_id"]
    row = (await engine.ledger.rows())[-1]
    assert (row["status"], row["model"], row["endpoint"]) == ("ok", "openai/mid-a", "complete")
    assert (row["prompt_tokens"], row["completion_tokens"]) == (100, 50)
    assert row["saved_usd"] == pytest.approx(router["saved_usd"])


async def test_fallback_within_the_tier(
    client: httpx.AsyncClient,
    engine: Engine,
    judge_route: respx.Route,
    respx_mock: respx.MockRouter,
) -> None:
    judge_route.mock(return_value=verdict_reply(tier="high"))
    fake_upstream(respx_mock, {"big-a": ERROR_500})
    response = await client.post("/complete", json=ASK)
    router = response.json()["router"]
    assert response.status_code == 200 and router["model"] == "openai/big-b"
    assert [a["model"] for a in router["attempts"]] == ["openai/big-a", "openai/big-b"]
    assert router["attempts"][0]["error"].startswith("provider_error")
    assert (await engine.ledger.rows())[-1]["routed_model"] == "openai/big-a"


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(
            429, json={"error": {"message": "rate limited"}}, headers={"retry-after": "1"}
        ),
        httpx.ReadTimeout("upstream too slow"),
        httpx.ConnectError("refused"),
    ],
)
async def test_fallback_to_the_next_tier_up(
    client: httpx.AsyncClient,
    judge_route: respx.Route,
    respx_mock: respx.MockRouter,
    failure: httpx.Response | Exception,
) -> None:
    judge_route.mock(return_value=verdict_reply(tier="low"))
    fake_upstream(respx_mock, {"cheap-a": failure})
    response = await client.post("/v1/chat/completions", json={"model": "auto", **ASK})
    router = response.json()["router"]
    assert response.status_code == 200
    assert (router["tier"], router["model"]) == ("low", "openai/mid-a")
    assert router["attempts"][0]["model"] == "openai/cheap-a" and router["attempts"][0]["error"]


async def test_no_fallback_to_next_tier_when_configured_none(
    make_settings: Callable[..., Settings], judge_route: respx.Route, respx_mock: respx.MockRouter
) -> None:
    settings = make_settings(routing={"fallback": "none"})
    engine = build_engine(settings)
    judge_route.mock(return_value=verdict_reply(tier="low"))
    upstream = fake_upstream(respx_mock, {"cheap-a": ERROR_500})
    transport = httpx.ASGITransport(app=create_app(settings, engine))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.post("/complete", json=ASK)
    await engine.aclose()
    assert response.status_code == 502
    assert upstream.call_count == 1


async def test_everything_failing_is_a_502_listing_each_attempt(
    client: httpx.AsyncClient,
    engine: Engine,
    judge_route: respx.Route,
    respx_mock: respx.MockRouter,
) -> None:
    judge_route.mock(return_value=verdict_reply(tier="medium"))
    fake_upstream(
        respx_mock, {"mid-a": ERROR_500, "big-a": httpx.ReadTimeout("slow"), "big-b": ERROR_500}
    )
    response = await client.post("/complete", json=ASK)
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["type"] == "upstream_error"
    assert [a["model"] for a in error["attempts"]] == [
        "openai/mid-a",
        "openai/big-a",
        "openai/big-b",
    ]
    assert error["attempts"][1]["error"].startswith("timeout")
    assert "openai/big-b" in error["message"]
    row = (await engine.ledger.rows())[-1]
    assert row["status"] == "error" and row["cost_usd"] is None and len(row["attempts"]) == 3
    assert response.headers["x-judge-router-request-id"] == row["request_id"]


async def test_every_model_refusing_the_request_is_a_400(
    client: httpx.AsyncClient, judge_route: respx.Route, respx_mock: respx.MockRouter
) -> None:
    refused = httpx.Response(400, json={"error": {"message": "max_tokens too large"}})
    fake_upstream(respx_mock, {"big-a": refused, "big-b": refused})
    response = await client.post("/complete", json={**ASK, "tier": "high"})
    assert response.status_code == 400
    assert "every model refused" in response.json()["error"]["message"]


async def test_model_field_auto_tiers_passthrough_and_unknown(
    client: httpx.AsyncClient,
    engine: Engine,
    judge_route: respx.Route,
    respx_mock: respx.MockRouter,
) -> None:
    upstream = fake_upstream(respx_mock, {})
    forced = await client.post("/v1/chat/completions", json={"model": "auto:high", **ASK})
    assert (
        forced.json()["router"]["source"] == "forced" and forced.json()["router"]["tier"] == "high"
    )
    named = await client.post("/v1/chat/completions", json={"model": "openai/mid-a", **ASK})
    assert named.json()["router"]["source"] == "passthrough"
    assert body_of(upstream)["model"] == "mid-a"
    assert judge_route.call_count == 0
    unknown = await client.post("/v1/chat/completions", json={"model": "gpt-9-ultra", **ASK})
    assert unknown.status_code == 404
    assert "gpt-9-ultra" in unknown.json()["error"]["message"]
    bad_tier = await client.post("/v1/chat/completions", json={"model": "auto:extreme", **ASK})
    assert bad_tier.status_code == 400
    assert [r["source"] for r in await engine.ledger.rows()] == ["forced", "passthrough"]


async def test_models_list(client: httpx.AsyncClient) -> None:
    ids = [m["id"] for m in (await client.get("/v1/models")).json()["data"]]
    assert ids[:4] == ["auto", "auto:low", "auto:medium", "auto:high"]
    assert "openai/big-b" in ids


@pytest.mark.parametrize("field", ["api_base", "api_key", "mock_response", "base_url"])
async def test_provider_redirecting_fields_are_refused(
    client: httpx.AsyncClient, respx_mock: respx.MockRouter, field: str
) -> None:
    response = await client.post("/complete", json={**ASK, field: "http://evil.example"})
    assert response.status_code == 400
    assert field in response.json()["error"]["message"]
    assert not respx_mock.calls


async def test_unsupported_params_are_dropped_and_reported(
    make_settings: Callable[..., Settings], respx_mock: respx.MockRouter
) -> None:
    # gpt-5-nano takes no top_p or presence_penalty: litellm drops them, and the answer says so.
    settings = make_settings(
        tiers={
            "low": [
                {
                    "model": "gpt-5-nano",
                    "litellm_params": {
                        "api_base": "http://127.0.0.1:9/upstream/v1",
                        "api_key": "sk-test",
                    },
                }
            ],
            "medium": [{"model": "gpt-5-mini"}],
            "high": [{"model": "gpt-5.1"}],
        },  # fmt: skip
        baseline="gpt-5.1",
    )
    engine = build_engine(settings)
    upstream = fake_upstream(respx_mock, {})
    transport = httpx.ASGITransport(app=create_app(settings, engine))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.post(
            "/complete", json={**ASK, "tier": "low", "top_p": 0.5, "presence_penalty": 1.0}
        )
    await engine.aclose()
    assert response.status_code == 200, response.text
    assert response.json()["router"]["dropped_params"] == ["presence_penalty", "top_p"]
    assert "top_p" not in body_of(upstream)


async def test_stats_sums_equal_the_ledger_rows(
    client: httpx.AsyncClient,
    engine: Engine,
    judge_route: respx.Route,
    respx_mock: respx.MockRouter,
) -> None:
    judge_route.mock(side_effect=[verdict_reply(tier="low"), verdict_reply(tier="high")])
    fake_upstream(respx_mock, {"big-a": ERROR_500})
    await client.post("/complete", json=ASK)
    await client.post("/complete", json=ASK)  # cached verdict
    await client.post("/complete", json={"messages": [{"role": "user", "content": "Prove it."}]})
    await client.post("/route", json={"prompt": "hello", "tier": "medium"})
    await client.post("/complete", json={**ASK, "tier": "high"})
    stats = (await client.get("/stats")).json()
    rows = await engine.ledger.rows()
    totals = stats["totals"]
    assert totals["requests"] == len(rows) == 5
    assert totals["proxied"] == 4 and totals["cache_hits"] == 1
    assert totals["judge_spend_usd"] == pytest.approx(sum(r["judge_cost_usd"] for r in rows))
    realised = sum(r["cost_usd"] or 0 for r in rows)
    baseline = sum(r["baseline_cost_usd"] or 0 for r in rows)
    assert totals["realised_spend_usd"] == pytest.approx(realised)
    assert totals["baseline_spend_usd"] == pytest.approx(baseline)
    assert totals["net_savings_usd"] == pytest.approx(
        baseline - realised - totals["judge_spend_usd"]
    )
    roi = (baseline - realised) / totals["judge_spend_usd"]
    assert totals["judge_roi"] == pytest.approx(roi, abs=1e-4)  # shown to four places
    assert stats["verdicts_by_source"] == {"cache": 1, "forced": 2, "llm": 2}
    for key in ("by_tier", "by_model", "by_day"):
        assert sum(group["requests"] for group in stats[key]) == 5
        assert sum(g["realised_spend_usd"] for g in stats[key]) == pytest.approx(realised)
    assert sum(r["saved_usd"] or 0 for r in rows) == pytest.approx(
        baseline - realised - sum(r["judge_cost_usd"] for r in rows if r["status"] != "routed")
    )
    bad = await client.get("/stats", params={"since": "last tuesday"})
    assert bad.status_code == 400 and "ISO" in bad.json()["error"]["message"]
    later = (await client.get("/stats", params={"since": "2999-01-01"})).json()
    assert later["totals"]["requests"] == 0 and later["totals"]["savings_pct"] is None


async def test_metrics_in_prometheus_format(
    client: httpx.AsyncClient, judge_route: respx.Route, respx_mock: respx.MockRouter
) -> None:
    fake_upstream(respx_mock, {"mid-a": ERROR_500})
    await client.post("/complete", json=ASK)
    await client.post("/complete", json=ASK)
    text = (await client.get("/metrics")).text
    assert (
        'judge_router_requests_total{endpoint="complete",source="llm",status="ok",tier="medium"} 1.0'
        in text
    )
    assert "judge_router_cache_hits_total 1.0" in text
    assert 'judge_router_errors_total{kind="upstream_attempt"} 2.0' in text
    assert "judge_router_judge_latency_seconds_bucket" in text
    assert 'judge_router_cost_usd_total{kind="baseline"}' in text


async def test_judge_sees_only_the_conversation_not_the_parameters(
    client: httpx.AsyncClient, judge_route: respx.Route, respx_mock: respx.MockRouter
) -> None:
    fake_upstream(respx_mock, {})
    await client.post(
        "/complete", json={**ASK, "tools": [{"type": "function", "function": {"name": "f"}}]}
    )
    sent = judge_request(judge_route)
    assert "tools" not in sent
    assert "Write a haiku about caching." in sent["messages"][1]["content"]


def test_ledger_schema_migrations_are_recorded(engine: Engine) -> None:
    conn = sqlite3.connect(engine.settings.ledger.path)
    names = [row[0] for row in conn.execute("SELECT name FROM _migrations ORDER BY name")]
    conn.close()
    assert names == [name for name, _ in MIGRATIONS]
