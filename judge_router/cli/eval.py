"""`judge-router eval`: run a judge over labelled prompts and print how often, and how costly, it is wrong."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

import click

from judge_router.cli.options import config_option
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
from judge_router.routing.judges.local_model import LocalModel, ModelFileError, load_model

MEMORY_LEDGER = Path(":memory:")  # sqlite3's in-memory database
LOCAL_MODES = ("local", "hybrid")  # --judge names that are judge.mode values, not models


def _judge_update(
    settings: Settings,
    judge: str | None,
    local_model: Path | None,
    local_threshold: float | None,
) -> dict[str, Any]:
    """judge.* as --judge, --local-model and --local-threshold set them. A named judge (heuristic
    or a model) is measured alone: judge.mode llm; `local` and `hybrid` are judge.mode values."""
    update: dict[str, Any] = {}
    if judge in LOCAL_MODES:
        update["mode"] = judge
    elif judge:
        entry = settings.model_entry(judge)
        update.update(mode="llm", model=entry.model, litellm_params=entry.litellm_params)
    if local_model is not None:
        update["local_model"] = local_model
    if local_threshold is not None:
        update["local_threshold"] = local_threshold
    mode = update.get("mode", settings.judge.mode)
    if mode != "llm" and update.get("local_model", settings.judge.local_model) is None:
        raise click.UsageError(
            f"--judge {mode} needs a model file: --local-model FILE (written by "
            "`judge-router train`) or judge.local_model in the config"
        )
    if local_threshold is not None and mode != "hybrid":
        raise click.UsageError("--local-threshold only applies to --judge hybrid")
    return update


def eval_settings(
    settings: Settings,
    judge: str | None,
    no_cache: bool,
    local_model: Path | None = None,
    local_threshold: float | None = None,
) -> Settings:
    """The settings with --judge, --local-model, --local-threshold and --no-cache applied. A --judge
    model configured elsewhere (a tier, the baseline) keeps its litellm_params; an unlisted one gets
    none (credentials from the env).

    The ledger is for real traffic: eval records nothing, so its engine gets an in-memory SQLite
    ledger and never opens (or creates) the service's file.
    """
    update: dict[str, Any] = {"ledger": settings.ledger.model_copy(update={"path": MEMORY_LEDGER})}
    judge_update = _judge_update(settings, judge, local_model, local_threshold)
    if judge_update:
        update["judge"] = settings.judge.model_copy(update=judge_update)
    if no_cache:
        update["cache"] = settings.cache.model_copy(update={"enabled": False})
    return settings.model_copy(update=update)


def measured_model(settings: Settings, from_option: bool) -> LocalModel | None:
    """The local model a local or hybrid judge rates with, read before any row is judged: the
    service would carry on without an unusable file, but a measurement of it must not."""
    judge = settings.judge
    if judge.mode == "llm" or judge.local_model is None:
        return None
    try:
        return load_model(judge.local_model)
    except ModelFileError as exc:
        if from_option:
            raise click.BadParameter(str(exc), param_hint="'--local-model'") from None
        raise click.ClickException(f"{exc} (judge.local_model in the config)") from None


def judge_label(settings: Settings, model: LocalModel | None) -> str:
    """The judge as the report names it."""
    judge = settings.judge
    if model is None:
        return judge.model
    local = f"local:{model.version}"
    if judge.mode == "local":
        return local
    return f"hybrid: {local} at confidence >= {judge.local_threshold:g}, else {judge.model}"


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
        if judge.mode == "hybrid" and not engine.judges.calls_llm:
            click.echo(
                f"warning: the LLM judge {judge.model} has no credentials; rows the local model "
                f"rates below confidence {judge.local_threshold:g} get judge.on_failure="
                f"{judge.on_failure}'s answer and count as judge failures",
                err=True,
            )
        elif judge.mode == "llm" and not judge.is_heuristic and not engine.judges.calls_llm:
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
@config_option
@click.option(
    "--judge",
    metavar="NAME",
    help="Judge to evaluate: 'heuristic', a litellm model name, 'local' (the trained model "
    "rates every row) or 'hybrid' (the trained model when confident, else the LLM judge).",
)
@click.option(
    "--local-model",
    metavar="FILE",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Model file of --judge local|hybrid, written by `judge-router train` "
    "(default: judge.local_model).",
)
@click.option(
    "--local-threshold",
    metavar="X",
    type=click.FloatRange(0, 1),
    help="--judge hybrid: the least confidence at which the local model answers "
    "(default: judge.local_threshold).",
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
    local_model: Path | None,
    local_threshold: float | None,
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
    from judge_router.evaluation.report import Scoring, build_report, write_csv
    from judge_router.evaluation.tables import render

    logging.basicConfig(level=logging.ERROR)  # per-row judge failures are counted in the report
    seed = sample_seed(limit, sample, seed)
    check_outputs(dataset, json_path, out_path)
    try:
        settings = eval_settings(
            load_settings(config_path), judge, no_cache, local_model, local_threshold
        )
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    model = measured_model(settings, from_option=local_model is not None)
    try:
        data = load_dataset(dataset, fmt, levels, ladder)
    except DatasetError as exc:
        raise click.ClickException(str(exc)) from None
    selection = select_rows(data.rows, limit, sample, seed)
    results, wall_s = _run(settings, selection.rows, concurrency)
    hybrid = settings.judge.mode == "hybrid"
    scoring = Scoring(
        settings.judge.max_input_tokens,
        model,
        settings.judge.mode,
        settings.judge.local_threshold if hybrid else None,
    )
    label = judge_label(settings, model)
    report = build_report(data, results, label, wall_s, selection, scoring)
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
