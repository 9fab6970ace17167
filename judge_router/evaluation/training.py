"""`judge-router train`: fit a local judge on labelled prompts and on the ledger, and measure it on
rows it never saw.

Examples come from data sets in every format `eval` reads (the label is `eval`'s: a level, or the
cheapest ladder rung that answered correctly) and from the ledger (ledger_examples.py: outcomes
first, the LLM judge's verdicts otherwise). Each example is featurized exactly as the service
will (the judge's view of the conversation, then features.featurize). A seeded hash of each
example's id puts it in the test slice or the training slice, so no row is in both and a re-run
splits the same way. The fit is scikit-learn's multinomial logistic regression (an optional
dependency: `pip install 'judge-router[learn]'`); serving needs only the weights it writes.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from judge_router.evaluation.rows import Dataset
from judge_router.routing.conversation import ConversationError, extract_turns, judged_view
from judge_router.routing.judges.features import Features, featurize
from judge_router.routing.judges.local_model import LABELS, LocalModel, Prediction
from judge_router.types import TIER_ORDER, Tier

THRESHOLDS = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
ABSENT_CLASS_INTERCEPT = -30.0  # a tier no training example had is never predicted
MIN_TRAINING_ROWS = 10


class TrainingError(ValueError):
    """Training cannot go ahead; the message says what is missing."""


@dataclass(frozen=True, slots=True)
class Example:
    id: str  # unique over every source: the split is drawn from it
    features: Features
    label: Tier
    source: str  # a data set's file name, `outcome`, or `llm_verdict`


@dataclass(slots=True)
class Evaluation:
    """How the model did on the test slice."""

    rows: int
    accuracy: float
    under_routed: float  # predicted below the label: a cheaper model than the request needed
    over_routed: float
    # threshold -> (share of rows the local model answers at it, accuracy on those rows)
    by_threshold: dict[float, tuple[float, float | None]] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "accuracy": round(self.accuracy, 4),
            "under_routed": round(self.under_routed, 4),
            "over_routed": round(self.over_routed, 4),
            "by_threshold": [
                {
                    "threshold": t,
                    "answered_locally": round(share, 4),
                    "agreement": None if agree is None else round(agree, 4),
                }
                for t, (share, agree) in self.by_threshold.items()
            ],  # fmt: skip
        }


def dataset_examples(dataset: Dataset, max_input_tokens: int) -> list[Example]:
    """A data set's rows as examples, seen as the judge sees them (`judge.max_input_tokens`)."""
    examples = []
    for row in dataset.rows:
        try:
            view = judged_view(extract_turns(row.messages), max_input_tokens)
        except ConversationError:
            continue  # `eval` reports these rows; a trainer has nothing to learn from them
        features = featurize(view.text, view.prompt_tokens, len(view.turns))
        examples.append(
            Example(f"{dataset.path.name}:{row.id}", features, row.tier, dataset.path.name)
        )
    return examples


def in_test_slice(example_id: str, share: float, seed: int) -> bool:
    digest = hashlib.blake2b(f"{seed}:{example_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < share


def split(
    examples: Sequence[Example], share: float, seed: int
) -> tuple[list[Example], list[Example]]:
    """(training, test): disjoint by id; one id (a prompt seen twice) is always on one side."""
    train: list[Example] = []
    test: list[Example] = []
    for example in examples:
        (test if in_test_slice(example.id, share, seed) else train).append(example)
    return train, test


def fit(examples: Sequence[Example], c: float = 4.0, balanced: bool = True) -> LocalModel:
    """Multinomial logistic regression over the hashed features; raises TrainingError."""
    try:
        from scipy.sparse import csr_matrix  # type: ignore[import-untyped]
        from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
    except ImportError:  # the `learn` extra is not installed
        raise TrainingError(
            "training needs scikit-learn: pip install 'judge-router[learn]'"
        ) from None
    if len(examples) < MIN_TRAINING_ROWS:
        raise TrainingError(
            f"{len(examples)} training rows; at least {MIN_TRAINING_ROWS} are needed"
        )
    present = sorted({e.label.rank for e in examples})
    if len(present) < 2:
        raise TrainingError(
            f"every training row is labelled {examples[0].label.value}: nothing to tell apart"
        )
    # Only the buckets some example has become columns: the fit works on thousands of columns,
    # not the featurizer's 2^18 (about 3x faster), and the weights map back to the buckets.
    columns = sorted({index for example in examples for index in example.features.indices})
    column_of = {index: n for n, index in enumerate(columns)}
    indptr: list[int] = [0]
    indices: list[int] = []
    values: list[float] = []
    for example in examples:
        indices.extend(column_of[index] for index in example.features.indices)
        values.extend(example.features.values)
        indptr.append(len(indices))
    matrix = csr_matrix((values, indices, indptr), shape=(len(examples), len(columns)))
    labels = [e.label.rank for e in examples]
    classifier = LogisticRegression(
        C=c, max_iter=3000, class_weight="balanced" if balanced else None
    )
    classifier.fit(matrix, labels)
    coef, intercept = classifier.coef_, classifier.intercept_
    if len(present) == 2:  # a binary fit: p(second) = sigmoid(w·x + b) is softmax of [0, w·x + b]
        rows = {present[0]: None, present[1]: 0}
    else:
        rows = {rank: n for n, rank in enumerate(classifier.classes_)}
    intercepts = [ABSENT_CLASS_INTERCEPT] * len(TIER_ORDER)
    for rank, row in rows.items():
        intercepts[rank] = 0.0 if row is None else float(intercept[row])
    weights: dict[int, tuple[float, ...]] = {}
    for column, bucket in enumerate(columns):
        row_weights = [0.0] * len(TIER_ORDER)
        for rank, row in rows.items():
            row_weights[rank] = 0.0 if row is None else float(coef[row, column])
        if any(abs(w) > 1e-7 for w in row_weights):
            weights[bucket] = tuple(row_weights)
    return LocalModel(list(LABELS), intercepts, weights)


def evaluate(model: LocalModel, examples: Sequence[Example]) -> Evaluation:
    if not examples:
        return Evaluation(0, 0.0, 0.0, 0.0)
    predictions: list[Prediction] = [model.predict(e.features) for e in examples]
    hits = under = over = 0
    for example, prediction in zip(examples, predictions, strict=True):
        got, wanted = prediction.tier.rank, example.label.rank
        hits += got == wanted
        under += got < wanted
        over += got > wanted
    n = len(examples)
    by_threshold: dict[float, tuple[float, float | None]] = {}
    for threshold in THRESHOLDS:
        kept = [
            (e, p) for e, p in zip(examples, predictions, strict=True)
            if p.confidence >= threshold
        ]  # fmt: skip
        agree = sum(p.tier is e.label for e, p in kept) / len(kept) if kept else None
        by_threshold[threshold] = (len(kept) / n, agree)
    return Evaluation(n, hits / n, under / n, over / n, by_threshold)


def summary(examples: Sequence[Example]) -> dict[str, Any]:
    """What a model file says of its data: rows per source and per label."""
    return {
        "rows": len(examples),
        "by_source": dict(sorted(Counter(e.source for e in examples).items())),
        "by_label": {tier.value: sum(e.label is tier for e in examples) for tier in TIER_ORDER},
    }


def train(
    examples: Sequence[Example], test_share: float, seed: int, c: float = 4.0, balanced: bool = True
) -> tuple[LocalModel, Evaluation, dict[str, Any]]:
    """Split, fit on the training slice, measure on the test slice; the model's `trained` field
    records the data, the split, the settings and the test figures."""
    if not 0 <= test_share < 1:
        raise TrainingError("--test-share must be at least 0 and below 1")
    training, test = split(examples, test_share, seed)
    model = fit(training, c, balanced)
    evaluation = evaluate(model, test)
    model.trained = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "train": summary(training),
        "test": {**summary(test), **evaluation.public()},
        "test_share": test_share,
        "seed": seed,
        "c": c,
        "class_weight": "balanced" if balanced else "none",
    }
    return model, evaluation, model.trained
