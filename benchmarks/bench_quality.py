"""What shadow tests and quality sampling add to the proxy path: two routers, the same config but
for `shadow:` and `quality:`, measured in alternating blocks against one loopback fake provider.

Run: .venv/bin/python benchmarks/bench_quality.py [--quick] [--json OUT]; see benchmarks/README.md.
The background work (candidate calls, grader calls) runs in the measured router's own process and
event loop: this measures whether it stays off the request path, not whether it is free.
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_proxy as proxy  # noqa: E402
from loadgen import (  # noqa: E402
    HOST,
    free_port,
    litellm_params,
    machine_meta,
    revision,
    running,
    wait_until_ready,
    write_json,
    write_yaml,
    yes,
)

TARGET_P50_MS = 0.3  # issue 12: p50 within 0.3 ms of the same run without shadow and quality
CANDIDATE = "openai/fake-cand"
GRADER = "openai/fake-grader"
PRICES = {CANDIDATE: (1e-7, 4e-7), GRADER: (5e-8, 4e-7)}
# plain: no shadow:, no quality:. quality: both, doing their background work. request_path: both,
# with daily limits so small that after the first job every job is skipped at submit: what the
# request path itself pays (the observer's hashes and the submit), without the background CPU.
PATHS = ("plain", "quality", "request_path")
SPENT_AT_ONCE_USD = 1e-12


@dataclasses.dataclass(frozen=True)
class Setup:
    sample_pct: float = 10.0
    shadow_pct: float = 10.0


def quality_sections(base_url: str, setup: Setup, limit_usd: float = 1000.0) -> dict[str, Any]:
    """`shadow:` on every tier and `quality:` sampling, both graded, all on the loopback fake."""

    def entry(model: str) -> dict[str, Any]:
        return {"model": model, "litellm_params": litellm_params(base_url, *PRICES[model])}

    return {
        "grader": {**entry(GRADER), "timeout_s": 10},
        "shadow": [
            {
                "candidate": entry(CANDIDATE),
                "share_pct": setup.shadow_pct,
                "tiers": ["low", "medium", "high"],
                "grade": True,
                "max_usd_per_day": limit_usd,
            }
        ],
        "quality": {"sample_pct": setup.sample_pct, "max_usd_per_day": limit_usd},
    }


def write_configs(directory: Path, base_url: str, setup: Setup) -> dict[str, Path]:
    """bench_proxy's config for each router (own cache and ledger each), plus the quality sections."""
    configs = {}
    for name in PATHS:
        (directory / name).mkdir()
        configs[name] = path = proxy.write_config(directory / name, base_url)
        if name != "plain":
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            limit = SPENT_AT_ONCE_USD if name == "request_path" else 1000.0
            write_yaml(path, {**data, **quality_sections(base_url, setup, limit)})
    return configs


def get(port: int, path: str) -> str:
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        connection.request("GET", path)
        return connection.getresponse().read().decode("utf-8")
    finally:
        connection.close()


def background_metrics(port: int) -> dict[str, float]:
    """The quality router's judge_router_background_* and quality series, as name{labels} -> value."""
    found = {}
    for line in get(port, "/metrics").splitlines():
        if line.startswith(("judge_router_background_", "judge_router_quality_")):
            series, value = line.rsplit(" ", 1)
            if not series.endswith("_created"):
                found[series] = float(value)
    return found


def outcome_counts(path: Path) -> dict[str, Any]:
    """Outcome rows by source, and how many carry an error."""
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        return {"error": str(exc)}
    try:
        rows = connection.execute(
            "SELECT source, COUNT(*), SUM(error IS NOT NULL), COUNT(DISTINCT request_id) "
            "FROM outcomes GROUP BY source"
        ).fetchall()
        return {s: {"rows": n, "errors": e, "requests": r} for s, n, e, r in rows}
    except sqlite3.Error as exc:
        return {"error": str(exc)}
    finally:
        connection.close()


def run(options: proxy.Options, setup: Setup) -> dict[str, Any]:
    prompts = proxy.load_prompts(options.prompts)
    results: dict[str, Any] = {
        "meta": {
            **machine_meta(),
            **{k: v for k, v in dataclasses.asdict(options).items() if k != "profile_dir"},
            **dataclasses.asdict(setup),
            "revision": revision(),
        }
    }
    with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp, ExitStack() as stack:
        directory = Path(tmp)
        deadline = time.monotonic() + options.startup_timeout_s
        fake_log = directory / "upstream.log"
        fake_cmd = [sys.executable, "-m", "judge_router.testing.fake_upstream", "--host", HOST]
        fake = stack.enter_context(running([*fake_cmd, "--port", "0"], fake_log, pipes=True))
        base_url = proxy.read_line(fake, deadline, fake_log, "fake upstream").rsplit(" ", 1)[1]
        configs = write_configs(directory, base_url, setup)
        routers, ports, logs = {}, {}, {}
        for name in PATHS:  # both start (and import litellm) at once
            ports[name] = free_port()
            logs[name] = directory / f"router-{name}.log"
            command = proxy.router_command(configs[name], ports[name], None)
            routers[name] = stack.enter_context(running(command, logs[name]))
        targets: dict[str, proxy.Target] = {}
        for name in PATHS:
            wait_until_ready(routers[name], ports[name], "/healthz", deadline, logs[name])
            pids = {"router": routers[name].pid, "upstream": fake.pid}
            target = proxy.RouterTarget(ports[name], prompts, options, pids, profiled=False)
            results[name] = target.warm()
            targets[name] = target
        measured = proxy.interleaved(targets, options, options.blocks)
        results["background"] = {n: background_metrics(ports[n]) for n in PATHS if n != "plain"}
        for name in PATHS:
            results[name].update(measured[name])
            routers[name].send_signal(signal.SIGTERM)
            routers[name].wait(timeout=60)
            ledger = directory / name / "ledger.sqlite"
            results[name]["ledger"] = proxy.ledger_counts(ledger)
            results[name]["outcomes"] = outcome_counts(ledger)
    results["added"] = added(results)
    results["shares"] = shares(results)
    results["checks"] = checks(results, options)
    return results


def added(results: dict[str, Any]) -> dict[str, Any]:
    """Each configuration − plain, per phase: p50, p95, CPU per request, per-block p50 differences."""
    plain = results["plain"]
    found: dict[str, Any] = {}
    for name in PATHS[1:]:
        other = results[name]
        per_kind: dict[str, Any] = {}
        for kind in proxy.KINDS:
            a, b = plain[kind], other[kind]
            blocks = zip(a["block_p50_ms"], b["block_p50_ms"], strict=True)
            per_kind[kind] = {
                "p50_ms": round(b["p50_ms"] - a["p50_ms"], 3),
                "p95_ms": round(b["p95_ms"] - a["p95_ms"], 3),
                "block_p50_ms": [round(q - p, 3) for p, q in blocks],
                "router_cpu_us_per_req": round(
                    b["router_cpu_us_per_req"] - a["router_cpu_us_per_req"], 1
                ),
                "rps": [a["rps"], b["rps"]],
            }
            if "first_byte_p50_ms" in a:
                per_kind[kind]["first_byte_p50_ms"] = round(
                    b["first_byte_p50_ms"] - a["first_byte_p50_ms"], 3
                )
        per_kind["target_met"] = per_kind["latency"]["p50_ms"] <= TARGET_P50_MS
        found[name] = per_kind
    found["target_p50_ms"] = TARGET_P50_MS
    return found


def routed(results: dict[str, Any], name: str) -> int:
    """Requests answered from a cached verdict (the warm-up and every measured phase)."""
    return sum(results[name][k]["requests"] for k in ("warmup", "stream_warmup", *proxy.KINDS))


def shares(results: dict[str, Any]) -> dict[str, float]:
    """The shares the quality router really shadowed and sampled, in percent of its requests."""
    outcomes = results["quality"]["outcomes"]
    total = routed(results, "quality") + results["quality"]["cache_fill"]["requests"]
    return {
        source: round(100 * outcomes.get(source, {}).get("requests", 0) / total, 1)
        for source in ("shadow", "sample")
    }


def checks(results: dict[str, Any], options: proxy.Options) -> dict[str, Any]:
    cached = {name: routed(results, name) for name in PATHS}
    phases = [results[n][k] for n in PATHS for k in ("cache_fill", "warmup", *proxy.KINDS)]
    outcomes = results["quality"]["outcomes"]
    skipped = results["background"]["request_path"]
    return {
        "all_requests_ok": all(p["failed"] == 0 and not p["problems"] for p in phases),
        "ledgers_all_cached": all(
            results[n]["ledger"].get("by_source") == {"llm": options.prompts, "cache": cached[n]}
            and results[n]["ledger"].get("not_ok") == 0
            for n in PATHS
        ),
        # The background work really ran: sampled grades, and shadow pairs if any prompt is picked.
        "sampled_answers_graded": outcomes.get("sample", {}).get("rows", 0) > 0,
        "no_outcomes_without_quality": results["plain"]["outcomes"] == {},
        # The request_path router's jobs were skipped by its limit (so it measured the path alone).
        "request_path_jobs_skipped": any("daily_limit" in series for series in skipped),
    }


def print_report(results: dict[str, Any], console: Console) -> None:
    title = "Proxy path: shadow tests and quality sampling against the same router without them"
    table = Table(title=title)
    for column in ("configuration", "phase", "p50 / p95 ms", "added p50 ms",
                   "per block: median (range)", "added CPU µs/req", "req/s"):  # fmt: skip
        table.add_column(
            column, justify="left" if column in ("configuration", "phase") else "right"
        )
    for name in PATHS:
        for kind in proxy.KINDS:
            phase = results[name][kind]
            cells = ["", "", ""]
            if name != "plain":
                d = results["added"][name][kind]
                blocks = sorted(d["block_p50_ms"])
                cells = [
                    f"{d['p50_ms']:+.2f}",
                    f"{statistics.median(blocks):+.2f} ({blocks[0]:+.2f} to {blocks[-1]:+.2f})",
                    f"{d['router_cpu_us_per_req']:+.0f}",
                ]
            table.add_row(
                name if kind == proxy.KINDS[0] else "",
                f"{kind} (c={phase['concurrency']})",
                f"{phase['p50_ms']:.2f} / {phase['p95_ms']:.2f}",
                *cells,
                f"{phase['rps']:.0f}",
            )
    console.print(table)
    for name in PATHS[1:]:
        over = results["added"][name]
        console.print(
            f"{name}: latency p50 added {over['latency']['p50_ms']:+.3f} ms "
            f"(target ≤ {results['added']['target_p50_ms']} ms): {yes(over['target_met'])}"
        )
        console.print(f"  outcome rows: {results[name]['outcomes']}")
        work = {k: v for k, v in results["background"][name].items() if "background" in k}
        console.print(f"  background work: {work}")
    share = results["shares"]
    console.print(f"quality: {share['shadow']} % of requests shadowed, {share['sample']} % sampled")
    for name, ok in results["checks"].items():
        console.print(f"check {name}: {yes(ok)}")


def parse(argv: Sequence[str] | None) -> tuple[proxy.Options, Setup, Path | None]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, help="requests per measured phase (default 2000)")
    parser.add_argument(
        "--warmup", type=int, help="untimed requests per router first (default 200)"
    )
    parser.add_argument("--prompts", type=int, help="distinct prompts (default 80)")
    parser.add_argument("--blocks", type=int, help="alternating blocks per phase (default 20)")
    parser.add_argument("--sample-pct", type=float, default=10.0, help="quality.sample_pct")
    parser.add_argument(
        "--shadow-pct", type=float, default=10.0, help="the shadow test's share_pct"
    )
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the results here")
    parser.add_argument(
        "--quick", action="store_true", help="tiny counts: a smoke run, not figures"
    )
    args = parser.parse_args(argv)
    # More prompts than bench_proxy's 8: the shadow share is drawn by prompt hash.
    options = (
        dataclasses.replace(proxy.QUICK, prompts=12) if args.quick else proxy.Options(prompts=80)
    )
    given = {"requests": args.requests, "warmup": args.warmup, "prompts": args.prompts,
             "blocks": args.blocks}  # fmt: skip
    options = dataclasses.replace(options, **{k: v for k, v in given.items() if v is not None})
    return options, Setup(args.sample_pct, args.shadow_pct), args.json


def main(argv: Sequence[str] | None = None) -> int:
    options, setup, json_out = parse(argv)
    results = run(options, setup)
    print_report(results, Console(width=max(Console().width, 140)))
    if json_out is not None:
        write_json(json_out, results)
    return 0 if all(results["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
