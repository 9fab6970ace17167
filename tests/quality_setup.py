"""What the shadow and sampling tests share: settings whose every model is on the loopback fake
provider, and the app served in process with a fake judge and a fake ledger."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from judge_router.config import Settings
from judge_router.service.engine import Engine
from judge_router.service.factory import build_engine
from judge_router.serving.app import create_app
from judge_router.types import Tier

from fakes import FakeJudge, FakeLedger, settings_data

GRADER = "openai/fake-grader"


def entry(model: str, base_url: str, prices: tuple[float, float] = (1e-6, 2e-6)) -> dict[str, Any]:
    return {
        "model": model,
        "litellm_params": {
            "api_base": base_url,
            "api_key": "sk-test-upstream",
            "input_cost_per_token": prices[0],
            "output_cost_per_token": prices[1],
        },
    }


def loopback_settings(
    tmp_path: Path,
    base_url: str,
    tiers: dict[str, str] | None = None,
    grader: str = GRADER,
    **overrides: Any,
) -> Settings:
    """One model per tier (`tiers`: tier -> model), all on the fake at `base_url`; the grader too."""
    chosen = {"low": "openai/cheap-a", "medium": "openai/mid-a", "high": "openai/big-a"}
    chosen.update(tiers or {})
    data = settings_data(tmp_path, **overrides)
    data["tiers"] = {tier: [entry(model, base_url)] for tier, model in chosen.items()}
    data["baseline"] = chosen["high"]
    data["grader"] = {**entry(grader, base_url, (1e-7, 4e-7)), "timeout_s": 5}
    return Settings(**data)


def shadow_test(candidate: str, base_url: str, **fields: Any) -> dict[str, Any]:
    return {"candidate": entry(candidate, base_url, (3e-7, 1e-6)), "share_pct": 100, **fields}


@dataclass
class Served:
    engine: Engine
    client: httpx.AsyncClient
    ledger: FakeLedger

    async def chat(self, content: str, **fields: Any) -> httpx.Response:
        body = {"model": "auto", "messages": [{"role": "user", "content": content}], **fields}
        return await self.client.post("/v1/chat/completions", json=body)

    def outcomes(self, source: str) -> dict[tuple[str, str], Any]:
        """(request id, model) -> outcome row, of one source."""
        return {
            (request_id, model): row
            for (request_id, kind, model), row in self.ledger.outcomes_stored.items()
            if kind == source
        }


@asynccontextmanager
async def served(settings: Settings, tier: Tier = Tier.HIGH, **parts: Any) -> AsyncIterator[Served]:
    """The app in process (no lifespan: background workers start with their first job)."""
    ledger = FakeLedger()
    engine = build_engine(settings, judges=[FakeJudge(default=tier)], ledger=ledger, **parts)
    transport = httpx.ASGITransport(app=create_app(settings, engine))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://router.test") as client:
            yield Served(engine, client, ledger)
    finally:
        await engine.aclose()
