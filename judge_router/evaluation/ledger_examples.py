"""Training examples from the ledger (`train --from-ledger`): the feature vectors `judge.learn`
stored, labelled by what the service learned about each prompt.

A prompt's label comes from its outcomes where it has any, since they measured an answer: a
cascade step that passed, or a grade or a client's score of at least GOOD_SCORE, says its tier
was enough; a step that failed, or a score below, says a tier above was needed. The lowest tier
known to be enough wins, but never under a tier known to fall short. Shadow tests score a
candidate model, not a tier, so they label nothing here. A prompt without outcomes is labelled by
the LLM judge's verdict (distillation); verdicts of the heuristic or of a local model itself are
never training labels (a model would learn its own mistakes).

One example per prompt (by prompt hash): a prompt asked many times is one row, so it can never
sit on both sides of the test split.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from typing import Any

from judge_router.accounting.read_connection import ReadConnection
from judge_router.evaluation.training import Example
from judge_router.routing.judges.features import FEATURIZER, FeaturesError, decode
from judge_router.types import Tier

GOOD_SCORE = 0.6  # 0..1: a grade of 7 of 10 and up (grade_score(7) = 0.667), or feedback ≥ 0.6
OUTCOME_SOURCES_USED = ("cascade", "sample", "feedback")
LLM_SOURCES = ("llm", "cache")  # a cached verdict is the LLM judge's, given again
NOT_LLM_JUDGES = ("heuristic", "local")  # judge_model prefixes whose verdicts are not labels


def outcome_label(outcomes: list[dict[str, Any]]) -> Tier | None:
    """The tier one request's outcomes point to, or None if they say nothing."""
    enough: list[Tier] = []
    short: list[Tier] = []
    for outcome in outcomes:
        if outcome["source"] not in OUTCOME_SOURCES_USED:
            continue
        try:
            tier = Tier(outcome["tier"])
        except ValueError:
            continue
        if outcome["passed"] is not None and outcome["score"] is None:
            good = bool(outcome["passed"])
        elif outcome["score"] is not None:
            good = float(outcome["score"]) >= GOOD_SCORE and outcome["passed"] != 0
        else:
            continue
        (enough if good else short).append(tier)
    floor = max((t.next_up() or t for t in short), key=lambda t: t.rank, default=None)
    lowest = min(enough, key=lambda t: t.rank, default=None)
    if lowest is None:
        return floor
    if floor is not None and floor.rank > lowest.rank:
        return floor
    return lowest


def _is_llm_verdict(row: Any) -> bool:
    judge = str(row["judge_model"] or "")
    return row["source"] in LLM_SOURCES and not judge.startswith(NOT_LLM_JUDGES)


def ledger_examples(conn: ReadConnection) -> tuple[list[Example], dict[str, int]]:
    """(examples, counts of what was read and skipped), for a ledger's read (SQLite or PostgreSQL)."""
    if isinstance(conn, sqlite3.Connection):
        conn.row_factory = sqlite3.Row
    outcomes: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in conn.execute("SELECT request_id, source, tier, score, passed FROM outcomes"):
        outcomes[row["request_id"]].append(dict(row))
    chosen: dict[str, Example] = {}  # prompt hash -> its example, an outcome's label first
    counts = {"vectors": 0, "from_outcomes": 0, "from_llm_verdicts": 0, "unlabelled": 0,
              "unreadable": 0, "other_featurizer": 0}  # fmt: skip
    query = (
        "SELECT request_id, prompt_hash, tier, source, judge_model, features FROM decisions "
        "WHERE features IS NOT NULL ORDER BY created_at"
    )
    for row in conn.execute(query):
        counts["vectors"] += 1
        label = outcome_label(outcomes.get(row["request_id"], []))
        source = "outcome"
        if label is None and _is_llm_verdict(row):
            label, source = Tier(row["tier"]), "llm_verdict"
        if label is None:
            counts["unlabelled"] += 1
            continue
        try:
            features = decode(row["features"])
        except FeaturesError:
            counts["unreadable"] += 1
            continue
        if features.featurizer != FEATURIZER:  # stored by another version: its buckets differ
            counts["other_featurizer"] += 1
            continue
        key = row["prompt_hash"]
        known = chosen.get(key)
        if known is None or source == "outcome" or known.source != "outcome":
            chosen[key] = Example(f"prompt:{key}", features, label, source)
    for example in chosen.values():
        counts["from_outcomes" if example.source == "outcome" else "from_llm_verdicts"] += 1
    return list(chosen.values()), counts
