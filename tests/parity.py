"""Running the same requests through the direct transport and through litellm, and comparing what
the client, the ledger and the provider saw (tests/test_transport_parity*.py).

Where litellm reshapes what the provider sent (a stream's chunks re-encoded without nulls, `created`
restamped, usage details and `usage.cost` it adds, null fields on a whole answer), the direct path
relays the provider's own answer; `same()` leaves out exactly those fields.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
import respx

from judge_router.config import Settings
from judge_router.service.engine import Engine
from judge_router.service.factory import build_engine
from judge_router.serving.app import create_app
from judge_router.types import Tier
from judge_router.upstream.direct_transport import DirectTransport
from judge_router.upstream.litellm_transport import LitellmTransport

from fakes import FakeJudge, settings_data


class Provider(Protocol):
    """The loopback fake provider, or a respx route standing in for a misbehaving one."""

    @property
    def base_url(self) -> str: ...

    @property
    def requests(self) -> list[Any]: ...

    def reset(self) -> None: ...


@dataclass
class RespxRequest:
    headers: httpx.Headers
    body: Any


class RespxProvider:
    """A provider at `base_url` answered by `route` (respx), its requests read back as the fake's."""

    def __init__(self, route: respx.Route, base_url: str):
        self.route = route
        self.base_url = base_url

    @property
    def requests(self) -> list[RespxRequest]:
        return [
            RespxRequest(call.request.headers, json.loads(call.request.content))
            for call in self.route.calls
        ]

    def reset(self) -> None:
        self.route.calls.clear()


REFUSED_BASE = "http://127.0.0.1:9/v1"  # the discard port: nothing listens on loopback
TRANSPORTS = ("litellm", "direct")
# Per-request values: ids, times, and what litellm adds to a stream's usage.
VARYING = {"id", "created", "request_id", "created_at", "latency_ms", "upstream_latency_ms"}
USAGE_DETAILS = {"completion_tokens_details", "prompt_tokens_details", "cost"}
# Fields litellm adds to every whole answer (null, or empty); the direct path sends what came.
LITELLM_PADDING = {"provider_specific_fields", "function_call", "tool_calls", "logprobs"}
DEBUG = False
TIME_TAKEN = re.compile(r"time taken=[0-9.]+ seconds")


def entry(model: str, base: str, transport: str) -> dict[str, Any]:
    return {
        "model": f"openai/{model}",
        "litellm_params": {
            "api_base": base,
            "api_key": "sk-test-upstream",
            "input_cost_per_token": 1e-6,
            "output_cost_per_token": 2e-6,
            "transport": transport,
        },
    }


@dataclass
class Seen:
    """What one run showed: the client's answers, the ledger's rows, the provider's requests."""

    answers: list[dict[str, Any]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    sent: list[Any] = field(default_factory=list)
    agents: set[str] = field(default_factory=set)


def settings_for(
    tmp_path: Path, base: str, transport: str, low: list[str], **overrides: Any
) -> Settings:
    data = settings_data(tmp_path / transport, **overrides)
    tiers = {"low": low, "medium": ["mid-a"], "high": ["big-a"]}
    data["tiers"] = {
        tier: [entry(m, REFUSED_BASE if m == "refused" else base, transport) for m in models]
        for tier, models in tiers.items()
    }
    data["baseline"] = "openai/big-a"
    data["routing"] = {"fallback": "none", **data.get("routing", {})}
    return Settings(**data)


@asynccontextmanager
async def served(settings: Settings) -> AsyncIterator[tuple[Engine, httpx.AsyncClient]]:
    engine = build_engine(settings, judges=[FakeJudge(default=Tier.LOW)])
    transport = httpx.ASGITransport(app=create_app(settings, engine))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://router.test") as client:
            yield engine, client
    finally:
        await engine.aclose()


async def answer_of(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    """Status, the headers that are ours, and the body (a stream: its events, parsed)."""
    request = client.build_request("POST", "/v1/chat/completions", json=body)
    response = await client.send(request, stream=True)
    try:
        raw = b"".join([piece async for piece in response.aiter_bytes()])
    finally:
        await response.aclose()
    shown = {k: v for k, v in response.headers.items() if k.startswith("x-judge-router")}
    shown.pop("x-judge-router-request-id", None)
    answer: dict[str, Any] = {"status": response.status_code, "headers": shown}
    if response.headers["content-type"].startswith("text/event-stream"):
        answer["events"] = [
            line.removeprefix("data: ")
            for line in raw.decode().splitlines()
            if line.startswith("data: ")
        ]
        answer["raw"] = raw
    else:
        answer["body"] = json.loads(raw)
    return answer


async def run(
    tmp_path: Path,
    fake: Provider,
    transport: str,
    low: list[str],
    bodies: list[dict[str, Any]],
    **overrides: Any,
) -> Seen:
    fake.reset()
    seen = Seen()
    async with served(settings_for(tmp_path, fake.base_url, transport, low, **overrides)) as (
        engine,
        client,
    ):
        expected = DirectTransport if transport == "direct" else LitellmTransport
        chain = engine.answering.strategies["direct"].models  # type: ignore[attr-defined]
        assert all(isinstance(chain.transports.for_model(f"openai/{m}"), expected) for m in low)
        for body in bodies:
            answer = await answer_of(client, {"model": "auto", **body})
            if not (body.get("stream_options") or {}).get("include_usage"):
                # `same()` leaves nulls out: check here that no `usage: null` reaches the client.
                assert not any('"usage"' in event for event in answer.get("events", ()))
            seen.answers.append(answer)
        seen.rows = await engine.ledger.rows()
    seen.sent = [request.body for request in fake.requests]
    seen.agents = {request.headers.get("user-agent", "").split("/")[0] for request in fake.requests}
    return seen


def same(value: Any) -> Any:
    """`value` without what legitimately differs between transports (see the module docstring)."""
    if isinstance(value, dict):
        return {
            key: same(item)
            for key, item in value.items()
            if item is not None
            and key not in VARYING | USAGE_DETAILS
            and not (key in LITELLM_PADDING and item in ({}, [], None))
        }
    if isinstance(value, list):
        return [same(item) for item in value]
    if isinstance(value, str):
        text = TIME_TAKEN.sub("time taken=T seconds", value)
        if text.startswith(("{", "[")):  # a JSON column of the ledger, or an SSE event
            try:
                return same(json.loads(text))
            except ValueError:
                return text
        return text
    return value


def comparable(seen: Seen) -> dict[str, Any]:
    answers = [{k: v for k, v in answer.items() if k != "raw"} for answer in seen.answers]
    return same({"answers": answers, "rows": seen.rows, "sent": seen.sent})


async def both(
    tmp_path: Path,
    fake: Provider,
    low: list[str],
    *bodies: dict[str, Any],
    handed_to_litellm: bool = False,
    **overrides: Any,
) -> tuple[Seen, Seen]:
    via_litellm = await run(tmp_path, fake, "litellm", low, list(bodies), **overrides)
    direct = await run(tmp_path, fake, "direct", low, list(bodies), **overrides)
    reached = low != ["refused"]
    assert via_litellm.agents == ({"AsyncOpenAI"} if reached else set())  # the OpenAI SDK
    # The direct path sends with httpx, except what it hands litellm to rewrite.
    direct_agent = "AsyncOpenAI" if handed_to_litellm else "python-httpx"
    assert direct.agents == ({direct_agent} if reached else set())
    if DEBUG:
        print("\n".join(lines(direct)))
    differences = list(difflib.unified_diff(lines(via_litellm), lines(direct), lineterm="", n=2))
    assert not differences, "\n".join(differences)  # `-`: through litellm, `+`: direct
    return via_litellm, direct


def lines(seen: Seen) -> list[str]:
    """What is compared, one JSON line per leaf, so a failure shows the lines that differ."""
    return json.dumps(comparable(seen), indent=1, sort_keys=True).splitlines()


def hello(text: str = "Write a haiku about caching.", **fields: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}], **fields}
