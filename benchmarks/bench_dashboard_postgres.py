"""The dashboard's views on a PostgreSQL ledger, against the same rows on SQLite, in-process.

Run: .venv/bin/python benchmarks/bench_dashboard_postgres.py [--rows 200000] [--repeats 5] [--json OUT]

It starts a throwaway PostgreSQL (tests/store_servers.py; PostgreSQL 15's binaries needed, else it
exits 2 saying so), writes `--rows` of the dashboard tests' seeded decisions over 30 days and their
outcomes into it (COPY, the rollup trigger firing per row) and into a SQLite ledger (rolled up, as
the background roll-up leaves it), and times each view through each backend's dashboard reader:
the p50 and max of `--repeats` reads, for the whole ledger and for its last 7 days. A PostgreSQL
ledger has no dashboard rollups, so its views read the rows of their range; SQLite's read rollups.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.append(str(HERE.parent / "tests"))

from loadgen import machine_meta, revision, write_json  # noqa: E402

from judge_router.accounting import dashboard_decisions, dashboard_figures  # noqa: E402
from judge_router.accounting.dashboard_dimensions import dimensions  # noqa: E402
from judge_router.accounting.dashboard_facts import Window  # noqa: E402
from judge_router.accounting.dashboard_models import model_costs  # noqa: E402
from judge_router.accounting.dashboard_reader import DashboardReader, PooledReads  # noqa: E402
from judge_router.accounting.dashboard_rollups import catch_up_all  # noqa: E402
from judge_router.accounting.ledger_row import LedgerRow  # noqa: E402
from judge_router.accounting.migrations import connect as sqlite_connect  # noqa: E402
from judge_router.accounting.migrations import migrate as sqlite_migrate  # noqa: E402
from judge_router.accounting.outcome_row import OutcomeRow  # noqa: E402
from judge_router.accounting.postgres_dashboard_reader import PgDashboardReader  # noqa: E402
from judge_router.accounting.postgres_reads import connect as pg_connect  # noqa: E402
from judge_router.accounting.postgres_schema import migrate as pg_migrate  # noqa: E402
from judge_router.accounting.stats_view import stats_view  # noqa: E402

import store_servers  # noqa: E402
from dashboard_seed import seeded_rows  # noqa: E402

NOW = datetime(2026, 12, 3, 12, tzinfo=UTC)
VIEWS: dict[str, tuple[Callable[..., Any], tuple[Any, ...]]] = {
    "spend": (dashboard_figures.spend, (None,)),
    "mix": (dashboard_figures.mix, (None,)),
    "groups by tier": (dashboard_figures.groups, (stats_view("tier"),)),
    "groups by metadata.team": (dashboard_figures.groups, (stats_view("metadata.team"),)),
    "models": (model_costs, (None, None, None)),
    "decisions (a page)": (dashboard_decisions.recent, (None, 50, None)),
    "dimensions": (dimensions, ()),
}


def _columns(kind: type) -> list[str]:
    return list(kind.__dataclass_fields__)  # type: ignore[attr-defined]


def write_sqlite(path: Path, rows: list[LedgerRow], outcomes: list[OutcomeRow]) -> None:
    conn = sqlite_connect(path)
    try:
        sqlite_migrate(conn)
        for table, kind, items in (
            ("decisions", LedgerRow, rows),
            ("outcomes", OutcomeRow, outcomes),
        ):
            names = _columns(kind)
            sql = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join(':' + n for n in names)})"
            conn.execute("BEGIN")
            conn.executemany(sql, [item.as_params() for item in items])
            conn.execute("COMMIT")
        catch_up_all(conn)
    finally:
        conn.close()


def write_postgres(url: str, rows: list[LedgerRow], outcomes: list[OutcomeRow]) -> None:
    conn = pg_connect(url)
    try:
        pg_migrate(conn)
        for table, kind, items in (
            ("decisions", LedgerRow, rows),
            ("outcomes", OutcomeRow, outcomes),
        ):
            names = _columns(kind)
            with conn.cursor().copy(f"COPY {table} ({', '.join(names)}) FROM STDIN") as copy:
                for item in items:
                    params = item.as_params()
                    copy.write_row([params[name] for name in names])
        conn.execute("ANALYZE")
    finally:
        conn.close()


async def time_views(reader: PooledReads, repeats: int) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for window_name, window in (
        ("all", Window()),
        ("7 days", Window(NOW - timedelta(days=7), NOW)),
    ):
        for name, (read, args) in VIEWS.items():
            call_args = (window, *args)
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                await reader.read(read, *call_args)
                times.append((time.perf_counter() - started) * 1000)
            found[f"{name}, {window_name}"] = {
                "p50_ms": round(statistics.median(times), 1),
                "max_ms": round(max(times), 1),
            }
    return found


def run(rows_wanted: int, repeats: int) -> dict[str, Any]:
    rows, outcomes = seeded_rows(rows_wanted, now=NOW, days=30.0)
    results: dict[str, Any] = {
        "meta": {
            **machine_meta(),
            "revision": revision(),
            "rows": len(rows),
            "outcomes": len(outcomes),
        },  # fmt: skip
    }
    server = store_servers.PostgresServer()
    try:
        url = server.create_database("jr_bench_dashboard")
        with tempfile.TemporaryDirectory(prefix="bench-dash-pg-") as tmp:
            path = Path(tmp) / "ledger.sqlite"
            started = time.perf_counter()
            write_postgres(url, rows, outcomes)
            results["meta"]["postgres_write_s"] = round(time.perf_counter() - started, 1)
            write_sqlite(path, rows, outcomes)
            readers: dict[str, PooledReads] = {
                "postgresql": PgDashboardReader(url),
                "sqlite": DashboardReader(path),
            }
            try:
                results["views"] = {
                    name: asyncio.run(time_views(reader, repeats))
                    for name, reader in readers.items()
                }
            finally:
                for reader in readers.values():
                    reader.close()
    finally:
        server.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000, help="seeded decisions")
    parser.add_argument("--repeats", type=int, default=5, help="reads per view and window")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the results here")
    args = parser.parse_args(argv)
    reason = store_servers.postgres_absent()
    if reason is not None:
        print(reason, file=sys.stderr)
        return 2
    results = run(args.rows, args.repeats)
    table = Table(title=f"dashboard views on {results['meta']['rows']:,} decisions (ms)")
    for column in ("view, window", "PostgreSQL p50", "max", "SQLite p50", "max"):
        table.add_column(column, justify="left" if column.startswith("view") else "right")
    pg, sq = results["views"]["postgresql"], results["views"]["sqlite"]
    for name in pg:
        table.add_row(name, str(pg[name]["p50_ms"]), str(pg[name]["max_ms"]),
                      str(sq[name]["p50_ms"]), str(sq[name]["max_ms"]))  # fmt: skip
    Console(width=120).print(table)
    if args.json is not None:
        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
