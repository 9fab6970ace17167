"""Scores a router can put a threshold on, one per row (higher: the row needs a stronger model):
the local model's strength, the heuristic's points, prompt length, a seeded random draw, the oracle's.

Each sees a row as the judge does (`judge.max_input_tokens`), so a curve here is the curve the
service would trace with the same threshold.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from judge_router.evaluation.rows import EvalRow
from judge_router.evaluation.scores import Outcomes
from judge_router.routing.conversation import JudgedView, extract_turns, judged_view
from judge_router.routing.judges.features import featurize
from judge_router.routing.judges.heuristic import score
from judge_router.routing.judges.local_model import LocalModel
from judge_router.types import TIER_ORDER, Tier

RANDOM_SEED = 0  # fixed, so a report's random baseline can be drawn again
DEFAULT_MAX_INPUT_TOKENS = 1000  # judge.max_input_tokens' default


def views(rows: Sequence[EvalRow], max_input_tokens: int) -> list[JudgedView]:
    """What the judge sees of each row; raises ConversationError for a row it cannot read (eval
    only scores rows the engine could judge, so it never does there)."""
    return [judged_view(extract_turns(row.messages), max_input_tokens) for row in rows]


def local_strengths(model: LocalModel, seen: Sequence[JudgedView]) -> list[float]:
    """The local model's strength (expected tier rank over the highest, in [0, 1]) per row."""
    return [
        model.predict(featurize(view.text, view.prompt_tokens, len(view.turns))).strength
        for view in seen
    ]


def heuristic_points(seen: Sequence[JudgedView]) -> list[float]:
    return [float(score(view.text, view.prompt_tokens).points) for view in seen]


def length_scores(seen: Sequence[JudgedView]) -> list[float]:
    return [float(view.prompt_tokens) for view in seen]


def random_scores(count: int, seed: int = RANDOM_SEED) -> list[float]:
    draw = random.Random(seed)
    return [draw.random() for _ in range(count)]


def oracle_scores(
    rows: Sequence[Outcomes], weak: Tier = TIER_ORDER[0], strong: Tier = TIER_ORDER[-1]
) -> list[float]:
    """Rows the strong model gets right and the weak one wrong first, those it gets wrong and the
    weak one right last: the best order any score could give (RouteLLM's "optimal" curve)."""
    return [row[strong].score - row[weak].score for row in rows]


def baseline_scores(seen: Sequence[JudgedView]) -> dict[str, list[float]]:
    """The scores of the baselines that need no model: length-only, random and the heuristic."""
    return {
        "length_only": length_scores(seen),
        "random": random_scores(len(seen)),
        "heuristic": heuristic_points(seen),
    }
