"""Group commit: the rows handed to the SQLite ledger in one turn of the event loop are committed in
one transaction, each caller answered after it; a row the schema refuses drops only itself; a
request cancelled while it waits still has its row written."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from judge_router.accounting.group_commit import GroupCommit
from judge_router.accounting.migrations import connect
from judge_router.accounting.sqlite_ledger import SqliteLedger

from fakes import ledger_row


def stored_ids(path: Path) -> list[str]:
    conn = connect(path)
    try:
        return sorted(row[0] for row in conn.execute("SELECT request_id FROM decisions"))
    finally:
        conn.close()


def recording(ledger: SqliteLedger) -> list[int]:
    """The size of each group the ledger writes."""
    sizes: list[int] = []
    write = ledger._group._write  # noqa: SLF001

    def recorded(rows: Sequence[Any]) -> list[Any]:
        sizes.append(len(rows))
        return write(rows)

    ledger._group._write = recorded  # noqa: SLF001
    return sizes


async def test_rows_of_one_loop_turn_share_one_transaction(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "ledger.sqlite")
    sizes = recording(ledger)
    try:
        ids = [f"g{index:02d}" for index in range(20)]
        written = await asyncio.gather(*(ledger.record(ledger_row(i)) for i in ids))
        assert written == [True] * 20 and sizes == [20]
        assert await ledger.record(ledger_row("alone"))  # concurrency 1: a group of one
        assert sizes == [20, 1]
        assert stored_ids(tmp_path / "ledger.sqlite") == sorted([*ids, "alone"])
    finally:
        await ledger.close()


async def test_a_refused_row_drops_only_itself(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "ledger.sqlite")
    try:
        assert await ledger.record(ledger_row("taken"))
        ids = ["a", "taken", "b"]  # a request id already written: the schema refuses it
        written = await asyncio.gather(*(ledger.record(ledger_row(i)) for i in ids))
        assert written == [True, False, True] and ledger.dropped == 1
        assert stored_ids(tmp_path / "ledger.sqlite") == ["a", "b", "taken"]
    finally:
        await ledger.close()


async def test_a_cancelled_caller_still_has_its_row_written(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "ledger.sqlite")
    try:
        waiting = asyncio.create_task(ledger.record(ledger_row("gone")))
        await asyncio.sleep(0)  # the row is in the group, not written yet
        waiting.cancel()
        assert await ledger.record(ledger_row("next"))  # the turn after: both written by now
        assert stored_ids(tmp_path / "ledger.sqlite") == ["gone", "next"]
    finally:
        await ledger.close()


async def test_a_failing_write_reaches_every_caller_of_its_group() -> None:
    def broken(items: Sequence[int]) -> list[int]:
        raise RuntimeError("a bug in the writer")

    group: GroupCommit[int, int] = GroupCommit(broken)
    found = await asyncio.gather(group.add(1), group.add(2), return_exceptions=True)
    assert [type(error) for error in found] == [RuntimeError, RuntimeError]
    ok: GroupCommit[int, int] = GroupCommit(lambda items: [item * 10 for item in items])
    assert list(await asyncio.gather(ok.add(1), ok.add(2))) == [10, 20]  # in order, each its own
