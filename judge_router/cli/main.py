"""The judge-router command line: serve, route, demo, and the reporting tools."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Any

import click

from judge_router.cli.logs import FORMATS, LEVELS
from judge_router.cli.options import config_option
from judge_router.config import ConfigError, Settings, load_settings


def _settings(config_path: str | None) -> Settings:
    try:
        return load_settings(config_path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    # litellm logs two INFO lines for every call it makes: that is per-request chatter (and CPU),
    # so below DEBUG only its warnings and errors are shown.
    if logging.getLevelName(level) != logging.DEBUG:
        for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):
            logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="judge-router")
def main() -> None:
    """Route LLM requests by difficulty: a cheap judge rates each prompt, the tier picks the model."""


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@main.command()
@config_option
@click.option("--host", default=None, help="Address to bind (default: server.host, 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="Port, 1-65535 (default: server.port, 8080).")  # fmt: skip
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Worker processes; they share the verdict cache and the ledger.")  # fmt: skip
@click.option("--insecure-no-auth", is_flag=True,
              help="Allow a non-loopback address with no server.api_keys configured.")  # fmt: skip
@click.option("--log-level", type=click.Choice(LEVELS, case_sensitive=False), default="info",
              show_default=True, help="debug also shows litellm's own lines.")  # fmt: skip
@click.option("--log-format", type=click.Choice(FORMATS), default="text", show_default=True,
              help="text lines, or one JSON object per line.")  # fmt: skip
@click.option("--access-log/--no-access-log", default=True, show_default=True,
              help="One log line per request: method, path, status, tier, model, latency, id.")  # fmt: skip
def serve(
    config_path: str | None,
    host: str | None,
    port: int | None,
    workers: int,
    insecure_no_auth: bool,
    log_level: str,
    log_format: str,
    access_log: bool,
) -> None:
    """Run the HTTP service."""
    import logging.config
    import os

    import uvicorn

    from judge_router.cli.logs import logging_config
    from judge_router.serving.app import create_app
    from judge_router.upstream.model_check import check_models
    from judge_router.upstream.redact import Redactor, install_log_redaction

    settings = _settings(config_path)
    log_config = logging_config(log_level, log_format, access_log, settings.secrets())
    logging.config.dictConfig(log_config)
    bind = host or settings.server.host
    if not bind.strip():
        raise click.BadParameter("an empty address; give one, e.g. 127.0.0.1", param_hint="--host")
    if bind not in LOOPBACK_HOSTS and not settings.server.api_keys and not insecure_no_auth:
        raise click.ClickException(
            f"refusing to listen on {bind} with no server.api_keys: anyone who can reach it could "
            "spend your provider credits. Configure server.api_keys, or pass --insecure-no-auth."
        )
    install_log_redaction(Redactor(settings.secrets()))
    try:
        check_models(settings)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    common: dict[str, Any] = {
        "host": bind,
        "port": settings.server.port if port is None else port,
        "log_level": log_level.lower(),
        "log_config": log_config,  # uvicorn applies it again in each worker process
        "access_log": False,  # ours (serving/access_log.py) replaces uvicorn's
        "timeout_graceful_shutdown": settings.server.shutdown_timeout_s,
    }
    if workers > 1:
        # Each worker builds its own app from the same config file through the factory.
        if config_path:
            os.environ["JUDGE_ROUTER_CONFIG"] = str(Path(config_path).resolve())
        try:  # fail fast on config errors, once
            asyncio.run(create_app(settings).state.engine.aclose())
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None
        from judge_router.serving.workers import serve_workers

        host, port = common.pop("host"), common.pop("port")
        try:
            serve_workers(workers, host, port, common)
        except OSError as exc:  # the address is taken, or not this machine's
            raise click.ClickException(f"cannot listen on {host}:{port}: {exc}") from None
        return
    try:
        app = create_app(settings)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    uvicorn.run(app, **common)


@main.command()
@click.argument("prompt")
@config_option
@click.option("--tier", type=click.Choice(["low", "medium", "high"]), help="Force a tier.")
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
@click.option("--dry-run", is_flag=True, help="Decide without recording a ledger row.")
def route(
    prompt: str, config_path: str | None, tier: str | None, as_json: bool, dry_run: bool
) -> None:
    """Decide the tier and model for PROMPT (`-`: read it from stdin) without calling the model."""
    from judge_router.cli.local_engine import local_route
    from judge_router.routing.budget_limits import BudgetExceeded

    if prompt == "-":
        prompt = sys.stdin.read()
        if not prompt.strip():
            raise click.BadParameter("stdin held no prompt", param_hint="PROMPT")
    _setup_logging("WARNING")
    settings = _settings(config_path)
    try:
        answer, warnings = local_route(settings, prompt, tier, dry_run)
    except (ConfigError, BudgetExceeded) as exc:
        raise click.ClickException(str(exc)) from None
    for line in warnings:
        click.echo(f"warning: {line}", err=True)
    data = answer.model_dump(mode="json")
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    _print_mapping("Routing decision" + (" (dry run: not recorded)" if dry_run else ""), data)


@main.command()
@config_option
@click.option("--since", help="Only requests from this ISO date or datetime on (UTC).")
@click.option("--group-by", "group_by", metavar="KEY",
              help="Show groups: tier, model, day, rule, arm, api_key or metadata.KEY.")  # fmt: skip
@click.option("--where", "where", metavar="KEY=VALUE", multiple=True,
              help="Only requests whose KEY (metadata.KEY, api_key, rule, arm, tier, model) is "
                   "VALUE; repeatable, a repeated KEY means any of its values.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the whole summary as JSON.")
def report(
    config_path: str | None,
    since: str | None,
    group_by: str | None,
    where: tuple[str, ...],
    as_json: bool,
) -> None:
    """Spend and savings from the ledger: totals, by tier, model, day and rollout arm, or by any
    --group-by key, narrowed by --where."""
    from rich.console import Console

    from judge_router.accounting.reports import print_summary
    from judge_router.accounting.stats_scan import ScanTooLong
    from judge_router.accounting.stats_view import ViewError, stats_view
    from judge_router.cli.ledger_source import read_ledger
    from judge_router.cli.report_tables import print_arms, print_groups, print_quality
    from judge_router.serving.app import parse_since

    settings = _settings(config_path)
    try:
        since_iso = parse_since(since)
    except Exception as exc:  # parse_since raises the HTTP edge's 400; here it is a usage error
        raise click.BadParameter(str(getattr(exc, "detail", exc)), param_hint="--since") from None
    pairs = [tuple(condition.split("=", 1)) for condition in where]
    if bad := [condition for condition, pair in zip(where, pairs, strict=True) if len(pair) < 2]:
        raise click.BadParameter(f"{bad[0]!r} is not KEY=VALUE", param_hint="--where")
    try:
        view = stats_view(group_by, [(key, value) for key, value in pairs])
    except ViewError as exc:
        raise click.BadParameter(str(exc), param_hint="--group-by / --where") from None
    try:
        summary = read_ledger(settings, lambda ledger: ledger.summary(since_iso, view))
    except ScanTooLong as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    elif group_by is not None:
        print_groups(summary, Console())
        print_quality(summary, Console())
    else:
        console = Console()
        print_summary(summary, console)
        print_arms(summary, console)
        print_quality(summary, console)


@main.command()
@click.argument("mix_path", metavar="MIX.yaml", type=click.Path(exists=True, dir_okay=False))
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def simulate(mix_path: str, config_path: str | None, as_json: bool) -> None:
    """Price a monthly traffic mix before and after routing, judge cost included."""
    from pathlib import Path

    from judge_router.accounting import simulator
    from judge_router.accounting.reports import print_simulation
    from judge_router.service.simulation import simulate as priced_simulation

    judge = _settings(config_path).judge
    try:
        result = priced_simulation(simulator.load_mix(Path(mix_path)), judge)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        print_simulation(result)


def _print_mapping(title: str, data: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key, value in data.items():
        table.add_row(key, ", ".join(value) if isinstance(value, list) else str(value))
    Console().print(table)


from judge_router.cli.demo import demo  # noqa: E402
from judge_router.cli.eval import eval_command  # noqa: E402
from judge_router.cli.quality_reports import outcomes_command, shadow_report_command  # noqa: E402
from judge_router.cli.train import train_command  # noqa: E402

main.add_command(eval_command)
main.add_command(demo)
main.add_command(shadow_report_command)
main.add_command(outcomes_command)
main.add_command(train_command)
