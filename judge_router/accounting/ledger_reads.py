"""Reads of the ledger's rows, each on a connection of its own (plain SQL, as stats.py)."""

from __future__ import annotations

import json
from typing import Any

from judge_router.accounting.read_connection import ReadConnection

_JSON_COLUMNS = ("metadata", "attempts", "cascade")


def _decoded(row: Any) -> dict[str, Any]:
    found = dict(row)
    for blob in _JSON_COLUMNS:
        if found.get(blob):
            found[blob] = json.loads(found[blob])
    return found


def decision_rows(conn: ReadConnection, since: str | None) -> list[dict[str, Any]]:
    """Every decision row, oldest first, optionally from an ISO timestamp on."""
    query = "SELECT * FROM decisions" + (" WHERE created_at >= ?" if since else "")
    return [
        _decoded(r) for r in conn.execute(query + " ORDER BY created_at", (since,) if since else ())
    ]


def decision(conn: ReadConnection, request_id: str) -> dict[str, Any] | None:
    """One decision row by its request id (the primary key), or None."""
    found = conn.execute("SELECT * FROM decisions WHERE request_id = ?", (request_id,)).fetchone()
    return None if found is None else _decoded(found)


def request_outcomes(conn: ReadConnection, request_id: str) -> list[dict[str, Any]]:
    """The outcome rows of one request (its primary key's prefix: one index read), by source."""
    query = "SELECT * FROM outcomes WHERE request_id = ? ORDER BY source, model"
    return [_outcome(row) for row in conn.execute(query, (request_id,))]


def _outcome(row: Any) -> dict[str, Any]:
    found = dict(row)
    if found.get("passed") is not None:
        found["passed"] = bool(found["passed"])
    return found


def outcome_rows(
    conn: ReadConnection, since: str | None, source: str | None
) -> list[dict[str, Any]]:
    """Outcome rows, oldest first, each with its decision's prompt hash, tier, model, arm, metadata,
    prompt text and cost (what a trainer or a report needs to join them to the request)."""
    where, params = [], []
    if since:
        where.append("o.created_at >= ?")
        params.append(since)
    if source:
        where.append("o.source = ?")
        params.append(source)
    query = (
        "SELECT o.*, d.prompt_hash, d.tier AS request_tier, d.model AS request_model, d.arm, "
        "d.metadata, d.prompt_text, d.cost_usd AS request_cost_usd "
        "FROM outcomes o LEFT JOIN decisions d ON d.request_id = o.request_id"
        + (f" WHERE {' AND '.join(where)}" if where else "")
        + " ORDER BY o.created_at, o.request_id, o.source, o.model"
    )
    rows = []
    for row in conn.execute(query, params):
        found = _outcome(row)
        if found.get("metadata"):
            found["metadata"] = json.loads(found["metadata"])
        rows.append(found)
    return rows
