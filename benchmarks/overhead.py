"""The hop each path adds to a loopback fake provider, all measured in one run on one machine.

Run: .venv/bin/python benchmarks/overhead.py [--quick] [--no-litellm-proxy] [--json OUT]

Paths, taking turns block by block (ABBA...) so that a machine drifting during the run moves them
alike: raw HTTP to the fake provider (the floor), a bare `litellm.acompletion` loop, judge-router's
/v1/chat/completions through each transport (`litellm`, `direct`) with cached verdicts, cached
/route, and LiteLLM's proxy (installed by this script into a virtualenv of its own, started on
127.0.0.1, one worker, no database). Printed: p50/p95/p99 at concurrency 1, requests/s at 20 and
64, the CPU each path's process spends per request, a stream's first byte, and the ratios to
LiteLLM's proxy and to the floor. Every process it starts is stopped on the way out. It reuses
bench_proxy.py's load generator, bare-litellm worker and router target.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
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
import overhead_scale as scaled  # noqa: E402
import profile_top  # noqa: E402
from loadgen import (  # noqa: E402
    HOST,
    free_port,
    machine_meta,
    revision,
    run_async,
    running,
    wait_until_ready,
    write_json,
    write_yaml,
)

# The proxy that resolves on this machine's package mirror (see ENGINEERING notes).
PROXY_PACKAGES = ["litellm[proxy]<1.110", "litellm-proxy-extras<=0.4.110"]
PROXY_KEY = "sk-bench-overhead-master-key"
PHASES = (("c1", "latency", 1), ("c20", "throughput", 20), ("c64", "throughput", 64))
STREAM = ("stream", "stream", 1)


@dataclasses.dataclass(frozen=True)
class Options:
    requests: int = 1000  # per phase and path (streamed: a quarter; throughput: 3 times as many)
    warmup: int = 100  # untimed requests per path first
    prompts: int = 8  # distinct prompts, so distinct cached verdicts
    blocks: int = 10  # turns per phase
    concurrency: int = 20  # the warm-ups' (bench_proxy's targets read it)
    litellm_proxy: bool = True
    proxy_venv: Path = Path("~/.cache/judge-router-bench/litellm-proxy").expanduser()
    phase_timeout_s: float = 120.0
    startup_timeout_s: float = 120.0
    quick: bool = False
    scale: scaled.Scale | None = scaled.Scale()  # None: no workers, memory or Zipf runs
    profile: Path | None = None  # py-spy's raw profile of router_direct over the phases


QUICK = Options(
    requests=24, warmup=4, prompts=3, blocks=2, phase_timeout_s=30.0, quick=True,
    scale=scaled.QUICK_SCALE,
)  # fmt: skip


class RawTarget:
    """POSTs straight at an HTTP server (the fake provider, /route, LiteLLM's proxy)."""

    def __init__(
        self,
        port: int,
        path: str,
        bodies: Sequence[dict[str, Any]],
        check: proxy.Check,
        watch: dict[str, int],
        headers: str = "",
        streams: bool = True,
    ):
        def built(body: dict[str, Any]) -> bytes:  # as loadgen.http_post, with `headers` added
            payload = json.dumps(body, separators=(",", ":")).encode()
            head = (
                f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: application/json"
                f"\r\n{headers}Content-Length: {len(payload)}\r\n\r\n"
            )
            return head.encode("ascii") + payload

        self.plain = proxy.RawConnection.opener(port, [built(b) for b in bodies], check)
        streamed = [built({**b, "stream": True}) for b in bodies] if streams else []
        self.streamed = proxy.RawConnection.opener(port, streamed, proxy.stream_check)
        self.streams = streams
        self.watch = watch

    def warm(self, n: int, timeout_s: float) -> None:
        run_async(proxy.drive(self.plain, n, 4, timeout_s))
        if self.streams:
            run_async(proxy.drive(self.streamed, max(n // 4, 1), 1, timeout_s))

    def run(self, kind: str, n: int, concurrency: int) -> proxy.Phase | None:
        if kind == "stream" and not self.streams:
            return None  # /route answers no streams
        opener = self.streamed if kind == "stream" else self.plain
        return run_async(proxy.drive(opener, n, concurrency, 600, self.watch))

    def profile(self, action: str) -> None:
        return None


def route_check(status: int, body: bytes, index: int) -> str | None:
    if status != 200:
        return f"HTTP {status}: {body[:200]!r}"
    source = json.loads(body).get("source")
    return None if source == "cache" else f"source {source!r}, expected 'cache'"


def router_config(
    directory: Path, base_url: str, transport: str, judge: dict[str, Any] | None = None
) -> Path:
    """bench_proxy's router config (judge and tiers on the fake) with every model on `transport`
    (and `judge` in place of its judge, if given)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = proxy.write_config(directory, base_url)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for entries in data["tiers"].values():
        for entry in entries:
            entry["litellm_params"]["transport"] = transport
    if judge is not None:
        data["judge"] = judge
    return write_yaml(path, data)


def proxy_config(directory: Path, base_url: str) -> Path:
    models = [
        {
            "model_name": model.removeprefix("openai/"),
            "litellm_params": {"model": model, "api_base": base_url, "api_key": "sk-fake"},
        }
        for model in proxy.TIER_MODELS.values()
    ]
    data = {"model_list": models, "litellm_settings": {"drop_params": True, "num_retries": 0}}
    return write_yaml(directory / "litellm-proxy.yaml", data)


def install_proxy(venv: Path, log: Path) -> Path:
    """LiteLLM's proxy in a virtualenv of its own (kept between runs); its `litellm` command."""
    command = venv / "bin" / "litellm"
    if command.exists():
        return command
    with log.open("ab") as out:
        subprocess.run(
            [sys.executable, "-m", "venv", str(venv)], check=True, stdout=out, stderr=out
        )
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *PROXY_PACKAGES]
        subprocess.run(pip, check=True, stdout=out, stderr=out, timeout=600)
    return command


def interleaved(targets: dict[str, Any], options: Options) -> dict[str, dict[str, Any]]:
    """Each phase in `options.blocks` turns per path, the order reversed every other block."""
    results: dict[str, dict[str, Any]] = {name: {} for name in targets}
    order = list(targets)
    for name, kind, level in (*PHASES, STREAM):
        # Throughput blocks long enough that each of the 20 or 64 keep-alive connections carries
        # tens of requests: a block of 100 spread over 20 fresh connections measures their
        # opening (and, with two workers, which worker happened to accept more of them).
        total = {"stream": max(options.requests // 4, 1), "throughput": options.requests * 3}.get(
            kind, options.requests
        )
        blocks = min(options.blocks, total)
        sizes = [total // blocks + (1 if i < total % blocks else 0) for i in range(blocks)]
        runs: dict[str, list[proxy.Phase]] = {path: [] for path in targets}
        for block, n in enumerate(sizes):
            for path in order if block % 2 == 0 else order[::-1]:
                phase = targets[path].run(kind, n, level)
                if phase is not None:
                    runs[path].append(phase)
        for path, phases in runs.items():
            if phases:
                results[path][name] = proxy.Phase.merge(phases).summary()
    return results


def start_proxy(
    stack: ExitStack, directory: Path, base_url: str, options: Options
) -> tuple[RawTarget | None, str | None]:
    log = directory / "litellm-proxy.log"
    try:
        command = install_proxy(options.proxy_venv, log)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"could not install {' '.join(PROXY_PACKAGES)}: {exc}"
    port = free_port()
    config = proxy_config(directory, base_url)
    os.environ["LITELLM_MASTER_KEY"] = PROXY_KEY  # child_env() passes it on
    args = [str(command), "--config", str(config), "--host", HOST, "--port", str(port)]
    process = stack.enter_context(running([*args, "--num_workers", "1"], log))
    deadline = time.monotonic() + options.startup_timeout_s
    try:
        wait_until_ready(process, port, "/health/liveliness", deadline, log)
    except (RuntimeError, TimeoutError) as exc:
        return None, f"LiteLLM's proxy did not start: {exc}"[:500]
    bodies = [
        {"model": proxy.TIER_MODELS[tier].removeprefix("openai/"), "messages": proxy._user(p)}
        for p, tier in proxy.load_prompts(options.prompts)
    ]
    auth = f"Authorization: Bearer {PROXY_KEY}\r\n"
    watch = {"litellm_proxy": process.pid}
    target = RawTarget(port, "/v1/chat/completions", bodies, proxy.upstream_check, watch, auth)
    return target, None


def run_benchmark(options: Options) -> dict[str, Any]:
    prompts = proxy.load_prompts(options.prompts)
    results: dict[str, Any] = {"meta": {**machine_meta(), "revision": revision()}}
    results["meta"]["options"] = {k: str(v) for k, v in dataclasses.asdict(options).items()}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp, ExitStack() as stack:
        directory = Path(tmp)
        deadline = time.monotonic() + options.startup_timeout_s
        fake_log = directory / "upstream.log"
        fake_cmd = [sys.executable, "-m", "judge_router.testing.fake_upstream", "--host", HOST]
        fake = stack.enter_context(running([*fake_cmd, "--port", "0"], fake_log, pipes=True))
        base_url = proxy.read_line(fake, deadline, fake_log, "fake upstream").rsplit(" ", 1)[1]
        fake_port = int(base_url.rsplit(":", 1)[1].split("/")[0])
        upstream = {"upstream": fake.pid}

        routers: dict[str, tuple[Any, int]] = {}
        kinds: list[tuple[str, str, dict[str, Any] | None, int]] = [
            ("litellm", "litellm", None, 1),
            ("direct", "direct", None, 1),
        ]
        if options.scale is not None:
            kinds += [("direct_w2", "direct", None, 2), ("zipf", "direct", None, 1),
                      ("memory", "direct", {"model": "heuristic"}, 1)]  # fmt: skip
        for name, transport, judge, workers in kinds:
            port, log = free_port(), directory / f"router-{name}.log"
            config = router_config(directory / name, base_url, transport, judge)
            command = proxy.router_command(config, port, None)
            command += ["--workers", str(workers)] if workers > 1 else []
            routers[name] = (stack.enter_context(running(command, log)), port)
        worker_log = directory / "bare-litellm.log"
        worker_cmd = [sys.executable, str(Path(proxy.__file__)), "--litellm-worker", "httpx"]
        worker = stack.enter_context(running(worker_cmd, worker_log, pipes=True))
        task = {
            "base_url": base_url,
            "prompts": [[prompt, proxy.TIER_MODELS[tier]] for prompt, tier in prompts],
            "warmup": options.warmup,
            "concurrency": 4,
            "phase_timeout_s": options.phase_timeout_s,
            "upstream_pid": fake.pid,
        }
        proxy.send_line(worker, json.dumps(task))
        targets: dict[str, Any] = {}
        bodies = [
            {"model": proxy.TIER_MODELS[tier].removeprefix("openai/"), "messages": proxy._user(p)}
            for p, tier in prompts
        ]
        targets["raw_http"] = RawTarget(
            fake_port, "/v1/chat/completions", bodies, proxy.upstream_check, upstream
        )
        targets["bare_litellm"] = proxy.WorkerTarget(worker, worker_log, options, None)  # type: ignore[arg-type]
        for name, (process, port) in routers.items():
            wait_until_ready(process, port, "/healthz", deadline, directory / f"router-{name}.log")
            if name in ("zipf", "memory"):
                continue  # measured on their own after the phases
            pids = {"router": process.pid, **upstream}
            if name == "direct_w2":  # the two workers' CPU, not their supervisor's
                first, second = scaled.worker_pids(process.pid, 2, deadline)
                scaled.wait_listening(port, 2, deadline)
                pids = {"router": first, "router_2": second, **upstream}
            target = proxy.RouterTarget(port, prompts, options, pids, False)  # type: ignore[arg-type]
            target.warm()  # fills the verdict cache: every measured request is a cache hit
            targets[f"router_{name}"] = target
        process, port = routers["direct"]
        route_bodies = [{"prompt": prompt} for prompt, _ in prompts]
        watch = {"router": process.pid}
        targets["route_cached"] = RawTarget(
            port, "/route", route_bodies, route_check, watch, streams=False
        )
        results["meta"]["bare_litellm_warmup"] = proxy.read_protocol(
            worker, deadline, worker_log, "bare litellm"
        )
        if options.litellm_proxy:
            found, why = start_proxy(stack, directory, base_url, options)
            if found is not None:
                targets["litellm_proxy"] = found
            results["meta"]["litellm_proxy_skipped"] = why
        for target in targets.values():
            if isinstance(target, RawTarget):
                target.warm(options.warmup, options.phase_timeout_s)
        results["meta"]["startup_s"] = round(time.monotonic() - started, 1)
        spy = None
        if options.profile is not None:
            spy = profile_top.start(
                routers["direct"][0].pid, options.profile, directory / "py-spy.log"
            )
        results["paths"] = interleaved(targets, options)
        if spy is not None and options.profile is not None:
            profile_top.stop(spy)
            results["profile"] = profile_top.summarise(options.profile)
        targets["bare_litellm"].finish()
        if options.scale is not None:
            results["scale"] = scale_runs(routers, options.scale, options.phase_timeout_s * 5)
    results["meta"]["wall_s"] = round(time.monotonic() - started, 1)
    results["ratios"] = ratios(results["paths"])
    results["all_requests_ok"] = all(
        phase["failed"] == 0 for path in results["paths"].values() for phase in path.values()
    ) and all(run["failed"] == 0 for run in results.get("scale", {}).values())
    return results


def scale_runs(
    routers: dict[str, tuple[Any, int]], scale: scaled.Scale, timeout_s: float
) -> dict[str, Any]:
    """Memory after 1,000 and 100,000 distinct prompts, then the Zipf workload."""
    process, port = routers["memory"]
    memory = scaled.memory_growth(port, process.pid, scale, timeout_s)
    return {"memory": memory, "zipf": scaled.zipf(routers["zipf"][1], scale, timeout_s)}


def ratios(paths: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each path against LiteLLM's proxy (throughput) and against the floor (latency)."""
    floor = paths["raw_http"]
    rival = paths.get("litellm_proxy")
    found: dict[str, dict[str, Any]] = {}
    for name, path in paths.items():
        row: dict[str, Any] = {
            "p50_over_floor_ms": round(path["c1"]["p50_ms"] - floor["c1"]["p50_ms"], 3),
        }
        if "stream" in path:
            first = path["stream"].get("first_byte_p50_ms", 0.0)
            row["first_byte_over_floor_ms"] = round(
                first - floor["stream"].get("first_byte_p50_ms", 0.0), 3
            )
        for level in ("c20", "c64"):
            row[f"rps_{level}_vs_floor"] = _ratio(path[level]["rps"], floor[level]["rps"])
            if rival is not None:
                row[f"rps_{level}_vs_litellm_proxy"] = _ratio(
                    path[level]["rps"], rival[level]["rps"]
                )
        found[name] = row
    one, two = paths.get("router_direct"), paths.get("router_direct_w2")
    if one is not None and two is not None:
        found["router_direct_w2"]["rps_vs_one_worker"] = {
            level: _ratio(two[level]["rps"], one[level]["rps"]) for level in ("c20", "c64")
        }
    return found


def _ratio(value: float, reference: float) -> float | None:
    return round(value / reference, 2) if reference else None


def cpu_us(phase: dict[str, Any], name: str) -> Any:
    """CPU per request of the path's own process (the client's, for the bare loop)."""
    if phase.get("router_2_cpu_us_per_req") is not None:  # two workers: both count
        return round(phase["router_cpu_us_per_req"] + phase["router_2_cpu_us_per_req"], 1)
    for key in (f"{name}_cpu_us_per_req", "router_cpu_us_per_req", "litellm_proxy_cpu_us_per_req"):
        if phase.get(key) is not None:
            return phase[key]
    return phase.get("client_cpu_us_per_req") if name == "bare_litellm" else None


def print_report(results: dict[str, Any], console: Console) -> None:
    table = Table(title="overhead on the loopback fake provider (one run, alternating blocks)")
    for column in (
        "path", "p50", "p95", "p99", "rps c20", "rps c64", "cpu µs/req c20", "first byte p50",
        "p50 − floor", "rps c20 vs proxy", "rps c20 vs floor",
    ):  # fmt: skip
        table.add_column(column, justify="left" if column == "path" else "right")
    for name, path in results["paths"].items():
        ratio = results["ratios"][name]
        c1, c20 = path["c1"], path["c20"]
        table.add_row(
            name,
            f"{c1['p50_ms']:.2f}",
            f"{c1['p95_ms']:.2f}",
            f"{c1['p99_ms']:.2f}",
            f"{c20['rps']:.0f}",
            f"{path['c64']['rps']:.0f}",
            str(cpu_us(c20, name) if name != "raw_http" else "-"),
            f"{path['stream'].get('first_byte_p50_ms', 0.0):.2f}" if "stream" in path else "-",
            f"{ratio['p50_over_floor_ms']:+.2f}",
            str(ratio.get("rps_c20_vs_litellm_proxy", "-")),
            str(ratio["rps_c20_vs_floor"]),
        )
    console.print(table)
    two = results["ratios"].get("router_direct_w2", {}).get("rps_vs_one_worker")
    if two is not None:
        console.print(f"serve --workers 2 against one worker: c20 {two['c20']}x, c64 {two['c64']}x")
    if "scale" in results:
        memory, zipf = results["scale"]["memory"], results["scale"]["zipf"]
        console.print(
            f"memory: {memory['rss_mb'][0]} MB after {memory['distinct_prompts'][0]:,} distinct "
            f"prompts, {memory['rss_mb'][1]} MB after {memory['distinct_prompts'][1]:,} "
            f"({memory['growth_mb']:+} MB; {memory['rps']} /route a second)"
        )
        console.print(
            f"zipf (s={zipf['s']}): {zipf['requests']:,} requests over {zipf['distinct_prompts']:,}"
            f" prompts ({zipf['distinct_drawn']:,} drawn): cache hit rate {zipf['cache_hit_rate']},"
            f" {zipf['judge_calls']:,} judge calls, {zipf['rps']} requests/s, p50 {zipf['p50_ms']} ms"
        )
    if "profile" in results:
        print_profile(results["profile"], console)
    skipped = results["meta"].get("litellm_proxy_skipped")
    if skipped:
        console.print(f"LiteLLM's proxy not measured: {skipped}")
    console.print(
        f"wall {results['meta']['wall_s']} s; every request ok: {results['all_requests_ok']}; "
        f"hypervisor steal up to {max_steal(results['paths']):.2f} cores in a phase"
    )


def max_steal(paths: dict[str, Any]) -> float:
    """The most CPU the hypervisor took from this machine in any phase (cores): figures of a run
    with much of it are slower than the machine's own."""
    phases = (
        phase for path in paths.values() for phase in path.values() if isinstance(phase, dict)
    )
    return max((phase.get("steal_cpu_share") or 0.0 for phase in phases), default=0.0)


def print_profile(profile: dict[str, Any], console: Console) -> None:
    console.print(f"router_direct under py-spy ({profile['samples']:,} samples), by package:")
    console.print(", ".join(f"{name} {share}%" for name, share in profile["by_package"]))
    for title, key in (("self", "self"), ("inclusive, ours", "inclusive_judge_router")):
        table = Table(title=f"top functions ({title})")
        table.add_column("share %", justify="right")
        table.add_column("function")
        for name, share in profile[key]:
            table.add_row(str(share), name)
        console.print(table)


def parse_options(argv: Sequence[str] | None) -> tuple[Options, Path | None]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="tiny counts: a smoke run, not figures"
    )
    parser.add_argument("--requests", type=int, help="requests per phase and path (default 1000)")
    parser.add_argument("--blocks", type=int, help="alternating blocks per phase (default 10)")
    parser.add_argument("--no-litellm-proxy", action="store_true", help="leave LiteLLM's proxy out")
    parser.add_argument(
        "--no-scale", action="store_true", help="leave out --workers 2, memory and Zipf"
    )
    parser.add_argument("--proxy-venv", type=Path, help="where LiteLLM's proxy is installed")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the results here")
    parser.add_argument(
        "--profile", type=Path, metavar="RAW",
        help="record router_direct with py-spy (pip install py-spy) into RAW and summarise it",
    )  # fmt: skip
    args = parser.parse_args(argv)
    options = QUICK if args.quick else Options()
    given = {"requests": args.requests, "blocks": args.blocks, "proxy_venv": args.proxy_venv,
             "profile": args.profile}  # fmt: skip
    options = dataclasses.replace(options, **{k: v for k, v in given.items() if v is not None})
    if args.no_litellm_proxy:
        options = dataclasses.replace(options, litellm_proxy=False)
    if args.no_scale:
        options = dataclasses.replace(options, scale=None)
    return options, args.json


def main(argv: Sequence[str] | None = None) -> int:
    options, json_out = parse_options(argv)
    if options.profile is not None and profile_top.py_spy() is None:
        print("--profile needs py-spy: pip install py-spy", file=sys.stderr)
        return 2
    results = run_benchmark(options)
    print_report(results, Console(width=max(Console().width, 150)))
    if json_out is not None:
        write_json(json_out, results)
    return 0 if results["all_requests_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
