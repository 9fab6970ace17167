"""Checks the loopback fake provider that the rest of the suite and the benchmarks rely on."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from judge_router.testing.fake_upstream import BAD_JSON_BODY, FakeUpstream, FakeUpstreamApp


@pytest.fixture(scope="module")
def server() -> Iterator[FakeUpstream]:
    with FakeUpstream() as up:
        yield up


@pytest.fixture
def up(server: FakeUpstream) -> FakeUpstream:
    server.reset()
    return server


@pytest.fixture(scope="module")
def client(server: FakeUpstream) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=5) as c:
        yield c


def chat(model: str, *messages: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": text} for text in messages],
        **extra,
    }


def sse_events(response: httpx.Response) -> list[str]:
    return [line[len("data: ") :] for line in response.iter_lines() if line.startswith("data: ")]


def test_plain_completion_echoes_last_user_message_with_usage(
    up: FakeUpstream, client: httpx.Client
) -> None:
    body = {
        "model": "cheap-model",
        "messages": [
            {"role": "system", "content": "be brief please"},
            {"role": "user", "content": "first question"},
            {"role": "user", "content": [{"type": "text", "text": "what is two plus two"}]},
        ],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
    }
    r = client.post("/chat/completions", json=body)
    assert r.status_code == 200
    data = r.json()
    assert data["object"] == "chat.completion"
    assert data["id"].startswith("chatcmpl-fake-")
    assert isinstance(data["created"], int)
    assert data["model"] == "cheap-model"
    choice = data["choices"][0]
    assert choice["index"] == 0
    assert choice["finish_reason"] == "stop"
    assert choice["message"] == {"role": "assistant", "content": "echo: what is two plus two"}
    assert data["usage"] == {"prompt_tokens": 10, "completion_tokens": 6, "total_tokens": 16}


def test_echo_truncates_to_200_chars(up: FakeUpstream, client: httpx.Client) -> None:
    r = client.post("/chat/completions", json=chat("m", "x" * 500))
    assert r.json()["choices"][0]["message"]["content"] == "echo: " + "x" * 200


def test_requests_are_recorded_and_reset(up: FakeUpstream, client: httpx.Client) -> None:
    client.post("/chat/completions", json=chat("a", "one"))
    client.get("/models")
    recorded = up.requests
    assert [(r.method, r.path) for r in recorded] == [
        ("POST", "/v1/chat/completions"),
        ("GET", "/v1/models"),
    ]
    assert recorded[0].body["model"] == "a"
    assert recorded[0].headers["content-type"] == "application/json"
    assert recorded[1].body is None
    up.reset()
    assert up.requests == []


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("rate this [[tier:low]]", {"tier": "low", "reason": "fake judge"}),
        ("rate this", {"tier": "medium", "reason": "fake judge"}),
        ("[[tier:high]] prove the theorem", {"tier": "high", "reason": "fake judge"}),
        ("[[judge:wrong-schema]]", {"difficulty": "hard"}),
    ],
)
def test_judge_verdict_follows_marker(
    up: FakeUpstream, client: httpx.Client, prompt: str, expected: dict[str, str]
) -> None:
    # Only the last user message steers the verdict.
    r = client.post("/chat/completions", json=chat("judge-mini", "[[tier:low]]", prompt))
    assert r.status_code == 200
    assert json.loads(r.json()["choices"][0]["message"]["content"]) == expected


def test_judge_invalid_json_marker(up: FakeUpstream, client: httpx.Client) -> None:
    r = client.post("/chat/completions", json=chat("judge", "x [[judge:invalid-json]]"))
    assert r.json()["choices"][0]["message"]["content"] == "not json at all"


@pytest.mark.parametrize("status", [500, 429, 400, 401])
def test_failure_models_return_openai_errors(
    up: FakeUpstream, client: httpx.Client, status: int
) -> None:
    r = client.post("/chat/completions", json=chat(f"x-fail-{status}-y", "hi"))
    assert r.status_code == status
    assert set(r.json()["error"]) >= {"message", "type", "code"}
    if status == 429:
        assert r.headers["retry-after"] == "1"


def test_bad_json_model_returns_unparseable_200(up: FakeUpstream, client: httpx.Client) -> None:
    r = client.post("/chat/completions", json=chat("bad-json", "hi"))
    assert r.status_code == 200
    assert r.content == BAD_JSON_BODY
    with pytest.raises(json.JSONDecodeError):
        r.json()


def test_models_and_unknown_routes(up: FakeUpstream, client: httpx.Client) -> None:
    assert client.get("/models").json() == {"object": "list", "data": []}
    r = client.get("/nope")
    assert r.status_code == 404
    assert r.json()["error"]["type"] == "not_found"
    assert client.post("/chat/completions", content=b"{oops").status_code == 400


def test_stream_yields_word_chunks_usage_and_done(up: FakeUpstream, client: httpx.Client) -> None:
    body = chat("m", "alpha beta gamma", stream=True, stream_options={"include_usage": True})
    with client.stream("POST", "/chat/completions", json=body) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = sse_events(r)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    words = [c["choices"][0]["delta"]["content"] for c in chunks[1:-2]]
    assert words == ["echo: ", "alpha ", "beta ", "gamma"]
    assert chunks[-2]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}


def test_stream_without_usage_has_no_usage_chunk(up: FakeUpstream, client: httpx.Client) -> None:
    with client.stream("POST", "/chat/completions", json=chat("m", "hi", stream=True)) as r:
        events = sse_events(r)
    chunks = [json.loads(e) for e in events[:-1]]
    assert events[-1] == "[DONE]"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all("usage" not in c for c in chunks)


def test_slow_model_times_out_client_and_is_abandoned(
    up: FakeUpstream, client: httpx.Client
) -> None:
    start = time.perf_counter()
    r = client.post("/chat/completions", json=chat("slow-60-x", "hi"))
    assert r.status_code == 200
    assert time.perf_counter() - start >= 0.06
    with pytest.raises(httpx.ReadTimeout):
        client.post("/chat/completions", json=chat("slow-5000", "hi"), timeout=0.05)
    deadline = time.monotonic() + 2
    while up.disconnects == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert up.disconnects == 1


def test_stream_delay_arrives_incrementally_and_notices_disconnect(
    up: FakeUpstream, client: httpx.Client
) -> None:
    body = chat("stream-delay-40", "a b c d e f g h", stream=True)
    with client.stream("POST", "/chat/completions", json=body) as r:
        lines = r.iter_lines()
        start = time.perf_counter()
        first = next(line for line in lines if line.startswith("data: "))
        second = next(line for line in lines if line.startswith("data: "))
        gap = time.perf_counter() - start
    assert '"role":"assistant"' in first and '"echo: "' in second
    assert gap >= 0.03
    deadline = time.monotonic() + 2
    while up.disconnects == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert up.disconnects == 1


def test_openai_sdk_plain_and_streamed(up: FakeUpstream) -> None:
    with openai.OpenAI(base_url=up.base_url, api_key="x", max_retries=0) as sdk:
        plain = sdk.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hello sdk"}]
        )
        assert plain.choices[0].message.content == "echo: hello sdk"
        assert plain.usage is not None and plain.usage.total_tokens == 5

        stream = sdk.chat.completions.create(
            model="judge-1",
            messages=[{"role": "user", "content": "[[tier:high]]"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        parts: list[str] = []
        usage_total = None
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                parts.append(chunk.choices[0].delta.content)
            if chunk.usage is not None:
                usage_total = chunk.usage.total_tokens
    assert json.loads("".join(parts)) == {"tier": "high", "reason": "fake judge"}
    assert usage_total == 1 + 5
    assert up.requests[-1].headers["authorization"] == "Bearer x"


async def test_app_in_process_with_fixed_reply() -> None:
    app = FakeUpstreamApp(reply="fixed answer here")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://fake/v1") as c:
        r = await c.post("/chat/completions", json=chat("m", "anything"))
        judged = await c.post("/chat/completions", json=chat("judge", "[[tier:low]]"))
    assert r.json()["choices"][0]["message"]["content"] == "fixed answer here"
    assert r.json()["usage"]["completion_tokens"] == 3
    assert json.loads(judged.json()["choices"][0]["message"]["content"])["tier"] == "low"
