"""GET /healthz's body: whether the judge can be called, its local model loaded, the cache and
ledger can be written, and Redis (when configured) reached."""

from __future__ import annotations

from typing import Any

from judge_router.routing.judges.chain import JudgeChain
from judge_router.service.engine import Engine
from judge_router.serving.admin_api import local_model_health
from judge_router.upstream.litellm_runtime import missing_credentials


async def health(engine: Engine) -> dict[str, Any]:
    settings = engine.settings
    cache = await engine.verdicts.health()
    ledger = await engine.ledger.health()
    judges = engine.judges
    llm_ready = judges.calls_llm
    missing = [] if settings.judge.is_heuristic else missing_credentials(settings.judge.entry)
    local = local_model_health(judges.local_slot)
    # A model file that could not be read is degraded even while an older model answers: the
    # next start (or worker) would come up without one.
    local_ok = local is None or local["error"] is None
    # Each link is pinged, so a Redis that came back is seen here without waiting for traffic.
    redis_ok = [await link.ping() for link in engine.redis]
    healthy = cache.writable and ledger.writable and local_ok and all(redis_ok)
    body: dict[str, Any] = {
        "status": "ok" if healthy else "degraded",
        "open_circuits": {
            "judge": await judges.breaker.open_circuits(),
            "models": await engine.model_breaker.open_circuits(),
        },
        "judge": {
            "model": settings.judge.model,
            "mode": mode_in_effect(judges, settings.judge.mode),
            "reachable_by_config": llm_ready,
            "missing_credentials": missing,
            "on_failure": settings.judge.on_failure,
            "failures": judges.failures,
            "local_model": local,
        },
        "cache": {"enabled": cache.enabled, "writable": cache.writable, "errors": cache.errors},
        "ledger": {
            "writable": ledger.writable,
            "write_errors": ledger.write_errors,
            "pending_rows": ledger.pending_rows,
            "dropped_rows": ledger.dropped_rows,
        },
    }
    if engine.redis:  # what each Redis holds, whether it answers, and what was done without it
        body["redis"] = [link.health() for link in engine.redis]
    return body


def mode_in_effect(judges: JudgeChain, configured: str) -> str:
    """Who rates prompts now: `llm`, `local`, `hybrid` (the local model, then the LLM judge) or
    `heuristic`; `judge.mode` as far as the credentials and the model file allow."""
    slot = judges.local_slot
    local = configured != "llm" and slot is not None and slot.model is not None
    if local:
        return "hybrid" if configured == "hybrid" and judges.calls_llm else "local"
    return "llm" if judges.calls_llm else "heuristic"
