"""Turn an eval run's per-row results into the report (metrics, baselines, costs) and the CSV rows."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from judge_router.evaluation.curves import curve_summary, sweep
from judge_router.evaluation.datasets import Dataset
from judge_router.evaluation.margins import accuracy_margin, quality_margin
from judge_router.evaluation.run import RowResult
from judge_router.evaluation.scorers import (
    DEFAULT_MAX_INPUT_TOKENS,
    RANDOM_SEED,
    baseline_scores,
    local_strengths,
    oracle_scores,
    views,
)
from judge_router.evaluation.scores import (
    Outcomes,
    classify,
    length_tiers,
    oracle_tiers,
    percentile,
    routed_run,
    tercile_thresholds,
)
from judge_router.evaluation.selection import Selection, row_notes
from judge_router.routing.judges.local_model import LocalModel
from judge_router.types import TIER_ORDER, Source, Tier

CSV_FIELDS = (
    "id",
    "category",
    "true_tier",
    "verdict",
    "correct",
    "length_tier",
    "source",
    "cached",
    "reason",
    "judge_cost_usd",
    "judge_latency_ms",
    "prompt_tokens",
    "judge_error",
    "error",
    "unsolved",
)


@dataclass(frozen=True, slots=True)
class Scoring:
    """What the threshold sweep needs beside the rows: how the judge sees a prompt, and the model
    of a local or hybrid judge (whose strength is the judge's score)."""

    max_input_tokens: int = DEFAULT_MAX_INPUT_TOKENS
    local_model: LocalModel | None = None
    mode: str = "llm"
    threshold: float | None = None  # hybrid: the confidence at which the local model answers


def fit_length_baseline(results: Sequence[RowResult]) -> tuple[tuple[int, int], list[Tier]]:
    """Tercile cut points on the judged rows' prompt tokens, and each judged row's length tier."""
    tokens = [r.prompt_tokens or 0 for r in results if r.judged]
    thresholds = tercile_thresholds(tokens)
    return thresholds, length_tiers(tokens, thresholds)


def _verdict_metrics(truth: list[Tier], predicted: list[Tier]) -> dict[str, Any]:
    return classify(truth, predicted).as_dict()


def _confident_local(judged: Sequence[RowResult], scoring: Scoring) -> list[RowResult]:
    """The rows the local model answered as the judge, at its threshold: its verdicts without a
    judge_error (a local verdict with one stood in for a failed LLM judge, judge.on_failure)."""
    if scoring.local_model is None:  # an LLM judge: a local verdict stood in for it on failure
        return []
    return [r for r in judged if r.source == Source.LOCAL.value and r.judge_error is None]


def _operations(
    results: Sequence[RowResult], wall_s: float, scoring: Scoring | None = None
) -> dict[str, Any]:
    judged = [r for r in results if r.judged]
    calls = [r for r in judged if r.called_judge]
    local = [r for r in judged if r.source == Source.LOCAL.value]
    confident = _confident_local(judged, scoring or Scoring())
    answered = {id(r) for r in confident}
    # The judge failed on these rows and judge.on_failure answered instead (they are scored); a
    # confident local answer is the judge's own, whatever the LLM judge behind it could do.
    failures = [r for r in judged if r.judge_error and id(r) not in answered]
    return {
        "judge_spend_usd": sum(r.cost_usd for r in judged),
        "judge_calls": len(calls),
        "cache_hits": sum(1 for r in judged if r.cached),
        "latency_ms": {
            "p50": percentile([r.latency_ms for r in calls], 50),
            "p95": percentile([r.latency_ms for r in calls], 95),
        },
        "sources": dict(Counter(r.source for r in judged if r.source)),
        "answered_locally": {
            "rows": len(confident),
            "share": len(confident) / len(judged) if judged else None,
            "latency_ms": {  # featurize + predict, over every local verdict
                "p50": percentile([r.latency_ms for r in local], 50),
                "p95": percentile([r.latency_ms for r in local], 95),
            },
        },
        "judge_failures": len(failures),
        "failure_kinds": dict(Counter((r.judge_error or "").split(":")[0] for r in failures)),
        "wall_s": wall_s,
        "rows_per_s": len(results) / wall_s if wall_s > 0 else None,
    }


def _curves(
    judged: Sequence[RowResult], outcomes: list[Outcomes], scoring: Scoring
) -> dict[str, Any]:
    """The threshold sweep between the ladder's cheapest and strongest rungs, for each score."""
    seen = views([r.row for r in judged], scoring.max_input_tokens)
    scores = {}
    if scoring.local_model is not None:  # hybrid: the local model's part; the LLM gives no score
        scores["judge"] = local_strengths(scoring.local_model, seen)
    scores.update(baseline_scores(seen))
    scores["oracle"] = oracle_scores(outcomes)
    return {
        "weak": TIER_ORDER[0].value,
        "strong": TIER_ORDER[-1].value,
        "random_seed": RANDOM_SEED,
        "runs": {name: curve_summary(sweep(values, outcomes)) for name, values in scores.items()},
    }


def _routing_quality(
    judged: Sequence[RowResult], verdicts: list[Tier], by_length: list[Tier], scoring: Scoring
) -> dict[str, Any] | None:
    outcomes: list[Outcomes] = [r.row.outcomes for r in judged if r.row.outcomes is not None]
    if not outcomes or len(outcomes) != len(judged):
        return None
    n = len(outcomes)
    runs = {
        "judge": verdicts,
        "length_only": by_length,
        "always_cheapest": [Tier.LOW] * n,
        "always_medium": [Tier.MEDIUM] * n,
        "always_strongest": [Tier.HIGH] * n,
        "oracle": oracle_tiers(outcomes),
    }
    return {
        "rows": n,
        "unsolved_rows": sum(1 for r in judged if r.row.unsolved),
        "runs": {name: asdict(routed_run(outcomes, tiers)) for name, tiers in runs.items()},
        "judge_over_length": quality_margin(outcomes, verdicts, by_length),
        "curves": _curves(judged, outcomes, scoring),
    }


def _dataset_section(
    dataset: Dataset, results: Sequence[RowResult], selection: Selection | None
) -> dict[str, Any]:
    """The rows this run judged, out of the file's; notes about rows count the judged ones."""
    rows = [r.row for r in results]
    chosen = selection.note() if selection else None
    return {
        "path": str(dataset.path),
        "format": dataset.format,
        "rows": len(results),
        "usable_rows_in_file": len(dataset.rows),
        "selection": selection.as_dict() if selection else None,
        "labels": {t.value: sum(1 for row in rows if row.tier is t) for t in TIER_ORDER},
        "notes": [*filter(None, [chosen]), *dataset.notes, *row_notes(rows)],
        "ladder": {t.value: m for t, m in dataset.ladder.items()} if dataset.ladder else None,
    }


def _local_section(dataset: Dataset, scoring: Scoring) -> dict[str, Any] | None:
    """Which model a local or hybrid judge used, and whether it was trained on this file."""
    model = scoring.local_model
    if model is None:
        return None
    trained_on = sorted(model.trained.get("train", {}).get("by_source", {}))
    return {
        "mode": scoring.mode,
        "path": model.path,
        "version": model.version,
        "threshold": scoring.threshold,
        "trained_on": trained_on,
        "trained_on_this_file": dataset.path.name in trained_on,
    }


def _in_sample_note(local: dict[str, Any] | None, dataset: Dataset) -> list[str]:
    if local is None or not local["trained_on_this_file"]:
        return []
    return [
        f"the local model was trained on rows of {dataset.path.name}: rows it trained on score "
        "better than new ones would (measure it on a file, or a split, it did not train on)"
    ]


def build_report(
    dataset: Dataset,
    results: Sequence[RowResult],
    judge_model: str,
    wall_s: float,
    selection: Selection | None = None,
    scoring: Scoring | None = None,
) -> dict[str, Any]:
    """The whole report as plain data (what --json writes). Every figure uses the judged rows only.

    `results` are the rows `selection` chose from `dataset` (every row when it is None).
    """
    scoring = scoring or Scoring()
    judged = [r for r in results if r.judged]
    local = _local_section(dataset, scoring)
    section = _dataset_section(dataset, results, selection)
    section["notes"].extend(_in_sample_note(local, dataset))
    report: dict[str, Any] = {
        "dataset": section,
        "judge": judge_model,
        "local_model": local,
        "judged_rows": len(judged),
        "row_errors": [{"id": r.row.id, "error": r.error} for r in results if r.error],
        "operations": _operations(results, wall_s, scoring),
        "verdicts": None,
        "routing_quality": None,
    }
    if not judged:
        return report
    truth = [r.row.tier for r in judged]
    verdicts = [r.verdict for r in judged if r.verdict is not None]
    thresholds, by_length = fit_length_baseline(judged)
    length_only = _verdict_metrics(truth, by_length)
    length_only["thresholds_tokens"] = list(thresholds)
    report["verdicts"] = {
        "judge": _verdict_metrics(truth, verdicts),
        "length_only": length_only,
        **{f"always_{t.value}": _verdict_metrics(truth, [t] * len(truth)) for t in TIER_ORDER},
        "judge_over_length": accuracy_margin(truth, verdicts, by_length),
    }
    report["routing_quality"] = _routing_quality(judged, verdicts, by_length, scoring)
    return report


def row_records(results: Sequence[RowResult]) -> list[dict[str, Any]]:
    """One flat record per row, in the dataset's order (what --out writes)."""
    by_length: list[Tier] = (
        fit_length_baseline(results)[1] if any(r.judged for r in results) else []
    )
    length_of = iter(by_length)
    records = []
    for r in results:
        records.append(
            {
                "id": r.row.id,
                "category": r.row.category or "",
                "true_tier": r.row.tier.value,
                "verdict": r.verdict.value if r.verdict else "",
                "correct": "" if r.verdict is None else int(r.verdict is r.row.tier),
                "length_tier": next(length_of).value if r.judged else "",
                "source": r.source or "",
                "cached": int(r.cached),
                "reason": r.reason,
                "judge_cost_usd": r.cost_usd,
                "judge_latency_ms": round(r.latency_ms, 3),
                "prompt_tokens": "" if r.prompt_tokens is None else r.prompt_tokens,
                "judge_error": r.judge_error or "",
                "error": r.error or "",
                "unsolved": int(r.row.unsolved),
            }
        )
    return records


def write_csv(path: Path, results: Sequence[RowResult]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
        writer.writeheader()
        writer.writerows(row_records(results))
