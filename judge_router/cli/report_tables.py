"""`report`'s tables for the rollout arms, --group-by and answer quality, and `shadow-report`'s,
laid out for the console's width by the eval report's layout (a table when it fits with no figure
cut, else a list of figures)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.text import Text

from judge_router.accounting.reports import pct, print_summary, scope, usd
from judge_router.evaluation.layout import Grid, show

SOURCES = ("cascade", "shadow", "sample", "feedback")


def _mean(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _counted(figures: dict[str, Any], mean: str, digits: int) -> str:
    """'7.4 (n=30)': a mean and how many values it is over; '-' with none."""
    count = figures["graded" if mean == "mean_grade" else "scored"]
    return f"{_mean(figures[mean], digits)} (n={count})" if count else "-"


def _rows(figures: dict[str, Any]) -> int:
    """A source's outcome rows (feedback's are all scored)."""
    return int(figures.get("outcomes", figures["scored"]))


def _measured(summary: dict[str, Any]) -> bool:
    quality: dict[str, Any] = summary.get("quality") or {}
    return any(_rows(quality[source]) for source in SOURCES if source in quality)


def print_arms(summary: dict[str, Any], console: Console) -> None:
    """The rollout's arms side by side: what a request cost routed, and held back on the
    baseline, and how its answers were graded when quality is sampled."""
    arms = summary["by_arm"]
    if not arms:
        return
    rows = [
        (
            row["arm"],
            str(row["requests"]),
            str(row["proxied"]),
            usd(row["spend_per_request_usd"]),
            usd(row["estimated_spend_per_request_usd"]),
            usd(row["net_savings_usd"]),
            _counted(row["quality"]["sample"], "mean_grade", 1),
            _counted(row["quality"]["feedback"], "mean_score", 2),
        )  # fmt: skip
        for row in arms
    ]
    columns = ("arm", "requests", "proxied", "per request", "est. per request", "net saved",
               "sampled grade", "feedback")  # fmt: skip
    show(console, Grid("by rollout arm" + scope(summary), columns, rows, heading="arm {}"))
    console.print(Text("Forced and passthrough requests are in no arm."))
    if _measured(summary):
        console.print(Text("Quality per arm: mean sampled grade (1-10) and feedback score (0-1)."))
    else:
        console.print(Text("Quality per arm: not measured yet (no outcome rows)."))


def print_quality(summary: dict[str, Any], console: Console) -> None:
    """Answer quality from the outcome rows, per source: overall, by tier, model, arm and group;
    nothing when there are none."""
    if not _measured(summary):
        return
    quality = summary["quality"]
    scopes: list[tuple[str, dict[str, Any]]] = [("all", quality)]
    for key in ("tier", "model", "arm"):
        scopes += [(f"{key} {entry[key]}", entry) for entry in quality[f"by_{key}"]]
    scopes += [(f"group {entry['group']}", entry) for entry in quality.get("groups", [])]
    rows = []
    for name, entry in scopes:
        for source in SOURCES:
            figures = entry[source]
            if not _rows(figures):
                continue
            rows.append((
                name, source, str(_rows(figures)),
                str(figures["scored"]), _mean(figures["mean_score"], 3),
                _mean(figures.get("mean_grade"), 2), str(figures.get("errors", "-")),
                usd(figures["spend_usd"]) if "spend_usd" in figures else "-",
            ))  # fmt: skip
    columns = ("of", "source", "outcomes", "scored", "mean score", "mean grade", "errors", "spend")
    show(console, Grid("answer quality" + scope(summary), columns, rows))
    console.print(Text(
        "Scores 0-1 (a grade g is (g - 1) / 9), grades 1-10. Quality spend "
        f"{usd(summary['totals']['quality_spend_usd'])} (grades, shadow answers) is taken off "
        "the net savings."
    ))  # fmt: skip


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
                f"{group['group']}: {row['model']}",
                str(row["requests"]),
                usd(row["realised_spend_usd"]),
                usd(row["spend_per_request_usd"]),
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


def print_shadow_report(report: dict[str, Any], console: Console) -> None:
    """`shadow-report`: one row per candidate, then how the monthly volume was estimated."""
    since = f" since {report['since']}" if report["since"] else ""
    if not report["candidates"]:
        console.print(Text(f"No shadow tests configured and no shadow outcome rows{since}."))
        return
    rows = [
        (
            entry["candidate"],
            ",".join(entry["tiers"]),
            str(entry["comparisons"]),
            str(entry["pairs"]),
            _mean(entry["candidate_mean_score"], 3),
            _mean(entry["primary_mean_score"], 3),
            pct(
                None
                if entry["at_least_as_good_share"] is None
                else 100 * entry["at_least_as_good_share"]
            ),
            usd(entry["candidate_cost_per_request_usd"]),
            usd(entry["primary_cost_per_request_usd"]),
            f"{entry['candidate_errors']} / {entry['grader_errors']}",
            usd(entry["projected_monthly_saving_usd"]),
        )  # fmt: skip
        for entry in report["candidates"]
    ]
    columns = ("candidate", "tiers", "compared", "pairs", "candidate score", "primary score",
               "candidate >= primary", "candidate per request", "primary per request",
               "errors (candidate / grader)", "saving per month")  # fmt: skip
    show(console, Grid("shadow tests" + since, columns, rows, heading="candidate {}"))
    days = report["window_days"]
    console.print(Text(
        "Scores 0-1 over the pairs (both answers graded). Saving per month = (primary - candidate "
        f"cost per request) x requests per month; window {report['window_start'] or '-'} to "
        f"{report['window_end']} ({'-' if days is None else f'{days:g}'} days). Monthly volume: "
        f"{report['monthly_volume']}."
    ))  # fmt: skip
