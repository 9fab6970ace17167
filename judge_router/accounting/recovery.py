"""Rows the ledger could not store before shutdown, kept in a JSON-lines file and replayed at start."""

from __future__ import annotations

import json
import logging
import os
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


def _kind(row: Stored) -> str:
    return "outcome" if isinstance(row, OutcomeRow) else "row"


def _fields(row: Stored) -> dict[str, object]:
    return {name: getattr(row, name) for name in type(row).__dataclass_fields__}
