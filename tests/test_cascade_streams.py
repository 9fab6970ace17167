"""A streamed request under a cascade: `buffer` relays the answer that passed (every face), with the
rejected answers in its cost; `refuse` answers 400 saying why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from judge_router.testing.fake_upstream import FakeUpstream

from quality_setup import loopback_settings, served

EMPTY, FINE = "openai/answers-empty-low", "openai/good-mid"
ASK = [{"role": "user", "content": "What is the capital of France?"}]


def settings(tmp_path: Path, fake_provider: FakeUpstream, **cascade: Any) -> Any:
    return loopback_settings(
        tmp_path,
        fake_provider.base_url,
        tiers={"low": EMPTY, "medium": FINE, "high": "openai/good-big"},
        routing={"strategy": "cascade"},
        cascade=cascade,
    )


def events(text: str) -> list[dict[str, Any]]:
    return [
        json.loads(line.removeprefix("data: "))
        for line in text.splitlines()
        if line.startswith("data: ") and line != "data: [DONE]"
    ]


async def test_a_buffered_cascade_relays_the_answer_that_passed(
    tmp_path: Path, fake_provider: FakeUpstream
) -> None:
    async with served(settings(tmp_path, fake_provider)) as app:
        whole = (await app.client.post("/v1/chat/completions", json={"messages": ASK})).json()
        body = {"messages": ASK, "stream": True, "stream_options": {"include_usage": True}}
        reply = await app.client.post("/v1/chat/completions", json=body)
        assert reply.status_code == 200
        assert reply.headers["x-judge-router-model"] == FINE
        chunks = events(reply.text)
        text = "".join(
            c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices")
        )
        assert text == whole["choices"][0]["message"]["content"]
        assert reply.text.rstrip().endswith("data: [DONE]")
        last = chunks[-1]  # the usage chunk the client asked for, carrying the costs
        router = last["router"]
        assert last["usage"]["completion_tokens"] > 0
        assert [s["passed"] for s in router["cascade"]] == [False, True]
        assert router["cost_usd"] == whole["router"]["cost_usd"]
        row = app.ledger.stored[router["request_id"]]
        assert (row.stream, row.status, row.strategy) == (True, "ok", "cascade")
        assert row.cost_usd == router["cost_usd"] and not row.usage_estimated


async def test_the_provider_is_asked_for_whole_answers_under_a_cascade(
    tmp_path: Path, fake_provider: FakeUpstream
) -> None:
    async with served(settings(tmp_path, fake_provider)) as app:
        body = {"messages": ASK, "stream": True}
        reply = await app.client.post("/v1/chat/completions", json=body)
        assert reply.status_code == 200
        # Without include_usage the client gets no usage chunk, though the answer was priced.
        assert not any(c.get("usage") for c in events(reply.text))
    sent = [r.body for r in fake_provider.requests if isinstance(r.body, dict)]
    assert sent and all(not b.get("stream") and "stream_options" not in b for b in sent)


async def test_other_faces_stream_a_buffered_cascade_too(
    tmp_path: Path, fake_provider: FakeUpstream
) -> None:
    async with served(settings(tmp_path, fake_provider)) as app:
        body = {"model": "auto", "max_tokens": 100, "messages": ASK, "stream": True}
        reply = await app.client.post("/v1/messages", json=body)
        assert reply.status_code == 200 and "event: message_stop" in reply.text
        body = {"model": "auto", "input": "What is the capital of France?", "stream": True}
        reply = await app.client.post("/v1/responses", json=body)
        assert reply.status_code == 200 and "response.completed" in reply.text
        assert {row.model for row in app.ledger.stored.values()} == {FINE}


async def test_cascade_stream_refuse_answers_400_saying_why(
    tmp_path: Path, fake_provider: FakeUpstream
) -> None:
    async with served(settings(tmp_path, fake_provider, stream="refuse")) as app:
        reply = await app.client.post(
            "/v1/chat/completions", json={"messages": ASK, "stream": True}
        )
        assert reply.status_code == 400
        message = reply.json()["error"]["message"]
        assert "cascade.stream: refuse" in message and "stream: false" in message
        # The same request without streaming is answered, and a direct stream is relayed.
        assert (await app.client.post("/v1/chat/completions", json={"messages": ASK})).is_success
        direct = {"messages": ASK, "stream": True, "strategy": "direct"}
        assert (await app.client.post("/v1/chat/completions", json=direct)).is_success
