"""Rich tables for the CLI's report and simulate commands."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text


def usd(value: float | None) -> str:
    if value is None:
        return "-"
    return f"${value:,.2f}" if abs(value) >= 1 else f"${value:,.6f}"


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


def ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}x"


BREAKDOWNS = ("by_tier", "by_model", "by_day")


def scope(summary: dict[str, Any]) -> str:
    """' since …' and ' where k=v, …' as far as the summary was narrowed."""
    where = [f"{key}={'|'.join(values)}" for key, values in summary.get("where", {}).items()]
    return (f" since {summary['since']}" if summary["since"] else "") + (
        f" where {', '.join(where)}" if where else ""
    )


def print_summary(
    summary: dict[str, Any],
    console: Console | None = None,
    breakdowns: tuple[str, ...] = BREAKDOWNS,
) -> None:
    console = console or Console()
    totals = summary["totals"]
    table = Table(title=Text("judge-router: totals" + scope(summary)))  # Text: values, not markup
    table.add_column("figure")
    table.add_column("value", justify="right")
    for label, value in (
        ("requests", str(totals["requests"])),
        ("proxied (model called)", str(totals["proxied"])),
        ("failed / incomplete", f"{totals['errors']} / {totals['incomplete']}"),
        (
            "cache hit rate",
            pct(None if totals["cache_hit_rate"] is None else 100 * totals["cache_hit_rate"]),
        ),
        ("judge spend", usd(totals["judge_spend_usd"])),
        ("realised spend", usd(totals["realised_spend_usd"])),
        ("baseline spend", usd(totals["baseline_spend_usd"])),
        ("gross savings", usd(totals["gross_savings_usd"])),
        ("net savings (after judge and grading)", usd(totals["net_savings_usd"])),
        ("savings %", pct(totals["savings_pct"])),
        ("judge ROI (gross / judge)", ratio(totals["judge_roi"])),
    ):
        table.add_row(label, value)
    console.print(table)

    sources = Table(title="verdicts by source")
    sources.add_column("source")
    sources.add_column("requests", justify="right")
    for source, count in summary["verdicts_by_source"].items():
        sources.add_row(source, str(count))
    console.print(sources)

    for key in breakdowns:
        title = key.removeprefix("by_")
        breakdown = Table(title=f"by {title}")
        for column in (title, "requests", "judge", "realised", "baseline", "net saved", "saved %"):
            breakdown.add_column(column, justify="left" if column == title else "right")
        for row in summary[key]:
            breakdown.add_row(
                str(row[title]),
                str(row["requests"]),
                usd(row["judge_spend_usd"]),
                usd(row["realised_spend_usd"]),
                usd(row["baseline_spend_usd"]),
                usd(row["net_savings_usd"]),
                pct(row["savings_pct"]),
            )
        console.print(breakdown)


def print_simulation(result: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title=f"traffic mix: {result['requests_per_month']:,} requests/month")
    for column in ("type", "tier", "requests", "before", "after", "judge"):
        table.add_column(column, justify="left" if column in ("type", "tier") else "right")
    for row in result["types"]:
        table.add_row(
            row["name"], row["tier"], f"{row['requests']:,.0f}",
            usd(row["before_usd"]), usd(row["after_usd"]), usd(row["judge_usd"]),
        )  # fmt: skip
    table.add_section()
    table.add_row(
        "total", "", f"{result['requests_per_month']:,}",
        usd(result["before_usd"]), usd(result["after_usd"]), usd(result["judge_usd"]),
    )  # fmt: skip
    console.print(table)
    console.print(
        f"before routing {usd(result['before_usd'])}/month; after {usd(result['after_usd'])} "
        f"({pct(result['saved_before_judge_pct'])} saved before judge cost); with the judge "
        f"{usd(result['after_with_judge_usd'])}: net {usd(result['net_saved_usd'])} "
        f"({pct(result['net_saved_pct'])}), judge ROI {ratio(result['judge_roi'])}"
    )
