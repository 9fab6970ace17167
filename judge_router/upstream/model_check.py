"""Start-up check of every configured model name: litellm can route it, and it has a price.

Without it a misspelt model (`gpt-5-nanoo`) starts: litellm prices it at $0, and every call to it
fails at request time (the judge's silently, as a heuristic fallback). The check asks litellm the
way a call would (`get_llm_provider` with the entry's api_base and custom_llm_provider) and names
the closest names litellm knows.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from judge_router.config import ConfigError, ModelEntry, Settings
from judge_router.upstream.direct_target import plan
from judge_router.upstream.litellm_runtime import load_litellm

MAX_SUGGESTIONS = 3


@dataclass(frozen=True, slots=True)
class Configured:
    where: str  # the config key of the entry, e.g. "tiers.low[0]"
    prices_key: str  # where its prices would go, e.g. "tiers.low[0].litellm_params"
    entry: ModelEntry
    called: bool  # False for a baseline that is only priced


def configured_models(settings: Settings) -> Iterator[Configured]:
    for tier, entries in settings.tiers.items():
        for index, entry in enumerate(entries):
            where = f"tiers.{tier.value}[{index}]"
            yield Configured(where, f"{where}.litellm_params", entry, called=True)
    if not settings.judge.is_heuristic:
        yield Configured("judge", "judge.litellm_params", settings.judge.entry, called=True)
    named = {entry.model for entries in settings.tiers.values() for entry in entries}
    if settings.baseline not in named and settings.baseline != settings.judge.model:
        entry = settings.model_entry(settings.baseline)
        yield Configured("baseline", "baseline_litellm_params", entry, called=False)


def closest_names(model: str, litellm: Any) -> list[str]:
    """The names litellm knows that look most like `model` (a misspelt provider prefix first)."""
    known = [name for name in litellm.model_cost if name != "sample_spec"]
    providers = [str(getattr(p, "value", p)) for p in litellm.provider_list]
    prefix, slash, rest = model.partition("/")
    if slash and prefix in providers:
        # litellm reads "provider/name" as that provider's `name`: compare with its models only.
        own = {
            name.removeprefix(f"{prefix}/"): name
            if name.startswith(f"{prefix}/")
            else f"{prefix}/{name}"
            for name in known
            if litellm.model_cost[name].get("litellm_provider") == prefix
        }
        matches = difflib.get_close_matches(rest, own, n=MAX_SUGGESTIONS, cutoff=0.6)
        return [own[match] for match in matches]
    close = difflib.get_close_matches(model, known, n=MAX_SUGGESTIONS, cutoff=0.6)
    if slash:  # an unknown provider prefix: the likeliest provider, with the same model
        for provider in difflib.get_close_matches(prefix, providers, n=1, cutoff=0.6):
            close = [
                f"{provider}/{rest}",
                *(name for name in close if name != f"{provider}/{rest}"),
            ]
    return close[:MAX_SUGGESTIONS]


def _provider(entry: ModelEntry, litellm: Any) -> str | None:
    extra = entry.litellm_params.model_extra or {}
    try:
        _, provider, _, _ = litellm.get_llm_provider(
            model=entry.model,
            custom_llm_provider=extra.get("custom_llm_provider"),
            api_base=entry.litellm_params.api_base,
        )
    except Exception:
        return None
    return str(provider) if provider else None


def _in_price_map(model: str, litellm: Any) -> bool:
    try:
        info = litellm.get_model_info(model)
    except Exception:
        return False
    # A name litellm does not know can come back as a blank entry priced at $0 (e.g. for
    # openai/gpt-5-nanoo, with the provider filled in): only an entry of the map is a price.
    return info.get("key") in litellm.model_cost and None not in (
        info.get("input_cost_per_token"),
        info.get("output_cost_per_token"),
    )


def _suggest(model: str, litellm: Any) -> str:
    names = closest_names(model, litellm)
    return f" (closest known names: {', '.join(names)})" if names else ""


def problems(settings: Settings) -> list[str]:
    """One line per model litellm cannot route or price, naming the config key and the fix."""
    litellm = load_litellm()
    found = []
    for item in configured_models(settings):
        model = item.entry.model
        params = item.entry.litellm_params
        if item.called and _provider(item.entry, litellm) is None:
            found.append(
                f"{item.where}.model: litellm does not know which provider serves {model!r}"
                f"{_suggest(model, litellm)}. Fix the name, or for an OpenAI-compatible server "
                f"write openai/NAME and set {item.prices_key}.api_base"
            )
            continue
        if item.called and params.transport == "direct":
            why = plan(item.entry, litellm)
            if isinstance(why, str):
                found.append(
                    f"{item.prices_key}.transport: direct, but {why}; use auto (direct when it "
                    "qualifies) or litellm"
                )
        priced = params.input_cost_per_token is not None or params.output_cost_per_token is not None
        if not priced and not _in_price_map(model, litellm):
            # A deployment of one's own (api_base) is expected to be missing: no look-alikes.
            hint = "" if params.api_base else _suggest(model, litellm)
            fix = "fix the name, or price it: set" if hint else "set"
            found.append(
                f"{item.where}: {model!r} is not in litellm's price map{hint}; {fix} "
                f"{item.prices_key}.input_cost_per_token and output_cost_per_token"
            )
    return found


def check_models(settings: Settings) -> None:
    """Raise ConfigError naming every model litellm cannot route or price."""
    found = problems(settings)
    if found:
        raise ConfigError("models litellm cannot use as configured:\n  " + "\n  ".join(found))
