"""Every litellm call the service makes (judge and proxied requests), and every price it quotes."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

# Use litellm's bundled price map: fetching it at import needs the network and retries noisily.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm  # noqa: E402  (must follow the environment set-up above)

from judge_router.config import ConfigError, ModelEntry, Settings  # noqa: E402

litellm.suppress_debug_info = True
# httpx for every provider (not aiohttp): one transport to reason about, and the one respx can fake.
litellm.disable_aiohttp_transport = True


class UpstreamError(Exception):
    """A provider call failed: transport error, timeout, HTTP error or unusable answer."""

    def __init__(self, model: str, kind: str, message: str, status_code: int | None = None):
        super().__init__(f"{model}: {kind}: {message}")
        self.model = model
        self.kind = kind
        self.message = message
        self.status_code = status_code


@dataclass(frozen=True, slots=True)
class Price:
    """USD per token, from litellm's map or the config's override."""

    input_per_token: float
    output_per_token: float
    from_config: bool


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


class Completions:
    """Prices and calls models by their litellm names, with each model's configured parameters."""

    def __init__(self, settings: Settings):
        self._settings = settings
        self._prices: dict[str, Price] = {}
        unpriced = []
        for entry in settings.priced_models():
            try:
                self._prices[entry.model] = self._resolve_price(entry)
            except ConfigError as exc:
                unpriced.append(str(exc))
        if unpriced:
            raise ConfigError(
                "models without a known price (costs would be reported as $0):\n  "
                + "\n  ".join(unpriced)
                + "\nadd litellm_params.input_cost_per_token and output_cost_per_token to each"
            )

    @staticmethod
    def _resolve_price(entry: ModelEntry) -> Price:
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
        return Price(float(input_cost), float(output_cost), False)

    def price(self, model: str) -> Price:
        if model not in self._prices:
            self._prices[model] = self._resolve_price(self._settings.model_entry(model))
        return self._prices[model]

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> float:
        """USD for this usage on `model`: litellm's own pricing (tiers included) unless overridden."""
        price = self.price(model)
        if not price.from_config:
            try:
                prompt_cost, completion_cost = litellm.cost_per_token(
                    model=model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
                )
                return float(prompt_cost + completion_cost)
            except Exception:  # noqa: S110 - fall back to the flat price resolved at startup
                pass
        return prompt_tokens * price.input_per_token + completion_tokens * price.output_per_token

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
            raise UpstreamError(entry.model, kind, str(exc).splitlines()[0][:300], status) from exc
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
