"""The dashboard's recent decisions: a page of the last ledger rows in a window (newest first,
paged by a cursor, filtered as /stats filters), and one row in full with its outcome rows.

A page reads the created_at index backwards (ties in the order of the index itself: the rowid;
on PostgreSQL, which has no rowid, the request id), so the newest rows come first however large
the ledger; a filter that matches few rows reads further back for them, within the reader's time
limit.
Prompt text is shown only when the service stores it (`ledger.store_prompts`), and the feature
vector never (it is hashed n-grams of the prompt, for training).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from judge_router.accounting.dashboard_facts import Window, iso
from judge_router.accounting.dashboard_figures import first_day
from judge_router.accounting.ledger_reads import decision, request_outcomes
from judge_router.accounting.read_connection import ReadConnection, is_sqlite
from judge_router.accounting.stats_view import StatsView, conditions

MAX_PAGE = 200
# What a page's rows show: the decision, its costs and its latency; the rest is one click away.
SHOWN = (
    "request_id", "created_at", "endpoint", "tier", "model", "source", "cached", "rule", "arm",
    "budget", "strategy", "status", "judge_cost_usd", "cost_usd", "baseline_cost_usd",
    "saved_usd", "estimated_cost_usd", "estimated_baseline_cost_usd", "latency_ms",
    "api_key_id",
)  # fmt: skip
HIDDEN = ("features",)


class BadCursor(ValueError):
    """A `before` cursor this service did not give."""


def cursor(created_at: str, position: int | str) -> str:
    """An opaque cursor for the rows after this one (older, or as old and before it in the
    order: written before, or on PostgreSQL a smaller request id)."""
    packed = json.dumps([created_at, position], separators=(",", ":"))
    return base64.urlsafe_b64encode(packed.encode()).decode().rstrip("=")


def _position(before: str, kind: type[int] | type[str]) -> tuple[str, int | str]:
    try:
        padded = before + "=" * (-len(before) % 4)
        created_at, position = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError, binascii.Error):
        raise BadCursor(f"before={before!r} is not a cursor from a page's `next`") from None
    # type(…) is: a JSON true is an int to isinstance, not a position.
    if not isinstance(created_at, str) or type(position) is not kind:
        raise BadCursor(f"before={before!r} is not a cursor from a page's `next`")
    assert isinstance(position, int | str)
    return created_at, position


def recent(
    conn: ReadConnection,
    window: Window,
    filters: StatsView | None,
    limit: int = 50,
    before: str | None = None,
) -> dict[str, Any]:
    """The newest `limit` rows in `window` passing `filters`, older than the `before` cursor;
    `next`: the cursor of the page after, None when there is none."""
    params: dict[str, Any] = {"limit": min(max(limit, 1), MAX_PAGE) + 1}
    wanted = conditions(filters, True, params) if filters is not None else []
    if window.since is not None:
        params["since"] = iso(window.since)
        wanted.append("created_at >= :since")
    if window.until is not None:
        params["until"] = iso(window.until)
        wanted.append("created_at < :until")
    order, kind = ("rowid", int) if is_sqlite(conn) else ("request_id", str)
    if before is not None:
        params["at"], params["id"] = _position(before, kind)
        wanted.append(f"created_at <= :at AND (created_at < :at OR {order} < :id)")
    rows = [
        dict(row)
        for row in conn.execute(
            f"SELECT {order} AS position, {', '.join(SHOWN)} FROM decisions"
            + (f" WHERE {' AND '.join(wanted)}" if wanted else "")
            + f" ORDER BY created_at DESC, {order} DESC LIMIT :limit",
            params,
        )
    ]
    more = len(rows) == params["limit"]
    rows = rows[: params["limit"] - 1]
    last = (rows[-1]["created_at"], rows[-1]["position"]) if rows else None
    for row in rows:
        row["cached"] = bool(row["cached"])
        del row["position"]
    return {
        "window": {"since": iso(window.since), "until": iso(window.until)},
        "ledger_first_day": first_day(conn),
        "decisions": rows,
        "next": cursor(*last) if more and last is not None else None,
    }


def full_decision(
    conn: ReadConnection, request_id: str, store_prompts: bool
) -> dict[str, Any] | None:
    """Every column of one row (but the feature vector, and the prompt text unless
    `store_prompts`), with its outcome rows; None when there is no such row."""
    row = decision(conn, request_id)
    if row is None:
        return None
    for name in HIDDEN:
        row.pop(name, None)
    if not store_prompts:
        row.pop("prompt_text", None)
    for flag in ("cached", "stream", "usage_estimated"):
        if flag in row:
            row[flag] = bool(row[flag])
    return {"decision": row, "outcomes": request_outcomes(conn, request_id)}
