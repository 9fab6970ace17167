"""Which models the direct transport carries, and where their requests go: decided once per model.

A model qualifies when litellm would send its requests through OpenAI's own chat configuration
unchanged: provider `openai` (OpenAI's models, and `openai/NAME` with the `api_base` of any
OpenAI-compatible server), litellm's plain `OpenAIGPTConfig` for it (or its unknown-model
variant; not the o-series, GPT-5 or audio configurations, which rewrite parameters), a chat model,
an API key, and no litellm_params beyond the ones below. Anything else stays with litellm.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from typing import Any

from judge_router.config import ModelEntry

DEFAULT_API_BASE = "https://api.openai.com/v1"
# litellm_params the direct path reproduces; any other is litellm's to interpret.
UNDERSTOOD = frozenset(
    {"api_base", "api_key", "input_cost_per_token", "output_cost_per_token", "timeout"}
)


@dataclass(frozen=True, slots=True)
class DirectTarget:
    """Where one model's requests go, and as what."""

    url: str  # .../chat/completions
    model: str  # the name the provider is sent (litellm's, without the `openai/` prefix)
    headers: dict[str, str] = field(repr=False)  # the API key: never in a log line
    timeout_s: float | None  # litellm_params.timeout, which overrides routing.upstream_timeout_s
    api_base: str  # as litellm reports it in its errors


def _env(*names: str) -> str | None:
    for name in names:
        if os.environ.get(name):
            return os.environ[name]
    return None


def _chat_config_is_plain(model: str, litellm: Any) -> bool:
    utils = importlib.import_module("litellm.utils")
    providers = importlib.import_module("litellm.types.utils").LlmProviders
    config = utils.ProviderConfigManager.get_provider_chat_config(
        model=model, provider=providers.OPENAI
    )
    gpt = importlib.import_module("litellm.llms.openai.chat.gpt_transformation")
    # The unknown-model configuration only adds reasoning_effort to what the model takes.
    return type(config) in (gpt.OpenAIGPTConfig, gpt.OpenAIUnknownModelConfig)


def _mode(model: str, litellm: Any) -> str | None:
    try:
        mode = litellm.get_model_info(model).get("mode")
    except Exception:  # not in the map: a deployment of one's own
        return None
    return str(mode) if mode else None


def plan(entry: ModelEntry, litellm: Any) -> DirectTarget | str:
    """The model's direct target, or the reason litellm must carry it (said at start-up)."""
    params = entry.litellm_params
    others = sorted(set(params.model_extra or {}) - UNDERSTOOD)
    if others:
        return f"litellm_params {others} are litellm's to interpret"
    timeout = (params.model_extra or {}).get("timeout")
    if timeout is not None and not isinstance(timeout, int | float):
        return "litellm_params.timeout is not a number of seconds"
    try:
        sent, provider, _, _ = litellm.get_llm_provider(model=entry.model, api_base=params.api_base)
    except Exception:
        return "litellm does not know its provider"
    if provider != "openai":
        return f"its provider is {provider!r}, not 'openai' (OpenAI's chat API)"
    if not _chat_config_is_plain(sent, litellm):
        return f"litellm rewrites requests to {sent!r} (its own parameter mapping)"
    mode = _mode(entry.model, litellm)
    if mode not in (None, "chat"):
        return f"litellm's map lists {entry.model!r} as a {mode!r} model, not a chat model"
    api_key = params.api_key or _env("OPENAI_API_KEY")
    if not api_key:
        return "no api_key (litellm_params.api_key or OPENAI_API_KEY)"
    base = params.api_base or _env("OPENAI_BASE_URL", "OPENAI_API_BASE") or DEFAULT_API_BASE
    headers = {"Authorization": f"Bearer {api_key}"}
    # The OpenAI SDK litellm uses reads these itself.
    organization = _env("OPENAI_ORGANIZATION", "OPENAI_ORG_ID")
    if organization:
        headers["OpenAI-Organization"] = organization
    project = _env("OPENAI_PROJECT_ID")
    if project:
        headers["OpenAI-Project"] = project
    return DirectTarget(
        url=base.rstrip("/") + "/chat/completions",
        model=sent,
        headers=headers,
        timeout_s=timeout,  # as configured: litellm's timeout errors print it so
        api_base=base,
    )
