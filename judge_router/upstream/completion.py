"""Every litellm call the service makes (judge and proxied requests), and every price it quotes."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

# Use litellm's bundled price map: fetching it at import needs the network and retries noisily.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm  # noqa: E402  (must follow the environment set-up above)

from judge_router.accounting.prices import Price, flat_limits, thresholds  # noqa: E402
from judge_router.config import ConfigError, ModelEntry, Settings  # noqa: E402
from judge_router.upstream.breaker import CircuitBreaker  # noqa: E402
from judge_router.upstream.redact import Redactor  # noqa: E402

litellm.suppress_debug_info = True
# httpx for every provider (not aiohttp): one transport to reason about, and the one respx can fake.
litellm.disable_aiohttp_transport = True

T = TypeVar("T")


class UpstreamError(Exception):
    """A provider call failed: transport error, timeout, HTTP error or unusable answer."""

    def __init__(self, model: str, kind: str, message: str, status_code: int | None = None):
        super().__init__(f"{model}: {kind}: {message}")
        self.model = model
        self.kind = kind
        self.message = message
        self.status_code = status_code


@dataclass(frozen=True, slots=True)
class JudgeReply:
    content: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    latency_ms: float


def _classify(exc: Exception) -> tuple[str, int | None]:
    status = getattr(exc, "status_code", None)
    if isinstance(exc, litellm.exceptions.Timeout):
        return "timeout", status
    if isinstance(exc, litellm.exceptions.RateLimitError):
        return "rate_limit", status
    if isinstance(exc, litellm.exceptions.AuthenticationError):
        return "authentication", status
    if isinstance(exc, litellm.exceptions.BadRequestError):
        return "bad_request", status
    if isinstance(exc, litellm.exceptions.APIConnectionError):
        return "connection", status
    return "provider_error", status


# Fields of an OpenAI chat request that are about the call itself, never dropped or reported.
_ALWAYS_SENT = frozenset({"messages", "stream", "stream_options"})


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
    """A stream whose first chunk has arrived: the model is settled, no more fallback."""

    model: str
    first_chunk: dict[str, Any]
    chunks: AsyncIterator[dict[str, Any]]
    attempts: list[Attempt]
    first_chunk_ms: float


@functools.lru_cache(maxsize=1024)
def _supported_params(model: str) -> frozenset[str] | None:
    # litellm works this out afresh on every call (~0.3 ms); a model's answer never changes.
    try:
        supported = litellm.get_supported_openai_params(model=model)
    except Exception:
        return None
    return frozenset(supported) if supported else None


def dropped_params(model: str, params: dict[str, Any]) -> list[str]:
    """Request parameters litellm will drop for `model` because its provider does not take them."""
    supported = _supported_params(model)
    if supported is None:
        return []
    return sorted(key for key in params if key not in _ALWAYS_SENT and key not in supported)


# Failures that say nothing about the model's health (the request itself was refused).
_NOT_THE_MODELS_FAULT = frozenset({"bad_request"})


class Proxying:
    """Tries a chain of models in order; the first that answers wins (mixed into Completions)."""

    _settings: Settings
    _kwargs_by_model: dict[str, dict[str, Any]]
    breaker: CircuitBreaker
    redact: Redactor

    def _usable(self, chain: list[str]) -> list[tuple[str, bool]]:
        """(model, skip?) for the chain; when every circuit is open, try them all anyway."""
        allowed = [self.breaker.allows(model) for model in chain]
        if not any(allowed):
            return [(model, False) for model in chain]
        return [(model, not ok) for model, ok in zip(chain, allowed, strict=True)]

    def _skipped(self, model: str) -> Attempt:
        wait = self.breaker.open_circuits().get(model, 0.0)
        return Attempt(
            model=model,
            error=f"skipped: circuit open after repeated failures (retried in {wait:.0f} s)",
            kind="circuit_open",
        )

    def _failed(self, attempt: Attempt, exc: Exception, started: float) -> None:
        _note_failure(attempt, exc, started, self.redact)
        if attempt.kind not in _NOT_THE_MODELS_FAULT:
            self.breaker.failure(attempt.model)

    def _call_kwargs(self, model: str, params: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        return {
            "timeout": timeout_s,
            "num_retries": 0,  # the chain is the retry policy; hidden retries would hide latency
            "drop_params": True,
            **params,
            "model": model,
            **self._model_kwargs(model),
        }

    def _model_kwargs(self, model: str) -> dict[str, Any]:
        """A model's configured litellm keyword arguments (built once: settings do not change)."""
        kwargs = self._kwargs_by_model.get(model)
        if kwargs is None:
            entry = self._settings.model_entry(model)
            kwargs = self._kwargs_by_model[model] = entry.litellm_params.call_kwargs()
        return kwargs

    async def _first_success(
        self, chain: list[str], params: dict[str, Any], call: Callable[[str], Awaitable[T]]
    ) -> tuple[str, T, list[Attempt]]:
        """Run `call(model)` down the chain until one succeeds; AllAttemptsFailed if none does."""
        attempts: list[Attempt] = []
        for model, skip in self._usable(chain):
            if skip:
                attempts.append(self._skipped(model))
                continue
            attempt = Attempt(model=model, dropped_params=dropped_params(model, params) or None)
            attempts.append(attempt)
            started = time.perf_counter()
            try:
                result = await call(model)
            except Exception as exc:
                self._failed(attempt, exc, started)
                continue
            self.breaker.success(model)
            attempt.latency_ms = (time.perf_counter() - started) * 1000
            return model, result, attempts
        raise AllAttemptsFailed(attempts)

    async def complete(
        self, chain: list[str], params: dict[str, Any], timeout_s: float
    ) -> Completed:
        async def call(model: str) -> Any:
            return await litellm.acompletion(**self._call_kwargs(model, params, timeout_s))

        model, response, attempts = await self._first_success(chain, params, call)
        usage = getattr(response, "usage", None)
        return Completed(
            model=model,
            response=response.model_dump(),
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            attempts=attempts,
            latency_ms=attempts[-1].latency_ms,
        )

    async def stream(
        self, chain: list[str], params: dict[str, Any], timeout_s: float
    ) -> StreamStarted:
        """Open a stream on the first model that sends a first chunk (fallback happens only here)."""
        stream_params = {**params, "stream": True}
        options = dict(stream_params.get("stream_options") or {})
        options["include_usage"] = True  # needed to price the answer; stripped for the client below
        stream_params["stream_options"] = options

        async def call(model: str) -> tuple[AsyncIterator[Any], Any]:
            response = await litellm.acompletion(
                **self._call_kwargs(model, stream_params, timeout_s)
            )
            iterator = response.__aiter__()
            try:
                first = await iterator.__anext__()
            except StopAsyncIteration:
                raise RuntimeError("the stream ended before any chunk") from None
            return iterator, first

        model, (iterator, first), attempts = await self._first_success(chain, params, call)
        return StreamStarted(
            model=model,
            first_chunk=first.model_dump(exclude_none=True),
            chunks=_dumped(iterator),
            attempts=attempts,
            first_chunk_ms=attempts[-1].latency_ms,
        )


async def _dumped(iterator: AsyncIterator[Any]) -> AsyncIterator[dict[str, Any]]:
    async for chunk in iterator:
        yield chunk.model_dump(exclude_none=True)


def _note_failure(attempt: Attempt, exc: Exception, started: float, redact: Redactor) -> None:
    kind, status = _classify(exc)
    attempt.kind = kind
    attempt.status_code = status
    detail = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
    attempt.error = f"{kind}: {redact(detail)}"
    attempt.latency_ms = (time.perf_counter() - started) * 1000


def _exact_cost(model: str, flat: Price, prompt_tokens: int, completion_tokens: int) -> float:
    """litellm's price for this usage (long-context tiers included); the flat price if it has none."""
    try:
        prompt_cost, completion_cost = litellm.cost_per_token(
            model=model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
        )
    except Exception:  # a model litellm cannot price by tokens: the flat price resolved at start-up
        return flat.flat(prompt_tokens, completion_tokens)
    return float(prompt_cost + completion_cost)


class Completions(Proxying):
    """Prices and calls models by their litellm names, with each model's configured parameters."""

    def __init__(self, settings: Settings):
        self._settings = settings
        self.redact = Redactor(settings.secrets())
        breaker = settings.routing.circuit_breaker
        self.breaker = CircuitBreaker(breaker.failures, breaker.cooldown_s)
        self._prices: dict[str, Price] = {}
        self._kwargs_by_model = {}
        unpriced = []
        for entry in settings.priced_models():
            try:
                self._prices[entry.model] = self.resolve_price(entry)
            except ConfigError as exc:
                unpriced.append(str(exc))
        if unpriced:
            raise ConfigError(
                "models without a known price (costs would be reported as $0):\n  "
                + "\n  ".join(unpriced)
                + "\nadd litellm_params.input_cost_per_token and output_cost_per_token to each"
            )

    @staticmethod
    def resolve_price(entry: ModelEntry) -> Price:
        params = entry.litellm_params
        if params.input_cost_per_token is not None or params.output_cost_per_token is not None:
            if params.input_cost_per_token is None or params.output_cost_per_token is None:
                raise ConfigError(
                    f"{entry.model}: set both input_cost_per_token and output_cost_per_token"
                )
            return Price(params.input_cost_per_token, params.output_cost_per_token, True)
        try:
            info = litellm.get_model_info(entry.model)
        except Exception:
            raise ConfigError(f"{entry.model}: not in litellm's price map") from None
        input_cost = info.get("input_cost_per_token")
        output_cost = info.get("output_cost_per_token")
        if input_cost is None or output_cost is None:
            raise ConfigError(f"{entry.model}: litellm's price map has no per-token price")
        flat = Price(float(input_cost), float(output_cost), from_config=False)
        return flat_limits(
            flat,
            lambda prompt, completion: _exact_cost(entry.model, flat, prompt, completion),
            thresholds(info),
        )

    def price(self, model: str) -> Price:
        if model not in self._prices:
            self._prices[model] = self.resolve_price(self._settings.model_entry(model))
        return self._prices[model]

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> float:
        """USD for this usage on `model`: litellm's own pricing (tiers included) unless overridden.

        Where start-up checks showed the flat price equals litellm's (see pricing.py), it is used
        as is: asking litellm costs ~0.25 ms, and a proxied request needs four prices.
        """
        price = self.price(model)
        if price.is_flat_for(prompt_tokens, completion_tokens):
            return price.flat(prompt_tokens, completion_tokens)
        return _exact_cost(model, price, prompt_tokens, completion_tokens)

    def missing_credentials(self, entry: ModelEntry) -> list[str]:
        """Environment variables the model needs that are not set (empty when it can be called)."""
        missing = entry.litellm_params.missing_env()
        if missing or entry.litellm_params.api_key:
            return missing
        try:
            check = litellm.validate_environment(entry.model)
        except Exception:
            return []
        if check.get("keys_in_environment"):
            return []
        names = [str(name) for name in check.get("missing_keys", [])]
        return [" or ".join(names)] if names else []

    async def judge_call(
        self,
        entry: ModelEntry,
        messages: list[dict[str, str]],
        response_format: dict[str, Any],
        timeout_s: float,
        max_tokens: int,
    ) -> JudgeReply:
        """One structured-output call for the judge; raises UpstreamError on any failure."""
        started = time.perf_counter()
        try:
            response = await litellm.acompletion(
                model=entry.model,
                messages=messages,
                response_format=response_format,
                timeout=timeout_s,
                max_tokens=max_tokens,
                num_retries=0,
                drop_params=True,
                **entry.litellm_params.call_kwargs(),
            )
        except Exception as exc:
            kind, status = _classify(exc)
            detail = self.redact(str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__)
            raise UpstreamError(entry.model, kind, detail, status) from exc
        latency_ms = (time.perf_counter() - started) * 1000
        try:
            content = response.choices[0].message.content or ""
        except (AttributeError, IndexError):
            raise UpstreamError(
                entry.model, "invalid_response", "no message in the answer"
            ) from None
        usage = getattr(response, "usage", None)
        prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
        return JudgeReply(
            content=content,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost_usd=self.cost(entry.model, prompt_tokens, completion_tokens),
            latency_ms=latency_ms,
        )
