"""`judge-router eval`: run a judge over labelled prompts and print how often, and how costly, it is wrong."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

import click

from judge_router.config import ConfigError, Settings, load_settings
from judge_router.evaluation.datasets import (
    DEFAULT_LEVELS,
    FORMATS,
    DatasetError,
    EvalRow,
    load_dataset,
)
from judge_router.evaluation.outputs import same_file, unwritable_reason
from judge_router.evaluation.run import RowResult, evaluate
from judge_router.evaluation.selection import random_seed, select_rows

MEMORY_LEDGER = Path(":memory:")  # sqlite3's in-memory database


def eval_settings(settings: Settings, judge: str | None, no_cache: bool) -> Settings:
    """The settings with --judge and --no-cache applied. A --judge model configured elsewhere (a tier,
    the baseline) keeps its litellm_params; an unlisted one gets none (credentials from the env).

    The ledger is for real traffic: eval records nothing, so its engine gets an in-memory SQLite
    ledger and never opens (or creates) the service's file.
    """
    update: dict[str, Any] = {"ledger": settings.ledger.model_copy(update={"path": MEMORY_LEDGER})}
    if judge:
        entry = settings.model_entry(judge)
        update["judge"] = settings.judge.model_copy(
            update={"model": entry.model, "litellm_params": entry.litellm_params}
        )
    if no_cache:
        update["cache"] = settings.cache.model_copy(update={"enabled": False})
    return settings.model_copy(update=update)


def check_outputs(dataset: Path, json_path: str | None, out_path: Path | None) -> None:
    """Refuse, before a single judge call, files the run could not write at its end."""
    outputs = {
        "--json": Path(json_path) if json_path not in (None, "-") else None,
        "--out": out_path,
    }
    named = {option: path for option, path in outputs.items() if path is not None}
    for option, path in named.items():
        if same_file(path, dataset):
            raise click.BadParameter(f"{path} is the data set itself", param_hint=f"'{option}'")
        reason = unwritable_reason(path)
        if reason is not None:
            raise click.BadParameter(reason, param_hint=f"'{option}'")
    if len(named) == 2 and same_file(named["--json"], named["--out"]):
        raise click.UsageError("--json and --out name the same file; give each its own")


def sample_seed(limit: int | None, sample: int | None, seed: int | None) -> int | None:
    """The seed --sample draws with (a fresh one, reported, when none is given); None without it."""
    if sample is not None and limit is not None:
        raise click.UsageError(
            "--limit (the first N rows) and --sample (N random rows) both choose rows; give one"
        )
    if seed is not None and sample is None:
        raise click.UsageError("--seed only applies to --sample")
    if sample is None:
        return None
    return random_seed() if seed is None else seed


def _run(
    settings: Settings, rows: list[EvalRow], concurrency: int
) -> tuple[list[RowResult], float]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from judge_router.service.factory import build_engine  # imports litellm: only when needed

    try:
        engine = build_engine(settings)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        judge = settings.judge
        if not judge.is_heuristic and not engine.judges.calls_llm:
            click.echo(
                f"warning: judge {judge.model} has no credentials; every verdict will come from "
                f"judge.on_failure={judge.on_failure} and count as a judge failure",
                err=True,
            )
        stderr = Console(stderr=True)
        progress = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=stderr,
            transient=True,
            disable=not stderr.is_terminal,  # a bar in a log or a pipe is only noise
        )

        with progress:
            task = progress.add_task(f"judging with {engine.judges.name}", total=len(rows))
            started = time.perf_counter()
            # The engine decides exactly as the service does, verdict cache included.
            results = asyncio.run(
                evaluate(rows, engine.decide, concurrency, lambda _: progress.advance(task))
            )
            wall_s = time.perf_counter() - started
    finally:
        asyncio.run(engine.aclose())
    return results, wall_s


@click.command("eval")
@click.argument("dataset", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="JUDGE_ROUTER_CONFIG",
    help="YAML config file (default: $JUDGE_ROUTER_CONFIG, else built-in defaults).",
)
@click.option(
    "--judge", metavar="NAME", help="Judge to evaluate: 'heuristic' or a litellm model name."
)
@click.option(
    "--concurrency",
    metavar="N",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Rows judged at once.",
)
@click.option(
    "--limit",
    metavar="N",
    type=click.IntRange(min=1),
    help="Judge only the file's first N rows (a quick check: a sorted file's first rows are "
    "often one tier).",
)
@click.option(
    "--sample",
    metavar="N",
    type=click.IntRange(min=1),
    help="Judge N rows drawn at random, kept in file order; not with --limit.",
)
@click.option(
    "--seed",
    metavar="S",
    type=int,
    help="Seed for --sample: the same seed draws the same rows (default: a fresh one, shown in "
    "the report's notes).",
)
@click.option(
    "--json",
    "json_path",
    metavar="FILE",
    help="Write the whole report as JSON to FILE ('-': stdout).",
)
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="One CSV row per prompt.",
)
@click.option("--no-cache", is_flag=True, help="Neither read nor write the verdict cache.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(("auto", *FORMATS)),
    default="auto",
    show_default=True,
    help="Data format (auto: .csv is RouterBench, JSONL by its fields).",
)
@click.option(
    "--levels",
    metavar="SPEC",
    default=DEFAULT_LEVELS,
    show_default=True,
    help="MATH level -> tier mapping.",
)
@click.option(
    "--ladder",
    metavar="SPEC",
    help="RouterBench models per tier, cheapest first: low=MODEL,medium=MODEL,high=MODEL "
    "(default: mistral-7b-chat, mixtral-8x7b-chat, gpt-4-1106-preview).",
)
def eval_command(
    dataset: Path,
    config_path: str | None,
    judge: str | None,
    concurrency: int,
    limit: int | None,
    sample: int | None,
    seed: int | None,
    json_path: str | None,
    out_path: Path | None,
    no_cache: bool,
    fmt: str,
    levels: str,
    ladder: str | None,
) -> None:
    """Rate DATASET's labelled prompts with the judge; report accuracy, routing errors and costs."""
    from judge_router.evaluation.report import build_report, write_csv
    from judge_router.evaluation.tables import render

    logging.basicConfig(level=logging.ERROR)  # per-row judge failures are counted in the report
    seed = sample_seed(limit, sample, seed)
    check_outputs(dataset, json_path, out_path)
    try:
        settings = eval_settings(load_settings(config_path), judge, no_cache)
        data = load_dataset(dataset, fmt, levels, ladder)
    except (ConfigError, DatasetError) as exc:
        raise click.ClickException(str(exc)) from None
    selection = select_rows(data.rows, limit, sample, seed)
    results, wall_s = _run(settings, selection.rows, concurrency)
    report = build_report(data, results, settings.judge.model, wall_s, selection)
    if json_path == "-":
        click.echo(json.dumps(report, indent=2))
    else:
        render(report)
        if json_path:
            Path(json_path).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if out_path is not None:
        write_csv(out_path, results)
    if report["verdicts"] is None:
        raise click.ClickException("no row could be judged (see row_errors in the report)")
