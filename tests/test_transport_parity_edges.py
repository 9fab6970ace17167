"""The direct transport and litellm against providers that misbehave (faked with respx): odd bodies,
statuses without JSON, streams that end early, break, carry an error or no usage."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from fakes import UPSTREAM_BASE
from parity import RespxProvider, Seen, both, hello, run

ANSWER = {
    "id": "chatcmpl-x",
    "object": "chat.completion",
    "created": 1,
    "model": "cheap-a",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "hello world"},
            "finish_reason": "stop",
        }
    ],
}
USAGE = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}


def event(choices: list[dict[str, Any]], **fields: Any) -> bytes:
    chunk = {"id": "c-1", "object": "chat.completion.chunk", "created": 1, "model": "cheap-a"}
    return b"data: " + json.dumps({**chunk, "choices": choices, **fields}).encode() + b"\n\n"


def delta(finish: str | None = None, **fields: Any) -> list[dict[str, Any]]:
    return [{"index": 0, "delta": fields, "logprobs": None, "finish_reason": finish}]


START = event(delta(role="assistant", content=""))
WORDS = event(delta(content="hello there"))
FINISH = event(delta("stop"))
USAGE_ONLY = event([], usage=USAGE)
DONE = b"data: [DONE]\n\n"


def streamed(*events: bytes, then: Exception | None = None) -> Callable[[], httpx.Response]:
    class Body(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            for item in events:
                yield item
            if then is not None:
                raise then

    headers = {"content-type": "text/event-stream"}
    return lambda: httpx.Response(200, headers=headers, stream=Body())


def reset() -> httpx.Response:
    raise httpx.ReadError("connection reset by peer")


def plain(response: httpx.Response) -> Callable[[], httpx.Response]:
    return lambda: response


def error(status: int, message: str, **fields: Any) -> Callable[[], httpx.Response]:
    return plain(httpx.Response(status, json={"error": {"message": message, **fields}}))


def text(status: int, body: str, content_type: str = "text/html") -> Callable[[], httpx.Response]:
    return plain(httpx.Response(status, text=body, headers={"content-type": content_type}))


CONTEXT = "This model's maximum context length is 10 tokens"
WHOLE = {
    "no usage": plain(httpx.Response(200, json=ANSWER)),
    "HTML with 200": text(200, "<html>hi</html>"),
    "JSON as text/plain": text(200, json.dumps(ANSWER), "text/plain"),
    "broken JSON": text(200, "{nope", "application/json"),
    "no choices": plain(httpx.Response(200, json={"id": "x", "object": "chat.completion"})),
    "an error with 200": error(200, "quota"),
    "502 in HTML": text(502, "<html>bad gateway</html>"),
    "503 without a body": plain(httpx.Response(503)),
    "422 from a FastAPI server": plain(
        httpx.Response(422, json={"detail": [{"loc": ["body", "n"], "msg": "bad"}]})
    ),
    "404 model not found": error(404, "no such model", code="model_not_found"),
    "400 context window": error(400, CONTEXT, code="context_length_exceeded"),
    "403": error(403, "region not allowed"),
    "reset": lambda: reset(),
}
STREAMS = {
    "no usage": streamed(START, WORDS, FINISH, DONE),
    "usage on the finish chunk": streamed(START, WORDS, event(delta("stop"), usage=USAGE), DONE),
    "usage null on each chunk": streamed(
        event(delta(role="assistant", content=""), usage=None),
        event(delta(content="hi"), usage=None),
        event(delta("stop"), usage=None),
        USAGE_ONLY,
        DONE,
    ),
    "an empty first chunk": streamed(event([]), START, WORDS, FINISH, USAGE_ONLY, DONE),
    "CRLF and no space after data:": streamed(
        START.replace(b"data: ", b"data:").replace(b"\n", b"\r\n"), WORDS, FINISH, USAGE_ONLY, DONE
    ),
    "no [DONE]": streamed(START, WORDS, FINISH, USAGE_ONLY),
    "the end before a finish_reason": streamed(START, WORDS),
    "[DONE] before a finish_reason": streamed(START, WORDS, DONE),
    "lost after the finish_reason": streamed(START, WORDS, FINISH, then=httpx.ReadError("reset")),
    "lost midway": streamed(START, WORDS, then=httpx.ReadError("connection reset by peer")),
    "an error event": streamed(START, b'data: {"error": {"message": "overloaded"}}\n\n'),
    "an error event first": streamed(b'data: {"error": {"message": "overloaded"}}\n\n'),
    "broken JSON midway": streamed(START, b"data: {nope\n\n"),
    "a 429 before the stream": plain(httpx.Response(429, json={"error": {"message": "slow down"}})),
}


def provider(respx_mock: respx.MockRouter, answer: Callable[[], httpx.Response]) -> RespxProvider:
    route = respx_mock.post(f"{UPSTREAM_BASE}/chat/completions").mock(
        side_effect=lambda request: answer()
    )
    return RespxProvider(route, UPSTREAM_BASE)


@pytest.mark.parametrize("case", list(WHOLE))
async def test_whole_answers(tmp_path: Path, respx_mock: respx.MockRouter, case: str) -> None:
    await both(tmp_path, provider(respx_mock, WHOLE[case]), ["cheap-a"], hello())


@pytest.mark.parametrize("case", list(STREAMS))
async def test_streams(tmp_path: Path, respx_mock: respx.MockRouter, case: str) -> None:
    seen, _ = await both(
        tmp_path,
        provider(respx_mock, STREAMS[case]),
        ["cheap-a"],
        hello(stream=True),
        hello(stream=True, stream_options={"include_usage": True}),
    )
    if case == "no usage":  # litellm counts what the provider did not report; so does direct
        assert {row["usage_estimated"] for row in seen.rows} == {0}


async def test_a_whole_answer_to_a_stream_request_is_streamed_not_lost(
    tmp_path: Path, respx_mock: respx.MockRouter
) -> None:
    # The one difference on purpose: a server that ignores `stream` and answers whole. litellm
    # finds no events in the body and streams an empty answer; the direct path streams the answer.
    whole = provider(respx_mock, plain(httpx.Response(200, json={**ANSWER, "usage": USAGE})))
    body = hello(stream=True)
    via_litellm = await run(tmp_path, whole, "litellm", ["cheap-a"], [body])
    direct = await run(tmp_path, whole, "direct", ["cheap-a"], [body])

    def text(seen: Seen) -> str:
        chunks = [json.loads(e) for e in seen.answers[0]["events"] if e != "[DONE]"]
        return "".join(
            c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices")
        )

    assert (text(via_litellm), text(direct)) == ("", "hello world")
    assert [row["completion_tokens"] for row in direct.rows] == [2]  # the provider's usage
