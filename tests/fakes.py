"""Fakes the tests share: settings on temporary paths and canned provider answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import respx

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
