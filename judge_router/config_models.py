"""LiteLLM-style `model_list` and model names in the config, expanded into our model entries.

A LiteLLM proxy config names each deployment once (`model_name` + `litellm_params.model`); tiers, the
judge and the baseline may then name those `model_name`s. Expanding happens on the raw config, before
validation, so every later check (prices, credentials) sees ordinary model entries.
"""

from __future__ import annotations

from typing import Any

# Sections of a LiteLLM proxy config that have no meaning here.
LITELLM_ONLY_SECTIONS = ("router_settings", "litellm_settings", "general_settings")


def expand_model_names(data: Any) -> Any:
    """The raw config with `model_list` names (and bare model strings) in tiers resolved."""
    if not isinstance(data, dict):
        return data
    _refuse_litellm_sections(data)
    listed = _listed_models(data.get("model_list"))
    if listed and "tiers" not in data:
        raise ValueError(
            "model_list is given but tiers is not: name its model_names per tier, e.g. "
            f"tiers: {{low: [{next(iter(listed))}], medium: [...], high: [...]}}"
        )
    data = dict(data)
    if isinstance(data.get("tiers"), dict):
        data["tiers"] = {
            tier: _entries(str(tier), entries, listed) if isinstance(entries, list) else entries
            for tier, entries in data["tiers"].items()
        }
    if listed:
        _resolve_judge(data, listed)
        _resolve_baseline(data, listed)
    return data


def _refuse_litellm_sections(data: dict[str, Any]) -> None:
    found = [key for key in LITELLM_ONLY_SECTIONS if key in data]
    if found:
        raise ValueError(
            f"{', '.join(found)}: LiteLLM proxy settings that judge-router does not use. Keep "
            "model_list, name its model_names in tiers (low, medium, high), set judge.model and "
            "baseline, and remove these sections (docs/configuration.md shows a full example)"
        )


def _listed_models(model_list: Any) -> dict[str, dict[str, Any]]:
    """model_name -> an entry {model, model_name, litellm_params}; raises ValueError on a bad one."""
    if model_list is None:
        return {}
    if not isinstance(model_list, list):
        raise ValueError("model_list must be a list of {model_name, litellm_params: {model, ...}}")
    listed: dict[str, dict[str, Any]] = {}
    for index, item in enumerate(model_list):
        where = f"model_list[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("model_name"), str):
            raise ValueError(f"{where}: needs model_name (the name clients and tiers use)")
        params = item.get("litellm_params")
        if not isinstance(params, dict) or not isinstance(params.get("model"), str):
            raise ValueError(f"{where}: needs litellm_params.model (the litellm model name)")
        unknown = sorted(set(item) - {"model_name", "litellm_params", "model_info"})
        if unknown:
            raise ValueError(f"{where}: unknown keys {unknown}")
        name = item["model_name"]
        if name in listed:
            raise ValueError(f"{where}: model_name {name!r} is listed twice")
        rest = {key: value for key, value in params.items() if key != "model"}
        listed[name] = {"model": params["model"], "model_name": name, "litellm_params": rest}
    return listed


def _entries(tier: str, entries: list[Any], listed: dict[str, dict[str, Any]]) -> list[Any]:
    resolved = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, str):
            resolved.append(entry)
        elif entry in listed:
            resolved.append(listed[entry])
        elif listed:
            raise ValueError(
                f"tiers.{tier}[{index}]: {entry!r} is not a model_name of model_list; "
                f"known: {sorted(listed)}"
            )
        else:  # a bare litellm model name, priced from litellm's map
            resolved.append({"model": entry})
    return resolved


def _resolve_judge(data: dict[str, Any], listed: dict[str, dict[str, Any]]) -> None:
    judge = data.get("judge")
    if isinstance(judge, dict) and judge.get("model") in listed:
        found = listed[judge["model"]]
        own = judge.get("litellm_params") or {}
        data["judge"] = {
            **judge,
            "model": found["model"],
            "litellm_params": {**found["litellm_params"], **own},  # the judge's own keys win
        }


def _resolve_baseline(data: dict[str, Any], listed: dict[str, dict[str, Any]]) -> None:
    baseline = data.get("baseline")
    if baseline in listed:
        found = listed[str(baseline)]
        data["baseline"] = found["model"]
        data.setdefault("baseline_litellm_params", found["litellm_params"])
