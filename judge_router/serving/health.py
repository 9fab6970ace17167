"""GET /healthz's body: whether the judge can be called, and the cache and ledger can be written."""

from __future__ import annotations

from typing import Any

from judge_router.service.engine import Engine
from judge_router.upstream.litellm_runtime import missing_credentials


async def health(engine: Engine) -> dict[str, Any]:
    settings = engine.settings
    cache = await engine.verdicts.health()
    ledger = await engine.ledger.health()
    judges = engine.judges
    llm_ready = judges.calls_llm
    missing = [] if settings.judge.is_heuristic else missing_credentials(settings.judge.entry)
    return {
        "status": "ok" if cache.writable and ledger.writable else "degraded",
        "open_circuits": {
            "judge": await judges.breaker.open_circuits(),
            "models": await engine.model_breaker.open_circuits(),
        },
        "judge": {
            "model": settings.judge.model,
            "mode": "llm" if llm_ready else "heuristic",
            "reachable_by_config": llm_ready,
            "missing_credentials": missing,
            "on_failure": settings.judge.on_failure,
            "failures": judges.failures,
        },
        "cache": {"enabled": cache.enabled, "writable": cache.writable, "errors": cache.errors},
        "ledger": {
            "writable": ledger.writable,
            "write_errors": ledger.write_errors,
            "pending_rows": ledger.pending_rows,
            "dropped_rows": ledger.dropped_rows,
        },
    }
