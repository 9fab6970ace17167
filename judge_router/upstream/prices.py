"""Prices every configured model at start-up and quotes USD for a usage (litellm is the authority)."""

from __future__ import annotations

from judge_router.accounting.prices import Price, flat_limits, thresholds
from judge_router.config import ConfigError, ModelEntry, Settings
from judge_router.upstream.litellm_runtime import load_litellm


def _exact_cost(model: str, flat: Price, prompt_tokens: int, completion_tokens: int) -> float:
    """litellm's price for this usage (long-context tiers included); the flat price if it has none."""
    try:
        prompt_cost, completion_cost = load_litellm().cost_per_token(
            model=model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
        )
    except Exception:  # a model litellm cannot price by tokens: the flat price resolved at start-up
        return flat.flat(prompt_tokens, completion_tokens)
    return float(prompt_cost + completion_cost)


def resolve_price(entry: ModelEntry) -> Price:
    """The entry's price from its config override, else litellm's map; ConfigError if neither."""
    params = entry.litellm_params
    if params.input_cost_per_token is not None or params.output_cost_per_token is not None:
        if params.input_cost_per_token is None or params.output_cost_per_token is None:
            raise ConfigError(
                f"{entry.model}: set both input_cost_per_token and output_cost_per_token"
            )
        return Price(params.input_cost_per_token, params.output_cost_per_token, True)
    try:
        info = load_litellm().get_model_info(entry.model)
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


class Pricer:
    """USD for a usage on any configured model; an unpriced model is a ConfigError at start-up."""

    def __init__(self, settings: Settings):
        self._settings = settings
        self._prices: dict[str, Price] = {}
        unpriced = []
        for entry in settings.priced_models():
            try:
                self._prices[entry.model] = resolve_price(entry)
            except ConfigError as exc:
                unpriced.append(str(exc))
        if unpriced:
            raise ConfigError(
                "models without a known price (costs would be reported as $0):\n  "
                + "\n  ".join(unpriced)
                + "\nadd litellm_params.input_cost_per_token and output_cost_per_token to each"
            )

    def price(self, model: str) -> Price:
        if model not in self._prices:
            self._prices[model] = resolve_price(self._settings.model_entry(model))
        return self._prices[model]

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> float:
        """USD for this usage on `model`: litellm's own pricing (tiers included) unless overridden.

        Where start-up checks showed the flat price equals litellm's (see accounting/prices.py), it
        is used as is: asking litellm costs ~0.25 ms, and a proxied request needs four prices.
        """
        price = self.price(model)
        if price.is_flat_for(prompt_tokens, completion_tokens):
            return price.flat(prompt_tokens, completion_tokens)
        return _exact_cost(model, price, prompt_tokens, completion_tokens)
