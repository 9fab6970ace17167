"""What a caller asks of the router: the conversation, and any tier or model it named."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from judge_router.types import TIER_ORDER, Tier

AUTO = "auto"


class UnknownModel(ValueError):
    """The request named a model that is not configured; the message lists those that are."""

    def __init__(self, model: str, accepted: list[str]):
        super().__init__(
            f"model {model!r} is not configured; use one of {accepted} (see GET /v1/models)"
        )


class UnknownTier(ValueError):
    """`auto:TIER` with a tier that does not exist."""


@dataclass(frozen=True, slots=True)
class RoutingRequest:
    """One request to decide. `model` is the OpenAI `model` field: absent or "auto" routes,
    "auto:TIER" forces that tier, a configured model's name passes through unrouted."""

    messages: Sequence[dict[str, Any]]
    endpoint: str = "route"  # route | complete | chat | cli | eval: recorded in the ledger
    model: str | None = None
    tier: Tier | None = None
    metadata: dict[str, Any] | None = None
    api_key_id: str | None = None  # which service key asked (its id, never the secret)
    strategy: str | None = None  # the body's `strategy`: direct or cascade, over rules and config


@dataclass(slots=True)
class ModelNames:
    """The configured models by the names clients may use: each one's `model_name` (its alias)
    if it has one, else its litellm name; the litellm name is accepted too."""

    listed: list[str] = field(default_factory=list)  # as GET /v1/models shows them
    litellm_model: dict[str, str] = field(default_factory=dict)  # any accepted name -> litellm's

    @classmethod
    def of(cls, entries: Iterable[tuple[str, str]]) -> ModelNames:
        """From (client name, litellm name) pairs, in config order."""
        names = cls()
        for name, model in entries:
            if name not in names.litellm_model:
                names.listed.append(name)
            names.litellm_model.setdefault(name, model)
            names.litellm_model.setdefault(model, model)
        return names

    def __contains__(self, name: object) -> bool:
        return name in self.litellm_model


def model_names(configured: Sequence[str]) -> list[str]:
    """Every `model` value a request may name: auto, auto:TIER, then the configured models."""
    return [AUTO, *(f"{AUTO}:{tier.value}" for tier in TIER_ORDER), *configured]


def explicit_choice(
    request: RoutingRequest, configured: ModelNames
) -> tuple[Tier | None, str | None]:
    """(forced tier, passthrough litellm model) from the request; raises UnknownModel or
    UnknownTier."""
    model = request.model
    if model is None or model == AUTO:
        return request.tier, None
    if model.startswith(f"{AUTO}:"):
        wanted = model.removeprefix(f"{AUTO}:")
        if wanted not in {t.value for t in TIER_ORDER}:
            raise UnknownTier(
                f"model {model!r}: unknown tier; use auto:low, auto:medium or auto:high"
            )
        return request.tier or Tier(wanted), None
    if model in configured:
        return None, configured.litellm_model[model]
    raise UnknownModel(model, model_names(configured.listed))
