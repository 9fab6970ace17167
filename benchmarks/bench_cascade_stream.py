"""What `cascade.stream: buffer` costs a streaming client: time to the first byte and to the end,
for a direct stream and for a buffered cascade that passes at the first tier or climbs one tier.

Run: .venv/bin/python benchmarks/bench_cascade_stream.py [--quick] [--requests N] [--answer-ms MS]
[--chunk-ms MS] [--json OUT]; see benchmarks/README.md. The provider is the loopback fake: each answer takes
`--answer-ms` (its `slow-N` marker) and a stream's chunks come `--chunk-ms` apart after that, so
a direct stream's first byte comes at about answer-ms, and its end later by the chunks' spacing.
A whole answer takes as long as its stream (the fake waits the chunks' gaps too). The router is
served by uvicorn on loopback in this process, so the first byte is timed as a client sees it.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from judge_router.config import Settings
from judge_router.service.factory import build_engine
from judge_router.serving.app import create_app
from judge_router.testing.fake_upstream import BackgroundServer, FakeUpstream

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import machine_meta, revision, write_json  # noqa: E402

CASES = {
    # name: (strategy, the low tier's model: passes, or answers empty and is climbed past)
    "direct stream": ("direct", "good"),
    "cascade, passes at low": ("cascade", "good"),
    "cascade, climbs once": ("cascade", "answers-empty"),
}


def settings(base_url: str, folder: Path, low: str, answer_ms: int, chunk_ms: int) -> Settings:
    def entry(name: str) -> dict[str, Any]:
        params = {"api_base": base_url, "api_key": "sk-bench", "input_cost_per_token": 1e-7,
                  "output_cost_per_token": 4e-7}  # fmt: skip
        return {"model": f"openai/{name}-slow-{answer_ms}-stream-delay-{chunk_ms}",
                "litellm_params": params}  # fmt: skip

    return Settings(
        judge={"model": "heuristic"},
        tiers={"low": [entry(f"{low}-low")], "medium": [entry("good-mid")],
               "high": [entry("good-high")]},  # fmt: skip
        baseline=f"openai/good-high-slow-{answer_ms}-stream-delay-{chunk_ms}",
        cache={"dir": str(folder / "cache")},
        ledger={"path": str(folder / "ledger.sqlite")},
    )


async def timed(client: httpx.AsyncClient, body: dict[str, Any]) -> tuple[float, float]:
    """(first-byte ms, whole-answer ms) of one streamed request."""
    started = time.perf_counter()
    got_first = None
    async with client.stream("POST", "/v1/chat/completions", json=body) as reply:
        assert reply.status_code == 200, reply.status_code
        async for _chunk in reply.aiter_bytes():
            got_first = got_first or time.perf_counter()
    ended = time.perf_counter()
    return ((got_first or ended) - started) * 1000, (ended - started) * 1000


async def measure(
    base_url: str, strategy: str, low: str, args: argparse.Namespace
) -> list[tuple[float, float]]:
    body = {"messages": [{"role": "user", "content": "Name three rivers of Europe."}],
            "stream": True, "strategy": strategy}  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        config = settings(base_url, Path(folder), low, args.answer_ms, args.chunk_ms)
        app = create_app(config, build_engine(config))
        with BackgroundServer(app) as server:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                return [await timed(client, body) for _ in range(args.requests)]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with FakeUpstream() as fake:
        for name, (strategy, low) in CASES.items():
            timings = await measure(fake.base_url, strategy, low, args)
            first, whole = [t[0] for t in timings], [t[1] for t in timings]
            results[name] = {
                "first_byte_ms_p50": round(statistics.median(first), 1),
                "whole_ms_p50": round(statistics.median(whole), 1),
                "requests": len(first),
            }
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--answer-ms", type=int, default=200)
    parser.add_argument("--chunk-ms", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="3 requests, 20 ms answers (smoke)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.quick:
        args.requests, args.answer_ms, args.chunk_ms = 3, 20, 2
    results = asyncio.run(run(args))
    table = Table(title=f"streamed requests, provider answer {args.answer_ms} ms, "
                  f"chunks {args.chunk_ms} ms apart, {args.requests} requests each")  # fmt: skip
    for column in ("case", "first byte p50 ms", "whole answer p50 ms"):
        table.add_column(column)
    for name, figures in results.items():
        table.add_row(name, str(figures["first_byte_ms_p50"]), str(figures["whole_ms_p50"]))
    Console().print(table)
    if args.json:
        write_json(args.json, {"meta": {**machine_meta(), "revision": revision()},
                               "args": vars(args) | {"json": str(args.json)},
                               "results": results})  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
