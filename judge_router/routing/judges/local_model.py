"""A trained local model: its file, and its prediction for one feature vector.

The file is JSON written by `judge-router train` (judge_router/evaluation/training.py): a
multinomial logistic regression over the featurizer's buckets, the buckets with a weight stored as
base64 arrays, and what it was trained on. Predicting is a sparse dot product in plain Python
(no numpy, no scikit-learn at serve time), one pass in C per label.

Loading checks everything before anything is used: the format, the featurizer version, the label
set, the arrays' lengths and a digest of the weights, so a truncated, edited or foreign file is a
clear error (ModelFileError), never a silently wrong judge.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from array import array
from dataclasses import dataclass, field
from itertools import repeat
from operator import mul
from pathlib import Path
from typing import Any

from judge_router.routing.judges.features import FEATURIZER, WIDTH, Features
from judge_router.types import TIER_ORDER, Tier

FORMAT = "judge-router-local-model"
FORMAT_VERSION = 1
LABELS = [tier.value for tier in TIER_ORDER]


class ModelFileError(ValueError):
    """The model file cannot be used; the message says which file and why."""


def _encode(values: array[Any]) -> str:
    return base64.b64encode(values.tobytes()).decode("ascii")


def _decode(text: Any, typecode: str, what: str) -> array[Any]:
    if not isinstance(text, str):
        raise ValueError(f"`{what}` is not a base64 string")
    values = array(typecode)
    values.frombytes(base64.b64decode(text.encode("ascii"), validate=True))
    return values


def weights_digest(labels: list[str], intercepts: list[float], indices: str, weights: str) -> str:
    """What the digest in a model file is taken over: everything a prediction depends on."""
    hashed = hashlib.sha256()
    for part in (FEATURIZER, ",".join(labels), json.dumps(intercepts), indices, weights):
        hashed.update(part.encode("utf-8") + b"\0")
    return hashed.hexdigest()


@dataclass(frozen=True, slots=True)
class Prediction:
    """The model's probability for each tier, lowest first."""

    probabilities: tuple[float, ...]

    @property
    def tier(self) -> Tier:
        best = max(range(len(self.probabilities)), key=self.probabilities.__getitem__)
        return TIER_ORDER[best]

    @property
    def confidence(self) -> float:
        return max(self.probabilities)

    @property
    def strength(self) -> float:
        """How strong a model the prompt needs, 0 (low) to 1 (high): the expected tier rank over
        the highest. A threshold on it routes like RouteLLM's routers (above: the strong model)."""
        last = len(self.probabilities) - 1
        return sum(rank * p for rank, p in enumerate(self.probabilities)) / last


@dataclass(slots=True)
class LocalModel:
    labels: list[str]
    intercepts: list[float]
    weights: dict[int, tuple[float, ...]]  # bucket -> one weight per label
    trained: dict[str, Any] = field(default_factory=dict)  # what `train` says about its data
    digest: str = ""
    path: str = ""
    # One {bucket: weight} per label, built from `weights` on the first prediction: the dot
    # products then run in C (map and sum) rather than a Python loop per bucket and label.
    _columns: list[dict[int, float]] | None = field(default=None, repr=False, compare=False)

    @property
    def version(self) -> str:
        """Part of the judge's name in the ledger: which weights gave a verdict."""
        return f"{FEATURIZER}@{self.digest[:12]}"

    def predict(self, features: Features) -> Prediction:
        if features.featurizer != FEATURIZER:
            raise ModelFileError(
                f"features from {features.featurizer}, but the model reads {FEATURIZER}"
            )
        if self._columns is None:
            self._columns = [
                {index: row[label] for index, row in self.weights.items()}
                for label in range(len(self.labels))
            ]
        indices, values = features.indices, features.values
        scores = [
            intercept + sum(map(mul, map(column.get, indices, repeat(0.0)), values))
            for intercept, column in zip(self.intercepts, self._columns, strict=True)
        ]
        top = max(scores)
        exps = [math.exp(s - top) for s in scores]
        total = sum(exps)
        return Prediction(tuple(e / total for e in exps))

    def to_json(self) -> dict[str, Any]:
        self.intercepts = [float(value) for value in self.intercepts]  # the digest reads floats
        indices = sorted(self.weights)
        flat = array("f", (w for i in indices for w in self.weights[i]))
        encoded_indices, encoded_weights = _encode(array("I", indices)), _encode(flat)
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "featurizer": FEATURIZER,
            "labels": self.labels,
            "intercepts": self.intercepts,
            "indices": encoded_indices,
            "weights": encoded_weights,
            "digest": weights_digest(
                self.labels, self.intercepts, encoded_indices, encoded_weights
            ),
            "trained": self.trained,
        }

    def save(self, path: Path) -> None:
        """Write the file whole, then move it into place: a service reloading it never reads
        half a file."""
        data = self.to_json()
        self.digest = data["digest"]
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        temporary.replace(path)


def load_model(path: str | Path) -> LocalModel:
    """Read and check a model file; raises ModelFileError naming the file and the problem."""
    where = Path(path).expanduser()
    try:
        data = json.loads(where.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ModelFileError(f"cannot read local model {where}: {exc.strerror or exc}") from None
    except ValueError as exc:  # not UTF-8, or not JSON: truncated or not a model file
        raise ModelFileError(f"local model {where} is not JSON ({exc}); retrain it") from None
    try:
        return _parsed(data, str(where))
    except (ValueError, TypeError, KeyError) as exc:
        raise ModelFileError(f"local model {where} cannot be used: {exc}") from None


def _parsed(data: Any, path: str) -> LocalModel:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"it is not a {FORMAT} file")
    if data.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"format_version {data.get('format_version')!r}; this version reads {FORMAT_VERSION}"
        )
    if data.get("featurizer") != FEATURIZER:
        raise ValueError(
            f"it was trained on featurizer {data.get('featurizer')!r}, and this version computes "
            f"{FEATURIZER!r}: retrain it with this version's `judge-router train`"
        )
    labels, intercepts = data["labels"], data["intercepts"]
    if labels != LABELS:
        raise ValueError(f"labels {labels!r}; a judge model must predict {LABELS}")
    if not isinstance(intercepts, list) or len(intercepts) != len(labels):
        raise ValueError("`intercepts` needs one number per label")
    intercepts = [float(value) for value in intercepts]
    digest = weights_digest(labels, intercepts, data["indices"], data["weights"])
    if digest != data.get("digest"):
        raise ValueError("its digest does not match its weights: the file is corrupt or was edited")
    indices = _decode(data["indices"], "I", "indices")
    flat = _decode(data["weights"], "f", "weights")
    width = len(labels)
    if len(flat) != len(indices) * width:
        raise ValueError("`weights` does not hold one weight per label for every index")
    if any(index >= WIDTH for index in indices):
        raise ValueError("an index is outside the featurizer's range")
    weights = {index: tuple(flat[n * width : (n + 1) * width]) for n, index in enumerate(indices)}
    trained = data.get("trained")
    trained = trained if isinstance(trained, dict) else {}
    return LocalModel(labels, intercepts, weights, trained, digest, path)
