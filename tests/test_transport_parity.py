"""The direct transport and litellm, side by side: the same scenarios against the loopback fake
provider through each, compared as the client and the ledger see them (and as the provider does).

What legitimately differs (litellm's re-encoding of what the provider sent) is left out by
tests/parity.py's `same()`; test_the_direct_path_relays_the_providers_bytes shows it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from judge_router.config import ConfigError, Settings
from judge_router.service.factory import build_engine
from judge_router.testing.fake_upstream import FakeUpstream

from fakes import FakeJudge, settings_data
from parity import both, hello, run


async def test_a_plain_answer(tmp_path: Path, fake_provider: FakeUpstream) -> None:
    seen, _ = await both(tmp_path, fake_provider, ["cheap-a"], hello(temperature=0.2, max_tokens=9))
    (answer,) = seen.answers
    assert answer["status"] == 200
    assert answer["body"]["router"]["model"] == "openai/cheap-a"
    (row,) = seen.rows
    assert (row["status"], row["prompt_tokens"], row["completion_tokens"]) == ("ok", 5, 6)
    assert row["cost_usd"] == pytest.approx(5e-6 + 12e-6)


async def test_a_streamed_answer_with_and_without_usage(
    tmp_path: Path, fake_provider: FakeUpstream
) -> None:
    seen, direct = await both(
        tmp_path,
        fake_provider,
        ["cheap-a"],
        hello(stream=True),
        hello(stream=True, stream_options={"include_usage": True}),
    )
    plain, with_usage = seen.answers
    assert plain["events"][-1] == "[DONE]"
    last = json.loads(with_usage["events"][-2])
    assert last["usage"]["completion_tokens"] == 6 and last["router"]["cost_usd"] > 0
    assert [row["status"] for row in seen.rows] == ["ok", "ok"]
    assert [row["usage_estimated"] for row in direct.rows] == [0, 0]


async def test_the_direct_path_relays_the_providers_bytes(
    tmp_path: Path, fake_provider: FakeUpstream
) -> None:
    via_litellm, direct = await both(
        tmp_path,
        fake_provider,
        ["cheap-a"],
        hello(stream=True, stream_options={"include_usage": True}),
        hello(stream=True),
    )
    for asked, relayed in zip((True, False), (a["raw"] for a in direct.answers), strict=True):
        # The provider's chunks as it wrote them (compact, with its nulls and its `created`),
        # `"usage":null` cut from them where the client did not ask for usage...
        assert b'"finish_reason":null' in relayed and b'"logprobs":null' in relayed
        assert (b'"usage":null' in relayed) is asked
    # ...where litellm's are its own encoding of what it parsed.
    assert b'"finish_reason":null' not in via_litellm.answers[0]["raw"]


@pytest.mark.parametrize("model", ["fail-429-a", "fail-500-a", "fail-400-a", "fail-401-a"])
@pytest.mark.parametrize("stream", [False, True])
async def test_provider_errors(
    tmp_path: Path, fake_provider: FakeUpstream, model: str, stream: bool
) -> None:
    seen, _ = await both(tmp_path, fake_provider, [model], hello(stream=stream))
    (answer,) = seen.answers
    assert answer["status"] >= 400 and answer["body"]["error"]["type"]
    assert seen.rows[0]["status"] == "error"


@pytest.mark.parametrize("stream", [False, True])
async def test_a_timeout(tmp_path: Path, fake_provider: FakeUpstream, stream: bool) -> None:
    seen, _ = await both(
        tmp_path,
        fake_provider,
        ["slow-5000-a"],
        hello(stream=stream),
        routing={"upstream_timeout_s": 0.2},
    )
    (row,) = seen.rows
    assert row["status"] == "error" and "timeout" in row["error"]


async def test_a_stream_whose_chunks_stop_coming(
    tmp_path: Path, fake_provider: FakeUpstream
) -> None:
    seen, _ = await both(
        tmp_path,
        fake_provider,
        ["stream-delay-5000-a"],
        hello(stream=True),
        routing={"upstream_timeout_s": 0.2},
    )
    (answer,) = seen.answers
    assert json.loads(answer["events"][-1])["error"]["type"] == "upstream_error"
    assert seen.rows[0]["error"].startswith("stream broke: MidStreamFallbackError")


@pytest.mark.parametrize("stream", [False, True])
async def test_connection_refused(
    tmp_path: Path, fake_provider: FakeUpstream, stream: bool
) -> None:
    seen, _ = await both(tmp_path, fake_provider, ["refused"], hello(stream=stream))
    assert seen.answers[0]["status"] == 502
    assert "Connection error" in seen.rows[0]["error"]


@pytest.mark.parametrize("stream", [False, True])
async def test_a_fallback_to_the_second_model(
    tmp_path: Path, fake_provider: FakeUpstream, stream: bool
) -> None:
    seen, _ = await both(tmp_path, fake_provider, ["fail-500-a", "cheap-b"], hello(stream=stream))
    (row,) = seen.rows
    assert (row["status"], row["model"], row["routed_model"]) == (
        "ok",
        "openai/cheap-b",
        "openai/fail-500-a",
    )


async def test_dropped_params(tmp_path: Path, fake_provider: FakeUpstream) -> None:
    seen, _ = await both(
        tmp_path, fake_provider, ["cheap-a"], hello(user="u-1", verbosity="low", seed=3)
    )
    router = seen.answers[0]["body"]["router"]
    assert router["dropped_params"] == ["user", "verbosity"]
    (sent,) = seen.sent
    assert "user" not in sent and "verbosity" not in sent and sent["seed"] == 3


TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
TOOL_TURN = [
    {"role": "user", "content": "Look it up."},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "found"},
]
SHAPES = {
    "system and parts": {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
            },
        ]
    },
    "a tool call": hello('[[answer:tool-call]] [[tool-args:{"q":1}]]', tools=[TOOL]),
    "a tool turn": {"messages": TOOL_TURN, "tools": [TOOL], "tool_choice": "auto"},
    "a tool_choice without tools": hello(tool_choice="auto"),
    "a JSON answer": hello(response_format={"type": "json_object"}, stop=["\n\n"], n=1),
    "nulls": hello(temperature=None, max_tokens=None),
    "stream false": hello(stream=False),
}
# Requests litellm rewrites: the direct transport hands them to litellm.
REWRITTEN = {
    "a developer message": {"messages": [{"role": "developer", "content": "x"}, *TOOL_TURN[:1]]},
    "an image by bare URL": {
        "messages": [
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": "http://127.0.0.1/a.png"}],
            }
        ]
    },
    "a tool schema with a pattern": hello(
        tools=[
            {
                **TOOL,
                "function": {
                    "name": "f",
                    "parameters": {
                        "type": "object",
                        "properties": {"a": {"type": "string", "pattern": "^a(?=b)"}},
                    },
                },
            }
        ]
    ),
}


@pytest.mark.parametrize("shape", [*SHAPES, *REWRITTEN])
@pytest.mark.parametrize("stream", [False, True])
async def test_request_shapes_reach_the_provider_alike(
    tmp_path: Path, fake_provider: FakeUpstream, shape: str, stream: bool
) -> None:
    body = {**SHAPES.get(shape, REWRITTEN.get(shape, {}))}
    if stream:
        body["stream"] = True
    await both(tmp_path, fake_provider, ["cheap-a"], body, handed_to_litellm=shape in REWRITTEN)


def test_transport_direct_refuses_a_model_it_cannot_carry(tmp_path: Path) -> None:
    data = settings_data(tmp_path)
    data["tiers"]["low"] = [
        {"model": "gpt-5-mini", "litellm_params": {"api_key": "sk-test-x", "transport": "direct"}}
    ]
    with pytest.raises(ConfigError, match="transport is direct, but litellm rewrites"):
        build_engine(Settings(**data), judges=[FakeJudge()])


@pytest.mark.parametrize("stream", [False, True])
async def test_the_direct_path_keeps_one_connection_to_the_provider(
    tmp_path: Path, fake_provider: FakeUpstream, stream: bool
) -> None:
    # A stream is read to its end after `[DONE]` (as the OpenAI SDK reads it), so its connection
    # goes back to the pool: closed unread, every streamed request paid a new connect and, to an
    # https provider, a TLS handshake.
    seen = await run(tmp_path, fake_provider, "direct", ["cheap-a"], [hello(stream=stream)] * 4)
    assert [answer["status"] for answer in seen.answers] == [200] * 4
    assert len(fake_provider.requests) == 4
    assert len({request.client for request in fake_provider.requests}) == 1
