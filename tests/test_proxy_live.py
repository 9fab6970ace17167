"""Streaming and the OpenAI SDK against the real app on a loopback port, with a loopback fake provider."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from judge_router.config import Settings
from judge_router.service.engine import Engine
from judge_router.service.factory import build_engine
from judge_router.serving.app import create_app
from judge_router.testing.fake_upstream import BackgroundServer, FakeUpstream

from fakes import settings_data

pytestmark = pytest.mark.slow  # real processes or servers: run with -m slow, or all

ROW_DEADLINE_S = 10


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture
def live(tmp_path: Path, upstream: FakeUpstream) -> Iterator[tuple[str, Engine]]:
    data = settings_data(tmp_path)
    data["judge"]["model"] = "openai/fake-judge"
    data["judge"]["litellm_params"]["api_base"] = upstream.base_url
    data["tiers"]["low"].insert(0, {"model": "openai/fail-500-first", "litellm_params": {
        **data["tiers"]["low"][0]["litellm_params"]}})  # fmt: skip
    data["tiers"]["medium"][0]["model"] = "openai/stream-delay-2000-mid"
    for entries in data["tiers"].values():
        for entry in entries:
            entry["litellm_params"]["api_base"] = upstream.base_url
    settings = Settings(**data)
    engine = build_engine(settings)
    with BackgroundServer(create_app(settings, engine)) as server:
        yield server.url, engine
    asyncio.run(engine.aclose())


def wait_for_row(
    engine: Engine, request_id: str, done: Callable[[dict[str, Any]], bool] = lambda row: True
) -> dict[str, Any]:
    """The request's ledger row, once `done(row)` holds for it."""
    deadline = time.monotonic() + ROW_DEADLINE_S
    while True:
        rows = [r for r in asyncio.run(engine.ledger.rows()) if r["request_id"] == request_id]
        if rows and done(rows[0]):
            return rows[0]
        assert time.monotonic() < deadline, f"no (finished) ledger row for {request_id}: {rows}"
        time.sleep(0.02)  # polling a condition, bounded by the deadline


def sse_events(lines: Iterator[str], named: dict[str, Any] | None = None) -> list[Any]:
    """The data of the stream's unnamed events; named ones (the router trailer) go to `named`."""
    events: list[Any] = []
    name = None
    for line in lines:
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            payload = line.removeprefix("data: ")
            data = payload if payload == "[DONE]" else json.loads(payload)
            if name is None:
                events.append(data)
            elif named is not None:
                named[name] = data
            name = None
    return events


def test_stream_falls_back_before_the_first_chunk_and_is_priced(
    live: tuple[str, Engine], upstream: FakeUpstream
) -> None:
    base, engine = live
    upstream.reset()
    body = {"model": "auto:low", "stream": True, "stream_options": {"include_router": True},
            "messages": [{"role": "user", "content": "one two three four five"}]}  # fmt: skip
    named: dict[str, Any] = {}
    with httpx.stream("POST", f"{base}/v1/chat/completions", json=body, timeout=10) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-judge-router-model"] == "openai/cheap-a"
        request_id = response.headers["x-judge-router-request-id"]
        events = sse_events(response.iter_lines(), named)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "echo: one two three four five"
    assert not any("usage" in c for c in chunks)  # the client did not ask for usage
    row = wait_for_row(engine, request_id)
    assert (row["status"], row["model"], row["stream"]) == ("ok", "openai/cheap-a", 1)
    assert [a["model"] for a in row["attempts"]] == ["openai/fail-500-first", "openai/cheap-a"]
    assert row["completion_tokens"] == 6 and row["usage_estimated"] == 0  # the provider's usage
    assert row["cost_usd"] == pytest.approx(row["prompt_tokens"] * 1e-7 + 6 * 4e-7)
    # After [DONE], the router trailer it asked for: what was decided and what it cost.
    router = named["router"]
    assert (router["request_id"], router["model"], router["tier"]) == (
        request_id, "openai/cheap-a", "low")  # fmt: skip
    for field in ("cost_usd", "baseline_cost_usd", "saved_usd"):
        assert router[field] == row[field], field
    sent = upstream.requests[-1].body["stream_options"]
    assert sent == {"include_usage": True}  # the router's own option is not the provider's


def test_stream_usage_chunk_when_the_client_asks(live: tuple[str, Engine]) -> None:
    base, _ = live
    body = {"model": "auto:low", "stream": True, "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "count me"}]}  # fmt: skip
    named: dict[str, Any] = {}
    with httpx.stream("POST", f"{base}/complete", json=body, timeout=10) as response:
        events = sse_events(response.iter_lines(), named)
    usage = [e for e in events[:-1] if e.get("usage")]
    assert len(usage) == 1 and usage[0]["usage"]["completion_tokens"] == 3
    # The usage chunk is the last one and carries the router object with the stream's costs.
    assert events[-2] is usage[0] and usage[0]["choices"] == []
    assert usage[0]["router"]["tier"] == "low" and usage[0]["router"]["cost_usd"] > 0
    assert named == {}  # no trailer unless asked for


def test_first_chunk_is_not_held_back_and_disconnect_is_recorded(
    live: tuple[str, Engine], upstream: FakeUpstream
) -> None:
    base, engine = live
    words = " ".join(f"w{i}" for i in range(10))  # the provider pauses 2 s between chunks: >= 20 s
    body = {
        "model": "auto:medium",
        "stream": True,
        "messages": [{"role": "user", "content": words}],
    }
    started = time.monotonic()
    with httpx.stream("POST", f"{base}/complete", json=body, timeout=30) as response:
        request_id = response.headers["x-judge-router-request-id"]
        lines = response.iter_lines()
        first = next(line for line in lines if line.startswith("data: "))
        first_after = time.monotonic() - started
        content = next(line for line in lines if line.startswith("data: "))
        # Mid-stream, a provisional row is already on disk: the prompt priced alone.
        provisional = wait_for_row(engine, request_id)
    # Leaving the block closed the connection mid-answer.
    assert first_after < 10, "the first chunk waited for the whole answer"
    assert json.loads(first.removeprefix("data: "))["choices"][0]["delta"]["role"] == "assistant"
    assert "echo" in content
    assert provisional["status"] == "incomplete" and provisional["completion_tokens"] == 0
    assert provisional["cost_usd"] > 0 and provisional["usage_estimated"] == 1
    row = wait_for_row(engine, request_id, lambda row: row["completion_tokens"] > 0)
    assert len([r for r in asyncio.run(engine.ledger.rows()) if r["request_id"] == request_id]) == 1
    assert row["status"] == "incomplete" and row["usage_estimated"] == 1
    assert 1 <= row["completion_tokens"] < 10
    assert row["cost_usd"] > 0 and row["baseline_cost_usd"] > row["cost_usd"]
    assert time.monotonic() - started < 20, "the disconnect was noticed only at the end"


def test_openai_sdk_plain_and_streamed(live: tuple[str, Engine]) -> None:
    base, engine = live
    client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused-here", max_retries=0)
    plain = client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "Summarise the plan [[tier:low]]"}]
    )
    assert plain.choices[0].message.content == "echo: Summarise the plan [[tier:low]]"
    assert plain.usage is not None and plain.usage.completion_tokens == 5
    stream = client.chat.completions.create(
        model="auto:low",
        messages=[{"role": "user", "content": "stream this please"}],
        stream=True,
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "echo: stream this please"
    with pytest.raises(openai.NotFoundError) as raised:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert "nope" in str(raised.value)
    models = [m.id for m in client.models.list()]
    assert "auto" in models


def test_all_models_failing_on_a_stream_is_a_502_before_any_byte(
    make_settings: Callable[..., Settings], upstream: FakeUpstream, tmp_path: Path
) -> None:
    data = settings_data(tmp_path)
    for tier in ("low", "medium", "high"):
        data["tiers"][tier] = [{"model": f"openai/fail-500-{tier}", "litellm_params": {
            "api_base": upstream.base_url, "api_key": "x",
            "input_cost_per_token": 1e-7, "output_cost_per_token": 1e-7}}]  # fmt: skip
    data["baseline"] = "openai/fail-500-high"
    settings = Settings(**data)
    engine = build_engine(settings)
    with BackgroundServer(create_app(settings, engine)) as server:
        response = httpx.post(
            f"{server.url}/complete",
            json={"tier": "low", "stream": True, "messages": [{"role": "user", "content": "x"}]},
        )
    asyncio.run(engine.aclose())
    assert response.status_code == 502
    assert [a["model"] for a in response.json()["error"]["attempts"]] == [
        "openai/fail-500-low", "openai/fail-500-medium", "openai/fail-500-high"
    ]  # fmt: skip
