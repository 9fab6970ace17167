"""Which transport carries each model's calls, chosen once per model: `litellm_params.transport`
(`auto`, `direct`, `litellm`) and whether the model qualifies for the direct path."""

from __future__ import annotations

import logging
from typing import Any

from judge_router.config import ConfigError, ModelEntry, Settings
from judge_router.upstream.direct_target import DirectTarget, plan
from judge_router.upstream.direct_transport import DirectTransport
from judge_router.upstream.litellm_runtime import deferred, load_litellm, supported_params
from judge_router.upstream.litellm_transport import LitellmTransport
from judge_router.upstream.transport import Transport

log = logging.getLogger(__name__)


def choose(entry: ModelEntry, litellm: Any) -> DirectTarget | str:
    """The entry's direct target, or why litellm carries it; ConfigError when `transport: direct`
    names a model the direct path cannot carry."""
    wanted = entry.litellm_params.transport
    if wanted == "litellm":
        return "litellm_params.transport is litellm"
    found = plan(entry, litellm)
    if isinstance(found, str) and wanted == "direct":
        raise ConfigError(f"{entry.model}: litellm_params.transport is direct, but {found}")
    return found


class Transports:
    """One litellm transport and one direct transport (one pooled HTTP client) for the process."""

    def __init__(self, settings: Settings):
        self._settings = settings
        self.litellm = LitellmTransport(settings)
        self.direct = DirectTransport(self.litellm)
        self._by_model: dict[str, Transport] = {}
        if not deferred():  # a command that may call no model leaves litellm unloaded
            for entry in settings.called_models():
                self.for_model(entry.model)
                supported_params(entry.model)  # what each model takes, asked once at start-up

    def for_model(self, model: str) -> Transport:
        transport = self._by_model.get(model)
        if transport is None:
            transport = self._by_model[model] = self._choose(model)
        return transport

    def _choose(self, model: str) -> Transport:
        found = choose(self._settings.model_entry(model), load_litellm())
        if isinstance(found, str):
            log.debug("%s: calls go through litellm: %s", model, found)
            return self.litellm
        self.direct.add(model, found)
        return self.direct

    async def aclose(self) -> None:
        await self.direct.aclose()
