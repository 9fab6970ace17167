"""Loopback OpenAI-compatible fake provider for tests and benchmarks.

Behaviour is steered by the request's model name and by markers in the last user message.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import itertools
import json
import os
import re
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self

import uvicorn
import uvicorn.config
from starlette.types import Receive, Scope, Send

from judge_router.testing.fake_answers import FakeAnswer, grader_reply, play

__all__ = [
    "BAD_JSON_BODY",
    "BackgroundServer",
    "REPLY_ENV",
    "FakeUpstream",
    "FakeUpstreamApp",
    "RecordedRequest",
    "main",
]


#: Environment variable that fixes the reply text of non-judge completions.
REPLY_ENV = "FAKE_UPSTREAM_REPLY"

BAD_JSON_BODY = b"<html>this is not json"

_SLOW_RE = re.compile(r"slow-(\d+)")
_STREAM_DELAY_RE = re.compile(r"stream-delay-(\d+)")
_TIER_RE = re.compile(r"\[\[tier:(low|medium|high)\]\]")
# Leading whitespace rides on the first chunk so the chunks concatenate back to the reply.
_WORD_CHUNK_RE = re.compile(r"\s*\S+\s*")

# (model marker, status, error type, error code, message); first match wins.
_FAILURES: tuple[tuple[str, int, str, str, str], ...] = (
    ("fail-500", 500, "server_error", "server_error", "The server had an error (fake)."),
    ("fail-429", 429, "rate_limit_error", "rate_limit_exceeded", "Rate limit reached (fake)."),
    ("fail-400", 400, "invalid_request_error", "bad_request", "Bad request (fake)."),
    ("fail-401", 401, "authentication_error", "invalid_api_key", "Incorrect API key (fake)."),
)

_JSON_CT = (b"content-type", b"application/json")
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
]
_MODELS_BODY = b'{"object":"list","data":[]}'
_SSE_DONE = b"data: [DONE]\n\n"

# Delays are slept in slices so a stopping server cuts them short instead of having uvicorn
# cancel the request task (which it logs as an ASGI error) after its graceful timeout.
_SLEEP_SLICE_S = 0.05

# A reused compact encoder skips json.dumps' per-call encoder construction.
_encode = json.JSONEncoder(separators=(",", ":")).encode


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the fake saw it; ``body`` is the decoded JSON (raw text if invalid)."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    client: str = ""  # the connection it came on, "host:port" (one port: one kept-alive connection)


def _error_body(err_type: str, code: str | None, message: str) -> bytes:
    payload = {"error": {"message": message, "type": err_type, "param": None, "code": code}}
    return _encode(payload).encode()


def _text(content: Any) -> str:
    """Plain text of a message ``content`` (string or list of content parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    return ""


def _last_user_text(messages: Sequence[Any]) -> str:
    for msg in reversed(messages):
        if isinstance(msg, dict) and msg.get("role") == "user":
            return _text(msg.get("content"))
    return ""


async def _read_body(receive: Receive) -> bytes:
    msg = await receive()
    body: bytes = msg.get("body", b"")
    if not msg.get("more_body", False):
        return body
    parts = [body]
    while msg.get("more_body", False):
        msg = await receive()
        if msg["type"] != "http.request":
            break
        parts.append(msg.get("body", b""))
    return b"".join(parts)


async def _send_bytes(
    send: Send, status: int, body: bytes, extra_headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    headers = [_JSON_CT, (b"content-length", str(len(body)).encode()), *extra_headers]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _wait_disconnect(receive: Receive) -> None:
    # After the body is consumed, uvicorn's receive() only returns on disconnect/completion.
    while (await receive())["type"] != "http.disconnect":
        # A server whose receive() doesn't block would make this spin; poll it instead.
        await asyncio.sleep(_SLEEP_SLICE_S)


class FakeUpstreamApp:
    """The raw ASGI app; usable in-process (e.g. ``httpx.ASGITransport``) or under uvicorn."""

    def __init__(
        self, *, reply: str | None = None, chunk_delay_ms: float = 0.0, record: bool = True
    ) -> None:
        self.reply: str | None = reply if reply is not None else os.environ.get(REPLY_ENV)
        self.chunk_delay_ms = chunk_delay_ms
        # Long benchmark runs turn recording off so the list doesn't grow without bound.
        self.record = record
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._disconnects = 0
        self._ids = itertools.count(1)
        # Set from FakeUpstream.stop() in another thread; a plain bool read is enough here.
        self.closing = False

    # -- recording (read from other threads, hence the lock) --------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Snapshot of the requests received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def disconnects(self) -> int:
        """Delayed (slow-/stream-delay) responses abandoned because the client disconnected."""
        with self._lock:
            return self._disconnects

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._disconnects = 0

    async def _sleep_or_disconnect(
        self, seconds: float, watcher: asyncio.Task[None] | None
    ) -> bool:
        """Sleep ``seconds``, or less if closing; return True if the client went away."""
        deadline = time.monotonic() + seconds
        while not self.closing:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            slice_s = min(remaining, _SLEEP_SLICE_S)
            if watcher is None:
                await asyncio.sleep(slice_s)
            elif (await asyncio.wait((watcher,), timeout=slice_s))[0]:
                return True
        return watcher is not None and watcher.done()

    def _note_disconnect(self) -> None:
        with self._lock:
            self._disconnects += 1

    # -- ASGI -------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    @staticmethod
    async def _lifespan(receive: Receive, send: Send) -> None:
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        method: str = scope["method"]
        path: str = scope["path"]
        raw = await _read_body(receive)
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
        if self.record:
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            peer = scope.get("client") or ("", 0)
            entry = RecordedRequest(method, path, headers, body, f"{peer[0]}:{peer[1]}")
            with self._lock:
                self._requests.append(entry)

        if path == "/v1/chat/completions" and method == "POST":
            if not isinstance(body, dict):
                msg = "Request body must be a JSON object."
                err = _error_body("invalid_request_error", None, msg)
                await _send_bytes(send, 400, err)
            else:
                await self._chat(body, receive, send)
        elif path == "/v1/models" and method == "GET":
            await _send_bytes(send, 200, _MODELS_BODY)
        else:
            err = _error_body("not_found", None, f"No route for {method} {path}")
            await _send_bytes(send, 404, err)

    async def _chat(self, body: dict[str, Any], receive: Receive, send: Send) -> None:
        model = body.get("model")
        model = model if isinstance(model, str) else ""
        stream = body.get("stream") is True

        slow = _SLOW_RE.search(model)
        slow_s = int(slow.group(1)) / 1000 if slow else 0.0
        marker = _STREAM_DELAY_RE.search(model)
        delay_s = 0.0
        if stream:
            delay_s = (int(marker.group(1)) if marker else self.chunk_delay_ms) / 1000

        # Only delayed responses pay for a disconnect watcher; the hot path stays task-free.
        watcher: asyncio.Task[None] | None = None
        if slow_s > 0 or delay_s > 0 or marker:
            watcher = asyncio.ensure_future(_wait_disconnect(receive))
        try:
            if slow_s > 0 and await self._sleep_or_disconnect(slow_s, watcher):
                self._note_disconnect()
                return
            for marker_text, status, err_type, code, message in _FAILURES:
                if marker_text in model:
                    extra = [(b"retry-after", b"1")] if status == 429 else []
                    err = _error_body(err_type, code, message)
                    await _send_bytes(send, status, err, extra)
                    return
            if "bad-json" in model:
                await _send_bytes(send, 200, BAD_JSON_BODY)
                return

            raw_messages = body.get("messages")
            messages: list[Any] = raw_messages if isinstance(raw_messages, list) else []
            answer = self._answer(model, body, messages)
            content = answer.content or ""
            prompt_tokens = max(
                1,
                sum(len(_text(m.get("content")).split()) for m in messages if isinstance(m, dict)),
            )
            completion_tokens = len(content.split())
            usage = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            }
            completion_id = f"chatcmpl-fake-{next(self._ids)}"
            created = int(time.time())
            if stream:
                opts = body.get("stream_options")
                include_usage = isinstance(opts, dict) and opts.get("include_usage") is True
                chunks = _sse_chunks(completion_id, created, model, answer, usage, include_usage)
                await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
                for i, chunk in enumerate(chunks):
                    if i and delay_s > 0 and await self._sleep_or_disconnect(delay_s, watcher):
                        self._note_disconnect()
                        return
                    last = i == len(chunks) - 1
                    await send({"type": "http.response.body", "body": chunk, "more_body": not last})
                return
            if marker:  # a whole answer takes as long as its stream would (its chunks' gaps)
                chunks = _sse_chunks(completion_id, created, model, answer, usage, False)
                gaps_s = (len(chunks) - 1) * int(marker.group(1)) / 1000
                if await self._sleep_or_disconnect(gaps_s, watcher):
                    self._note_disconnect()
                    return
            payload = {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": _message(answer),
                        "logprobs": None,
                        "finish_reason": answer.finish_reason,
                    }
                ],
                "usage": usage,
            }
            await _send_bytes(send, 200, _encode(payload).encode())
        finally:
            if watcher is not None:
                watcher.cancel()

    def _answer(self, model: str, body: dict[str, Any], messages: Sequence[Any]) -> FakeAnswer:
        last_user = _last_user_text(messages)
        if "grader" in model:
            return FakeAnswer(grader_reply(last_user))
        if "judge" in model:
            return FakeAnswer(self._content(model, last_user))
        return play(model, body, last_user, self._content(model, last_user))

    def _content(self, model: str, last_user: str) -> str:
        if "judge" in model:
            if "[[judge:invalid-json]]" in last_user:
                return "not json at all"
            if "[[judge:wrong-schema]]" in last_user:
                return json.dumps({"difficulty": "hard"})
            found = _TIER_RE.search(last_user)
            tier = found.group(1) if found else "medium"
            return json.dumps({"tier": tier, "reason": "fake judge"})
        if self.reply is not None:
            return self.reply
        return "echo: " + last_user[:200]


def _message(answer: FakeAnswer) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": answer.content}
    if answer.tool_calls:
        message["tool_calls"] = answer.tool_calls
    return message


def _sse_chunks(
    completion_id: str,
    created: int,
    model: str,
    answer: FakeAnswer,
    usage: dict[str, int],
    include_usage: bool,
) -> list[bytes]:
    """Every SSE event of a streamed completion, ``data: [DONE]`` last."""

    def event(choices: list[dict[str, Any]], with_usage: bool = False) -> bytes:
        chunk: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": choices,
        }
        if include_usage:
            # OpenAI sends usage: null on every chunk but the final one when usage is requested.
            chunk["usage"] = usage if with_usage else None
        return b"data: " + _encode(chunk).encode() + b"\n\n"

    def choice(delta: dict[str, Any], finish: str | None = None) -> list[dict[str, Any]]:
        return [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]

    content = answer.content or ""
    events = [event(choice({"role": "assistant", "content": ""}))]
    events.extend(event(choice({"content": word})) for word in _WORD_CHUNK_RE.findall(content))
    for index, call in enumerate(answer.tool_calls):
        events.append(event(choice({"tool_calls": [{"index": index, **call}]})))
    events.append(event(choice({}, answer.finish_reason)))
    if include_usage:
        events.append(event([], with_usage=True))
    events.append(_SSE_DONE)
    return events


# -- serving ---------------------------------------------------------------------------------


def _make_config(
    app: Any, host: str, port: int, log_config: dict[str, Any] | None
) -> uvicorn.Config:
    loop: Literal["uvloop", "asyncio"] = (
        "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"
    )
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        loop=loop,
        http="httptools",
        # No websockets import (avoids its deprecation warnings) and no lifespan round trip.
        ws="none",
        lifespan="off",
        log_level="warning",
        log_config=log_config,
        access_log=False,
        server_header=False,
        date_header=False,
        # Backstop only (delays already end on stop): a stuck request can't hold shutdown long.
        timeout_graceful_shutdown=1,
    )


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class BackgroundServer:
    """Runs any ASGI app under uvicorn in a background thread on a loopback port (tests, benchmarks)."""

    def __init__(
        self, app: Any, *, host: str = "127.0.0.1", port: int = 0, startup_timeout: float = 10.0
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.startup_timeout = startup_timeout
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Server root, e.g. ``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """OpenAI-style base URL, e.g. ``http://127.0.0.1:PORT/v1``."""
        return f"{self.url}/v1"

    def _before_start(self) -> None:
        """Hook for subclasses."""

    def _before_stop(self) -> None:
        """Hook for subclasses."""

    def start(self) -> Self:
        if self._thread is not None:
            raise RuntimeError("server already started")
        self._before_start()
        # Binding ourselves gives the real port before uvicorn runs, even for port 0.
        sock = _bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        server = uvicorn.Server(_make_config(self.app, self.host, self.port, log_config=None))
        thread = threading.Thread(
            target=server.run,
            kwargs={"sockets": [sock]},
            name=f"background-server-{self.port}",
            daemon=True,
        )
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not server.started:
            # join() doubles as the poll interval and as the "did it crash?" check.
            thread.join(0.002)
            if not thread.is_alive():
                self._server = self._thread = None
                sock.close()
                raise RuntimeError("server exited during startup")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"server not ready after {self.startup_timeout}s")
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._before_stop()
        server.should_exit = True
        thread.join(timeout=5)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class FakeUpstream(BackgroundServer):
    """Runs :class:`FakeUpstreamApp` under uvicorn in a background thread.

    ``with FakeUpstream() as up: httpx.post(up.base_url + "/chat/completions", ...)``
    """

    app: FakeUpstreamApp

    def __init__(
        self,
        *,
        reply: str | None = None,
        chunk_delay_ms: float = 0.0,
        record: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
        startup_timeout: float = 10.0,
    ) -> None:
        super().__init__(
            FakeUpstreamApp(reply=reply, chunk_delay_ms=chunk_delay_ms, record=record),
            host=host,
            port=port,
            startup_timeout=startup_timeout,
        )

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.app.requests

    @property
    def disconnects(self) -> int:
        return self.app.disconnects

    def reset(self) -> None:
        self.app.reset()

    def _before_start(self) -> None:
        self.app.closing = False

    def _before_stop(self) -> None:
        self.app.closing = True


class _AnnouncingServer(uvicorn.Server):
    """Prints one ready line so a parent process can wait for it instead of polling the port."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and sockets:
            host, port = sockets[0].getsockname()[:2]
            print(f"fake upstream ready on http://{host}:{port}/v1", flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m judge_router.testing.fake_upstream",
        description="Loopback OpenAI-compatible fake provider.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001, help="0 picks a free port")
    parser.add_argument("--reply", default=None, help=f"fixed reply text (default: ${REPLY_ENV})")
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0)
    args = parser.parse_args(argv)

    # Nobody can read the recorded requests of a standalone process, so don't keep them.
    app = FakeUpstreamApp(reply=args.reply, chunk_delay_ms=args.chunk_delay_ms, record=False)
    sock = _bind(args.host, args.port)
    config = _make_config(app, args.host, sock.getsockname()[1], uvicorn.config.LOGGING_CONFIG)
    try:
        _AnnouncingServer(config).run(sockets=[sock])
    except KeyboardInterrupt:
        # uvicorn re-raises Ctrl-C after its graceful shutdown; uvicorn.run swallows it too.
        pass


if __name__ == "__main__":
    main()
