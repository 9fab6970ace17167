"""The dashboard on a PostgreSQL ledger, on a real server: every view gives the figures SQLite's
gives for the same rows (its rollups there, the decisions here), pages through the same decisions,
offers the same dimensions; through the service its totals are /stats's; a PostgreSQL stopped
mid-run makes its reads 503 with the JSON error body, and they answer again once it is back."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from test_postgres_ledger import record_all
from test_postgres_service import serving, settings_for, until_healthy

from judge_router.accounting import dashboard_decisions as decisions
from judge_router.accounting import dashboard_figures as figures
from judge_router.accounting.dashboard_dimensions import dimensions
from judge_router.accounting.dashboard_facts import Window
from judge_router.accounting.dashboard_models import model_costs
from judge_router.accounting.dashboard_reader import DashboardReader
from judge_router.accounting.dashboard_rollups import catch_up_all
from judge_router.accounting.migrations import connect as sqlite_connect
from judge_router.accounting.postgres_dashboard_reader import PgDashboardReader
from judge_router.accounting.postgres_ledger import PostgresLedger
from judge_router.accounting.sqlite_ledger import SqliteLedger
from judge_router.accounting.stats_scan import ScanTooLong
from judge_router.accounting.stats_view import StatsView, stats_view
from judge_router.testing.fake_upstream import FakeUpstream

from dashboard_seed import record, seeded_rows
from store_servers import PostgresServer

pytestmark = pytest.mark.slow  # a real PostgreSQL server

NOW = datetime(2026, 11, 30, 15, 20, tzinfo=UTC)
WINDOWS = [
    Window(),
    Window(NOW - timedelta(days=3), NOW),  # by the hour
    Window(NOW - timedelta(days=8, minutes=47), NOW - timedelta(days=1, minutes=13)),  # days
    Window(datetime(2026, 11, 27, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)),
]
FILTERS: list[StatsView | None] = [
    None,
    stats_view(None, [("tier", "low")]),
    stats_view(None, [("api_key", "web")]),
    stats_view(None, [("metadata.team", "search")]),
    stats_view(None, [("metadata.team", "search"), ("api_key", "batch")]),  # two row-only keys
    stats_view(None, [("metadata.nested.k", "v")]),  # a nested key
]
Readers = tuple[PgDashboardReader, DashboardReader]
GROUPS = ["tier", "model", "day", "rule", "arm", "api_key", "metadata.team", "metadata.n",
          "metadata.flag", "metadata.task_type"]  # fmt: skip


async def fill(ledger: Any) -> None:
    """The dashboard's seeded traffic and the ledger tests' rows of every metadata shape."""
    await record(ledger, *seeded_rows(1200, now=NOW))
    await record_all(ledger)


async def fill_both(url: str, folder: Path) -> None:
    pg = PostgresLedger(url, recovery_path=folder / "pending.jsonl")
    sq = SqliteLedger(folder / "ledger.sqlite")
    try:
        for ledger in (pg, sq):
            await fill(ledger)
        assert pg.dropped == 0 and pg.pending == 0
    finally:
        await pg.close()
        await sq.close()


@pytest.fixture(scope="module")
def readers(
    tmp_path_factory: pytest.TempPathFactory, postgres_server: PostgresServer
) -> Iterator[tuple[PgDashboardReader, DashboardReader]]:
    """(PostgreSQL's reader, SQLite's reader) over the same rows, SQLite's rolled up."""
    folder = tmp_path_factory.mktemp("pg-dashboard")
    url = postgres_server.create_database("jr_dashboard")
    asyncio.run(fill_both(url, folder))
    conn = sqlite_connect(folder / "ledger.sqlite")
    catch_up_all(conn)
    conn.close()
    found = PgDashboardReader(url), DashboardReader(folder / "ledger.sqlite")
    yield found
    for reader in found:
        reader.close()


def same(pg: Any, sq: Any, where: str = "") -> None:
    """Equal but for how the window was read, and sums of floats added in another order."""
    if isinstance(pg, dict) and isinstance(sq, dict):
        assert pg.keys() == sq.keys(), where
        for key in pg:
            if key == "read":
                assert pg[key] == "rows", where
            else:
                same(pg[key], sq[key], f"{where}.{key}")
    elif isinstance(pg, list) and isinstance(sq, list):
        assert len(pg) == len(sq), where
        for index, (a, b) in enumerate(zip(pg, sq, strict=True)):
            same(a, b, f"{where}[{index}]")
    elif isinstance(pg, float) or isinstance(sq, float):
        # Rounded figures (judge_roi to 4 places) may differ in their last place.
        assert pg == pytest.approx(sq, rel=1e-6, abs=1e-9), where
    else:
        assert pg == sq, where


async def both(readers: Readers, read: Any, *args: Any) -> None:
    pg, sq = readers
    same(await pg.read(read, *args), await sq.read(read, *args), f"{read.__name__}{args}")


async def test_spend_and_the_mix_are_sqlites_in_every_window_and_filter(
    readers: Readers,
) -> None:
    for window in WINDOWS:
        for view in FILTERS:
            await both(readers, figures.spend, window, view)
            await both(readers, figures.mix, window, view)


async def test_groups_are_sqlites_by_every_key(readers: Readers) -> None:
    for window in WINDOWS:
        for group_by in GROUPS:
            await both(readers, figures.groups, window, stats_view(group_by))
    for view in FILTERS[1:]:
        assert view is not None
        where = [(key, value) for key, values in view.where for value in values]
        await both(readers, figures.groups, WINDOWS[2], stats_view("model", where))


async def test_the_model_comparison_is_sqlites_in_every_group(
    readers: Readers,
) -> None:
    for window in (WINDOWS[0], WINDOWS[2]):
        await both(readers, model_costs, window, None, None, None)
        for group_by, group in [("tier", "low"), ("api_key", "web"), ("api_key", "(none)"),
                                ("metadata.team", "ads"), ("day", "2026-11-25"),
                                ("model", "gpt-5.1")]:  # fmt: skip
            await both(readers, model_costs, window, group_by, group, None)
        await both(readers, model_costs, window, "tier", "high", FILTERS[2])


async def test_the_decisions_page_through_the_same_rows_newest_first(
    readers: Readers,
) -> None:
    pg, sq = readers
    for window, view in [(Window(), None), (WINDOWS[2], FILTERS[3])]:
        seen: dict[str, list[str]] = {}
        for name, reader in (("pg", pg), ("sq", sq)):
            ids, before = [], None
            while True:
                page = await reader.read(decisions.recent, window, view, 200, before)
                ids += [row["request_id"] for row in page["decisions"]]
                before = page["next"]
                if before is None:
                    break
            seen[name] = ids
        assert seen["pg"] == seen["sq"] and len(set(seen["pg"])) == len(seen["pg"])
        assert len(seen["pg"]) > 200  # more than one page was read
    # Rows of one created_at (the seed's replaced ones are not; these share a second) page
    # apart on neither backend: the first page of each is the same rows in the same order.
    first = [await reader.read(decisions.recent, Window(), None, 7, None) for reader in readers]
    same(first[0]["decisions"], first[1]["decisions"])
    await both(readers, decisions.full_decision, "jr-seed000050", True)
    await both(readers, decisions.full_decision, "r05", False)
    assert await pg.read(decisions.full_decision, "no-such-row", False) is None


async def test_a_cursor_of_the_other_backend_is_refused(
    readers: Readers,
) -> None:
    pg, sq = readers
    sqlite_cursor = decisions.cursor("2026-11-30T00:00:00+00:00", 12)
    with pytest.raises(decisions.BadCursor):
        await pg.read(decisions.recent, Window(), None, 5, sqlite_cursor)
    with pytest.raises(decisions.BadCursor):
        await sq.read(decisions.recent, Window(), None, 5, decisions.cursor("2026", "r01"))


async def test_the_dimensions_are_sqlites(readers: Readers) -> None:
    pg, sq = [await reader.read(dimensions, Window()) for reader in readers]
    # But an object's text: jsonb's own (postgres_schema.py says so).
    assert pg["values"].pop("metadata.nested") == [{"value": '{"k": "v"}', "requests": None}]
    assert sq["values"].pop("metadata.nested") == [{"value": '{"k":"v"}', "requests": None}]
    same(pg, sq)
    pg = await readers[0].read(dimensions, WINDOWS[3])
    # A window's own: the varied rows' days, with their keys and values only.
    assert pg["values"]["metadata.flag"] == [
        {"value": "false", "requests": None},
        {"value": "true", "requests": None},
    ]
    assert {"value": "équipe", "requests": None} in pg["values"]["metadata.team"]


async def test_a_read_past_the_time_limit_is_cancelled(
    readers: Readers,
) -> None:
    slow = PgDashboardReader(readers[0].url, limit_s=0.05)
    try:

        def sleeping(conn: Any) -> None:
            conn.execute("SELECT pg_sleep(2)")

        with pytest.raises(ScanTooLong, match="took over 0.05 s"):
            await slow.read(sleeping)
        # The connection is usable after it, with no limit left behind on it.
        assert (await slow.read(figures.spend, Window(), None))["totals"]["requests"] > 0
    finally:
        slow.close()


async def test_the_service_dashboard_reads_postgresql_and_degrades_when_it_stops(
    tmp_path: Path,
    fake_provider: FakeUpstream,
    postgres_server: PostgresServer,
    postgres_url: str,
) -> None:
    settings = settings_for(tmp_path, fake_provider, postgres_url)
    async with serving(settings) as (_engine, client):
        for text in ("hi", "prove the four colour theorem", "hi"):
            body = {"model": "auto", "messages": [{"role": "user", "content": text}],
                    "metadata": {"team": "ads"}}  # fmt: skip
            assert (await client.post("/v1/chat/completions", json=body)).status_code == 200
        stats = (await client.get("/stats")).json()["totals"]
        spend = (await client.get("/dashboard/api/spend")).json()
        assert spend["window"]["read"] == "rows" and spend["totals"]["requests"] == 3
        for name in ("requests", "proxied", "realised_spend_usd", "net_savings_usd"):
            assert spend["totals"][name] == stats[name], name
        groups = (await client.get("/dashboard/api/groups?group_by=metadata.team")).json()
        assert [g["group"] for g in groups["groups"]] == ["ads"]
        dims = (await client.get("/dashboard/api/dimensions")).json()
        assert dims["values"]["metadata.team"] == [{"value": "ads", "requests": None}]
        page = (await client.get("/dashboard/api/decisions?limit=2")).json()
        assert len(page["decisions"]) == 2 and page["next"] is not None
        older = (await client.get(f"/dashboard/api/decisions?before={page['next']}")).json()
        assert len(older["decisions"]) == 1

        postgres_server.stop()
        try:
            down = await client.get("/dashboard/api/mix")
            assert down.status_code == 503, down.text
            error = down.json()["error"]
            assert "PostgreSQL ledger cannot be" in error["message"] and "retry" in error["message"]
            # Requests still answer meanwhile (their rows queue).
            body = {"model": "auto", "messages": [{"role": "user", "content": "still here"}]}
            assert (await client.post("/v1/chat/completions", json=body)).status_code == 200
        finally:
            postgres_server.start()
        assert (await until_healthy(client))["ledger"]["pending_rows"] == 0
        back = await client.get("/dashboard/api/spend")
        assert back.status_code == 200 and back.json()["totals"]["requests"] == 4
