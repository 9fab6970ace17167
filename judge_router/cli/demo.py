"""`judge-router demo`: the whole product on loopback, with no keys and no network.

A fake OpenAI-compatible provider (judge_router.testing.fake_upstream) plays every model; the real
`judge-router serve` runs on it with a temporary cache and ledger; a mix of prompts goes through
/v1/chat/completions; the routing and /stats' savings are printed; everything is removed at the end.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import yaml

if TYPE_CHECKING:
    from rich.console import Console

HOST = "127.0.0.1"
STARTUP_DEADLINE_S = 60
DEMO_KEY = "sk-demo-not-a-real-key"  # the fake provider takes any key
JUDGE = "openai/demo-judge"  # the fake provider answers as a judge when "judge" is in the name
# Real model names, so litellm's price map prices them; api_base sends them to the fake provider.
TIER_MODELS = {"low": "gpt-5-nano", "medium": "gpt-5-mini", "high": "gpt-5.1"}
# (prompt, tier the fake judge is told to give): the fake judge answers the `[[tier:…]]` tag.
PROMPTS = [
    ("Translate 'good morning' into French.", "low"),
    ("What is the capital of Australia?", "low"),
    ("Fix the typo: 'recieve the package tomorow'.", "low"),
    ("Summarise in one line: the meeting moved from Tuesday to Thursday.", "low"),
    ("Write a SQL query for the top 5 customers by revenue last quarter.", "medium"),
    ("Explain why this Python is slow: `for x in big_list: if x in other_list: ...`", "medium"),
    ("Draft a polite email declining a vendor's renewal offer, with two reasons.", "medium"),
    ("Prove that there are infinitely many primes, then generalise to primes 4k+3.", "high"),
    ("Design a rate limiter shared by 20 replicas; compare token bucket and GCRA.", "high"),
]
REPEATS = 3  # the first prompts are sent again: their verdicts come from the cache


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def demo_config(directory: Path, provider: str, port: int) -> dict[str, Any]:
    params = {"api_base": provider, "api_key": DEMO_KEY}
    return {
        "judge": {
            "model": JUDGE,
            # priced as gpt-5-nano, the example config's judge
            "litellm_params": {
                **params,
                "input_cost_per_token": 5e-8,
                "output_cost_per_token": 4e-7,
            },
        },
        "tiers": {
            tier: [{"model": model, "litellm_params": params}]
            for tier, model in TIER_MODELS.items()
        },
        "baseline": TIER_MODELS["high"],
        "cache": {"dir": str(directory / "cache")},
        "ledger": {"path": str(directory / "ledger.sqlite")},
        "server": {"host": HOST, "port": port},
    }


def _start_service(config: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    # The user's JUDGE_ROUTER_* overrides would point the demo at their own ledger: drop them.
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("JUDGE_ROUTER_")}
    command = [sys.executable, "-m", "judge_router.cli", "serve", "--config", str(config),
               "--host", HOST, "--port", str(port), "--log-level", "warning"]  # fmt: skip
    with log.open("wb") as output:
        return subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)


def _wait_until_ready(process: subprocess.Popen[bytes], base: str, log: Path) -> None:
    import httpx

    deadline = time.monotonic() + STARTUP_DEADLINE_S
    while True:
        if process.poll() is not None:
            raise click.ClickException("the service did not start:\n" + log.read_text()[-3000:])
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise click.ClickException(
                f"the service was not ready after {STARTUP_DEADLINE_S} s:\n"
                + log.read_text()[-3000:]
            )
        time.sleep(0.1)  # polling for readiness, bounded by the deadline


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()  # SIGTERM: in-flight requests finish, the ledger is closed
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _send_prompts(base: str) -> list[dict[str, Any]]:
    import httpx

    sent = [*PROMPTS, *PROMPTS[:REPEATS]]
    results = []
    with httpx.Client(base_url=base, timeout=30) as http:
        for text, tier in sent:
            body = {
                "model": "auto",
                "messages": [{"role": "user", "content": f"{text} [[tier:{tier}]]"}],
            }
            response = http.post("/v1/chat/completions", json=body)
            if response.status_code != 200:
                raise click.ClickException(
                    f"{text!r}: HTTP {response.status_code}: {response.text}"
                )
            results.append({"prompt": text, **response.json()["router"]})
    return results


def run_demo() -> dict[str, Any]:
    """Run the tour and return what it saw: the routed requests and the service's /stats."""
    import httpx

    from judge_router.testing.fake_upstream import FakeUpstream

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="judge-router-demo-") as tmp, FakeUpstream() as fake:
        directory = Path(tmp)
        port = free_port()
        config = directory / "demo.yaml"
        config.write_text(yaml.safe_dump(demo_config(directory, fake.base_url, port)))
        base = f"http://{HOST}:{port}"
        click.echo(
            f"fake provider on {fake.base_url} plays every model (no keys, no network)", err=True
        )
        click.echo(
            f"starting judge-router serve on {base} (litellm loads in a few seconds)…", err=True
        )
        process = _start_service(config, port, directory / "service.log")
        try:
            _wait_until_ready(process, base, directory / "service.log")
            requests = _send_prompts(base)
            stats = httpx.get(f"{base}/stats", timeout=30).json()
        finally:
            _stop(process)
    return {
        "service": base,
        "provider": fake.base_url,
        "requests": requests,
        "stats": stats,
        "seconds": round(time.monotonic() - started, 1),
    }


def print_demo(result: dict[str, Any], console: Console | None = None) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from judge_router.accounting.reports import print_summary, usd

    console = console or Console()
    table = Table(
        title="routing: each prompt through POST /v1/chat/completions (model: auto)",
        box=box.SIMPLE_HEAD,
    )
    # The other columns take ~60 characters; the prompt gets what is left of the line.
    prompt_width = max(16, min(60, console.width - 60))
    table.add_column("prompt", max_width=prompt_width, no_wrap=True, overflow="ellipsis")
    for column, width in (("tier", 6), ("model", 10), ("verdict", 7)):
        table.add_column(column, min_width=width, no_wrap=True)
    for column in ("cost", "baseline"):
        table.add_column(column, justify="right", min_width=9, no_wrap=True)
    for row in result["requests"]:
        table.add_row(
            row["prompt"], row["tier"], row["model"], row["source"],
            usd(row.get("cost_usd")), usd(row.get("baseline_cost_usd")),
        )  # fmt: skip
    console.print(table)
    console.print(
        f"The judge ({JUDGE}) is the fake provider's: it gives the tier each demo prompt is tagged "
        "with; a real judge model reads the prompt. verdict 'cache': a repeated prompt, whose "
        "verdict cost no judge call. Prices are litellm's for the models named.\n"
    )
    print_summary(result["stats"], console, breakdowns=("by_tier",))
    console.print(
        f"done in {result['seconds']} s; the service, the fake provider and the temporary cache "
        "and ledger are gone. Next: judge-router serve --config judge-router.example.yaml"
    )


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print what the demo saw as JSON.")
def demo(as_json: bool) -> None:
    """A keyless tour: a fake provider plays every model, the service routes a mix of prompts."""
    result = run_demo()
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        print_demo(result)
