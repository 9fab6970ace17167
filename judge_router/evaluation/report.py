"""Turn an eval run's per-row results into the report (metrics, baselines, costs) and the CSV rows."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from judge_router.evaluation.datasets import Dataset
from judge_router.evaluation.run import RowResult
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
from judge_router.types import TIER_ORDER, Tier

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


def fit_length_baseline(results: Sequence[RowResult]) -> tuple[tuple[int, int], list[Tier]]:
    """Tercile cut points on the judged rows' prompt tokens, and each judged row's length tier."""
    tokens = [r.prompt_tokens or 0 for r in results if r.judged]
    thresholds = tercile_thresholds(tokens)
    return thresholds, length_tiers(tokens, thresholds)


def _verdict_metrics(truth: list[Tier], predicted: list[Tier]) -> dict[str, Any]:
    return classify(truth, predicted).as_dict()


def _operations(results: Sequence[RowResult], wall_s: float) -> dict[str, Any]:
    judged = [r for r in results if r.judged]
    calls = [r for r in judged if r.called_judge]
    failures = [r for r in judged if r.judge_error]
    return {
        "judge_spend_usd": sum(r.cost_usd for r in judged),
        "judge_calls": len(calls),
        "cache_hits": sum(1 for r in judged if r.cached),
        "latency_ms": {
            "p50": percentile([r.latency_ms for r in calls], 50),
            "p95": percentile([r.latency_ms for r in calls], 95),
        },
        "sources": dict(Counter(r.source for r in judged if r.source)),
        # The judge failed on these rows and judge.on_failure answered instead (they are scored).
        "judge_failures": len(failures),
        "failure_kinds": dict(Counter((r.judge_error or "").split(":")[0] for r in failures)),
        "wall_s": wall_s,
        "rows_per_s": len(results) / wall_s if wall_s > 0 else None,
    }


def _routing_quality(
    judged: Sequence[RowResult], verdicts: list[Tier], by_length: list[Tier]
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


def build_report(
    dataset: Dataset,
    results: Sequence[RowResult],
    judge_model: str,
    wall_s: float,
    selection: Selection | None = None,
) -> dict[str, Any]:
    """The whole report as plain data (what --json writes). Every figure uses the judged rows only.

    `results` are the rows `selection` chose from `dataset` (every row when it is None).
    """
    judged = [r for r in results if r.judged]
    report: dict[str, Any] = {
        "dataset": _dataset_section(dataset, results, selection),
        "judge": judge_model,
        "judged_rows": len(judged),
        "row_errors": [{"id": r.row.id, "error": r.error} for r in results if r.error],
        "operations": _operations(results, wall_s),
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
    }
    report["routing_quality"] = _routing_quality(judged, verdicts, by_length)
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
