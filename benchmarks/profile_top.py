"""A py-spy profile of a server under load, in a few lines: where its CPU went by package and the
top functions by their own samples (self) and with what they call (inclusive).

overhead.py --profile records the direct router with `py-spy record --format raw` (collapsed
stacks, one per line: `frame;frame;… count`) for the measured phases and prints this summary.
"""

from __future__ import annotations

import collections
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

_FILE = re.compile(r"\(([^:)]*)")
# Packages counted as one (the first part of a frame's file path); judge_router by sub-package.
_THREADS = ("process ", "thread ")


def py_spy() -> str | None:
    """The py-spy command: on PATH, or beside this Python (a virtualenv's bin)."""
    beside = Path(sys.executable).with_name("py-spy")
    return shutil.which("py-spy") or (str(beside) if beside.exists() else None)


def start(pid: int, out: Path, log: Path, rate: int = 250) -> subprocess.Popen[bytes]:
    """py-spy sampling `pid` into `out` until stop()."""
    command = [py_spy() or "py-spy", "record", "-p", str(pid), "-o", str(out), "-f", "raw",
               "-r", str(rate), "--nonblocking"]  # fmt: skip
    with log.open("ab") as sink:
        return subprocess.Popen(command, stdout=sink, stderr=sink)


def stop(process: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    """End the recording (py-spy writes its file on SIGINT)."""
    process.send_signal(signal.SIGINT)
    process.wait(timeout=timeout_s)


def _package(frame: str) -> str:
    found = _FILE.search(frame)
    path = found.group(1) if found else frame
    parts = path.split("/")
    return "/".join(parts[:2]) if parts[0] == "judge_router" else parts[0]


def summarise(raw: Path, top: int = 15) -> dict[str, Any]:
    """Shares of the samples (percent) by package of the running frame, and the top functions."""
    own: collections.Counter[str] = collections.Counter()
    within: collections.Counter[str] = collections.Counter()
    packages: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [f for f in stack.split(";") if f and not f.startswith(_THREADS)]
        if not frames:
            continue
        samples = int(count)
        total += samples
        own[frames[-1]] += samples
        packages[_package(frames[-1])] += samples
        for frame in set(frames):
            within[frame] += samples

    def shares(counter: collections.Counter[str], n: int) -> list[list[Any]]:
        return [[name, round(100 * count / total, 1)] for name, count in counter.most_common(n)]

    ours = collections.Counter({k: v for k, v in within.items() if "judge_router/" in k})
    return {
        "samples": total,
        "by_package": shares(packages, top) if total else [],
        "self": shares(own, top) if total else [],
        "inclusive_judge_router": shares(ours, top) if total else [],
    }
