"""Calls a chain of models in order; the first that answers wins, breakers permitting."""

from __future__ import annotations

import functools
import importlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from judge_router.upstream.breaker import Breaker
from judge_router.upstream.litellm_runtime import classify, first_line, supported_params
from judge_router.upstream.redact import Redactor
from judge_router.upstream.sendable import check_part_types, check_sendable
from judge_router.upstream.transport import OpenedStream, Reply
from judge_router.upstream.transports import Transports

T = TypeVar("T")

# Fields of an OpenAI chat request that are about the call itself, never dropped or reported.
_ALWAYS_SENT = frozenset({"messages", "stream", "stream_options"})
# Failures that say nothing about the model's health (the request itself was refused).
_NOT_THE_MODELS_FAULT = frozenset({"bad_request"})


@dataclass(slots=True)
class Attempt:
    """One model tried for a request: None as error means it answered."""

    model: str
    error: str | None = None
    kind: str | None = None
    status_code: int | None = None
    latency_ms: float = 0.0
    dropped_params: list[str] | None = None

    def public(self) -> dict[str, Any]:
        return {"model": self.model, "error": self.error}


class AllAttemptsFailed(Exception):
    """Every model in the chain failed; `attempts` says how."""

    def __init__(self, attempts: list[Attempt]):
        super().__init__("; ".join(f"{a.model}: {a.error}" for a in attempts))
        self.attempts = attempts

    @property
    def all_bad_requests(self) -> bool:
        return bool(self.attempts) and all(a.kind == "bad_request" for a in self.attempts)


@dataclass(slots=True)
class Completed:
    model: str
    response: dict[str, Any]
    prompt_tokens: int
    completion_tokens: int
    attempts: list[Attempt]
    latency_ms: float


@dataclass(slots=True)
class StreamStarted:
    """A stream whose first chunk has arrived: the model is settled, no other is tried."""

    model: str
    first_chunk: dict[str, Any]
    chunks: AsyncIterator[dict[str, Any]]
    attempts: list[Attempt]
    first_chunk_ms: float
    # Stops the provider's stream (its HTTP response), whether or not `chunks` was ever started.
    close: Callable[[], Awaitable[None]]


@functools.cache
def part_types() -> frozenset[str]:
    """The user-message part types litellm sends on (asked when a model is first called: the CLI
    builds a chain without importing litellm)."""
    module = importlib.import_module("litellm.types.llms.openai")
    return frozenset(module.ValidUserMessageContentTypes)


def dropped_params(model: str, params: dict[str, Any]) -> list[str]:
    """Request parameters litellm will drop for `model` because its provider does not take them."""
    supported = supported_params(model)
    if supported is None:
        return []
    return sorted(key for key in params if key not in _ALWAYS_SENT and key not in supported)


class ModelChain:
    """Tries models in order, each through its transport (litellm, or the direct HTTP path)."""

    def __init__(self, breaker: Breaker, redact: Redactor, transports: Transports):
        self.breaker = breaker
        self.redact = redact
        self.transports = transports

    async def _any_usable(self, chain: list[str]) -> bool:
        """Whether some model of the chain is not skipped; if none is, all are tried anyway."""
        for model in chain:
            if not await self.breaker.blocked(model):
                return True
        return False

    async def _skipped(self, model: str) -> Attempt:
        wait = (await self.breaker.open_circuits()).get(model, 0.0)
        return Attempt(
            model=model,
            error=f"skipped: circuit open after repeated failures (retried in {wait:.0f} s)",
            kind="circuit_open",
        )

    async def _failed(self, attempt: Attempt, exc: Exception, started: float) -> None:
        attempt.kind, attempt.status_code = classify(exc)
        attempt.error = f"{attempt.kind}: {self.redact(first_line(exc))}"
        attempt.latency_ms = (time.perf_counter() - started) * 1000
        if attempt.kind not in _NOT_THE_MODELS_FAULT:
            await self.breaker.failure(attempt.model)

    async def _first_success(
        self,
        chain: list[str],
        params: dict[str, Any],
        call: Callable[[str, list[str]], Awaitable[T]],
    ) -> tuple[str, T, list[Attempt]]:
        """Run `call(model, dropped)` down the chain until one succeeds; AllAttemptsFailed if none
        does. `dropped`: the parameters the model does not take, left out of its call.

        Raises UnsendableRequest, before any model is tried, for a request no provider could take.
        """
        check_sendable(params)
        check_part_types(params.get("messages"), part_types())
        attempts: list[Attempt] = []
        respect_breakers = await self._any_usable(chain)
        for model in chain:
            # Asked only when the model's turn comes: a half-open model's one trial is claimed
            # by the request that really calls it.
            if respect_breakers and not await self.breaker.allows(model):
                attempts.append(await self._skipped(model))
                continue
            dropped = dropped_params(model, params)
            attempt = Attempt(model=model, dropped_params=dropped or None)
            attempts.append(attempt)
            started = time.perf_counter()
            try:
                result = await call(model, dropped)
            except Exception as exc:
                await self._failed(attempt, exc, started)
                continue
            await self.breaker.success(model)
            attempt.latency_ms = (time.perf_counter() - started) * 1000
            return model, result, attempts
        raise AllAttemptsFailed(attempts)

    def _sent(self, model: str, params: dict[str, Any], dropped: list[str]) -> dict[str, Any]:
        # What the model does not take is left out here, not only by litellm's drop_params: a
        # parameter litellm does not know yet (say `moderation`) would otherwise reach any
        # provider as an extra body field. Either way it is listed in `router.dropped_params`.
        if dropped:
            return {key: value for key, value in params.items() if key not in dropped}
        return params

    async def complete(
        self, chain: list[str], params: dict[str, Any], timeout_s: float
    ) -> Completed:
        async def call(model: str, dropped: list[str]) -> Reply:
            sent = self._sent(model, params, dropped)
            return await self.transports.for_model(model).complete(model, sent, timeout_s)

        model, reply, attempts = await self._first_success(chain, params, call)
        return Completed(
            model=model,
            response=reply.response,
            prompt_tokens=reply.prompt_tokens,
            completion_tokens=reply.completion_tokens,
            attempts=attempts,
            latency_ms=attempts[-1].latency_ms,
        )

    async def stream(
        self, chain: list[str], params: dict[str, Any], timeout_s: float
    ) -> StreamStarted:
        """Open a stream on the first model that sends a first chunk; later models are not tried."""
        stream_params = {**params, "stream": True}
        options = dict(stream_params.get("stream_options") or {})
        options["include_usage"] = True  # needed to price the answer; stripped for the client later
        stream_params["stream_options"] = options

        async def call(model: str, dropped: list[str]) -> OpenedStream:
            sent = self._sent(model, stream_params, dropped)
            return await self.transports.for_model(model).stream(model, sent, timeout_s)

        model, opened, attempts = await self._first_success(chain, params, call)
        return StreamStarted(
            model=model,
            first_chunk=opened.first_chunk,
            chunks=opened.chunks,
            attempts=attempts,
            first_chunk_ms=attempts[-1].latency_ms,
            close=opened.close,
        )
