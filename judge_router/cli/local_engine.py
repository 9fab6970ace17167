"""The CLI's `route`: the service's engine, built without importing litellm unless a model is called.

litellm takes 4-5 s to import. Deciding one prompt with the heuristic judge (or a judge without
credentials) calls no model, so the engine gets prices from litellm's bundled map file and a
litellm stand-in that imports it only on first use (upstream/litellm_runtime.defer_loading).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from judge_router.config import Settings
from judge_router.routing.request import RoutingRequest
from judge_router.routing.tokens import count_tokens
from judge_router.service.engine import Engine, RouteAnswer
from judge_router.service.factory import build_engine
from judge_router.types import Tier
from judge_router.upstream import litellm_runtime
from judge_router.upstream.bundled_map import with_bundled_prices
from judge_router.upstream.model_check import check_models

MEMORY_LEDGER = Path(":memory:")  # sqlite3's in-memory database: a dry run writes no file
# Room for what the conversation adds to the prompt's own tokens when priced (roles, markers).
PROMPT_TOKEN_MARGIN = 1_000


def local_engine(settings: Settings, prompt: str, dry_run: bool) -> Engine:
    """The engine for one local decision; raises ConfigError as build_engine does."""
    if dry_run:
        ledger = settings.ledger.model_copy(update={"path": MEMORY_LEDGER})
        settings = settings.model_copy(update={"ledger": ledger})
    litellm_runtime.defer_loading()
    prompt_tokens = count_tokens(prompt) + PROMPT_TOKEN_MARGIN
    priced = with_bundled_prices(settings, prompt_tokens)
    if priced is None:  # a model only litellm itself can price: ask it, checking names first
        check_models(settings)
        priced = settings
    engine = build_engine(priced)
    if engine.judges.calls_llm:
        # The judge will be called: import now, not inside the call (it would eat its timeout).
        litellm_runtime.load_now()
    return engine


def judge_warnings(settings: Settings, engine: Engine) -> list[str]:
    """What `route` must say: only the judge is ever called, so only its credentials matter."""
    judge = settings.judge
    if judge.is_heuristic or engine.judges.calls_llm:
        return []
    why = engine.judges.unavailable_reason or "it cannot be called"
    answer = (
        "the heuristic judge" if judge.on_failure == "heuristic" else f"tier {judge.on_failure}"
    )
    return [f"judge {judge.model} is not called ({why}); {answer} answers (judge.on_failure)"]


def local_route(
    settings: Settings, prompt: str, tier: str | None, dry_run: bool
) -> tuple[RouteAnswer, list[str]]:
    engine = local_engine(settings, prompt, dry_run)
    request = RoutingRequest(
        [{"role": "user", "content": prompt}], "cli", tier=Tier(tier) if tier else None
    )

    async def decide_and_close() -> RouteAnswer:
        try:
            return await engine.route(request)
        finally:
            await engine.aclose()

    warnings = judge_warnings(settings, engine)
    return asyncio.run(decide_and_close()), warnings
