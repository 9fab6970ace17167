"""The `judge-router eval` report as rich tables: verdicts, per-tier scores, operations, routing."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

RUN_LABELS = {
    "judge": "judge",
    "length_only": "length-only",
    "always_cheapest": "always cheapest",
    "always_medium": "always medium",
    "always_strongest": "always strongest",
    "oracle": "oracle",
}


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _usd(value: float | None) -> str:
    return "-" if value is None else f"${value:.6f}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} ms"


TIERS = ("low", "medium", "high")


def render(report: dict[str, Any]) -> None:
    """The report as rich tables on stdout."""
    console = Console()
    data = report["dataset"]
    labels = data["labels"]
    console.print(
        f"[bold]{data['path']}[/] ({data['format']}): {data['rows']} rows, labels "
        f"low {labels['low']} / medium {labels['medium']} / high {labels['high']}; "
        f"judge [bold]{report['judge']}[/]"
    )
    for note in data["notes"]:
        console.print(f"  [dim]{note}[/]")
    if report["verdicts"] is not None:
        console.print(_verdicts_table(report))
        console.print(_per_tier_table(report["verdicts"]["judge"]))
        console.print(_confusion_table(report["verdicts"]["judge"]))
    console.print(_operations_table(report))
    if report["routing_quality"] is not None:
        console.print(_routing_table(report["routing_quality"], data["ladder"]))


def _verdicts_table(report: dict[str, Any]) -> Table:
    verdicts = report["verdicts"]
    cuts = verdicts["length_only"]["thresholds_tokens"]
    names = {
        "judge": f"judge ({report['judge']})",
        "length_only": f"length-only (<{cuts[0]} low, >={cuts[1]} high tokens)",
        "always_low": "always low",
        "always_medium": "always medium",
        "always_high": "always high",
    }
    table = Table(title=f"Verdicts against labels ({report['judged_rows']} judged rows)")
    for column in ("predictor", "accuracy", "macro-F1", "under-routed", "over-routed"):
        table.add_column(column, justify="left" if column == "predictor" else "right")
    table.add_column("verdicts low/med/high", justify="right")
    for key, name in names.items():
        m = verdicts[key]
        table.add_row(
            name,
            _pct(m["accuracy"]),
            f"{m['macro_f1']:.3f}",
            _pct(m["under_routing"]),
            _pct(m["over_routing"]),
            "/".join(str(m["per_tier"][tier]["predicted"]) for tier in TIERS),
        )
    return table


def _per_tier_table(judge: dict[str, Any]) -> Table:
    table = Table(title="Judge per tier")
    for column in ("tier", "precision", "recall", "F1", "labelled", "given"):
        table.add_column(column, justify="left" if column == "tier" else "right")
    for tier, s in judge["per_tier"].items():
        table.add_row(
            tier,
            _pct(s["precision"]),
            _pct(s["recall"]),
            f"{s['f1']:.3f}",
            str(s["support"]),
            str(s["predicted"]),
        )
    return table


def _confusion_table(judge: dict[str, Any]) -> Table:
    table = Table(title="Judge confusion")
    table.add_column("label \\ verdict")
    for tier in TIERS:
        table.add_column(tier, justify="right")
    for tier, counts in zip(TIERS, judge["confusion"], strict=True):
        table.add_row(tier, *(str(c) for c in counts))
    return table


def _operations_table(report: dict[str, Any]) -> Table:
    ops = report["operations"]
    errors = report["row_errors"]
    table = Table(title="Judge operations", show_header=False)
    table.add_column("figure", style="bold")
    table.add_column("value")
    kinds = ", ".join(f"{k} {n}" for k, n in ops["failure_kinds"].items())
    not_judged = str(len(errors))
    if errors:
        not_judged += f" (first: {errors[0]['id']}: {errors[0]['error']})"
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
        ("wall time", f"{ops['wall_s']:.2f} s"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def _routing_table(quality: dict[str, Any], ladder: dict[str, str] | None) -> Table:
    rungs = " < ".join(ladder.values()) if ladder else "the ladder"
    table = Table(title=f"Routing quality on {quality['rows']} rows ({rungs})")
    columns = ("run", "quality", "cost/query", "cost vs strongest", "quality kept", "PGR")
    for column in columns + ("strong calls", "cost vs mix at equal quality"):
        table.add_column(column, justify="left" if column == "run" else "right")
    for key, run in quality["runs"].items():
        table.add_row(
            RUN_LABELS[key],
            _pct(run["quality"]),
            _usd(run["cost_per_query_usd"]),
            _pct(run["cost_share"]),
            _pct(run["quality_kept"]),
            "-" if run["pgr"] is None else f"{run['pgr']:.3f}",
            _pct(run["strong_calls"]),
            _pct(run["cost_share_at_equal_quality"]),
        )
    return table
