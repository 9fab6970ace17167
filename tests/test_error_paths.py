"""Error paths at the edges: a stream that breaks midway or never starts, a judge reply without a
message, and rate limits by client address when no keys are configured."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import respx

from judge_router.config import Settings
from judge_router.service.answering import Answering
from judge_router.service.direct import Trail
from judge_router.service.engine import Engine
from judge_router.service.factory import build_engine
from judge_router.serving.app import create_app
from judge_router.types import Decision, Tier
from judge_router.upstream.model_chain import Attempt, Completed, StreamStarted

from fakes import UPSTREAM_BASE, FakeJudge, FakeLedger, ask, never_answering, verdict_reply

ASK = {"messages": [{"role": "user", "content": "Write a haiku about caching."}], "tier": "low"}


def chunk(content: str) -> bytes:
    body = {
        "id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 1, "model": "cheap-a",
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": content},
                     "finish_reason": None}],
    }  # fmt: skip
    return b"data: " + json.dumps(body).encode() + b"\n\n"


class BreaksMidway(httpx.AsyncByteStream):
    """Two chunks of an SSE answer, then the connection drops."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield chunk("Cache ")
        yield chunk("warm, ")
        raise httpx.ReadError("connection reset by peer")


async def test_a_stream_that_breaks_midway_says_so_in_band_and_in_the_ledger(
    client: httpx.AsyncClient, engine: Engine, respx_mock: respx.MockRouter
) -> None:
    respx_mock.post(f"{UPSTREAM_BASE}/chat/completions").mock(
        return_value=httpx.Response(
            200, headers={"content-type": "text/event-stream"}, stream=BreaksMidway()
        )
    )
    body = {**ASK, "stream": True, "stream_options": {"include_router": True}}
    async with client.stream("POST", "/complete", json=body) as response:
        assert response.status_code == 200
        events = [line async for line in response.aiter_lines() if line.startswith("data: ")]
    payloads = [json.loads(e.removeprefix("data: ")) for e in events]
    texts = [p["choices"][0]["delta"].get("content") for p in payloads if "choices" in p]
    assert texts == ["Cache ", "warm, "]
    *_, error, trailer = payloads  # the error in-band, then the router trailer asked for
    assert error["error"]["type"] == "upstream_error"
    assert "stream broke" in error["error"]["message"]
    assert "data: [DONE]" not in events
    assert trailer["request_id"] and trailer["cost_usd"] > 0  # what was streamed, priced
    (row,) = await engine.ledger.rows()
    assert row["status"] == "error" and row["error"].startswith("stream broke")
    assert row["usage_estimated"] == 1 and row["completion_tokens"] > 0  # what was streamed, priced


async def test_a_request_past_its_deadline_gets_504_and_a_row(
    make_settings: Callable[..., Settings], respx_mock: respx.MockRouter
) -> None:
    never_answering(respx_mock)
    settings = make_settings(judge={"model": "heuristic"}, server={"request_timeout_s": 0.2})
    engine = build_engine(settings)
    transport = httpx.ASGITransport(app=create_app(settings, engine))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.post("/complete", json={**ASK, "stream": True})
        plain = await client.post("/complete", json=ASK)
    rows = {row["request_id"]: row for row in await engine.ledger.rows()}
    await engine.aclose()
    for answer, stream in ((response, 1), (plain, 0)):
        assert answer.status_code == 504
        assert answer.headers["content-type"] == "application/json"
        assert answer.json()["error"]["type"] == "timeout"
        row = rows[answer.headers["x-judge-router-request-id"]]  # every decision has its row
        assert (row["status"], row["stream"], row["usage_estimated"]) == ("timeout", stream, 1)
        assert row["cost_usd"] > 0 and "server.request_timeout_s" in row["error"]


async def test_a_judge_reply_without_a_message_is_a_judge_failure(
    engine: Engine, judge_route: respx.Route
) -> None:
    empty = verdict_reply()
    body = json.loads(empty.content)
    body["choices"] = []
    judge_route.mock(return_value=httpx.Response(200, json=body))
    answer = await engine.route(ask("Summarise the memo in one line."))
    assert answer.source.value == "heuristic"
    (row,) = await engine.ledger.rows()
    assert row["judge_error"] == "invalid_response: no message in the answer"


async def test_without_keys_rate_limits_count_per_client_address(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(judge={"model": "heuristic"}, server={"rate_limit_per_minute": 2})
    engine = build_engine(settings)
    app = create_app(settings, engine)

    def from_address(address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address, 4000))
        return httpx.AsyncClient(transport=transport, base_url="http://t")

    async with from_address("10.0.0.1") as first, from_address("10.0.0.2") as second:
        statuses = [(await first.post("/route", json={"prompt": "hi"})).status_code for _ in "abc"]
        other = await second.post("/route", json={"prompt": "hi"})
    await engine.aclose()
    assert statuses == [200, 200, 429]
    assert other.status_code == 200


class OneChunkStrategy:
    """An answer strategy at the seam: a stream whose provider side records being closed."""

    def __init__(self) -> None:
        self.closed = False

    async def complete(
        self, decision: Decision, params: dict[str, Any]
    ) -> tuple[Completed, Trail | None]:
        raise AssertionError("not used")

    async def stream(
        self, decision: Decision, params: dict[str, Any]
    ) -> tuple[StreamStarted, Trail | None]:
        async def rest() -> AsyncIterator[dict[str, Any]]:
            yield {"choices": [{"index": 0, "delta": {"content": "never sent"}}]}

        async def close() -> None:
            self.closed = True

        first = {"choices": [{"index": 0, "delta": {"content": "Hi"}}]}
        attempts = [Attempt("openai/cheap-a")]
        return StreamStarted("openai/cheap-a", first, rest(), attempts, 1.0, close), None


async def test_a_client_that_leaves_before_the_first_byte_still_gets_a_row(
    make_settings: Callable[..., Settings],
) -> None:
    ledger = FakeLedger()
    engine = build_engine(make_settings(), judges=[FakeJudge()], ledger=ledger)
    strategy = OneChunkStrategy()
    answering = Answering(
        {"direct": strategy},
        engine.rows,
        engine.record,
        engine.record_provisional,
        ledger.record_outcome,
    )
    decision = await engine.decide(ask("hi", tier=Tier.LOW))
    stream = await answering.stream(decision, {"messages": [{"role": "user", "content": "hi"}]})
    await stream.aclose()  # what the response does when the client is gone before any byte
    await stream.aclose()  # and closing twice is harmless
    (row,) = ledger.stored.values()
    assert (row.status, row.stream, row.usage_estimated) == ("incomplete", True, True)
    assert strategy.closed
