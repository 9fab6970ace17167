"""Fakes the tests share: settings on temporary paths and canned provider answers."""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
import json
import sys
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import respx

from judge_router.accounting.budgets import SpendScope, row_spend
from judge_router.accounting.ledger import LedgerHealth
from judge_router.accounting.ledger_row import LedgerRow
from judge_router.accounting.outcome_row import OutcomeRow
from judge_router.routing.conversation import JudgedView
from judge_router.routing.judges.base import JudgeError
from judge_router.routing.request import RoutingRequest
from judge_router.routing.verdict_store import StoredVerdict, StoreHealth
from judge_router.types import Source, Tier, Verdict

# Fake providers live on a loopback address that nothing listens on: respx answers for it.
JUDGE_BASE = "http://127.0.0.1:9/judge/v1"
UPSTREAM_BASE = "http://127.0.0.1:9/upstream/v1"
JUDGE_PRICE = {"input_cost_per_token": 1e-7, "output_cost_per_token": 4e-7}


def model_entry(name: str, base: str = UPSTREAM_BASE, **params: Any) -> dict[str, Any]:
    return {
        "model": f"openai/{name}",
        "litellm_params": {
            "api_base": base,
            "api_key": "sk-test-upstream",
            "input_cost_per_token": 1e-6,
            "output_cost_per_token": 2e-6,
            **params,
        },
    }


def settings_data(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "judge": {
            "model": "openai/judge-nano",
            "litellm_params": {"api_base": JUDGE_BASE, "api_key": "sk-test-judge", **JUDGE_PRICE},
            "timeout_s": 2,
            "max_input_tokens": 1000,
            "on_failure": "heuristic",
        },
        "tiers": {
            "low": [model_entry("cheap-a", input_cost_per_token=1e-7, output_cost_per_token=4e-7)],
            "medium": [model_entry("mid-a", input_cost_per_token=5e-7, output_cost_per_token=2e-6)],
            "high": [
                model_entry("big-a", input_cost_per_token=2e-6, output_cost_per_token=1e-5),
                model_entry("big-b", input_cost_per_token=2e-6, output_cost_per_token=1e-5),
            ],
        },
        "baseline": "openai/big-a",
        "cache": {"dir": str(tmp_path / "cache"), "ttl_s": 3600},
        "ledger": {"path": str(tmp_path / "ledger.sqlite")},
        "server": {"max_body_bytes": 20_000},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return data


def verdict_reply(
    content: str | None = None, tier: str = "medium", prompt_tokens: int = 400
) -> httpx.Response:
    """A provider's chat.completion carrying a judge verdict (or any `content`)."""
    if content is None:
        content = json.dumps({"tier": tier, "reason": f"fake judge says {tier}"})
    return httpx.Response(
        200,
        json={
            "id": "chatcmpl-judge",
            "object": "chat.completion",
            "created": 1,
            "model": "judge-nano",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": 12,
                "total_tokens": prompt_tokens + 12,
            },
        },
    )


def judge_request(route: respx.Route, index: int = -1) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(route.calls[index].request.content)
    return body


def chat_reply(
    model: str, content: str = "hello from upstream", usage: tuple[int, int] = (100, 50)
) -> httpx.Response:
    """A provider's chat.completion answer with the given usage (prompt, completion tokens)."""
    return httpx.Response(
        200,
        json={
            "id": f"chatcmpl-{model}",
            "object": "chat.completion",
            "created": 1,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": usage[0],
                "completion_tokens": usage[1],
                "total_tokens": sum(usage),
            },
        },
    )


def fake_upstream(
    mock: respx.MockRouter, answers: dict[str, httpx.Response | Exception]
) -> respx.Route:
    """Route the fake upstream by the request's model; a model not listed answers normally."""

    def answer(request: httpx.Request) -> httpx.Response:
        model = json.loads(request.content)["model"]
        outcome = answers.get(model)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome if outcome is not None else chat_reply(model)

    return mock.post(f"{UPSTREAM_BASE}/chat/completions").mock(side_effect=answer)


def never_answering(mock: respx.MockRouter) -> respx.Route:
    """The fake upstream accepts requests and never answers (until the test's deadline)."""
    never = asyncio.Event()

    async def hang(request: httpx.Request) -> httpx.Response:
        await never.wait()
        raise AssertionError("unreachable")

    return mock.post(f"{UPSTREAM_BASE}/chat/completions").mock(side_effect=hang)


def ask(
    messages: str | list[dict[str, Any]], tier: Tier | None = None, **fields: Any
) -> RoutingRequest:
    """A routing request for `messages` (a string is one user message)."""
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    return RoutingRequest(messages, tier=tier, **fields)


class FakeJudge:
    """A judge at the seam: answers from a queue (a tier, None to abstain, or a JudgeError to
    raise), then `default`; remembers every view it was shown."""

    version = "fake-1"

    def __init__(
        self,
        *answers: Tier | JudgeError | None,
        default: Tier = Tier.MEDIUM,
        name: str = "fake-judge",
        cacheable: bool = True,
        cost_usd: float = 0.001,
    ):
        self.name = name
        self.cacheable = cacheable
        self.answers: deque[Tier | JudgeError | None] = deque(answers)
        self.default = default
        self.cost_usd = cost_usd
        self.seen: list[JudgedView] = []
        self.gate: asyncio.Event | None = None  # when set, rate() waits for it

    def enqueue(self, *answers: Tier | JudgeError | None) -> None:
        self.answers.extend(answers)

    async def rate(self, view: JudgedView) -> Verdict | None:
        self.seen.append(view)
        if self.gate is not None:
            await self.gate.wait()
        answer = self.answers.popleft() if self.answers else self.default
        if isinstance(answer, JudgeError):
            raise answer
        if answer is None:
            return None
        return Verdict(
            tier=answer,
            reason=f"{self.name} says {answer.value}",
            source=Source.LLM,
            cost_usd=self.cost_usd,
            latency_ms=1.0,
            judge_model=self.name,
        )


def ledger_row(request_id: str) -> LedgerRow:
    """A /route row with nothing in it but its request id."""
    return LedgerRow(
        request_id=request_id, endpoint="route", prompt_hash="h", tier="low", model="m",
        source="heuristic", cached=False, reason="r", judge_model="heuristic", judge_error=None,
        judge_cost_usd=0.0, judge_latency_ms=0.1, prompt_tokens=3, estimated_cost_usd=0.0,
        baseline_model="b", estimated_baseline_cost_usd=0.0, latency_ms=1.0,
    )  # fmt: skip


class FakeLedger:
    """A ledger at the seam: rows in a list; `failing` makes every write fail (and rows wait)."""

    def __init__(self) -> None:
        self.stored: dict[str, LedgerRow] = {}
        self.outcomes_stored: dict[tuple[str, str, str], OutcomeRow] = {}
        self.failing = False
        self.pending: list[LedgerRow] = []

    async def record(self, row: LedgerRow, replace: bool = False) -> bool:
        self.pending.append(row)
        if self.failing:
            return False
        for waiting in self.pending:
            self.stored[waiting.request_id] = waiting
        self.pending.clear()
        return True

    async def record_outcome(self, outcome: OutcomeRow) -> bool:
        if self.failing:
            return False
        self.outcomes_stored[(outcome.request_id, outcome.source, outcome.model)] = outcome
        return True

    async def rows(self, since: str | None = None) -> list[dict[str, Any]]:
        return [
            self._public(row) for row in self.stored.values()
            if since is None or row.created_at >= since
        ]  # fmt: skip

    @staticmethod
    def _public(row: LedgerRow) -> dict[str, Any]:
        return row.as_params() | {
            "metadata": row.metadata, "attempts": row.attempts, "cascade": row.cascade
        }  # fmt: skip

    async def decision(self, request_id: str) -> dict[str, Any] | None:
        row = self.stored.get(request_id)
        return None if row is None else self._public(row)

    async def outcomes(
        self, since: str | None = None, source: str | None = None
    ) -> list[dict[str, Any]]:
        return [
            dataclasses.asdict(o) for o in self.outcomes_stored.values()
            if (since is None or o.created_at >= since) and source in (None, o.source)
        ]  # fmt: skip

    async def outcomes_of(self, request_id: str) -> list[dict[str, Any]]:
        return [
            dataclasses.asdict(o) for key, o in sorted(self.outcomes_stored.items())
            if key[0] == request_id
        ]  # fmt: skip

    async def summary(self, since: str | None = None, view: Any = None) -> dict[str, Any]:
        return {"rows": len(await self.rows(since))}

    async def spend(self, scopes: Sequence[SpendScope], start: str, end: str) -> list[float]:
        if self.failing:
            raise OSError("the fake ledger is failing")
        rows = [row for row in self.stored.values() if start <= row.created_at < end]
        return [
            sum(row_spend(row) for row in rows if scope.covers(row.metadata, row.api_key_id))
            for scope in scopes
        ]

    async def health(self) -> LedgerHealth:
        return LedgerHealth(not self.failing, 0, len(self.pending), 0)

    async def close(self) -> None:
        pass


class FakeVerdictStore:
    """A verdict store at the seam: a dict; `failing` makes reads miss and writes refuse."""

    def __init__(self, latency: int = 0) -> None:
        self.kept: dict[str, Verdict] = {}
        self.failing = False
        self.gets = 0
        # A network store: its answer arrives `latency` turns of the event loop after the read.
        self.latency = latency

    async def get(self, key: str) -> StoredVerdict | None:
        self.gets += 1
        verdict = None if self.failing else self.kept.get(key)
        for _ in range(self.latency):
            await asyncio.sleep(0)
        if verdict is None:
            return None
        return StoredVerdict(verdict.model_copy(update={"source": Source.CACHE}), 1e12)

    async def put(self, key: str, verdict: Verdict) -> StoredVerdict | None:
        if self.failing:
            return None
        self.kept[key] = verdict
        return StoredVerdict(verdict.model_copy(update={"source": Source.CACHE}), 1e12)

    async def health(self) -> StoreHealth:
        return StoreHealth(True, not self.failing, 0)

    def close(self) -> None:
        pass


def load_script(path: Path) -> ModuleType:
    """A script that is not a package module (a benchmark), imported under a name of its own."""
    spec = importlib.util.spec_from_file_location(f"{path.stem}_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building classes
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module
