"""`report`'s tables for the rollout arms and for --group-by, laid out for the console's width by
the eval report's layout (a table when it fits with no figure cut, else a list of figures)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.text import Text

from judge_router.accounting.reports import print_summary, scope, usd
from judge_router.evaluation.layout import Grid, show


def print_arms(summary: dict[str, Any], console: Console) -> None:
    """The rollout's arms side by side: what a request cost routed, and held back on the
    baseline. Quality per arm is a column of its own, empty until it is measured."""
    arms = summary["by_arm"]
    if not arms:
        return
    rows = [
        (
            row["arm"], str(row["requests"]), str(row["proxied"]),
            usd(row["spend_per_request_usd"]), usd(row["estimated_spend_per_request_usd"]),
            usd(row["net_savings_usd"]), "-" if row["quality"] is None else str(row["quality"]),
        )  # fmt: skip
        for row in arms
    ]
    columns = ("arm", "requests", "proxied", "per request", "est. per request", "net saved",
               "quality")  # fmt: skip
    show(console, Grid("by rollout arm" + scope(summary), columns, rows, heading="arm {}"))
    console.print(Text("Forced and passthrough requests are in no arm."))
    console.print(Text("Quality per arm: not measured yet."))


def print_groups(summary: dict[str, Any], console: Console | None = None) -> None:
    """A --group-by answer: the totals, each group's figures, and each group's spend by model."""
    console = console or Console()
    print_summary(summary, console, breakdowns=())
    name = summary["group_by"]
    groups: list[tuple[str, ...]] = []
    models: list[tuple[str, ...]] = []
    for group in summary["groups"]:
        groups.append((
            group["group"], str(group["requests"]), usd(group["judge_spend_usd"]),
            usd(group["realised_spend_usd"]), usd(group["baseline_spend_usd"]),
            usd(group["net_savings_usd"]), usd(group["spend_per_request_usd"]),
        ))  # fmt: skip
        models.extend(
            (
                f"{group['group']}: {row['model']}", str(row["requests"]),
                usd(row["realised_spend_usd"]), usd(row["spend_per_request_usd"]),
                usd(row["estimated_spend_per_request_usd"]),
            )  # fmt: skip
            for row in group["by_model"]
        )
    columns: tuple[str, ...] = (name, "requests", "judge", "realised", "baseline", "net saved",
                                "per request")  # fmt: skip
    show(console, Grid(f"by {name}" + scope(summary), columns, groups))
    if summary["groups_folded"]:
        console.print(Text(f"(other): {summary['groups_folded']} smaller groups added up"))
    columns = (f"{name}: model", "requests", "realised", "per request", "est. per request")
    show(console, Grid(f"spend per request by model, by {name}", columns, models))
