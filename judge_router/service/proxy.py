"""Proxied completions: decide, call the chain of models, price the answer against the baseline, record."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio
import pydantic_core

from judge_router.accounting.ledger import LedgerRow
from judge_router.routing.conversation import message_text
from judge_router.routing.tokens import count_tokens
from judge_router.service.engine import Engine
from judge_router.types import TIER_ORDER, Decision, Source, Tier
from judge_router.upstream.completion import AllAttemptsFailed, Attempt, Completed, StreamStarted

AUTO = "auto"


class ProxyError(Exception):
    """A request the proxy cannot serve; carries the HTTP status and the error body's type."""

    def __init__(
        self, status: int, error_type: str, message: str, attempts: list[Attempt] | None = None
    ):
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.attempts = attempts or []


@dataclass(slots=True)
class Outcome:
    """What one proxied request cost, and what the baseline would have."""

    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    baseline_cost_usd: float
    saved_usd: float
    usage_estimated: bool = False


class Proxy:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.settings = engine.settings

    def model_names(self) -> list[str]:
        return [
            AUTO,
            *(f"{AUTO}:{tier.value}" for tier in TIER_ORDER),
            *self.engine.router.configured_models(),
        ]

    async def decide(
        self,
        model: str | None,
        tier: Tier | None,
        messages: list[dict[str, Any]],
        metadata: dict[str, Any] | None,
        api_key_id: str | None = None,
    ) -> Decision:
        """Read the `model` field: auto routes, auto:TIER forces, a configured name passes through."""
        router = self.engine.router
        if model is None or model == AUTO:
            return await router.decide(messages, tier, metadata, api_key_id)
        if model.startswith(f"{AUTO}:"):
            wanted = model.removeprefix(f"{AUTO}:")
            if wanted not in {t.value for t in TIER_ORDER}:
                raise ProxyError(
                    400,
                    "invalid_request_error",
                    f"model {model!r}: unknown tier; use auto:low, auto:medium or auto:high",
                )
            return await router.decide(messages, tier or Tier(wanted), metadata, api_key_id)
        if model in router.configured_models():
            return router.passthrough(messages, model, metadata, api_key_id)
        raise ProxyError(
            404,
            "model_not_found",
            f"model {model!r} is not configured; use one of {self.model_names()} (see GET /v1/models)",
        )

    def chain(self, decision: Decision) -> list[str]:
        """The models to try in order: the tier's, then (routing.fallback: next_tier) the tiers above."""
        models = list(decision.models)
        if (
            decision.verdict.source is Source.PASSTHROUGH
            or self.settings.routing.fallback == "none"
        ):
            return models
        tier: Tier | None = decision.tier.next_up()
        while tier is not None:
            models.extend(m for m in self.engine.router.models_for(tier) if m not in models)
            tier = tier.next_up()
        return models

    def price(
        self, decision: Decision, model: str, prompt_tokens: int, completion_tokens: int
    ) -> Outcome:
        completions = self.engine.completions
        cost = completions.cost(model, prompt_tokens, completion_tokens)
        baseline = completions.cost(self.settings.baseline, prompt_tokens, completion_tokens)
        return Outcome(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost_usd=cost,
            baseline_cost_usd=baseline,
            saved_usd=baseline - cost - decision.verdict.cost_usd,
        )

    def router_info(
        self, decision: Decision, model: str, attempts: list[Attempt], outcome: Outcome | None
    ) -> dict[str, Any]:
        info: dict[str, Any] = {
            "request_id": decision.request_id,
            "tier": decision.tier.value,
            "model": model,
            "source": decision.verdict.source.value,
            "cached": decision.cached,
            "reason": decision.verdict.reason,
            "attempts": [a.public() for a in attempts],
            "judge_cost_usd": decision.verdict.cost_usd,
        }
        dropped = sorted(
            {p for a in attempts if a.model == model for p in (a.dropped_params or [])}
        )
        if dropped:
            info["dropped_params"] = dropped
        if outcome is not None:
            info.update(
                cost_usd=outcome.cost_usd,
                baseline_cost_usd=outcome.baseline_cost_usd,
                saved_usd=outcome.saved_usd,
            )
        return info

    @staticmethod
    def headers(decision: Decision, model: str) -> dict[str, str]:
        return {
            "x-judge-router-tier": decision.tier.value,
            "x-judge-router-model": model,
            "x-judge-router-request-id": decision.request_id,
        }

    def ledger_row(
        self,
        decision: Decision,
        endpoint: str,
        started: float,
        status: str,
        model: str,
        attempts: list[Attempt],
        outcome: Outcome | None,
        stream: bool,
        upstream_ms: float | None,
        error: str | None = None,
    ) -> LedgerRow:
        row = self.engine.row(decision, endpoint, (time.perf_counter() - started) * 1000)
        row.status = status
        row.model = model
        row.routed_model = decision.model
        row.stream = stream
        row.attempts = [a.public() for a in attempts]
        row.upstream_latency_ms = upstream_ms
        row.error = error
        if outcome is not None:
            row.prompt_tokens = outcome.prompt_tokens
            row.completion_tokens = outcome.completion_tokens
            row.usage_estimated = outcome.usage_estimated
            row.cost_usd = outcome.cost_usd
            row.baseline_cost_usd = outcome.baseline_cost_usd
            row.saved_usd = outcome.saved_usd
        return row

    def _failed(
        self,
        decision: Decision,
        endpoint: str,
        started: float,
        failure: AllAttemptsFailed,
        stream: bool,
    ) -> ProxyError:
        listed = "; ".join(f"{a.model}: {a.error}" for a in failure.attempts)
        self.engine.record(
            self.ledger_row(
                decision,
                endpoint,
                started,
                "error",
                decision.model,
                failure.attempts,
                None,
                stream,
                None,
                listed,
            )
        )
        if failure.all_bad_requests:
            return ProxyError(
                400,
                "invalid_request_error",
                f"every model refused the request: {listed}",
                failure.attempts,
            )
        return ProxyError(502, "upstream_error", f"every model failed: {listed}", failure.attempts)

    async def complete(
        self, params: dict[str, Any], decision: Decision, endpoint: str
    ) -> tuple[dict[str, Any], dict[str, str]]:
        started = time.perf_counter()
        try:
            done: Completed = await self.engine.completions.complete(
                self.chain(decision), params, self.settings.routing.upstream_timeout_s
            )
        except AllAttemptsFailed as failure:
            raise self._failed(decision, endpoint, started, failure, stream=False) from None
        outcome = self.price(decision, done.model, done.prompt_tokens, done.completion_tokens)
        self.engine.record(
            self.ledger_row(
                decision,
                endpoint,
                started,
                "ok",
                done.model,
                done.attempts,
                outcome,
                False,
                done.latency_ms,
            )
        )
        body = dict(done.response)
        body["router"] = self.router_info(decision, done.model, done.attempts, outcome)
        return body, self.headers(decision, done.model)

    async def stream(
        self, params: dict[str, Any], decision: Decision, endpoint: str
    ) -> tuple[AsyncIterator[bytes], dict[str, str]]:
        """Open the stream (fallback happens here, before the first chunk) and return its SSE bytes."""
        started = time.perf_counter()
        client_wants_usage = bool((params.get("stream_options") or {}).get("include_usage"))
        try:
            opened = await self.engine.completions.stream(
                self.chain(decision), params, self.settings.routing.upstream_timeout_s
            )
        except AllAttemptsFailed as failure:
            raise self._failed(decision, endpoint, started, failure, stream=True) from None
        return self._relay(opened, decision, endpoint, started, client_wants_usage), self.headers(
            decision, opened.model
        )

    async def _relay(
        self,
        opened: StreamStarted,
        decision: Decision,
        endpoint: str,
        started: float,
        client_wants_usage: bool,
    ) -> AsyncIterator[bytes]:
        streamed: list[str] = []
        usage: dict[str, Any] | None = None
        status, error = "incomplete", None  # until the provider's stream ends normally
        try:
            yield _sse(opened.first_chunk)
            _collect(opened.first_chunk, streamed)
            # The first byte is out and the provider is billing: put a provisional row on disk now
            # (incomplete, the prompt priced alone), so a crash mid-stream still leaves the request
            # in the ledger. The row written when the stream ends replaces it.
            estimate = self.price(decision, opened.model, decision.prompt_tokens, 0)
            estimate.usage_estimated = True
            self.engine.record_provisional(
                self.ledger_row(
                    decision, endpoint, started, "incomplete", opened.model, opened.attempts,
                    estimate, True, opened.first_chunk_ms,
                )
            )  # fmt: skip
            async for chunk in opened.chunks:
                _collect(chunk, streamed)
                if chunk.get("usage"):
                    usage = chunk["usage"]
                    if not chunk.get("choices") and not client_wants_usage:
                        continue  # we asked for usage to price the answer; the client did not
                    if not client_wants_usage:
                        chunk = {k: v for k, v in chunk.items() if k != "usage"}
                yield _sse(chunk)
            status = "ok"
            yield b"data: [DONE]\n\n"
        except Exception as exc:  # the provider broke off mid-stream: tell the client in-band
            status, error = "error", f"stream broke: {type(exc).__name__}: {exc}"[:300]
            yield _sse({"error": {"type": "upstream_error", "message": error}})
        finally:
            if usage:
                outcome = self.price(
                    decision,
                    opened.model,
                    int(usage.get("prompt_tokens") or 0),
                    int(usage.get("completion_tokens") or 0),
                )
            else:  # cut short: price what was streamed, by our own count, and say it is estimated
                outcome = self.price(
                    decision, opened.model, decision.prompt_tokens, count_tokens("".join(streamed))
                )
                outcome.usage_estimated = True
            self.engine.record(
                self.ledger_row(
                    decision,
                    endpoint,
                    started,
                    status,
                    opened.model,
                    opened.attempts,
                    outcome,
                    True,
                    opened.first_chunk_ms,
                    error,
                )
            )
            with anyio.CancelScope(shield=True):  # stop the provider's stream even when cancelled
                close = getattr(opened.chunks, "aclose", None)
                if close is not None:
                    await close()


def _sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + pydantic_core.to_json(payload, inf_nan_mode="null") + b"\n\n"


def _collect(chunk: dict[str, Any], streamed: list[str]) -> None:
    for choice in chunk.get("choices") or ():
        text = message_text((choice.get("delta") or {}).get("content"))
        if text:
            streamed.append(text)
