"""The statements the PostgreSQL ledger writes with, and a queued batch as runs of one statement.

A direct write is a plain INSERT (a repeated request id is refused, as SQLite refuses it) or, for a
replacing row (a stream's final row), an UPSERT. A queued row may have been committed already by a
write whose connection broke before the answer came back, so it is written idempotently: ONCE (an
existing row means it landed) or, replacing, UPSERT. An outcome replaces the earlier outcome of the
same request, source and model, as SQLite's INSERT OR REPLACE does.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from judge_router.accounting.ledger_row import LedgerRow
from judge_router.accounting.outcome_row import OutcomeRow

Stored = LedgerRow | OutcomeRow


def _statements() -> dict[str, bytes]:
    names = list(LedgerRow.__dataclass_fields__)
    insert = (
        f"INSERT INTO decisions ({', '.join(names)}) "
        f"VALUES ({', '.join(f'%({n})s' for n in names)})"
    )
    updates = ", ".join(f"{n} = excluded.{n}" for n in names if n != "request_id")
    fields = list(OutcomeRow.__dataclass_fields__)
    keys = ("request_id", "source", "model")
    outcome = (
        f"INSERT INTO outcomes ({', '.join(fields)}) "
        f"VALUES ({', '.join(f'%({n})s' for n in fields)}) ON CONFLICT ({', '.join(keys)}) "
        f"DO UPDATE SET {', '.join(f'{n} = excluded.{n}' for n in fields if n not in keys)}"
    )
    return {
        "insert": insert.encode(),
        "upsert": f"{insert} ON CONFLICT (request_id) DO UPDATE SET {updates}".encode(),
        "once": f"{insert} ON CONFLICT (request_id) DO NOTHING".encode(),
        "outcome": outcome.encode(),
    }


SQL = _statements()


def statement(row: Stored, replace: bool, queued: bool) -> bytes:
    """The statement that stores `row`: `queued`, it may be there already (see above)."""
    if isinstance(row, OutcomeRow):
        return SQL["outcome"]
    if replace:
        return SQL["upsert"]
    return SQL["once" if queued else "insert"]


def params(row: Stored) -> dict[str, Any]:
    """`row`'s parameters; a NUL character, which PostgreSQL's text refuses and SQLite keeps (a
    prompt may hold one), becomes U+FFFD, so the row is stored rather than refused."""
    found = row.as_params()
    for name, value in found.items():
        if isinstance(value, str) and "\x00" in value:
            found[name] = value.replace("\x00", "\ufffd")
    return found


def runs(items: Iterable[tuple[Stored, bool]]) -> list[tuple[bytes, list[dict[str, Any]]]]:
    """Queued (row, replace) pairs as runs of one statement, in order (a stream's first row goes
    in before its final one), each run one executemany."""
    found: list[tuple[bytes, list[dict[str, Any]]]] = []
    for row, replace in items:
        sql = statement(row, replace, queued=True)
        if found and found[-1][0] == sql:
            found[-1][1].append(params(row))
        else:
            found.append((sql, [params(row)]))
    return found
