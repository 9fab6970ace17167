"""Rows the ledger could not store before shutdown, kept in a JSON-lines file and replayed at start.

SQLite's ledger keeps one file (`save`, `load`). The PostgreSQL ledger is written by several
processes (workers, replicas) that may share a folder, so each spills to a file of its own
(`spill_path`) and a starting process claims every file there (`claim_all`).
"""

from __future__ import annotations

import glob
import json
import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path

from judge_router.accounting.ledger_row import LedgerRow
from judge_router.accounting.outcome_row import OutcomeRow

Stored = LedgerRow | OutcomeRow
_KINDS: dict[str, type[LedgerRow] | type[OutcomeRow]] = {"row": LedgerRow, "outcome": OutcomeRow}

log = logging.getLogger(__name__)


def save(path: Path, rows: Iterable[Stored]) -> int:
    """Write `rows` to `path` in place of what it held (rows replayed from it and still unwritten
    are among them); the number written. Raises OSError if the file cannot be written."""
    lines = [json.dumps({_kind(row): _fields(row)}, ensure_ascii=True) for row in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", encoding="utf-8") as handle:
        handle.write("".join(line + "\n" for line in lines))
        handle.flush()
        os.fsync(handle.fileno())
    partial.replace(path)
    return len(lines)


def load(path: Path) -> list[Stored]:
    """The rows spilled to `path` (none if it does not exist); a line that cannot be read is
    logged and skipped, never fatal."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except OSError as exc:  # e.g. its directory is unusable: the ledger says so when it writes
        log.error("ledger recovery file %s unreadable: %s", path, exc)
        return []
    rows: list[Stored] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            ((kind, fields),) = json.loads(line).items()
            rows.append(_KINDS[kind](**fields))
        except (ValueError, KeyError, TypeError) as exc:
            log.error("ledger recovery file %s line %d unreadable, skipped: %s", path, number, exc)
    return rows


def spill_path(path: Path) -> Path:
    """This process's own file beside `path`, so two processes spilling never overwrite each
    other's rows."""
    return path.with_name(f"{path.name}.{os.getpid()}")


def claim_all(path: Path) -> tuple[list[Stored], list[Path]]:
    """The rows of `path` and of every process's file beside it (`spill_path`), and the files
    they are now in: each is first renamed to a name of this process, so of two processes starting
    together one takes it (should both read it, rows are replayed as replacements: no harm). A
    claimed file is removed once its rows are written; if this process dies first, the next one
    to start claims it again (a live process's claim is left to it)."""
    rows: list[Stored] = []
    claimed: list[Path] = []
    for found in sorted(path.parent.glob(glob.escape(path.name) + "*")):
        if found.name.endswith(".partial") or _claimed_by_a_live_process(found.name):
            continue
        mine = path.with_name(f"{path.name}.claimed-{os.getpid()}-{len(claimed)}")
        try:
            found.rename(mine)
        except OSError:  # another process took it first
            continue
        rows += load(mine)
        claimed.append(mine)
    return rows, claimed


def _claimed_by_a_live_process(name: str) -> bool:
    owner = re.search(r"\.claimed-(\d+)-\d+$", name)
    if owner is None:
        return False
    try:
        os.kill(int(owner.group(1)), 0)  # no signal sent: only whether the process exists
    except ProcessLookupError:
        return False
    except OSError:  # exists, but is another user's
        return True
    return True


def _kind(row: Stored) -> str:
    return "outcome" if isinstance(row, OutcomeRow) else "row"


def _fields(row: Stored) -> dict[str, object]:
    return {name: getattr(row, name) for name in type(row).__dataclass_fields__}
