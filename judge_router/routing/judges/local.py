"""The local judge: a trained model (local_model.py) rating prompts in about a millisecond, for free.

`judge.mode: local` asks it alone; `hybrid` asks it first and lets it abstain when its confidence
is under `judge.local_threshold`, so the LLM judge rates only the prompts it is unsure of. The
model sits in a `ModelSlot`, so `POST /admin/reload` and SIGHUP swap the file under running
requests: a request reads the slot once and rates with the model it got.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from judge_router.routing.conversation import JudgedView
from judge_router.routing.judges.features import featurize
from judge_router.routing.judges.local_model import LocalModel, ModelFileError, load_model
from judge_router.types import Source, Verdict

log = logging.getLogger(__name__)

NAME = "local"


@dataclass(frozen=True, slots=True)
class SlotState:
    """What /healthz says of the local model: which file is loaded, or why none is."""

    path: str
    version: str | None  # None: no model could be loaded
    error: str | None = None
    loaded_at: float | None = None


class ModelSlot:
    """The local model in use; `reload` replaces it whole or not at all."""

    def __init__(self, path: Path):
        self.path = path
        self.model: LocalModel | None = None
        self.error: str | None = None
        self.loaded_at: float | None = None

    def load(self) -> LocalModel:
        """(Re)read the file; on failure the model in use (if any) stays, and ModelFileError says
        why. The new model is put in place by one assignment: no request sees half a swap."""
        try:
            model = load_model(self.path)
        except ModelFileError as exc:
            self.error = str(exc)
            log.error("%s%s", exc, "; keeping the model loaded before" if self.model else "")
            raise
        self.model, self.error, self.loaded_at = model, None, time.time()
        log.info("local judge model %s loaded from %s", model.version, self.path)
        return model

    def state(self) -> SlotState:
        model = self.model
        return SlotState(
            str(self.path), model.version if model else None, self.error, self.loaded_at
        )


class LocalJudge:
    """Rates with the slot's model. `threshold`: below this confidence it abstains (0: never)."""

    name = NAME
    cacheable = False  # a verdict takes ~1 ms to recompute, and a reload must not leave old ones

    def __init__(self, slot: ModelSlot, threshold: float = 0.0):
        self.slot = slot
        self.threshold = threshold

    @property
    def version(self) -> str:
        model = self.slot.model
        return model.version if model is not None else "none"

    async def rate(self, view: JudgedView) -> Verdict | None:
        return self.rate_now(view, self.threshold)

    def rate_now(
        self, view: JudgedView, threshold: float, judge_error: str | None = None
    ) -> Verdict | None:
        model = self.slot.model
        if model is None:  # no usable file: the next judge (or judge.on_failure) answers
            return None
        started = time.perf_counter()
        prediction = model.predict(featurize(view.text, view.prompt_tokens, len(view.turns)))
        if prediction.confidence < threshold:
            return None
        shown = ", ".join(f"{p:.2f}" for p in prediction.probabilities)
        return Verdict(
            tier=prediction.tier,
            reason=f"local model {model.version}: p(low, medium, high) = {shown}",
            source=Source.LOCAL,
            latency_ms=(time.perf_counter() - started) * 1000,
            judge_model=f"{NAME}:{model.version}",
            judge_error=judge_error,
        )
