"""litellm, loaded once on first use with the settings this service needs (the only import of it).

Loading it is a start-up step, not an import side effect: `load_litellm()` sets
LITELLM_LOCAL_MODEL_COST_MAP (unless the environment already chose) so the price map comes from the
package, not the network, and sets two litellm globals: no debug banners, and httpx (not aiohttp)
for every provider, which is the one transport respx can fake. Its log records go through the
host's logging configuration (one line each, in its format), not a handler of litellm's own.

A command that may call no model (`route`, `simulate`) calls `defer_loading()` first: from then on
`load_litellm()` hands out a stand-in that imports litellm at its first use, so building an engine
costs nothing until a model is really called.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
from typing import Any

from judge_router.config import ModelEntry
from judge_router.upstream import bundled_map

COST_MAP_ENV = bundled_map.COST_MAP_ENV
LITELLM_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy")
_deferred = False


@functools.cache
def _import_litellm() -> Any:
    os.environ.setdefault(COST_MAP_ENV, "True")
    litellm: Any = importlib.import_module("litellm")
    litellm.suppress_debug_info = True
    litellm.disable_aiohttp_transport = True
    # litellm gives its loggers a handler of its own that also propagates: every record printed
    # twice once the host logs too, and never in the host's format (JSON). Let the host print it.
    for name in LITELLM_LOGGERS:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
    return litellm


class _LitellmOnFirstUse:
    """Stands in for the litellm module until an attribute is first read or set."""

    def __getattr__(self, name: str) -> Any:
        return getattr(_import_litellm(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(_import_litellm(), name, value)


def defer_loading() -> None:
    """Make later `load_litellm()` calls import litellm only when it is first used."""
    global _deferred
    _deferred = True


def deferred() -> bool:
    """Whether litellm is still to be imported at its first use (see defer_loading)."""
    return _deferred and not is_loaded()


def is_loaded() -> bool:
    return _import_litellm.cache_info().currsize > 0


def load_now() -> None:
    """Import litellm now even after defer_loading() (a model is about to be called)."""
    _import_litellm()


def load_litellm() -> Any:
    """The litellm module, configured; its import takes 4-5 s, so only the first call pays."""
    if _deferred and not is_loaded():
        return _LitellmOnFirstUse()
    return _import_litellm()


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
    if not is_loaded():  # the common providers need no 4-5 s import to answer this
        known = bundled_map.missing_keys(entry)
        if known is not None:
            return known
    try:
        check = load_litellm().validate_environment(entry.model)
    except Exception:
        return []
    if check.get("keys_in_environment"):
        return []
    names = [str(name) for name in check.get("missing_keys", [])]
    return [" or ".join(names)] if names else []
