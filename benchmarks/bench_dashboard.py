"""Benchmark of the dashboard's JSON endpoints on a large ledger, and of what loading it costs the
requests being served.

Run: .venv/bin/python benchmarks/bench_dashboard.py [--rows 1000000] [--json OUT]; see
benchmarks/README.md. It writes a ledger of `--rows` decisions (the dashboard tests' seeded mix:
three teams, three task types, keys, rules, arms, graded and fed-back outcomes) over 30 days,
rolls it up, and then:

1. times every endpoint over HTTP against `judge-router serve` on that ledger (p50 and max of
   `--repeats` calls each, the target being 200 ms);
2. times the same reads in-process with a tail of rows not rolled up yet (what a reader adds up
   from the decisions themselves between two catch-ups of the background roll-up);
3. drives cached POST /route for a few seconds alone, then again while a client reloads every
   dashboard view in a loop, and compares the two.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
# benchmarks/ and tests/ are folders of scripts: the shared load helpers and the dashboard tests'
# row generator are found by path.
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "tests"))

from loadgen import (  # noqa: E402
    HOST,
    free_port,
    litellm_params,
    machine_meta,
    percentile,
    revision,
    running,
    wait_until_ready,
    write_json,
    write_yaml,
)

from judge_router.accounting import (  # noqa: E402
    dashboard_decisions,
    dashboard_figures,
    dashboard_models,
)
from judge_router.accounting.dashboard_dimensions import dimensions  # noqa: E402
from judge_router.accounting.dashboard_facts import Window  # noqa: E402
from judge_router.accounting.dashboard_reader import DashboardReader  # noqa: E402
from judge_router.accounting.dashboard_rollups import catch_up_all  # noqa: E402
from judge_router.accounting.ledger_row import LedgerRow  # noqa: E402
from judge_router.accounting.migrations import connect, migrate  # noqa: E402
from judge_router.accounting.outcome_row import OutcomeRow  # noqa: E402
from judge_router.accounting.stats_view import stats_view  # noqa: E402

from dashboard_seed import seeded_rows  # noqa: E402

TARGET_MS = 200.0
ADMIN_KEY = "bench-dashboard-admin-key"
CHUNK = 50_000  # rows generated and inserted at a time: a million LedgerRows at once is ~2 GB
# The views the page loads, as it asks for them (All, by team, within a team, the first page).
VIEWS: list[tuple[str, str]] = [
    ("dimensions", "/dashboard/api/dimensions"),
    ("spend, all", "/dashboard/api/spend"),
    ("spend, 24 h (hourly)", "/dashboard/api/spend?since={day_ago}"),
    ("spend, filtered by team", "/dashboard/api/spend?metadata.team=ads"),
    ("mix, all", "/dashboard/api/mix"),
    ("mix, 7 d", "/dashboard/api/mix?since={week_ago}"),
    ("groups by team", "/dashboard/api/groups?group_by=metadata.team"),
    ("groups by task, low tier", "/dashboard/api/groups?group_by=metadata.task_type&tier=low"),
    ("models, all", "/dashboard/api/models"),
    ("models within a team", "/dashboard/api/models?group_by=metadata.team&group=search"),
    ("decisions, first page", "/dashboard/api/decisions"),
    ("decisions, next page", "/dashboard/api/decisions?before={cursor}"),
    ("decisions, one model", "/dashboard/api/decisions?model=gpt-5.1"),
    ("one decision", "/dashboard/api/decisions/{request_id}"),
    ("/stats (for comparison)", "/stats"),
]


def build_ledger(path: Path, rows: int, now: datetime) -> tuple[float, float]:
    """`rows` decisions over 30 days before `now`, inserted in bulk; (insert s, roll-up s)."""
    conn = connect(path)
    migrate(conn)
    chunks = max(1, (rows + CHUNK - 1) // CHUNK)
    span = 30.0 / chunks
    started = time.perf_counter()
    for number in range(chunks):
        first = number * CHUNK
        end = now - timedelta(days=span * (chunks - number - 1))
        decisions, outcomes = seeded_rows(min(CHUNK, rows - first), first + 1, end, span)
        write_rows(conn, decisions, outcomes, "jr-bench", first)
    inserted = time.perf_counter() - started
    started = time.perf_counter()
    catch_up_all(conn)
    rolled = time.perf_counter() - started
    conn.close()
    return inserted, rolled


def write_rows(
    conn: sqlite3.Connection,
    decisions: list[LedgerRow],
    outcomes: list[OutcomeRow],
    prefix: str,
    first: int,
) -> None:
    """Insert seeded rows in one transaction, renamed `prefix` + a number from `first` (seeds
    repeat their ids), their outcomes following them."""
    renamed = {row.request_id: f"{prefix}{first + i:07d}" for i, row in enumerate(decisions)}
    for row in decisions:
        row.request_id = renamed[row.request_id]
    for item in outcomes:
        item.request_id = renamed[item.request_id]
    with conn:
        conn.executemany(DECISION_INSERT, [row.as_params() for row in decisions])
        conn.executemany(OUTCOME_INSERT, [item.as_params() for item in outcomes])


def _insert(table: str, names: Sequence[str]) -> str:
    return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join(':' + n for n in names)})"


DECISION_INSERT = _insert("decisions", list(LedgerRow.__dataclass_fields__))
OUTCOME_INSERT = _insert("outcomes", list(OutcomeRow.__dataclass_fields__))


def prepared_ledger(ledger: Path, options: argparse.Namespace) -> tuple[float, float]:
    """Build the ledger at `ledger`; with --keep, built once there and copied on later runs."""
    kept: Path | None = options.keep
    if kept is None or not kept.exists():
        built = build_ledger(kept or ledger, options.rows, options.now)
        if kept is None:
            return built
        (kept.parent / f"{kept.name}.times.json").write_text(json.dumps(built))
    shutil.copyfile(kept, ledger)
    conn = connect(ledger)  # a ledger kept from an older revision: its new migrations and rollups
    migrate(conn)
    catch_up_all(conn)
    conn.close()
    inserted, rolled = json.loads((kept.parent / f"{kept.name}.times.json").read_text())
    return float(inserted), float(rolled)


def write_config(directory: Path, ledger: Path) -> Path:
    """The service on `ledger`: the heuristic judge (no provider), models that are never called."""
    price = litellm_params(f"http://{HOST}:9/v1", 1e-7, 4e-7)
    data = {
        "judge": {"model": "heuristic"},
        "tiers": {
            tier: [{"model": f"openai/bench-{tier}", "litellm_params": price}]
            for tier in ("low", "medium", "high")
        },
        "baseline": "openai/bench-high",
        "cache": {"dir": str(directory / "cache")},
        "ledger": {"path": str(ledger)},
        "server": {"api_keys": [{"id": "ops", "key": ADMIN_KEY, "admin": True}]},
    }
    return write_yaml(directory / "config.yaml", data)


def timed_get(client: httpx.Client, path: str, repeats: int) -> list[float]:
    """Seconds per GET of `path` (each must answer 200)."""
    spent = []
    for _ in range(repeats):
        started = time.perf_counter()
        answer = client.get(path)
        spent.append(time.perf_counter() - started)
        if answer.status_code != 200:
            raise RuntimeError(f"GET {path}: {answer.status_code} {answer.text[:300]}")
    return sorted(spent)


def view_paths(client: httpx.Client, now: datetime) -> list[tuple[str, str]]:
    """VIEWS with their placeholders filled from the ledger (a cursor, a request id)."""
    first = client.get("/dashboard/api/decisions").json()
    values = {
        "day_ago": (now - timedelta(hours=24)).isoformat().replace("+00:00", "Z"),
        "week_ago": (now - timedelta(days=7)).isoformat().replace("+00:00", "Z"),
        "cursor": first["next"],
        "request_id": first["decisions"][0]["request_id"],
    }
    return [(name, path.format(**values)) for name, path in VIEWS]


def measure_http(base: str, now: datetime, repeats: int) -> list[dict[str, Any]]:
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        results = []
        for name, path in view_paths(client, now):
            timed_get(client, path, 1)  # the first call warms SQLite's page cache
            spent = timed_get(client, path, repeats)
            p50, worst = statistics.median(spent) * 1000, spent[-1] * 1000
            results.append({"view": name, "path": path, "p50_ms": p50, "max_ms": worst})
        return results


# The reads of VIEWS in-process, for the tail measurement: (name, function, arguments).
ALL = Window(None, None)
READS: list[tuple[str, Callable[..., Any], tuple[Any, ...]]] = [
    ("dimensions", dimensions, (ALL,)),
    ("spend, all", dashboard_figures.spend, (ALL, None)),
    (
        "spend, filtered by team",
        dashboard_figures.spend,
        (ALL, stats_view(None, [("metadata.team", "ads")])),
    ),
    ("mix, all", dashboard_figures.mix, (ALL, None)),
    ("groups by team", dashboard_figures.groups, (ALL, stats_view("metadata.team"))),
    ("models, all", dashboard_models.model_costs, (ALL, None, None, None)),
    ("models within a team", dashboard_models.model_costs, (ALL, "metadata.team", "search", None)),
    ("decisions, first page", dashboard_decisions.recent, (ALL, None)),
]


def add_tail(path: Path, rows: int, now: datetime) -> None:
    """`rows` more decisions in the last hour, and their outcomes, not rolled up (as between two
    catch-ups)."""
    conn = connect(path)
    decisions, outcomes = seeded_rows(rows, rows, now, 1 / 24)
    write_rows(conn, decisions, outcomes, f"jr-tail{rows}-", 0)
    conn.close()


async def measure_reads(path: Path, repeats: int) -> list[dict[str, Any]]:
    reader = DashboardReader(path)
    try:
        results = []
        for name, read, args in READS:
            await reader.read(read, *args)  # warm
            spent = []
            for _ in range(repeats):
                started = time.perf_counter()
                await reader.read(read, *args)
                spent.append(time.perf_counter() - started)
            spent.sort()
            results.append(
                {
                    "view": name,
                    "p50_ms": statistics.median(spent) * 1000,
                    "max_ms": spent[-1] * 1000,
                }
            )
        return results
    finally:
        reader.close()


PROMPTS = [
    "What is the capital of France?",
    "Write a Python function that merges two sorted lists, with tests.",
    "Summarise the causes of the First World War in three paragraphs.",
    "Prove that there are infinitely many primes.",
    "Translate 'good morning' into Spanish.",
    "Design a schema for a multi-tenant billing system and explain the trade-offs.",
]


async def drive_route(base: str, seconds: float, rate: float, concurrency: int) -> list[float]:
    """Seconds per POST /route, sent at `rate` a second by `concurrency` clients for `seconds`
    (an open loop: a late answer does not delay the next send's schedule); each must be a 200."""
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    spent: list[float] = []
    started = time.monotonic()
    interval = concurrency / rate

    async def client(number: int) -> None:
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as http:
            sent = 0
            while (due := started + (sent + number / concurrency) * interval) < started + seconds:
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                prompt = PROMPTS[(sent * concurrency + number) % len(PROMPTS)]
                body = {"messages": [{"role": "user", "content": prompt}]}
                began = time.perf_counter()
                answer = await http.post("/route", json=body)
                spent.append(time.perf_counter() - began)
                if answer.status_code != 200:
                    raise RuntimeError(f"/route: {answer.status_code} {answer.text[:300]}")
                sent += 1

    await asyncio.gather(*(client(n) for n in range(concurrency)))
    return sorted(spent)


def reload_views(base: str, paths: Sequence[str], stop: Any, loads: Any) -> None:
    """Fetch every view's data, as the page does on each control change, until `stop` is set.

    In a process of its own at the lowest priority: it plays a browser on another machine, so
    neither its GIL nor its CPU may be what slows the load generator down."""
    os.nice(19)
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        while not stop.is_set():
            for path in paths:
                client.get(path).raise_for_status()
            with loads.get_lock():
                loads.value += 1


def route_summary(spent: Sequence[float], seconds: float) -> dict[str, Any]:
    return {
        "requests": len(spent),
        "rps": len(spent) / seconds,
        "p50_ms": statistics.median(spent) * 1000,
        "p99_ms": percentile(spent, 99) * 1000,
    }


def measure_interference(
    base: str, paths: Sequence[str], seconds: float, rate: float, concurrency: int
) -> dict[str, Any]:
    asyncio.run(drive_route(base, 1.0, rate, concurrency))  # warm
    alone = asyncio.run(drive_route(base, seconds, rate, concurrency))
    stop, loads = multiprocessing.Event(), multiprocessing.Value("i", 0)
    poller = multiprocessing.Process(target=reload_views, args=(base, paths, stop, loads))
    poller.start()
    try:
        beside = asyncio.run(drive_route(base, seconds, rate, concurrency))
    finally:
        stop.set()
        poller.join(timeout=120)
    return {
        "concurrency": concurrency,
        "rate": rate,
        "seconds": seconds,
        "alone": route_summary(alone, seconds),
        "with_dashboard": route_summary(beside, seconds),
        "dashboard_loads": loads.value,
    }


def run(options: argparse.Namespace) -> dict[str, Any]:
    now = options.now
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as folder:
        directory = Path(folder)
        ledger = directory / "ledger.sqlite"
        inserted_s, rolled_s = prepared_ledger(ledger, options)
        config = write_config(directory, ledger)
        port = free_port()
        base = f"http://{HOST}:{port}"
        command = [sys.executable, "-m", "judge_router.cli", "serve", "--config", str(config),
                   "--host", HOST, "--port", str(port)]  # fmt: skip
        with running(command, directory / "server.log") as process:
            wait_until_ready(
                process, port, "/healthz", time.monotonic() + 120, directory / "server.log"
            )
            http = measure_http(base, now, options.repeats)
            paths = [row["path"] for row in http if row["path"].startswith("/dashboard")]
            interference = measure_interference(
                base, paths, options.seconds, options.rate, options.concurrency
            )
        tails = []
        for tail_rows in options.tails:
            add_tail(ledger, tail_rows, now)
            reads = asyncio.run(measure_reads(ledger, options.repeats))
            tails.append({"tail_rows": tail_rows, "reads": reads})
    return {
        "meta": {**machine_meta(), "revision": revision(), "rows": options.rows},
        "build": {
            "insert_s": inserted_s,
            "rollup_s": rolled_s,
            "rollup_rows_per_s": options.rows / rolled_s if rolled_s else None,
        },  # fmt: skip
        "http": http,
        "tails": tails,
        "interference": interference,
    }


def print_report(results: dict[str, Any], console: Console) -> None:
    build, rows = results["build"], results["meta"]["rows"]
    console.print(
        f"{rows:,} rows: inserted in {build['insert_s']:.1f} s, rolled up in "
        f"{build['rollup_s']:.1f} s ({build['rollup_rows_per_s']:,.0f} rows/s)"
    )
    table = Table(title=f"Dashboard endpoints over HTTP, {rows:,} rows rolled up")
    for column in ("view", "p50 ms", "max ms", f"≤ {TARGET_MS:g} ms"):
        table.add_column(column, justify="left" if column == "view" else "right")
    for row in results["http"]:
        ok = "yes" if row["max_ms"] <= TARGET_MS else "no"
        table.add_row(row["view"], f"{row['p50_ms']:.1f}", f"{row['max_ms']:.1f}", ok)
    console.print(table)
    for tail in results["tails"]:
        table = Table(title=f"In-process reads with {tail['tail_rows']:,} rows not rolled up yet")
        for column in ("view", "p50 ms", "max ms"):
            table.add_column(column, justify="left" if column == "view" else "right")
        for row in tail["reads"]:
            table.add_row(row["view"], f"{row['p50_ms']:.1f}", f"{row['max_ms']:.1f}")
        console.print(table)
    found = results["interference"]
    table = Table(
        title=f"POST /route at {found['rate']:g}/s ({found['concurrency']} clients), "
        f"{found['seconds']:g} s each"
    )
    for column in ("", "requests/s", "p50 ms", "p99 ms"):
        table.add_column(column, justify="left" if not column else "right")
    for name, key in (("alone", "alone"), ("dashboard reloading", "with_dashboard")):
        row = found[key]
        table.add_row(name, f"{row['rps']:.0f}", f"{row['p50_ms']:.2f}", f"{row['p99_ms']:.2f}")
    console.print(table)
    console.print(f"dashboard reloads (every view) meanwhile: {found['dashboard_loads']}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=15, help="calls per view")
    parser.add_argument("--tails", type=int, nargs="*", default=[5_000, 50_000])
    parser.add_argument("--seconds", type=float, default=10.0, help="per /route phase")
    parser.add_argument("--rate", type=float, default=200.0, help="/route requests a second")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument(
        "--keep",
        type=Path,
        help="build the ledger here once and reuse it (it is then dated by its file)",
    )
    options = parser.parse_args(argv)
    options.now = datetime.now(UTC).replace(microsecond=0)
    if options.keep is not None and options.keep.exists():  # its rows end when it was built
        built = options.keep.stat().st_mtime
        options.now = datetime.fromtimestamp(built, UTC).replace(microsecond=0)
    results = run(options)
    print_report(results, Console())
    if options.json is not None:
        write_json(options.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
