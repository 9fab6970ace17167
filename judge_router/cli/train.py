"""`judge-router train`: fit a local judge on labelled data sets and the ledger, measure it on a
held-back slice, and write the model file the service loads (`judge.local_model`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from judge_router.cli.options import config_option
from judge_router.config import ConfigError, Settings, load_settings
from judge_router.evaluation.datasets import DEFAULT_LEVELS, FORMATS, DatasetError, load_dataset
from judge_router.evaluation.training import Evaluation, Example, TrainingError, train


def ledger_examples_of(settings: Settings) -> tuple[list[Example], dict[str, int]]:
    from judge_router.cli.ledger_source import read_ledger
    from judge_router.evaluation.ledger_examples import ledger_examples

    try:
        return read_ledger(
            settings, lambda ledger: ledger.read(ledger_examples), "nothing to train on"
        )
    except click.ClickException as exc:
        raise click.ClickException(f"--from-ledger: {exc.message}") from None


def print_evaluation(evaluation: Evaluation, trained: dict[str, Any], out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for side in ("train", "test"):
        data = trained[side]
        labels = ", ".join(f"{tier} {n}" for tier, n in data["by_label"].items())
        sources = ", ".join(f"{name} {n}" for name, n in data["by_source"].items())
        console.print(f"{side}: {data['rows']} rows ({labels}) from {sources or 'nothing'}")
    if not evaluation.rows:
        console.print("no test rows (--test-share 0): nothing measured")
    else:
        console.print(
            f"test: accuracy {evaluation.accuracy:.1%}, under-routed {evaluation.under_routed:.1%} "
            f"(a cheaper tier than the label), over-routed {evaluation.over_routed:.1%}"
        )
        table = Table(title="hybrid mode on the test rows: the local model answers at or above "
                      "the threshold")  # fmt: skip
        for column in ("judge.local_threshold", "answered locally", "agreement with the label"):
            table.add_column(column, justify="right")
        for threshold, (share, agree) in evaluation.by_threshold.items():
            shown = "-" if agree is None else f"{agree:.1%}"
            table.add_row(f"{threshold:.2f}", f"{share:.1%}", shown)
        console.print(table)
    console.print(f"model written to {out} (set judge.local_model to it)")


@click.command("train")
@click.argument("datasets", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@config_option
@click.option(
    "--from-ledger", is_flag=True, help="Also learn from the ledger (needs judge.learn: true)."
)
@click.option("--format", "fmt", type=click.Choice(("auto", *FORMATS)), default="auto",
              show_default=True, help="Data format of every DATASET (as eval).")  # fmt: skip
@click.option("--levels", metavar="SPEC", default=DEFAULT_LEVELS, show_default=True,
              help="MATH level -> tier mapping (as eval).")  # fmt: skip
@click.option("--ladder", metavar="SPEC", help="RouterBench models per tier (as eval).")
@click.option("--test-share", type=click.FloatRange(0, 1, max_open=True), default=0.2,
              show_default=True, help="Share of rows held back to measure the model.")  # fmt: skip
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the split.")
@click.option("--c", "c", type=click.FloatRange(min=0, min_open=True), default=4.0,
              show_default=True, help="Inverse regularisation strength.")  # fmt: skip
@click.option("--class-weight", type=click.Choice(("balanced", "none")), default="balanced",
              show_default=True, help="Weigh rare tiers up (balanced) or not.")  # fmt: skip
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The model file to write.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print what the model file records as JSON.")
def train_command(
    datasets: tuple[Path, ...],
    config_path: str | None,
    from_ledger: bool,
    fmt: str,
    levels: str,
    ladder: str | None,
    test_share: float,
    seed: int,
    c: float,
    class_weight: str,
    out_path: Path,
    as_json: bool,
) -> None:
    """Train a local judge on DATASET files (any format `eval` reads) and/or the ledger."""
    if not datasets and not from_ledger:
        raise click.UsageError("give DATASET files, --from-ledger, or both")
    try:
        settings = load_settings(config_path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    from judge_router.evaluation.training import dataset_examples

    examples: list[Example] = []
    for path in datasets:
        try:
            dataset = load_dataset(path, fmt, levels, ladder)
        except DatasetError as exc:
            raise click.ClickException(str(exc)) from None
        examples.extend(dataset_examples(dataset, settings.judge.max_input_tokens))
    read: dict[str, int] = {}
    if from_ledger:
        found, read = ledger_examples_of(settings)
        examples.extend(found)
    try:
        model, evaluation, trained = train(
            examples, test_share, seed, c, balanced=class_weight == "balanced"
        )
    except TrainingError as exc:
        raise click.ClickException(str(exc)) from None
    if read:
        trained["ledger"] = read
    try:
        model.save(out_path)
    except OSError as exc:
        raise click.ClickException(f"cannot write {out_path}: {exc.strerror or exc}") from None
    if as_json:
        click.echo(
            json.dumps({"out": str(out_path), "version": model.version, **trained}, indent=2)
        )
    else:
        print_evaluation(evaluation, trained, out_path)
