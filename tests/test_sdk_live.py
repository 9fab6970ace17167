"""The OpenAI and Anthropic SDKs, unchanged but for their base URL, against the real app on a
loopback port, with the loopback fake provider behind it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from judge_router.config import Settings
from judge_router.service.engine import Engine
from judge_router.service.factory import build_engine
from judge_router.serving.app import create_app
from judge_router.testing.fake_upstream import BackgroundServer, FakeUpstream

from fakes import settings_data

pytestmark = pytest.mark.slow  # real servers: run with -m slow, or all

SERVICE_KEY = "sdk-test-key-0123456789"
ROW_DEADLINE_S = 10


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture
def live(tmp_path: Path, upstream: FakeUpstream) -> Iterator[tuple[str, Engine]]:
    data = settings_data(tmp_path, server={"api_keys": [{"id": "sdk", "key": SERVICE_KEY}]})
    data["judge"]["model"] = "openai/fake-judge"
    data["judge"]["litellm_params"]["api_base"] = upstream.base_url
    for entries in data["tiers"].values():
        for entry in entries:
            entry["litellm_params"]["api_base"] = upstream.base_url
    data["tiers"]["high"][0]["model_name"] = "smart"
    settings = Settings(**data)
    engine = build_engine(settings)
    with BackgroundServer(create_app(settings, engine)) as server:
        yield server.url, engine
    asyncio.run(engine.aclose())


def openai_client(base: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base}/v1", api_key=SERVICE_KEY, max_retries=0)


def rows_for(engine: Engine, request_id: str) -> dict[str, Any]:
    """The request's final ledger row (a stream's is written once it has ended)."""
    deadline = time.monotonic() + ROW_DEADLINE_S
    while True:
        rows = [r for r in asyncio.run(engine.ledger.rows()) if r["request_id"] == request_id]
        if rows and rows[0]["status"] != "incomplete":
            return rows[0]
        assert time.monotonic() < deadline, f"no finished ledger row for {request_id}"
        time.sleep(0.02)  # polling a condition, bounded by the deadline


def test_openai_chat_with_store_false_and_a_stream(live: tuple[str, Engine]) -> None:
    base, engine = live
    client = openai_client(base)
    ask = [{"role": "user", "content": "hello router"}]
    answer = client.chat.completions.create(model="auto:low", messages=ask, store=False)  # type: ignore[arg-type]
    assert answer.choices[0].message.content == "echo: hello router"
    router = answer.model_extra["router"]  # type: ignore[index]
    assert router["model"] == "openai/cheap-a"
    assert rows_for(engine, router["request_id"])["status"] == "ok"

    stream = client.chat.completions.create(model="auto", messages=ask, stream=True)  # type: ignore[arg-type]
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text.startswith("echo: hello router")


def test_openai_models_list_and_retrieve_know_auto_and_aliases(live: tuple[str, Engine]) -> None:
    base, _ = live
    client = openai_client(base)
    names = [model.id for model in client.models.list()]
    assert names[:4] == ["auto", "auto:low", "auto:medium", "auto:high"] and "smart" in names
    assert client.models.retrieve("auto").id == "auto"
    assert client.models.retrieve("openai/cheap-a").id == "openai/cheap-a"
    with pytest.raises(openai.NotFoundError, match="not configured"):
        client.models.retrieve("gpt-5-nanoo")


def test_openai_responses_unchanged_output_text_and_a_stream(live: tuple[str, Engine]) -> None:
    base, engine = live
    client = openai_client(base)
    response = client.responses.create(model="smart", input="hello responses", store=False)
    assert response.output_text == "echo: hello responses"
    router = response.model_extra["router"]  # type: ignore[index]
    assert (router["model"], router["source"]) == ("openai/big-a", "passthrough")
    row = rows_for(engine, router["request_id"])
    assert (row["endpoint"], row["status"]) == ("responses", "ok")

    with client.responses.stream(model="auto:medium", input="stream me please") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text == "echo: stream me please"
    assert final.usage is not None and final.usage.output_tokens == 4
    router = final.model_extra["router"]  # type: ignore[index]
    row = rows_for(engine, router["request_id"])
    assert (row["endpoint"], row["model"], row["stream"]) == ("responses", "openai/mid-a", 1)
    assert router["cost_usd"] == row["cost_usd"] > 0


def test_anthropic_messages_and_a_stream_answered_by_an_openai_style_model(
    live: tuple[str, Engine],
) -> None:
    base, engine = live
    client = anthropic.Anthropic(base_url=base, api_key=SERVICE_KEY, max_retries=0)
    ask: list[Any] = [{"role": "user", "content": "hello claude"}]
    message = client.messages.create(model="auto:low", max_tokens=50, messages=ask)
    assert message.content[0].type == "text" and message.content[0].text == "echo: hello claude"
    assert message.stop_reason == "end_turn"
    router = message.model_extra["router"]  # type: ignore[index]
    assert rows_for(engine, router["request_id"])["endpoint"] == "messages"

    with client.messages.stream(model="auto:high", max_tokens=50, messages=ask) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "echo: hello claude"
    assert final.usage.output_tokens == 3 and final.stop_reason == "end_turn"

    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(base_url=base, api_key="wrong-key-0123456789", max_retries=0)\
            .messages.create(model="auto", max_tokens=5, messages=ask)  # fmt: skip
