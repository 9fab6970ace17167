"""The local judge (issue 13) against length-only, the heuristic and random routing: trained on one
split of the public eval data, measured on the other, never on a row it trained on.

Run: .venv/bin/python benchmarks/bench_local_judge.py --data DIR [--quick] [--json OUT]
(DIR holds shuhao02__RouterDC/, openai__prm800k/, lm-sys__RouteLLM/; default $JUDGE_ROUTER_EVAL_DATA).
It writes nothing but --json OUT: model files go to a temporary directory, removed at the end.

- RouterBench ARC-c and MBPP: fit on `*_train.csv`, measure on `*_test.csv`, per set and on both.
- MATH-500 (one file): a seeded hash of each problem's id puts 30% of them in the test slice.
- MT-Bench is left out: 80 questions, labelled by a GPT-4 judge's scores of two models' answers.
C and the class weighting are chosen on a validation slice of the training rows (APGR where the
rows have per-model outcomes, accuracy elsewhere), then the model is fitted on every training row.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import machine_meta, revision, write_json  # noqa: E402

from judge_router.evaluation.curves import apgr, curve_summary, sweep  # noqa: E402
from judge_router.evaluation.datasets import load_dataset  # noqa: E402
from judge_router.evaluation.intervals import DRAWS, Difference, paired_bootstrap  # noqa: E402
from judge_router.evaluation.rows import EvalRow  # noqa: E402
from judge_router.evaluation.scorers import (  # noqa: E402
    heuristic_points,
    length_scores,
    oracle_scores,
    random_scores,
    views,
)
from judge_router.evaluation.scores import (  # noqa: E402
    classify,
    oracle_tiers,
    percentile,
    routed_run,
)
from judge_router.evaluation.training import Example, fit, in_test_slice, split  # noqa: E402
from judge_router.routing.conversation import JudgedView  # noqa: E402
from judge_router.routing.judges import features  # noqa: E402
from judge_router.routing.judges.local_model import LocalModel  # noqa: E402
from judge_router.types import TIER_ORDER, Tier  # noqa: E402

ROUTERBENCH = "shuhao02__RouterDC/routerbench_zs"
MATH500 = "openai__prm800k/math_splits/test.jsonl"
MAX_INPUT_TOKENS = 1000  # judge.max_input_tokens' default: the view the service would featurize
THRESHOLD = 0.7  # judge.local_threshold's default: hybrid's operating point
GRID = [(c, balanced) for c in (0.25, 1.0, 4.0) for balanced in (True, False)]
QUICK_GRID = [(1.0, True)]
VALIDATION_SHARE = 0.25
MATH_TEST_SHARE = 0.3
SEED = 13
QUICK_SHARE = 0.2  # --quick: the share of each file's rows kept
RANDOM_DRAWS = 25  # the random baseline is averaged over this many seeded draws
TARGET_KEPT = 0.95  # issue 13: keep 95% of the strongest model's quality...
TARGET_COST = 0.5  # ... at no more than half of its cost
PREDICTORS = ("local", "length_only", "heuristic", "random", "oracle")
QUICK_DRAWS = 50  # --quick: bootstrap resamples (DRAWS otherwise)


@dataclass(frozen=True)
class Task:
    name: str
    train: list[str]  # files under --data
    test: list[str]  # one measurement per test file
    split_share: float | None = None  # one file: the test slice's share of it


def tasks(quick: bool) -> list[Task]:
    arc, mbpp = (f"{ROUTERBENCH}/{n}" for n in ("arc_challenge", "mbpp"))
    found = [
        Task("ARC-c", [f"{arc}_train.csv"], [f"{arc}_test.csv"]),
        Task("MBPP", [f"{mbpp}_train.csv"], [f"{mbpp}_test.csv"]),
        Task("ARC-c + MBPP", [f"{arc}_train.csv", f"{mbpp}_train.csv"],
             [f"{arc}_test.csv", f"{mbpp}_test.csv"]),
        Task("MATH-500", [MATH500], [MATH500], split_share=MATH_TEST_SHARE),
    ]  # fmt: skip
    return found[1:] if quick else found  # --quick: ARC-c's files are in the joint task


@dataclass(frozen=True)
class Rows:
    """Labelled rows, how the judge sees each, and their feature vectors."""

    rows: list[EvalRow]
    seen: list[JudgedView]
    examples: list[Example]

    @property
    def outcomes(self) -> list[Any] | None:
        found = [row.outcomes for row in self.rows]
        return None if any(o is None for o in found) else found


def featurized(rows: Sequence[EvalRow], source: str) -> Rows:
    seen = views(rows, MAX_INPUT_TOKENS)
    examples = [
        Example(f"{source}:{row.id}", vector(view), row.tier, source)
        for row, view in zip(rows, seen, strict=True)
    ]
    return Rows(list(rows), seen, examples)


def vector(view: JudgedView) -> features.Features:
    return features.featurize(view.text, view.prompt_tokens, len(view.turns))


def subset(data: Rows, keep: set[str]) -> Rows:
    chosen = [i for i, e in enumerate(data.examples) if e.id in keep]
    return Rows([data.rows[i] for i in chosen], [data.seen[i] for i in chosen],
                [data.examples[i] for i in chosen])  # fmt: skip


def join(parts: Sequence[Rows]) -> Rows:
    return Rows([r for p in parts for r in p.rows], [v for p in parts for v in p.seen],
                [e for p in parts for e in p.examples])  # fmt: skip


def load(
    data_dir: Path, task: Task, quick: bool, memo: dict[str, Rows]
) -> tuple[Rows, list[tuple[str, Rows]]]:
    """(training rows, [(test file, its rows)]): disjoint by file, or by the seeded split. --quick
    keeps a seeded fifth of each file's rows."""
    for name in {*task.train, *task.test} - set(memo):
        rows = load_dataset(data_dir / name).rows
        if quick:
            rows = [r for r in rows if in_test_slice(f"{name}:{r.id}", QUICK_SHARE, SEED + 7)]
        memo[name] = featurized(rows, Path(name).name)
    parts = {name: memo[name] for name in {*task.train, *task.test}}
    if task.split_share is not None:
        whole = parts[task.train[0]]
        train_ex, test_ex = split(whole.examples, task.split_share, SEED)
        test_name = Path(task.test[0]).name
        return subset(whole, {e.id for e in train_ex}), [
            (test_name, subset(whole, {e.id for e in test_ex}))
        ]
    train = join([parts[name] for name in task.train])
    return train, [(Path(name).name, parts[name]) for name in task.test]


def strengths(model: LocalModel, data: Rows) -> list[float]:
    return [model.predict(e.features).strength for e in data.examples]


def validation_score(model: LocalModel, data: Rows) -> float:
    outcomes = data.outcomes
    if outcomes is not None:
        value = curve_summary(sweep(strengths(model, data), outcomes))["apgr"]
        return float(value) if value is not None else 0.0
    predicted = [model.predict(e.features).tier for e in data.examples]
    return classify([e.label for e in data.examples], predicted).accuracy


def tuned_model(
    train: Rows, grid: Sequence[tuple[float, bool]]
) -> tuple[LocalModel, dict[str, Any]]:
    """Choose (C, balanced) on a validation slice of the training rows; refit on all of them."""
    fit_ex, val_ex = split(train.examples, VALIDATION_SHARE, SEED + 1)
    fitting, validation = (
        subset(train, {e.id for e in fit_ex}),
        subset(train, {e.id for e in val_ex}),
    )
    tried = []
    for c, balanced in grid:
        started = time.perf_counter()
        model = fit(fitting.examples, c, balanced)
        tried.append({"c": c, "balanced": balanced, "validation": validation_score(model, validation),
                      "fit_s": round(time.perf_counter() - started, 1)})  # fmt: skip
    best = max(tried, key=lambda t: t["validation"])  # the first of equals: grid order
    started = time.perf_counter()
    model = fit(train.examples, best["c"], best["balanced"])
    chosen = {"c": best["c"], "balanced": best["balanced"],
              "fit_s": round(time.perf_counter() - started, 1),
              "criterion": "APGR" if validation.outcomes is not None else "accuracy",
              "train_rows": len(train.rows), "validation_rows": len(validation.rows),
              "grid": tried}  # fmt: skip
    return model, chosen


def at_shares(scores: Sequence[float], like: Sequence[Tier], seed: int) -> list[Tier]:
    """Tiers by rank of `scores` with as many rows per tier as `like` has: the same call mix, so
    about the same cost. Ties are broken at random (seeded), not by file order."""
    tiebreak = random_scores(len(scores), seed)
    order = sorted(range(len(scores)), key=lambda i: (scores[i], tiebreak[i]), reverse=True)
    counts = {tier: sum(t is tier for t in like) for tier in TIER_ORDER}
    tiers = [TIER_ORDER[0]] * len(scores)
    high, medium = counts[Tier.HIGH], counts[Tier.MEDIUM]
    for position, index in enumerate(order):
        if position < high:
            tiers[index] = Tier.HIGH
        elif position < high + medium:
            tiers[index] = Tier.MEDIUM
    return tiers


def measures(truth: list[Tier], tiers: list[Tier], outcomes: list[Any] | None) -> dict[str, Any]:
    scored = classify(truth, tiers)
    found: dict[str, Any] = {"accuracy": scored.accuracy, "under": scored.under_routing,
                             "over": scored.over_routing}  # fmt: skip
    if outcomes is not None:
        run = routed_run(outcomes, tiers)
        found.update(quality=run.quality, pgr=run.pgr, cost_share=run.cost_share,
                     quality_kept=run.quality_kept, strong_calls=run.strong_calls)  # fmt: skip
    return found


def mean_of(draws: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Field by field, the mean over the draws that have the figure (None when none has)."""
    means: dict[str, Any] = {}
    for key in draws[0]:
        known = [d[key] for d in draws if d[key] is not None]
        means[key] = statistics.fmean(known) if known else None
    return means


def curve_measures(scores: Sequence[float], outcomes: list[Any], weak: Tier) -> dict[str, Any]:
    summary = curve_summary(sweep(scores, outcomes, weak=weak))
    summary.pop("points")
    return summary


def apgr_gap(a: Sequence[float], b: Sequence[float], outcomes: list[Any]) -> Difference:
    """APGR of `a` minus APGR of `b` (mistral-7b <-> gpt-4) on the rows at the indices."""

    def gap(indices: Sequence[int]) -> float | None:
        rows = [outcomes[i] for i in indices]
        first = apgr(sweep([a[i] for i in indices], rows))
        second = apgr(sweep([b[i] for i in indices], rows))
        return None if first is None or second is None else first - second

    return gap


def accuracy_gap(
    scores: Sequence[float] | None, baseline: Sequence[float], local: list[Tier], truth: list[Tier]
) -> Difference:
    """Accuracy of `scores` (the local judge's own tiers when None) minus the baseline's, both
    ranked into the local judge's tier shares, as the operating-point table has them."""

    def accuracy(tiers: Sequence[Tier], indices: Sequence[int]) -> float:
        return sum(t is truth[i] for t, i in zip(tiers, indices, strict=True)) / len(indices)

    def gap(indices: Sequence[int]) -> float:
        like = [local[i] for i in indices]
        mine = like if scores is None else at_shares([scores[i] for i in indices], like, SEED)
        theirs = at_shares([baseline[i] for i in indices], like, SEED)
        return accuracy(mine, indices) - accuracy(theirs, indices)

    return gap


def over_length(
    scores: dict[str, list[float]], local: list[Tier], truth: list[Tier],
    outcomes: list[Any] | None, draws: int,
) -> dict[str, Any]:  # fmt: skip
    """The local judge's and the heuristic's margin over length-only, with a paired bootstrap
    95% interval: APGR where the rows have per-model outcomes, accuracy at equal shares otherwise."""
    found: dict[str, Any] = {"measure": "APGR" if outcomes is not None else "accuracy"}
    for name in ("local", "heuristic"):
        if outcomes is not None:
            gap = apgr_gap(scores[name], scores["length_only"], outcomes)
        else:
            mine = None if name == "local" else scores[name]
            gap = accuracy_gap(mine, scores["length_only"], local, truth)
        interval = paired_bootstrap(gap, len(truth), draws=draws, seed=SEED)
        found[name] = None if interval is None else interval.as_dict()
    return found


def measure(model: LocalModel, data: Rows, model_bytes: int, draws: int = DRAWS) -> dict[str, Any]:
    """Every figure of one trained model on one test file."""
    truth = [row.tier for row in data.rows]
    outcomes = data.outcomes
    predictions = [model.predict(e.features) for e in data.examples]
    local = [p.tier for p in predictions]
    scores = {
        "local": [p.strength for p in predictions],
        "length_only": length_scores(data.seen),
        "heuristic": heuristic_points(data.seen),
    }
    predictors = {"local": measures(truth, local, outcomes)}
    for name in ("length_only", "heuristic"):
        predictors[name] = measures(truth, at_shares(scores[name], local, SEED), outcomes)
    predictors["random"] = mean_of([
        measures(truth, at_shares(random_scores(len(truth), seed), local, seed), outcomes)
        for seed in range(RANDOM_DRAWS)
    ])  # fmt: skip
    predictors["oracle"] = measures(
        truth, oracle_tiers(outcomes) if outcomes is not None else truth, outcomes
    )
    confident = [p.confidence >= THRESHOLD for p in predictions]
    hybrid = [t if sure else label for t, sure, label in zip(local, confident, truth, strict=True)]
    found: dict[str, Any] = {
        "rows": len(truth),
        "labels": {t.value: truth.count(t) for t in TIER_ORDER},
        "predictors": predictors,
        "hybrid": {
            "threshold": THRESHOLD,
            "llm_judge": "oracle: the row's label (an upper bound on any LLM judge)",
            "answered_locally": sum(confident) / len(truth),
            "local_agreement": _agreement(local, truth, confident),
            **measures(truth, hybrid, outcomes),
        },
        "latency_ms": latency(model, data.seen),
        "model_bytes": model_bytes,
        "over_length": over_length(scores, local, truth, outcomes, draws),
    }
    if outcomes is not None:
        scores["oracle"] = oracle_scores(outcomes)
        found["curves"] = {
            pair: _curves(scores, outcomes, weak) for pair, weak in
            (("low_high", Tier.LOW), ("medium_high", Tier.MEDIUM))
        }  # fmt: skip
        found["target"] = target(found)
    return found


def _curves(scores: dict[str, list[float]], outcomes: list[Any], weak: Tier) -> dict[str, Any]:
    curves = {name: curve_measures(values, outcomes, weak) for name, values in scores.items()}
    draws = [curve_measures(random_scores(len(outcomes), s), outcomes, weak)
             for s in range(RANDOM_DRAWS)]  # fmt: skip
    curves["random"] = mean_of(draws)
    return {name: curves[name] for name in PREDICTORS}


def _agreement(local: list[Tier], truth: list[Tier], confident: list[bool]) -> float | None:
    kept = [(t, label) for t, label, sure in zip(local, truth, confident, strict=True) if sure]
    return sum(t is label for t, label in kept) / len(kept) if kept else None


def latency(model: LocalModel, seen: Sequence[JudgedView]) -> dict[str, float | None]:
    """featurize + predict per row, p50 and p99: a first pass with the word cache emptied (a fresh
    process), then a second with it warm (a running service, which has seen the words before)."""
    features._word_bucket.cache_clear()
    features._char_buckets.cache_clear()
    # featurize remembers its last prompts, and these were featurized to be scored: time the
    # computation itself (what a prompt the service has not seen costs), not the memo's lookup.
    uncached = features.featurize.__wrapped__
    found: dict[str, float | None] = {}
    for kind in ("cold", "warm"):
        timings = []
        for view in seen:
            started = time.perf_counter()
            model.predict(uncached(view.text, view.prompt_tokens, len(view.turns)))
            timings.append((time.perf_counter() - started) * 1000)
        found[f"{kind}_p50"], found[f"{kind}_p99"] = (
            percentile(timings, 50),
            percentile(timings, 99),
        )
    return found


def target(found: dict[str, Any]) -> dict[str, Any]:
    """Issue 13's two targets on this set, for the local judge, and what the oracle reaches."""
    ops, curves = found["predictors"], found["curves"]

    def reaches(point: dict[str, Any]) -> bool:
        return point["quality_kept"] >= TARGET_KEPT and point["cost_share"] <= TARGET_COST

    def least_cost(name: str) -> float | None:
        """The least cost share keeping 95% of the quality, over both pairs' sweeps."""
        costs = [curves[pair][name]["least_cost_share_for_95pct_quality"] for pair in curves]
        known = [c for c in costs if c is not None]
        return min(known) if known else None

    def kept_at_half_cost(name: str) -> bool:
        cost = least_cost(name)
        return reaches(ops[name]) or (cost is not None and cost <= TARGET_COST)

    beats = {pair: curves[pair]["local"]["apgr"] > curves[pair]["length_only"]["apgr"]
             for pair in curves}  # fmt: skip
    return {
        "quality_above_length_at_equal_calls": ops["local"]["quality"]
        > ops["length_only"]["quality"],
        "apgr_above_length": beats,
        "local_95pct_at_half_cost": kept_at_half_cost("local"),
        "local_least_cost_for_95pct": least_cost("local"),
        "oracle_95pct_at_half_cost": kept_at_half_cost("oracle"),
        "oracle_least_cost_for_95pct": least_cost("oracle"),
    }


def run(data_dir: Path, quick: bool) -> dict[str, Any]:
    results: dict[str, Any] = {"meta": {**machine_meta(), "revision": revision(), "quick": quick},
                               "sets": [], "skipped": {"MT-Bench": SKIPPED_MTBENCH}}  # fmt: skip
    memo: dict[str, Rows] = {}  # a file read and featurized once, whichever tasks use it
    with tempfile.TemporaryDirectory() as scratch:
        for task in tasks(quick):
            train, tests = load(data_dir, task, quick, memo)
            model, chosen = tuned_model(train, QUICK_GRID if quick else GRID)
            path = Path(scratch) / "model.json"
            model.save(path)
            for test_name, test in tests:
                entry = {"task": task.name, "test": test_name, "training": chosen,
                         **measure(model, test, path.stat().st_size,
                                   QUICK_DRAWS if quick else DRAWS)}  # fmt: skip
                results["sets"].append(entry)
                print(f"{task.name} -> {test_name}: {entry['rows']} rows measured", flush=True)
    return results


SKIPPED_MTBENCH = (
    "80 questions, labelled by how often a GPT-4 judge scored Mixtral's answers at least as high "
    "as GPT-4's: too few rows to split, and the label is a judge's opinion, not an outcome"
)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def print_report(results: dict[str, Any], console: Console) -> None:
    for entry in results["sets"]:
        curves = entry.get("curves", {}).get("low_high", {})
        table = Table(title=f"{entry['task']} -> {entry['test']} ({entry['rows']} rows; "
                      f"C={entry['training']['c']}, balanced={entry['training']['balanced']})")  # fmt: skip
        for column in ("predictor", "accuracy", "under", "PGR", "cost vs strongest", "quality kept",
                       "APGR", "CPT(50%)", "CPT(80%)"):  # fmt: skip
            table.add_column(column, justify="left" if column == "predictor" else "right")
        for name in PREDICTORS:
            op, curve = entry["predictors"][name], curves.get(name, {})
            table.add_row(name, _pct(op["accuracy"]), _pct(op["under"]), _num(op.get("pgr")),
                          _pct(op.get("cost_share")), _pct(op.get("quality_kept")),
                          _num(curve.get("apgr")), _pct(curve.get("cpt_50")),
                          _pct(curve.get("cpt_80")))  # fmt: skip
        console.print(table)
        hybrid, lat = entry["hybrid"], entry["latency_ms"]
        console.print(
            f"  hybrid at {hybrid['threshold']}: {_pct(hybrid['answered_locally'])} answered "
            f"locally (agreeing with the label on {_pct(hybrid['local_agreement'])}); latency "
            f"p50 / p99 {lat['cold_p50']:.3f} / {lat['cold_p99']:.3f} ms cold, "
            f"{lat['warm_p50']:.3f} / {lat['warm_p99']:.3f} ms warm; "
            f"model {entry['model_bytes']} bytes"
        )
        margins = entry["over_length"]
        console.print(f"  {margins['measure']} over length-only, 95% paired bootstrap: " + "; ".join(
            f"{name} {_margin(margins[name])}" for name in ("local", "heuristic")))  # fmt: skip
        if "target" in entry:
            console.print(f"  target: {entry['target']}")


def _margin(interval: dict[str, Any] | None) -> str:
    if interval is None:
        return "-"
    return (f"{interval['difference']:+.3f} [{interval['low']:+.3f}, {interval['high']:+.3f}], "
            f"ahead in {interval['wins']:.0%} of {interval['draws']} resamples")  # fmt: skip


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, default=os.environ.get("JUDGE_ROUTER_EVAL_DATA"),
                        help="the eval-data directory (default: $JUDGE_ROUTER_EVAL_DATA)")  # fmt: skip
    parser.add_argument(
        "--quick", action="store_true", help="a small slice of each set: a smoke test"
    )
    parser.add_argument("--json", type=Path, help="write every figure as JSON to this file")
    options = parser.parse_args(argv)
    if options.data is None:
        parser.error("--data DIR (or $JUDGE_ROUTER_EVAL_DATA) is needed")
    return options


def main(argv: Sequence[str] | None = None) -> int:
    options = parse(argv)
    random.seed(SEED)  # nothing should draw from the global generator; if it does, repeatably
    results = run(options.data, options.quick)
    print_report(results, Console(width=max(Console().width, 140)))
    if options.json is not None:
        write_json(options.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
