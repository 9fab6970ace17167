"""The Responses and Anthropic Messages faces through the ASGI app, the provider faked by respx."""

from __future__ import annotations

import json
import typing
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import respx
from anthropic.types import message_create_params
from openai.types.responses import response_create_params

from judge_router.config import Settings
from judge_router.service.engine import Engine
from judge_router.service.factory import build_engine
from judge_router.serving.app import create_app
from judge_router.serving.messages_api import MessagesRequest
from judge_router.serving.responses_api import ResponsesRequest

from fakes import FakeLedger, chat_reply, fake_upstream, verdict_reply


def test_every_documented_parameter_of_both_apis_is_a_field() -> None:
    responses = set(typing.get_type_hints(response_create_params.ResponseCreateParamsStreaming))
    messages = set(typing.get_type_hints(message_create_params.MessageCreateParamsStreaming))
    assert responses - set(ResponsesRequest.model_fields) == set()
    assert messages - set(MessagesRequest.model_fields) == set()


@pytest.fixture
def faces(client: httpx.AsyncClient, engine: Engine) -> tuple[httpx.AsyncClient, Engine]:
    """conftest's app client and its engine, together."""
    return client, engine


async def test_a_responses_request_is_routed_priced_and_recorded(
    faces: tuple[httpx.AsyncClient, Engine],
    respx_mock: respx.MockRouter,
    judge_route: respx.Route,
) -> None:
    client, engine = faces
    judge_route.mock(return_value=verdict_reply(tier="low"))
    upstream = fake_upstream(respx_mock, {"cheap-a": chat_reply("cheap-a", "Bonjour", (12, 3))})
    body = {
        "model": "auto",
        "instructions": "Answer in French.",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "Say hello"}]}],
        "max_output_tokens": 40,
        "store": False,
        "metadata": {"team": "search"},
    }
    response = await client.post("/v1/responses", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["object"] == "response" and answer["status"] == "completed"
    assert answer["id"] == "resp_" + answer["router"]["request_id"].removeprefix("jr-")
    texts = [part["text"] for item in answer["output"] for part in item.get("content", [])]
    assert texts == ["Bonjour"]
    assert answer["usage"]["input_tokens"] == 12 and answer["usage"]["output_tokens"] == 3
    router = answer["router"]
    assert (router["tier"], router["model"], router["source"]) == ("low", "openai/cheap-a", "llm")
    sent = json.loads(upstream.calls.last.request.content)
    assert sent["messages"][0] == {"role": "system", "content": "Answer in French."}
    assert sent["max_tokens"] == 40 or sent.get("max_completion_tokens") == 40
    (row,) = [r for r in await engine.ledger.rows() if r["request_id"] == router["request_id"]]
    assert (row["endpoint"], row["status"], row["metadata"]) == ("responses", "ok", {"team": "search"})
    assert row["cost_usd"] == pytest.approx(12 * 1e-7 + 3 * 4e-7) == router["cost_usd"]


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("previous_response_id", "resp_123", "send the whole conversation in `input`"),
        ("conversation", "conv_1", "state the router does not keep"),
        ("background", True, "answers in-line"),
        ("api_base", "http://evil.example", "cannot redirect its credentials"),
    ],
)
async def test_responses_features_the_router_cannot_offer_are_refused_saying_why(
    faces: tuple[httpx.AsyncClient, Engine], field: str, value: Any, fragment: str
) -> None:
    client, _ = faces
    response = await client.post("/v1/responses", json={"input": "hi", field: value})
    assert response.status_code == 400
    assert fragment in response.json()["error"]["message"]


async def test_an_anthropic_request_is_answered_by_any_providers_model(
    faces: tuple[httpx.AsyncClient, Engine],
    respx_mock: respx.MockRouter,
    judge_route: respx.Route,
) -> None:
    client, engine = faces
    upstream = fake_upstream(respx_mock, {"mid-a": chat_reply("mid-a", "Paris.", (20, 2))})
    body = {
        "model": "auto",
        "max_tokens": 64,
        "system": "Be terse.",
        "messages": [{"role": "user", "content": "Capital of France?"}],
        "stop_sequences": ["\n\n"],
    }
    headers = {"anthropic-version": "2023-06-01"}
    response = await client.post("/v1/messages", json=body, headers=headers)
    assert response.status_code == 200, response.text
    message = response.json()
    assert (message["type"], message["role"], message["stop_reason"]) == (
        "message", "assistant", "end_turn")  # fmt: skip
    assert message["content"] == [{"type": "text", "text": "Paris."}]
    assert message["usage"]["input_tokens"] == 20 and message["usage"]["output_tokens"] == 2
    assert message["router"]["model"] == "openai/mid-a"  # an OpenAI-style model answered
    sent = json.loads(upstream.calls.last.request.content)
    assert sent["messages"][0] == {"role": "system", "content": "Be terse."}
    assert sent["stop"] == ["\n\n"] and sent["max_tokens"] == 64
    rows = await engine.ledger.rows()
    assert [r["endpoint"] for r in rows] == ["messages"]


async def test_a_messages_body_without_max_tokens_is_a_clear_400(
    faces: tuple[httpx.AsyncClient, Engine],
) -> None:
    client, _ = faces
    body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
    response = await client.post("/v1/messages", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "max_tokens: Field required"


async def test_an_answer_with_no_messages_form_is_a_502_naming_its_recorded_row(
    faces: tuple[httpx.AsyncClient, Engine], respx_mock: respx.MockRouter
) -> None:
    client, engine = faces
    cut_off = chat_reply("cheap-a", "", (10, 64))
    reply = json.loads(cut_off.content)
    reply["choices"][0]["message"] = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a": tru'}}]}
    reply["choices"][0]["finish_reason"] = "length"  # max_tokens cut the tool call mid-JSON
    fake_upstream(respx_mock, {"cheap-a": httpx.Response(200, json=reply)})  # fmt: skip
    body = {"model": "auto:low", "max_tokens": 64, "messages": [{"role": "user", "content": "go"}]}
    response = await client.post("/v1/messages", json=body)
    assert response.status_code == 502
    assert "has no Messages form" in response.json()["error"]["message"]
    request_id = response.headers["x-judge-router-request-id"]
    (row,) = await engine.ledger.rows()
    assert (row["request_id"], row["status"]) == (request_id, "ok")  # it was paid for


def tool_chunk(calls: list[dict[str, Any]], finish: str | None = None) -> dict[str, Any]:
    return {"id": "chatcmpl-t", "object": "chat.completion.chunk", "created": 1, "model": "cheap-a",
            "choices": [{"index": 0, "delta": {"tool_calls": calls}, "finish_reason": finish}]}  # fmt: skip


def sse_body(chunks: list[dict[str, Any]]) -> bytes:
    counts = {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21}
    usage = {"id": "chatcmpl-t", "object": "chat.completion.chunk", "created": 1, "model": "cheap-a",
             "choices": [], "usage": counts}  # fmt: skip
    lines = [f"data: {json.dumps(chunk)}\n\n" for chunk in [*chunks, usage]]
    return ("".join(lines) + "data: [DONE]\n\n").encode()


def named_events(raw: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in raw.strip().split("\n\n"):
        name, data = block.split("\n", 1)
        events.append((name.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return events


async def test_interleaved_tool_calls_stream_as_whole_anthropic_blocks(
    faces: tuple[httpx.AsyncClient, Engine], respx_mock: respx.MockRouter
) -> None:
    client, _ = faces
    chunks = [
        tool_chunk([{"index": 0, "id": "call_a", "type": "function",
                     "function": {"name": "search", "arguments": '{"q": '}}]),
        tool_chunk([{"index": 1, "id": "call_b", "type": "function",
                     "function": {"name": "fetch", "arguments": '{"url": "x"}'}}]),
        tool_chunk([{"index": 0, "function": {"arguments": '"cats"}'}}], finish="tool_calls"),
    ]  # fmt: skip
    respx_mock.post("http://127.0.0.1:9/upstream/v1/chat/completions").mock(
        return_value=httpx.Response(
            200, headers={"content-type": "text/event-stream"}, content=sse_body(chunks)
        )
    )
    body = {"model": "auto:low", "max_tokens": 64, "stream": True,
            "messages": [{"role": "user", "content": "find cats"}]}  # fmt: skip
    async with client.stream("POST", "/v1/messages", json=body) as response:
        raw = "".join([part async for part in response.aiter_text()])
    events = named_events(raw)
    starts = [data["content_block"] for name, data in events if name == "content_block_start"]
    assert [(b["type"], b["id"], b["name"]) for b in starts] == [
        ("tool_use", "call_a", "search"), ("tool_use", "call_b", "fetch")]  # fmt: skip
    arguments: dict[int, str] = {}
    for name, data in events:
        if name == "content_block_delta":
            arguments[data["index"]] = arguments.get(data["index"], "") + data["delta"]["partial_json"]
    assert arguments == {0: '{"q": "cats"}', 1: '{"url": "x"}'}
    delta = next(data for name, data in events if name == "message_delta")
    assert delta["delta"]["stop_reason"] == "tool_use" and delta["usage"]["output_tokens"] == 12
    assert events[-1][0] == "message_stop" and events[-1][1]["router"]["cost_usd"] > 0


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/messages", {"model": "auto", "max_tokens": 5,
                          "messages": [{"role": "bogus", "content": "hi"}]}),
        ("/v1/responses", {"input": [{"foo": 1}]}),
    ],
)  # fmt: skip
async def test_a_body_with_nothing_translatable_says_so(
    faces: tuple[httpx.AsyncClient, Engine], path: str, body: dict[str, Any]
) -> None:
    client, _ = faces
    response = await client.post(path, json=body)
    assert response.status_code == 400, response.text
    assert "could be read as a message" in response.json()["error"]["message"]


async def test_a_streams_final_row_keeps_its_provisional_rows_time(
    make_settings: Callable[..., Settings], respx_mock: respx.MockRouter
) -> None:
    written: list[tuple[str, str]] = []

    class Recording(FakeLedger):
        async def record(self, row: Any, replace: bool = False) -> bool:
            written.append((row.status, row.created_at))
            return await super().record(row, replace)

    settings = make_settings()
    engine = build_engine(settings, ledger=Recording())
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "cheap-a",
             "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}]}  # fmt: skip
    respx_mock.post("http://127.0.0.1:9/upstream/v1/chat/completions").mock(
        return_value=httpx.Response(
            200, headers={"content-type": "text/event-stream"}, content=sse_body([chunk])
        )
    )
    transport = httpx.ASGITransport(app=create_app(settings, engine))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        body = {"model": "auto:low", "stream": True, "messages": [{"role": "user", "content": "x"}]}
        async with client.stream("POST", "/v1/chat/completions", json=body) as response:
            _ = [part async for part in response.aiter_bytes()]
    await engine.aclose()
    (first_status, first_time), (last_status, last_time) = written
    assert (first_status, last_status) == ("incomplete", "ok")
    assert first_time == last_time  # one row to whatever counts by time (day, budget month)
