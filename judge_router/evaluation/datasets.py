"""Load labelled prompts for `judge-router eval`: the project's JSONL, MATH, RouterBench CSV, MT-Bench."""

from __future__ import annotations

import ast
import csv
import re
import statistics
from pathlib import Path
from typing import Any

from judge_router.evaluation.rows import (
    Dataset,
    DatasetError,
    EvalRow,
    json_lines,
    parse_ladder,
    parse_levels,
    require_text,
    tier_value,
)
from judge_router.evaluation.scores import Outcome
from judge_router.types import TIER_ORDER, Tier

__all__ = ["Dataset", "DatasetError", "EvalRow", "load_dataset"]

FORMATS = ("jsonl", "math", "routerbench", "mtbench")
DEFAULT_LEVELS = "1-2:low,3:medium,4-5:high"
# Cheapest, middle and strongest of RouterBench's models by cost, as in RouteLLM's Mixtral/GPT-4 pair.
DEFAULT_LADDER = (
    "low=mistralai/mistral-7b-chat,medium=mistralai/mixtral-8x7b-chat,high=gpt-4-1106-preview"
)
COST_SUFFIX = "|total_cost"


def detect_format(path: Path) -> str:
    """The format by extension (.csv is RouterBench) or by the first JSON record's fields."""
    if path.suffix.lower() == ".csv":
        return "routerbench"
    for _, record in json_lines(path):
        if "problem" in record and "level" in record:
            return "math"
        if "turns" in record and "question_id" in record:
            return "mtbench"
        if "tier" in record and ("prompt" in record or "messages" in record):
            return "jsonl"
        raise DatasetError(
            f"{path}: cannot tell the format from the first record's fields {sorted(record)}; "
            f"pass --format ({' | '.join(FORMATS)})"
        )
    raise DatasetError(f"{path}: no records")


def load_project_jsonl(path: Path) -> Dataset:
    """{"id"?, "prompt" | "messages", "tier", "category"?} per line."""
    rows = []
    for number, record in json_lines(path):
        where = f"{path}:{number}"
        if ("prompt" in record) == ("messages" in record):
            raise DatasetError(f"{where}: give exactly one of 'prompt' or 'messages'")
        if "prompt" in record:
            messages = [{"role": "user", "content": require_text(record, "prompt", where)}]
        else:
            messages = record["messages"]
            if not isinstance(messages, list) or not messages:
                raise DatasetError(f"{where}: 'messages' must be a non-empty list")
            if not all(isinstance(m, dict) and "role" in m for m in messages):
                raise DatasetError(f"{where}: each message needs a 'role' and 'content'")
        category = record.get("category")
        rows.append(
            EvalRow(
                id=str(record.get("id", f"line-{number}")),
                messages=messages,
                tier=tier_value(record.get("tier"), where),
                category=str(category) if category is not None else None,
            )
        )
    return Dataset(path, "jsonl", rows)  # repeated ids are noted among the rows judged


def _math_level(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = re.fullmatch(r"(?:level\s*)?(\d+)", str(value).strip(), re.IGNORECASE)
    return int(match[1]) if match else None


def load_math(path: Path, levels: dict[int, Tier]) -> Dataset:
    """{"problem", "level": 1-5 or "Level 3", "subject"?, "unique_id"?}; the level maps to a tier."""
    rows, unmapped = [], 0
    for number, record in json_lines(path):
        where = f"{path}:{number}"
        problem = require_text(record, "problem", where)
        if "level" not in record:
            raise DatasetError(f"{where}: no 'level' field")
        level = _math_level(record["level"])
        if level not in levels:
            unmapped += 1  # e.g. MATH's "Level ?", or a level left out of --levels on purpose
            continue
        rows.append(
            EvalRow(
                id=str(record.get("unique_id", f"line-{number}")),
                messages=[{"role": "user", "content": problem}],
                tier=levels[level],
                category=str(record["subject"]) if "subject" in record else None,
            )
        )
    notes = [f"{unmapped} rows skipped: level not in --levels"] if unmapped else []
    return Dataset(path, "math", rows, notes)


def cheapest_correct(outcomes: dict[Tier, Outcome]) -> Tier | None:
    """The lowest ladder rung that answered correctly, or None when none did."""
    return next((tier for tier in TIER_ORDER if outcomes[tier].correct), None)


def _prompt_messages(raw: str) -> list[dict[str, Any]]:
    # RouterBench stores the prompt as a Python list repr: "['...']"; a few rows hold two turns.
    try:
        parsed = ast.literal_eval(raw)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        parsed = raw
    parts = parsed if isinstance(parsed, list) else [parsed]
    return [{"role": "user", "content": str(part)} for part in parts]


def _score(value: str, where: str) -> float | None:
    if not value.strip():
        return None
    try:
        return float(value)
    except ValueError:
        raise DatasetError(f"{where}: {value!r} is not a number") from None


def load_routerbench(path: Path, ladder: dict[Tier, str] | None) -> Dataset:
    """Per-model 0/1 scores and `<model>|total_cost`; the label is the cheapest correct ladder rung.

    Rows no rung answered correctly are labelled high (the safest verdict, and what "route up when
    unsure" asks for), marked `unsolved` and counted in the notes. Rows missing a rung's score or cost
    are skipped and counted.
    """
    csv.field_size_limit(1 << 30)  # ARC prompts carry long few-shot exemplars
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            records = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"cannot read {path} as CSV: {exc}") from None
    header = list(records[0]) if records else []
    models = [c.removesuffix(COST_SUFFIX) for c in header if c.endswith(COST_SUFFIX)]
    models = [m for m in models if m in header]
    if "prompt" not in header or not models:
        raise DatasetError(
            f"{path}: not RouterBench-style: needs a 'prompt' column and, per model, a score "
            f"column MODEL and a cost column MODEL{COST_SUFFIX}"
        )
    chosen = ladder or parse_ladder(DEFAULT_LADDER)
    absent = [m for m in chosen.values() if m not in models]
    if absent:
        by_cost = sorted(models, key=lambda m: _mean_cost(records, m))
        listed = ", ".join(f"{m} (${_mean_cost(records, m):.6f})" for m in by_cost)
        raise DatasetError(
            f"{path}: no columns for {', '.join(absent)}; pass --ladder "
            f"low=MODEL,medium=MODEL,high=MODEL with models from this file "
            f"(mean cost per call): {listed}"
        )
    rows, skipped = [], 0
    for number, record in enumerate(records, 2):  # line 1 is the header
        where = f"{path}:{number}"
        outcomes = {}
        for tier, model in chosen.items():
            score = _score(record.get(model) or "", f"{where} column {model!r}")
            cost = _score(record.get(model + COST_SUFFIX) or "", f"{where} cost of {model!r}")
            if score is None or cost is None:
                break
            outcomes[tier] = Outcome(score=score, cost_usd=cost)
        if len(outcomes) < len(TIER_ORDER):
            skipped += 1
            continue
        label = cheapest_correct(outcomes)
        rows.append(
            EvalRow(
                id=record.get("sample_id") or f"line-{number}",
                messages=_prompt_messages(record["prompt"]),
                tier=label or Tier.HIGH,
                category=record.get("eval_name") or None,
                outcomes=outcomes,
                unsolved=label is None,
            )
        )
    notes = [f"ladder: {', '.join(f'{t.value}={m}' for t, m in chosen.items())}"]
    costs = [_mean_cost(records, m) for m in chosen.values()]
    if costs != sorted(costs):
        notes.append(
            "the ladder is not ordered by mean cost: 'cheapest correct' follows the ladder"
        )
    notes.extend(repeated_rungs(chosen))
    if skipped:
        notes.append(f"{skipped} rows skipped: a ladder model's score or cost is empty")
    # Rows no rung answered are counted among the rows judged (selection.row_notes), not here.
    return Dataset(path, "routerbench", rows, notes, chosen)


def repeated_rungs(ladder: dict[Tier, str]) -> list[str]:
    """A note per model the ladder names for more than one tier: those tiers' figures are one
    model's, and 'cheapest correct' always stops at the lowest of them."""
    notes = []
    for model in dict.fromkeys(ladder.values()):
        tiers = [tier.value for tier in TIER_ORDER if ladder[tier] == model]
        if len(tiers) < 2:
            continue
        shared = f"{tiers[0]} and {tiers[1]} both use" if len(tiers) == 2 else "every tier uses"
        notes.append(
            f"the ladder repeats a model: {shared} {model}, so their figures are one model's "
            f"and a row it gets right is labelled {tiers[0]}, never {' or '.join(tiers[1:])}"
        )
    return notes


def _mean_cost(records: list[dict[str, str]], model: str) -> float:
    values = [float(r[model + COST_SUFFIX]) for r in records if r.get(model + COST_SUFFIX)]
    return statistics.fmean(values) if values else 0.0


def load_mtbench(path: Path) -> Dataset:
    """question.jsonl, labelled from judgements.jsonl beside it (GPT-4 scores of a weak/strong pair).

    Per question: in how many of its two turns the weaker model's score reached the stronger one's.
    Both -> low, one -> medium, none -> high. The weaker model is the one with the lower mean score.
    """
    judgements = path.with_name("judgements.jsonl")
    if not judgements.is_file():
        raise DatasetError(f"{path}: MT-Bench labels come from {judgements}, which does not exist")
    scores: dict[tuple[int, int, str], float] = {}
    for number, record in json_lines(judgements):
        try:
            key = (int(record["question_id"]), int(record["turn"]), str(record["model"]))
            scores[key] = float(record["score"])
        except (KeyError, TypeError, ValueError):
            raise DatasetError(
                f"{judgements}:{number}: needs question_id, turn, model and a numeric score"
            ) from None
    models = sorted({model for _, _, model in scores})
    if len(models) != 2:
        raise DatasetError(f"{judgements}: expected scores for two models, found {models}")
    mean = {m: statistics.fmean(s for k, s in scores.items() if k[2] == m) for m in models}
    weak, strong = sorted(models, key=lambda m: mean[m])
    rows, skipped = [], 0
    for number, record in json_lines(path):
        where = f"{path}:{number}"
        turns = record.get("turns")
        if not isinstance(turns, list) or not turns or not all(isinstance(t, str) for t in turns):
            raise DatasetError(f"{where}: 'turns' must be a non-empty list of strings")
        qid = record.get("question_id")
        if not isinstance(qid, int) or isinstance(qid, bool):
            raise DatasetError(f"{where}: 'question_id' must be an integer")
        reached = []
        for turn in range(1, len(turns) + 1):
            weak_score, strong_score = (
                scores.get((qid, turn, weak)),
                scores.get((qid, turn, strong)),
            )
            if weak_score is None or strong_score is None:
                break
            reached.append(weak_score >= strong_score)
        if len(reached) < len(turns):
            skipped += 1
            continue
        tier = Tier.LOW if all(reached) else Tier.MEDIUM if any(reached) else Tier.HIGH
        rows.append(
            EvalRow(
                id=str(qid),
                messages=[{"role": "user", "content": turn} for turn in turns],
                tier=tier,
                category=str(record["category"]) if "category" in record else None,
            )
        )
    notes = [
        f"labels: turns where {weak} scored at least {strong}: all=low, some=medium, none=high"
    ]
    if skipped:
        notes.append(f"{skipped} questions skipped: a turn has no judgement for both models")
    return Dataset(path, "mtbench", rows, notes)


def load_dataset(
    path: str | Path,
    fmt: str = "auto",
    levels: str = DEFAULT_LEVELS,
    ladder: str | None = None,
) -> Dataset:
    """Read DATASET in `fmt` (or the detected format); raises DatasetError with what to fix."""
    source = Path(path).expanduser()
    if not source.is_file():
        raise DatasetError(f"no such file: {source}")
    chosen = detect_format(source) if fmt == "auto" else fmt
    if chosen == "jsonl":
        dataset = load_project_jsonl(source)
    elif chosen == "math":
        dataset = load_math(source, parse_levels(levels))
    elif chosen == "routerbench":
        dataset = load_routerbench(source, parse_ladder(ladder) if ladder else None)
    elif chosen == "mtbench":
        dataset = load_mtbench(source)
    else:
        raise DatasetError(f"unknown format {chosen!r}; expected one of {', '.join(FORMATS)}")
    if not dataset.rows:
        raise DatasetError(f"{source}: no usable rows ({'; '.join(dataset.notes) or 'empty'})")
    return dataset
