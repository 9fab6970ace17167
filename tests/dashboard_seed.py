"""A seeded ledger for the dashboard's tests: a few thousand decisions over the last days, as the
service writes them (teams, task types, keys, rules, arms, /route and failed requests, replaced
stream rows) plus graded and fed-back outcomes, the same for the same seed."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from judge_router.accounting.ledger_row import LedgerRow
from judge_router.accounting.outcome_row import OutcomeRow
from judge_router.accounting.sqlite_ledger import SqliteLedger

MODELS = {"low": ["gpt-5-nano", "gemini/gemini-2.5-flash-lite"], "medium": ["claude-haiku-4-5"],
          "high": ["gpt-5.1"]}  # fmt: skip
PRICE = {"gpt-5-nano": 4e-7, "gemini/gemini-2.5-flash-lite": 5e-7, "claude-haiku-4-5": 4e-6,
         "gpt-5.1": 9e-6}  # fmt: skip
BASELINE_PRICE = 9e-6
TEAMS = ["search", "ads", "support"]
TASKS = ["chat", "extract", "code"]
KEYS = ["web", "batch", None]


def seeded_rows(count: int, seed: int = 7, now: datetime | None = None, days: float = 10.0):
    """`count` rows over the `days` before `now`, and their outcome rows."""
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    rows: list[LedgerRow] = []
    outcomes: list[OutcomeRow] = []
    for index in range(count):
        at = now - timedelta(seconds=days * 86400 * (count - index) / count)
        tier = rng.choices(["low", "medium", "high"], [6, 3, 1])[0]
        model = rng.choice(MODELS[tier])
        source = rng.choices(["llm", "cache", "local", "rule", "heuristic"], [4, 4, 1, 1, 0.2])[0]
        status = rng.choices(["ok", "routed", "error"], [85, 12, 3])[0]
        tokens = rng.randint(100, 3000)
        metadata: dict[str, object] = {"team": rng.choice(TEAMS), "task_type": rng.choice(TASKS)}
        if index % 7 == 0:
            metadata["priority"] = 5  # a number: read as "5"
        if index % 11 == 0:
            del metadata["task_type"]  # some requests have none: the (none) group
        judge = 2e-5 if source == "llm" else 0.0
        cost = (
            round(tokens * PRICE[model], 10)
            if status == "ok"
            else (0.0 if status == "error" else None)
        )
        baseline = round(tokens * BASELINE_PRICE, 10) if status != "routed" else None
        rows.append(
            LedgerRow(
                request_id=f"jr-seed{index:06d}", endpoint="route" if status == "routed" else "chat",
                prompt_hash=f"h{index % 400}", tier=tier, model=model, source=source,
                cached=source == "cache", reason="seeded", judge_model="gpt-5-nano",
                judge_error=None, judge_cost_usd=judge, judge_latency_ms=rng.uniform(0.1, 300),
                prompt_tokens=tokens, estimated_cost_usd=round(tokens * PRICE[model], 10),
                baseline_model="gpt-5.1", estimated_baseline_cost_usd=round(tokens * BASELINE_PRICE, 10),
                latency_ms=rng.uniform(2, 900), metadata=metadata, created_at=at.isoformat(),
                status=status, cost_usd=cost, baseline_cost_usd=baseline,
                saved_usd=None if baseline is None or cost is None else round(baseline - cost - judge, 10),
                api_key_id=KEYS[index % 3], rule="short-chitchat" if source == "rule" else None,
                arm="holdout" if index % 10 == 0 else "routed", prompt_text="a secret prompt",
                features="F:abc:def",
            )
        )  # fmt: skip
        if status == "ok" and index % 9 == 0:
            outcomes.append(
                OutcomeRow(rows[-1].request_id, "sample", model, tier, score=rng.random(),
                           grade=rng.randint(1, 10), grader_cost_usd=1e-5,
                           created_at=(at + timedelta(seconds=1)).isoformat())
            )  # fmt: skip
        if status == "ok" and index % 13 == 0:
            outcomes.append(
                OutcomeRow(rows[-1].request_id, "feedback", model, tier, score=rng.choice([0.0, 1.0]),
                           created_at=(at + timedelta(seconds=2)).isoformat())
            )  # fmt: skip
    return rows, outcomes


async def record(ledger: Any, rows: list[LedgerRow], outcomes: list[OutcomeRow]) -> None:
    """Record the rows as the service does (every 50th twice: a stream's row replaced)."""
    for index, row in enumerate(rows):
        assert await ledger.record(row)
        if index % 50 == 0:
            assert await ledger.record(row, replace=True)
    for outcome in outcomes:
        assert await ledger.record_outcome(outcome)


async def write(path: Path, rows: list[LedgerRow], outcomes: list[OutcomeRow]) -> None:
    """`record` into a SQLite ledger at `path`."""
    ledger = SqliteLedger(path)
    try:
        await record(ledger, rows, outcomes)
    finally:
        await ledger.close()


def seed(path: Path, count: int = 3000, seed_value: int = 7, now: datetime | None = None) -> None:
    rows, outcomes = seeded_rows(count, seed_value, now)
    asyncio.run(write(path, rows, outcomes))


async def seed_async(path: Path, count: int = 3000, seed_value: int = 7) -> None:
    rows, outcomes = seeded_rows(count, seed_value)
    await write(path, rows, outcomes)
