"""One ledger row: a decision, what it cost and what the baseline would have."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(slots=True)
class LedgerRow:
    request_id: str
    endpoint: str
    prompt_hash: str
    tier: str
    model: str
    source: str
    cached: bool
    reason: str
    judge_model: str
    judge_error: str | None
    judge_cost_usd: float
    judge_latency_ms: float
    prompt_tokens: int
    estimated_cost_usd: float
    baseline_model: str
    estimated_baseline_cost_usd: float
    latency_ms: float
    metadata: dict[str, Any] | None = None
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    # Filled when the request was proxied (/complete, /v1/chat/completions).
    status: str = "routed"
    routed_model: str | None = None
    stream: bool = False
    completion_tokens: int | None = None
    usage_estimated: bool = False
    cost_usd: float | None = None
    baseline_cost_usd: float | None = None
    saved_usd: float | None = None
    upstream_latency_ms: float | None = None
    attempts: list[dict[str, Any]] | None = None
    error: str | None = None
    api_key_id: str | None = None
    prompt_text: str | None = None
    # Routing policy: the rule that matched, the rollout arm, the budget that changed the tier.
    rule: str | None = None
    arm: str = "routed"
    budget: str | None = None
    # Quality: how it was answered, a cascade's steps, what grading them cost, a flag.
    strategy: str = "direct"
    cascade: list[dict[str, Any]] | None = None
    grader_cost_usd: float = 0.0
    quality_flag: str | None = None
    # judge.learn: the prompt's feature vector (hashed n-grams; never the text), for training.
    features: str | None = None

    def as_params(self) -> dict[str, Any]:
        # A shallow copy: dataclasses.asdict deep-copies and costs ~15x more per row.
        params = {name: getattr(self, name) for name in _ROW_FIELDS}
        for flag in ("cached", "stream", "usage_estimated"):
            params[flag] = int(params[flag])
        for blob in ("metadata", "attempts", "cascade"):
            params[blob] = None if params[blob] is None else json.dumps(params[blob])
        return params


_ROW_FIELDS = tuple(LedgerRow.__dataclass_fields__)
