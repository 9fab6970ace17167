"""The `judge-router eval` report as tables: verdicts, per-tier scores, operations, routing."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.text import Text

from judge_router.evaluation.layout import Grid, show, wrapped

RUN_LABELS = {
    "judge": "judge",
    "length_only": "length-only",
    "always_cheapest": "always cheapest",
    "always_medium": "always medium",
    "always_strongest": "always strongest",
    "oracle": "oracle",
}
CURVE_LABELS = {
    "judge": "judge: the local model's strength",
    "length_only": "length-only: prompt tokens",
    "random": "random (seeded)",
    "heuristic": "heuristic: its points",
    "oracle": "oracle",
}
TIERS = ("low", "medium", "high")
ERROR_CHARS_SHOWN = 80  # of the first row error; the JSON report has every error in full


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _usd(value: float | None) -> str:
    return "-" if value is None else f"${value:.6f}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} ms"


def _shortened(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render(report: dict[str, Any], console: Console | None = None) -> None:
    """The report as tables on `console` (stdout), each laid out for the console's width."""
    console = console or Console()
    data = report["dataset"]
    labels = data["labels"]
    console.print(
        Text.assemble(
            (data["path"], "bold"),  # Text, not markup: a path may hold brackets
            f" ({data['format']}): {data['rows']} rows, labels low {labels['low']} / "
            f"medium {labels['medium']} / high {labels['high']}; judge ",
            (report["judge"], "bold"),
        )
    )
    for note in data["notes"]:
        for line in wrapped(note, console.width, "  "):
            console.print(Text(line, style="dim"))
    grids = []
    if report["verdicts"] is not None:
        judge = report["verdicts"]["judge"]
        grids += [_verdicts_grid(report), _per_tier_grid(judge), _confusion_grid(judge)]
    grids.append(_operations_grid(report))
    if report["routing_quality"] is not None:
        grids.append(_routing_grid(report["routing_quality"], data["ladder"]))
        curves = report["routing_quality"].get("curves")
        if curves is not None:
            grids.append(_curves_grid(curves, data["ladder"]))
    for grid in grids:
        show(console, grid)
    for line in _margin_lines(report):
        for part in wrapped(line, console.width, "  "):
            console.print(Text(part))


def _margin_lines(report: dict[str, Any]) -> list[str]:
    """The judge's lead over length-only, and whether the draw of the rows could explain it."""
    found = []
    verdicts, quality = report["verdicts"], report["routing_quality"]
    for what, margin in (
        ("accuracy", verdicts and verdicts.get("judge_over_length")),
        ("routed quality", quality and quality.get("judge_over_length")),
    ):
        if not margin:
            continue
        verdict = (
            "a settled difference: the draw of the rows does not explain it"
            if margin["settled"]
            else "within the draw of the rows: not a settled difference"
        )
        found.append(
            f"judge - length-only, {what}: {margin['difference'] * 100:+.1f} points, "
            f"{margin['level']:.0%} interval [{margin['low'] * 100:+.1f}, "
            f"{margin['high'] * 100:+.1f}] over {margin['draws']:,} paired resamples of the rows; "
            f"ahead on {margin['rows_ahead']} rows, behind on {margin['rows_behind']} (sign test "
            f"p = {margin['sign_test_p']:.3g}): {verdict}"
        )
    return found


def _verdicts_grid(report: dict[str, Any]) -> Grid:
    verdicts = report["verdicts"]
    cuts = verdicts["length_only"]["thresholds_tokens"]
    names = {
        "judge": f"judge ({report['judge']})",
        "length_only": f"length-only (<{cuts[0]} low, >={cuts[1]} high tokens)",
        "always_low": "always low",
        "always_medium": "always medium",
        "always_high": "always high",
    }
    rows = [_verdict_row(name, verdicts[key]) for key, name in names.items()]
    columns = ("predictor", "accuracy", "macro-F1", "under-routed", "over-routed")
    return Grid(
        f"Verdicts against labels ({report['judged_rows']} judged rows)",
        (*columns, "verdicts low/med/high"),
        rows,
    )


def _verdict_row(name: str, m: dict[str, Any]) -> tuple[str, ...]:
    return (
        name,
        _pct(m["accuracy"]),
        f"{m['macro_f1']:.3f}",
        _pct(m["under_routing"]),
        _pct(m["over_routing"]),
        "/".join(str(m["per_tier"][tier]["predicted"]) for tier in TIERS),
    )


def _per_tier_grid(judge: dict[str, Any]) -> Grid:
    rows = [
        (
            tier,
            _pct(s["precision"]),
            _pct(s["recall"]),
            f"{s['f1']:.3f}",
            str(s["support"]),
            str(s["predicted"]),
        )
        for tier, s in judge["per_tier"].items()
    ]
    return Grid("Judge per tier", ("tier", "precision", "recall", "F1", "labelled", "given"), rows)


def _confusion_grid(judge: dict[str, Any]) -> Grid:
    rows = [
        (tier, *(str(c) for c in counts))
        for tier, counts in zip(TIERS, judge["confusion"], strict=True)
    ]
    return Grid("Judge confusion", ("label \\ verdict", *TIERS), rows, heading="labelled {}, given")


def _operations_grid(report: dict[str, Any]) -> Grid:
    ops = report["operations"]
    errors = report["row_errors"]
    kinds = ", ".join(f"{k} {n}" for k, n in ops["failure_kinds"].items())
    not_judged = str(len(errors))
    if errors:
        first = _shortened(f"{errors[0]['id']}: {errors[0]['error']}", ERROR_CHARS_SHOWN)
        not_judged += f" (first: {first})"
    failures = str(ops["judge_failures"])
    if kinds:
        failures += f" ({kinds}; answered by judge.on_failure)"
    latency = ops["latency_ms"]
    rows = [
        ("judged rows", f"{report['judged_rows']} of {report['dataset']['rows']}"),
        ("rows not judged", not_judged),
        ("judge failures", failures),
        ("verdict sources", ", ".join(f"{k} {n}" for k, n in sorted(ops["sources"].items()))),
        ("judge calls / cache hits", f"{ops['judge_calls']} / {ops['cache_hits']}"),
        ("judge spend", _usd(ops["judge_spend_usd"])),
        ("judge latency p50 / p95", f"{_ms(latency['p50'])} / {_ms(latency['p95'])}"),
        *_local_rows(report),
        ("wall time", f"{ops['wall_s']:.2f} s"),
    ]
    return Grid("Judge operations", ("figure", "value"), rows, show_header=False, numbers=False)


def _local_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    """A local or hybrid judge's share of answers, and what one costs in time."""
    local = report.get("local_model")
    if local is None:
        return []
    answered = report["operations"]["answered_locally"]
    share = f"{answered['rows']} of {report['judged_rows']} ({_pct(answered['share'])})"
    if local["threshold"] is not None:
        share += f" at confidence >= {local['threshold']:g}"
    latency = answered["latency_ms"]
    return [
        ("answered locally", share),
        ("local latency p50 / p95", f"{_ms(latency['p50'])} / {_ms(latency['p95'])}"),
    ]


def _routing_grid(quality: dict[str, Any], ladder: dict[str, str] | None) -> Grid:
    rungs = " < ".join(ladder.values()) if ladder else "the ladder"
    columns = ("run", "quality", "cost/query", "cost vs strongest", "quality kept", "PGR")
    rows = [
        (
            RUN_LABELS[key],
            _pct(run["quality"]),
            _usd(run["cost_per_query_usd"]),
            _pct(run["cost_share"]),
            _pct(run["quality_kept"]),
            "-" if run["pgr"] is None else f"{run['pgr']:.3f}",
            _pct(run["strong_calls"]),
            _pct(run["cost_share_at_equal_quality"]),
        )
        for key, run in quality["runs"].items()
    ]
    return Grid(
        f"Routing quality on {quality['rows']} rows ({rungs})",
        (*columns, "strong calls", "cost vs mix at equal quality"),
        rows,
    )


def _curves_grid(curves: dict[str, Any], ladder: dict[str, str] | None) -> Grid:
    weak, strong = curves["weak"], curves["strong"]
    pair = f"{ladder[weak]} vs {ladder[strong]}" if ladder else f"{weak} vs {strong} rung"
    rows = [
        (
            CURVE_LABELS[key],
            "-" if run["apgr"] is None else f"{run['apgr']:.3f}",
            _pct(run["cpt_50"]),
            _pct(run["cpt_80"]),
            _pct(run["least_cost_share_for_95pct_quality"]),
            _pct(run["best_quality_kept_at_half_cost"]),
        )
        for key, run in curves["runs"].items()
    ]
    columns = ("score", "APGR", "CPT(50%)", "CPT(80%)")
    return Grid(
        f"Threshold sweep, two models ({pair}): strong when the score is at least the threshold",
        (*columns, "least cost for 95% quality", "quality kept at half cost"),
        rows,
    )
