"""litellm, loaded once on first use with the settings this service needs (the only import of it).

Loading it is a start-up step, not an import side effect: `load_litellm()` sets
LITELLM_LOCAL_MODEL_COST_MAP (unless the environment already chose) so the price map comes from the
package, not the network, and sets two litellm globals: no debug banners, and httpx (not aiohttp)
for every provider, which is the one transport respx can fake.
"""

from __future__ import annotations

import functools
import importlib
import os
from typing import Any

from judge_router.config import ModelEntry

COST_MAP_ENV = "LITELLM_LOCAL_MODEL_COST_MAP"


@functools.cache
def load_litellm() -> Any:
    """The litellm module, configured; its import takes 4-5 s, so only the first call pays."""
    os.environ.setdefault(COST_MAP_ENV, "True")
    litellm: Any = importlib.import_module("litellm")
    litellm.suppress_debug_info = True
    litellm.disable_aiohttp_transport = True
    return litellm


def classify(exc: Exception) -> tuple[str, int | None]:
    """A provider failure's kind (timeout, rate_limit, bad_request, ...) and HTTP status."""
    errors = load_litellm().exceptions
    status = getattr(exc, "status_code", None)
    for kind, cls in (
        ("timeout", errors.Timeout),
        ("rate_limit", errors.RateLimitError),
        ("authentication", errors.AuthenticationError),
        ("bad_request", errors.BadRequestError),
        ("connection", errors.APIConnectionError),
    ):
        if isinstance(exc, cls):
            return kind, status
    return "provider_error", status


def first_line(exc: Exception) -> str:
    """The first line of an exception's message (at most 300 characters), or its type's name."""
    return str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__


@functools.lru_cache(maxsize=1024)
def supported_params(model: str) -> frozenset[str] | None:
    # litellm works this out afresh on every call (~0.3 ms); a model's answer never changes.
    try:
        supported = load_litellm().get_supported_openai_params(model=model)
    except Exception:
        return None
    return frozenset(supported) if supported else None


def missing_credentials(entry: ModelEntry) -> list[str]:
    """Environment variables the model needs that are not set (empty when it can be called)."""
    missing = entry.litellm_params.missing_env()
    if missing or entry.litellm_params.api_key:
        return missing
    try:
        check = load_litellm().validate_environment(entry.model)
    except Exception:
        return []
    if check.get("keys_in_environment"):
        return []
    names = [str(name) for name in check.get("missing_keys", [])]
    return [" or ".join(names)] if names else []
