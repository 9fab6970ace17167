"""Options several commands share, declared once."""

from __future__ import annotations

import click

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="JUDGE_ROUTER_CONFIG",
    help="YAML config file (default: $JUDGE_ROUTER_CONFIG, else built-in defaults).",
)
