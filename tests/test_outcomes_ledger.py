"""Outcome rows in the SQLite ledger: stored, replaced, joined to their request, never lost."""

from __future__ import annotations

from pathlib import Path

from test_ledger import FAST_RETRY, wait_until_written

from judge_router.accounting.outcome_row import OutcomeRow, grade_score
from judge_router.accounting.sqlite_ledger import SqliteLedger

from fakes import ledger_row as row


def outcome(request_id: str, source: str = "sample", **fields: object) -> OutcomeRow:
    return OutcomeRow(request_id=request_id, source=source, model="m", tier="low", **fields)  # type: ignore[arg-type]


def test_grades_map_onto_the_zero_to_one_scale() -> None:
    assert [grade_score(g) for g in (1, 10)] == [0.0, 1.0]
    assert grade_score(7) == round(6 / 9, 6)


async def test_outcomes_are_stored_with_their_requests_facts(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "l.sqlite")
    decided = row("r1")
    decided.metadata, decided.arm, decided.cost_usd = {"team": "search"}, "routed", 0.002
    assert await ledger.record(decided)
    assert await ledger.record_outcome(outcome("r1", grade=7, score=grade_score(7)))
    assert await ledger.record_outcome(outcome("r1", "cascade", passed=False, score=0.0))
    assert await ledger.record_outcome(outcome("orphan", "feedback", score=1.0))
    found = {(o["request_id"], o["source"]): o for o in await ledger.outcomes()}
    sample = found[("r1", "sample")]
    assert (sample["grade"], sample["prompt_hash"], sample["arm"]) == (7, "h", "routed")
    assert sample["metadata"] == {"team": "search"} and sample["request_cost_usd"] == 0.002
    assert found[("r1", "cascade")]["passed"] is False
    assert found[("orphan", "feedback")]["prompt_hash"] is None  # no request row: no join
    assert [o["source"] for o in await ledger.outcomes(source="cascade")] == ["cascade"]
    assert await ledger.decision("r1") is not None and await ledger.decision("nope") is None
    await ledger.close()


async def test_a_second_outcome_of_one_request_source_and_model_replaces_the_first(
    tmp_path: Path,
) -> None:
    ledger = SqliteLedger(tmp_path / "l.sqlite")
    await ledger.record_outcome(outcome("r1", "feedback", score=0.2, reason="wrong"))
    await ledger.record_outcome(outcome("r1", "feedback", score=0.9, reason="fixed now"))
    [only] = await ledger.outcomes()
    assert (only["score"], only["reason"]) == (0.9, "fixed now")
    await ledger.close()


async def test_outcomes_unwritable_at_shutdown_are_kept_and_written_at_the_next_start(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file where the ledger's directory should be")
    saved = tmp_path / "recovery" / "ledger.pending.jsonl"
    ledger = SqliteLedger(blocker / "ledger.sqlite", backoff_s=FAST_RETRY, recovery_path=saved)
    assert not await ledger.record(row("a"))
    assert not await ledger.record_outcome(outcome("a", grade=3, score=grade_score(3)))
    await ledger.close()
    assert ledger.dropped == 0 and len(saved.read_text().splitlines()) == 2
    blocker.unlink()
    again = SqliteLedger(blocker / "ledger.sqlite", backoff_s=FAST_RETRY, recovery_path=saved)
    await wait_until_written(again)
    assert [r["request_id"] for r in await again.rows()] == ["a"]
    assert [(o["request_id"], o["grade"]) for o in await again.outcomes()] == [("a", 3)]
    await again.close()
