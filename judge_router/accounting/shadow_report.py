"""`shadow-report`: per shadow candidate, how its answers graded against the answers the clients
got, what each cost per request, and what switching the tested tiers to it would save in a month.

`shadow_facts` reads the ledger; `shadow_report` is the arithmetic, a pure function of what it read.
A comparison is the shadow outcome rows of one request (quality/shadow.py): the answered model's
row (its `model` is the request's) and the candidate's, which carries the pair's cost.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from judge_router.accounting.ledger_reads import outcome_rows
from judge_router.accounting.read_connection import ReadConnection
from judge_router.accounting.stats import summarise
from judge_router.types import round_usd

SOURCE = "shadow"
DAYS_PER_MONTH = 30
MONTHLY_VOLUME = (
    "proxied requests (a model was called) of the tested tiers from window_start (the first request "
    "since `since`) to window_end (now), scaled to 30 days: requests * 30 / window_days"
)


def shadow_facts(conn: ReadConnection, since: str | None) -> dict[str, Any]:
    """What the report needs from the ledger: the shadow outcome rows since `since` (with their
    requests), the proxied requests per tier, and when the first request in the window was."""
    rows = outcome_rows(conn, since, SOURCE)
    proxied = {row["tier"]: row["proxied"] for row in summarise(conn, since)["by_tier"]}
    first = conn.execute(
        "SELECT MIN(created_at) FROM decisions WHERE created_at >= ?", (since or "",)
    ).fetchone()[0]
    return {"rows": rows, "proxied_by_tier": proxied, "first_request_at": first}


@dataclass(slots=True)
class _Candidate:
    comparisons: int = 0
    pairs: int = 0
    candidate_scores: list[float] = field(default_factory=list)
    primary_scores: list[float] = field(default_factory=list)
    candidate_grades: list[int] = field(default_factory=list)
    primary_grades: list[int] = field(default_factory=list)
    at_least_as_good: int = 0
    costed: int = 0
    primary_cost: float = 0.0
    candidate_cost: float = 0.0
    candidate_errors: int = 0
    grader_errors: int = 0
    spend: float = 0.0
    tiers: set[str] = field(default_factory=set)

    def add(self, candidate: dict[str, Any], primary: dict[str, Any] | None) -> None:
        """One comparison: the candidate's row and the answered model's (None: not recorded,
        as when the candidate failed)."""
        self.comparisons += 1
        self.tiers.add(candidate["tier"])
        self.spend += candidate["answer_cost_usd"] + candidate["grader_cost_usd"]
        failed = _failed(candidate, "candidate")
        self.candidate_errors += failed
        self.grader_errors += any(_failed(row, "grader") for row in (candidate, primary) if row)
        if not failed and candidate["request_cost_usd"] is not None:
            self.costed += 1
            self.primary_cost += candidate["request_cost_usd"]
            self.candidate_cost += candidate["answer_cost_usd"]
        if primary is None or candidate["grade"] is None or primary["grade"] is None:
            return
        self.pairs += 1
        self.candidate_scores.append(candidate["score"])
        self.primary_scores.append(primary["score"])
        self.candidate_grades.append(candidate["grade"])
        self.primary_grades.append(primary["grade"])
        self.at_least_as_good += candidate["grade"] >= primary["grade"]


def _failed(row: dict[str, Any], what: str) -> bool:
    """Whether the row's error is `what`'s: shadow.py writes 'candidate …' or 'grader …'."""
    return (row.get("error") or "").startswith(what)


def _mean(values: Sequence[float], digits: int) -> float | None:
    return round(sum(values) / len(values), digits) if values else None


def _per_request(total: float, requests: int) -> float | None:
    return round_usd(total / requests) if requests else None


def shadow_report(
    facts: Mapping[str, Any],
    tested_tiers: Mapping[str, Sequence[str]],
    now: datetime,
    since: str | None = None,
) -> dict[str, Any]:
    """The report from `shadow_facts`' answer; `tested_tiers`: each configured candidate (its
    litellm model, as outcome rows name it) and its test's tiers. A candidate in the ledger that is
    no longer configured is reported too, over the tiers its comparisons came from."""
    by_request: dict[str, list[dict[str, Any]]] = {}
    for row in facts["rows"]:
        if row["request_model"] is not None:  # a row whose request is gone compares nothing
            by_request.setdefault(row["request_id"], []).append(row)
    candidates = {name: _Candidate() for name in tested_tiers}
    for rows in by_request.values():
        primary = next((row for row in rows if row["model"] == row["request_model"]), None)
        for row in rows:
            if row is not primary:
                candidates.setdefault(row["model"], _Candidate()).add(row, primary)
    start = facts["first_request_at"]
    days = None if start is None else (now - datetime.fromisoformat(start)).total_seconds() / 86400
    window = {
        "since": since,
        "window_start": start,
        "window_end": now.isoformat(),
        "window_days": None if days is None else round(days, 4),
        "monthly_volume": MONTHLY_VOLUME,
    }
    entries = []
    for name, tally in sorted(candidates.items()):
        tiers = sorted(tested_tiers.get(name) or tally.tiers)
        entries.append(_entry(name, name in tested_tiers, tiers, tally, facts, days))
    return {**window, "candidates": entries}


def _entry(
    name: str,
    configured: bool,
    tiers: list[str],
    tally: _Candidate,
    facts: Mapping[str, Any],
    days: float | None,
) -> dict[str, Any]:
    primary = _per_request(tally.primary_cost, tally.costed)
    candidate = _per_request(tally.candidate_cost, tally.costed)
    requests = sum(facts["proxied_by_tier"].get(tier, 0) for tier in tiers)
    monthly = requests * DAYS_PER_MONTH / days if days else None
    saving = None
    if primary is not None and candidate is not None and monthly is not None:
        saving = round_usd((primary - candidate) * monthly)
    return {
        "candidate": name,
        "configured": configured,
        "tiers": tiers,
        "comparisons": tally.comparisons,
        "pairs": tally.pairs,
        "candidate_mean_score": _mean(tally.candidate_scores, 6),
        "primary_mean_score": _mean(tally.primary_scores, 6),
        "candidate_mean_grade": _mean(tally.candidate_grades, 4),
        "primary_mean_grade": _mean(tally.primary_grades, 4),
        "at_least_as_good_share": (
            round(tally.at_least_as_good / tally.pairs, 6) if tally.pairs else None
        ),
        "candidate_errors": tally.candidate_errors,
        "grader_errors": tally.grader_errors,
        "costed_requests": tally.costed,
        "primary_cost_per_request_usd": primary,
        "candidate_cost_per_request_usd": candidate,
        "spend_usd": round_usd(tally.spend),
        "requests_in_window": requests,
        "requests_per_month": None if monthly is None else round(monthly, 1),
        "projected_monthly_saving_usd": saving,
    }
