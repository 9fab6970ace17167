"""litellm's bundled price map read as a file, so commands that call no model need not import litellm.

Importing litellm takes 4-5 s. `route` and `simulate` only need a few models' per-token prices (and,
for `route`, whether the judge has its credentials), which the JSON file litellm ships answers.
Only the cases where that answer is provably litellm's own are served here (a test compares them
with litellm); anything else returns None and the caller asks litellm.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
from pathlib import Path
from typing import Any

from judge_router.accounting.prices import thresholds
from judge_router.config import ModelEntry, Settings

MAP_FILE = "model_prices_and_context_window_backup.json"
COST_MAP_ENV = "LITELLM_LOCAL_MODEL_COST_MAP"
# Providers whose map entries litellm prices per token (below any long-context tier) and whose
# credentials are one environment variable; tests/test_startup_checks.py holds litellm to both.
PROVIDER_KEYS: dict[str, tuple[str, ...]] = {
    "openai": ("OPENAI_API_KEY",),
    "anthropic": ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"),
    "gemini": ("GOOGLE_API_KEY", "GEMINI_API_KEY"),
    "mistral": ("MISTRAL_API_KEY",),
    "groq": ("GROQ_API_KEY",),
    "xai": ("XAI_API_KEY",),
}
TEXT_MODES = frozenset({"chat", "completion", "responses"})


def map_path() -> Path | None:
    """The bundled map litellm will use, or None if litellm would fetch another (or is absent)."""
    if os.environ.get(COST_MAP_ENV, "True").lower() != "true":
        return None  # load_litellm() keeps the user's choice: a remote map may differ from ours
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / MAP_FILE
    return path if path.is_file() else None


@functools.cache
def _entries(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_bytes())
    return loaded


def entry(model: str) -> dict[str, Any] | None:
    """The map's entry for `model` when it is one this module can answer for, else None."""
    path = map_path()
    if path is None:
        return None
    found = _entries(path).get(model)
    if not isinstance(found, dict) or found.get("litellm_provider") not in PROVIDER_KEYS:
        return None
    if found.get("mode") not in TEXT_MODES or ":" in model:  # fine-tunes: litellm resolves them
        return None
    if "/" not in model and found["litellm_provider"] not in ("openai", "anthropic"):
        return None  # litellm finds bare names of these two providers only (gemini needs gemini/)
    prices = (found.get("input_cost_per_token"), found.get("output_cost_per_token"))
    return found if all(isinstance(p, int | float) for p in prices) else None


def flat_price(model: str, prompt_tokens: int) -> tuple[float, float] | None:
    """(input, output) USD per token, if that is litellm's price for a prompt of this size."""
    found = entry(model)
    if found is None:
        return None
    tiers = thresholds(found)
    if tiers and prompt_tokens >= min(tiers):
        return None  # a long-context tier applies: litellm's arithmetic, not ours
    return float(found["input_cost_per_token"]), float(found["output_cost_per_token"])


def missing_keys(model_entry: ModelEntry) -> list[str] | None:
    """What litellm.validate_environment would say is missing for the entry, or None if unknown."""
    params = model_entry.litellm_params
    if params.api_base or (params.model_extra or {}).get("custom_llm_provider"):
        return None
    found = entry(model_entry.model)
    if found is None:
        return None
    names = PROVIDER_KEYS[found["litellm_provider"]]
    if any(name in os.environ for name in names):
        return []
    shown = [name for name in names if name != "ANTHROPIC_AUTH_TOKEN"]  # as litellm names them
    return [" or ".join(shown)]


def with_bundled_prices(settings: Settings, prompt_tokens: int) -> Settings | None:
    """`settings` with every unpriced model priced from the bundled map in its litellm_params, so
    pricing needs no litellm; None if some model is not one this module can price."""
    priced: dict[str, tuple[float, float]] = {}
    for model_entry in settings.priced_models():
        params = model_entry.litellm_params
        if params.input_cost_per_token is not None or params.output_cost_per_token is not None:
            continue
        price = flat_price(model_entry.model, prompt_tokens)
        if price is None:
            return None
        priced[model_entry.model] = price

    def filled(model_entry: ModelEntry) -> ModelEntry:
        price = priced.get(model_entry.model)
        params = model_entry.litellm_params
        if price is None or params.input_cost_per_token is not None:
            return model_entry
        update = {"input_cost_per_token": price[0], "output_cost_per_token": price[1]}
        return model_entry.model_copy(update={"litellm_params": params.model_copy(update=update)})

    tiers = {tier: [filled(e) for e in entries] for tier, entries in settings.tiers.items()}
    judge = filled(settings.judge.entry)
    baseline_params = settings.baseline_litellm_params
    if settings.baseline in priced and baseline_params.input_cost_per_token is None:
        input_cost, output_cost = priced[settings.baseline]
        baseline_params = baseline_params.model_copy(
            update={"input_cost_per_token": input_cost, "output_cost_per_token": output_cost}
        )
    return settings.model_copy(
        update={
            "tiers": tiers,
            "judge": settings.judge.model_copy(update={"litellm_params": judge.litellm_params}),
            "baseline_litellm_params": baseline_params,
        }
    )
