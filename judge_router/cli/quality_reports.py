"""The quality loop's commands: `shadow-report` (would a candidate do?) and `outcomes` (the outcome
rows as JSON lines, the labels a learned judge trains on)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import click

from judge_router.accounting.outcome_row import OUTCOME_SOURCES
from judge_router.cli.ledger_source import read_ledger
from judge_router.cli.options import config_option
from judge_router.config import ConfigError, Settings, load_settings

since_option = click.option("--since", help="Only rows from this ISO date or datetime on (UTC).")


def _settings(config_path: str | None) -> Settings:
    try:
        return load_settings(config_path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _since(since: str | None) -> str | None:
    from judge_router.serving.app import parse_since

    try:
        return parse_since(since)
    except Exception as exc:  # parse_since raises the HTTP edge's 400; here it is a usage error
        raise click.BadParameter(str(getattr(exc, "detail", exc)), param_hint="--since") from None


@click.command("shadow-report")
@config_option
@since_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def shadow_report_command(config_path: str | None, since: str | None, as_json: bool) -> None:
    """Shadow tests from the ledger: per candidate, its grades against the answers sent, cost per
    request of each, and the projected monthly saving of switching its tiers to it."""
    from rich.console import Console

    from judge_router.accounting.shadow_report import shadow_facts, shadow_report
    from judge_router.cli.report_tables import print_shadow_report

    settings = _settings(config_path)
    since_iso = _since(since)
    facts = read_ledger(settings, lambda ledger: ledger.read(shadow_facts, since_iso))
    tested = {test.candidate.model: [t.value for t in test.tiers] for test in settings.shadow}
    report = shadow_report(facts, tested, datetime.now(UTC), since_iso)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        print_shadow_report(report, Console())


def export_line(row: dict[str, Any]) -> dict[str, Any]:
    """An outcome row as `outcomes` writes it: prompt_text only when the request stored it."""
    return {key: value for key, value in row.items() if key != "prompt_text" or value is not None}


@contextmanager
def _output(path: str | None) -> Iterator[IO[str]]:
    if path is None:
        yield sys.stdout
        return
    with Path(path).open("w", encoding="utf-8") as file:
        yield file


@click.command("outcomes")
@config_option
@since_option
@click.option("--source", type=click.Choice(OUTCOME_SOURCES), help="Only rows of this source.")
@click.option("--output", "-o", "output", type=click.Path(dir_okay=False),
              help="Write to this file instead of stdout.")  # fmt: skip
def outcomes_command(
    config_path: str | None, since: str | None, source: str | None, output: str | None
) -> None:
    """Export outcome rows as JSON lines, oldest first, each joined with its request's prompt
    hash, tier, model, arm and metadata (docs/quality.md lists the fields)."""
    settings = _settings(config_path)
    since_iso = _since(since)
    rows = read_ledger(settings, lambda ledger: ledger.outcomes(since_iso, source))
    with _output(output) as out:
        for row in rows:
            out.write(json.dumps(export_line(row)) + "\n")
    if output is not None:
        click.echo(f"{len(rows)} outcome rows written to {output}", err=True)
