"""What bench_route.py and bench_proxy.py share: the raw HTTP/1.1 client, CPU readers, child processes."""

from __future__ import annotations

import asyncio
import http.client
import json
import math
import os
import platform
import signal
import socket
import subprocess
import time
from collections.abc import Coroutine, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

import yaml

if TYPE_CHECKING:
    import httpx

HOST = "127.0.0.1"
SAMPLES = Path(__file__).parent / "samples.jsonl"

T = TypeVar("T")


# -- the load generator: a raw keep-alive HTTP/1.1 client on asyncio streams ----------------------


def http_post(port: int, path: str, body: bytes) -> bytes:
    """A whole HTTP/1.1 POST, built once so that sending it costs a single write."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


async def open_stream(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """One loopback connection for keep-alive requests."""
    reader, writer = await asyncio.open_connection(HOST, port)
    sock = writer.get_extra_info("socket")
    if sock is not None:  # small request/response pairs: don't let Nagle hold them back
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return reader, writer


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, float | None]:
    """(status, body, perf_counter time of the first body chunk) of one response.

    Reads Content-Length and chunked (SSE) bodies, nothing else: a minimal parser keeps the
    client's cost to tens of microseconds per request, so on two cores the server is what gets
    measured. The first-chunk time is None unless the body was chunked.
    """
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lowered = head.lower()
    start = lowered.find(b"\r\ncontent-length:")
    if start >= 0:
        end = lowered.index(b"\r\n", start + 2)
        return status, await reader.readexactly(int(lowered[start + 17 : end])), None
    if b"\r\ntransfer-encoding: chunked" not in lowered:
        raise ValueError(f"response with neither length nor chunks: {head[:200]!r}")
    first: float | None = None
    parts = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")  # end of the (empty) trailer section
            break
        parts.append((await reader.readexactly(size + 2))[:-2])
        if first is None:
            first = time.perf_counter()
    return status, b"".join(parts), first


async def close_stream(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass  # the server may already have dropped the connection; nothing left to release


def httpx_client() -> httpx.AsyncClient:
    """An httpx client held to one keep-alive connection, to compare its cost with the raw client."""
    import httpx  # only the httpx comparison needs it

    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    # trust_env=False: no proxy variable may send loopback traffic anywhere else.
    return httpx.AsyncClient(limits=limits, timeout=30, trust_env=False)


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run on uvloop when installed, as uvicorn does: the client's own loop overhead stays small."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


# -- figures ------------------------------------------------------------------------------------


def percentile(ordered: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of already sorted values (0 for none)."""
    if not ordered:
        return 0.0
    rank = max(math.ceil(pct / 100 * len(ordered)), 1)
    return ordered[rank - 1]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


# -- CPU time, read from Linux /proc so other processes can be watched too -----------------------


def stat_cpu_s(stat: Path) -> float | None:
    """User+system CPU seconds from a /proc/.../stat file; None where unavailable."""
    try:
        # The command name in parentheses may contain spaces: count fields after its ")".
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float | None:
    """User+system CPU seconds of a process (Linux /proc); None where unavailable."""
    return stat_cpu_s(Path(f"/proc/{pid}/stat"))


def tree_cpu_s(pid: int) -> float | None:
    """User+system CPU seconds of a process and all its descendants, live or reaped (Linux /proc);
    None where unavailable.

    For servers that fork a process per connection (PostgreSQL's backends): each live process's
    own time plus its reaped children's (cutime, cstime), so a backend that exits still counts
    once its parent has waited for it.
    """
    children: dict[int, list[int]] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    try:
        entries = [entry for entry in Path("/proc").iterdir() if entry.name.isdigit()]
    except OSError:
        return None
    for entry in entries:
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # exited meanwhile
        child = int(entry.name)
        children.setdefault(int(fields[1]), []).append(child)
        times[child] = sum(int(value) for value in fields[11:15]) / tick
    if pid not in times:
        return None
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += times.get(current, 0.0)
        todo.extend(children.get(current, []))
    return total


def thread_cpu_s(pid: int) -> dict[str, float]:
    """CPU seconds per thread of a process ("main" and "tid-N"); empty off Linux.

    Python 3.11 does not name OS threads, so they are told apart by id: the event loop runs on
    "main"; the others are the loop's default executor, where litellm.acompletion runs its
    synchronous set-up for every call.
    """
    totals: dict[str, float] = {}
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return totals
    for task in tasks:
        cpu = stat_cpu_s(task / "stat")
        if cpu is not None:
            totals["main" if task.name == str(pid) else f"tid-{task.name}"] = cpu
    return totals


def machine_cpu_s() -> tuple[float, float] | None:
    """(busy, steal) CPU seconds of all cores since boot (Linux /proc/stat); None where unavailable.

    Busy is user, nice, system, irq and softirq time; steal is time the hypervisor gave another
    virtual machine, which slows this one down without any process here being busy.
    """
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / tick, steal / tick


# -- child processes ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def child_env() -> dict[str, str]:
    # JUDGE_ROUTER_* variables would override the config, and API keys must not reach a child.
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("JUDGE_ROUTER_") and not key.endswith("_API_KEY")
    }
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


def tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextmanager
def running(
    command: list[str],
    log: Path,
    stop: signal.Signals = signal.SIGTERM,
    pipes: bool = False,
    env: dict[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """A child process with stderr (and stdout unless `pipes`) in `log`; sent `stop` on the way out.
    `env` is added to child_env()'s.

    With `pipes`, stdin and stdout are pipes for a line protocol with the child. A child that
    outlives `stop` by 20 s is killed.
    """
    with log.open("wb") as log_file:
        piped: IO[bytes] | int = subprocess.PIPE if pipes else log_file
        process = subprocess.Popen(
            command,
            env={**child_env(), **(env or {})},
            stdin=subprocess.PIPE if pipes else subprocess.DEVNULL,
            stdout=piped,
            stderr=log_file,
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(stop)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    stream.close()


def http_ok(port: int, path: str) -> bool:
    """Whether GET `path` answers 200 (a readiness probe)."""
    connection = http.client.HTTPConnection(HOST, port, timeout=2)
    try:
        connection.request("GET", path)
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def wait_until_ready(
    process: subprocess.Popen[bytes], port: int, path: str, deadline: float, log: Path
) -> None:
    """Poll GET `path` until it answers 200, the server exits or `deadline` (time.monotonic) passes."""
    while not http_ok(port, path):
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{tail(log)}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"server not ready in time:\n{tail(log)}")
        time.sleep(0.1)  # readiness poll, bounded by the deadline above


# -- configuration, inputs and results ----------------------------------------------------------


def litellm_params(base_url: str, input_price: float, output_price: float) -> dict[str, Any]:
    """A model on the loopback fake, priced explicitly so no cost lookup can differ between runs."""
    return {
        "api_base": base_url,
        "api_key": "sk-fake",
        "input_cost_per_token": input_price,
        "output_cost_per_token": output_price,
    }


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def sample_rows() -> list[dict[str, Any]]:
    """The rows of samples.jsonl: a prompt and the tier it belongs to."""
    return [json.loads(line) for line in SAMPLES.read_text(encoding="utf-8").splitlines() if line]


def tier_marked(rows: Sequence[dict[str, Any]], count: int) -> list[tuple[str, str]]:
    """(prompt, tier) of the first `count` rows; the marker makes the fake judge answer that tier."""
    if count > len(rows):
        raise ValueError(f"--prompts {count}: {SAMPLES.name} has only {len(rows)} prompts")
    return [(f"{row['prompt']} [[tier:{row['tier']}]]", row["tier"]) for row in rows[:count]]


def machine_meta() -> dict[str, Any]:
    """When and on what the figures were taken."""
    return {
        "date": datetime.now(UTC).date().isoformat(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
    }


def revision() -> str | None:
    """The commit measured (with -dirty for uncommitted changes); None outside a git checkout."""
    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (done.stdout.strip() or None) if done.returncode == 0 else None


def write_json(path: Path, results: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


def yes(value: bool) -> str:
    return "[green]yes[/green]" if value else "[red]NO[/red]"
