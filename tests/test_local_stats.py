"""/stats on the local judge: how many verdicts it gave, their share of the judged requests, and the
LLM judge spend it spared (its verdicts x the mean LLM verdict cost of the same rows)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from judge_router.accounting.ledger_row import LedgerRow
from judge_router.accounting.sqlite_ledger import SqliteLedger
from judge_router.config import Settings
from judge_router.routing.judges.local_model import LABELS, LocalModel
from judge_router.service.factory import build_engine
from judge_router.serving.app import create_app

BASE: dict[str, Any] = {
    "endpoint": "route", "prompt_hash": "h", "tier": "low", "model": "m1", "source": "llm",
    "cached": False, "reason": "r", "judge_model": "j", "judge_error": None,
    "judge_cost_usd": 0.0, "judge_latency_ms": 1.0, "prompt_tokens": 10,
    "estimated_cost_usd": 0.01, "baseline_model": "b", "estimated_baseline_cost_usd": 0.1,
    "latency_ms": 2.0,
}  # fmt: skip


def row(
    request_id: str, at: str, source: str, judge_cost_usd: float = 0.0, **fields: Any
) -> LedgerRow:
    return LedgerRow(
        **{**BASE, "request_id": request_id, "created_at": at, "source": source,
           "judge_cost_usd": judge_cost_usd, **fields}
    )  # fmt: skip


# Two days. The LLM judge's verdicts cost 0.002 and 0.004 (mean 0.003), both on the first day; an
# LLM verdict a rule then bounded is the rule's (source `rule`) and not in the mean. 4 local
# verdicts (one given in place of a failed LLM judge: still the local model's) of 8 judged requests
# (the forced tier and the rule's are not judged).
ROWS = [
    row("l1", "2026-11-29T08:00:00+00:00", "llm", 0.002, metadata={"team": "search"}),
    row("c1", "2026-11-29T09:00:00+00:00", "cache", cached=True),
    row("l2", "2026-11-29T09:30:00+00:00", "llm", 0.004, tier="high", model="m2"),
    row("h1", "2026-11-29T10:00:00+00:00", "heuristic"),
    row("f1", "2026-11-29T11:00:00+00:00", "forced"),
    row("r1", "2026-11-29T11:30:00+00:00", "rule", 0.001),
    row("o1", "2026-11-29T12:00:00+00:00", "local", metadata={"team": "search"}),
    row("o2", "2026-11-30T12:00:00+00:00", "local", metadata={"team": "ads"}),
    row("o3", "2026-11-30T13:00:00+00:00", "local", tier="high", model="m2"),
    row("o4", "2026-11-30T14:00:00+00:00", "local", judge_error="timeout: the judge was slow"),
]
MEAN_LLM_COST = 0.003

Stats = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def stats(make_settings: Callable[..., Settings], tmp_path: Path) -> Stats:
    """/stats over a fresh ledger holding `rows`, asked with `query`."""
    ledgers = iter(range(1000))

    async def ask(rows: list[LedgerRow], **query: str) -> dict[str, Any]:
        settings = make_settings(ledger={"path": str(tmp_path / f"ledger-{next(ledgers)}.sqlite")})
        ledger = SqliteLedger(settings.ledger.path)
        for item in rows:
            assert await ledger.record(item)
        await ledger.close()
        engine = build_engine(settings)
        transport = httpx.ASGITransport(app=create_app(settings, engine))
        async with httpx.AsyncClient(transport=transport, base_url="http://router.test") as client:
            answer = await client.get("/stats", params=query)
        await engine.aclose()
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    return ask


def local_figures(figures: dict[str, Any]) -> tuple[int, float | None, float | None]:
    return figures["local_verdicts"], figures["local_share"], figures["judge_spend_avoided_usd"]


async def test_local_verdicts_their_share_and_the_llm_spend_they_avoided(stats: Stats) -> None:
    summary = await stats(ROWS)
    totals = summary["totals"]
    assert totals["judged"] == 8
    assert local_figures(totals) == (4, 0.5, pytest.approx(4 * MEAN_LLM_COST))
    assert summary["verdicts_by_source"]["local"] == 4
    assert "llm_verdicts" not in totals and "llm_judge_cost" not in totals  # the mean's parts
    # Every breakdown prices its local verdicts at the summary's one mean, so they add up.
    for name in ("by_tier", "by_model", "by_day", "by_arm"):
        groups = summary[name]
        assert sum(group["local_verdicts"] for group in groups) == 4, name
        avoided = sum(group["judge_spend_avoided_usd"] for group in groups)
        assert avoided == pytest.approx(4 * MEAN_LLM_COST), name
    high = next(group for group in summary["by_tier"] if group["tier"] == "high")
    assert local_figures(high) == (1, 0.5, pytest.approx(MEAN_LLM_COST))
    # The second day had no LLM verdict; its local verdicts are priced by the whole range.
    first_day, second_day = summary["by_day"]
    assert local_figures(first_day) == (1, 0.2, pytest.approx(MEAN_LLM_COST))
    assert local_figures(second_day) == (3, 1.0, pytest.approx(3 * MEAN_LLM_COST))


async def test_a_since_or_a_group_by_narrows_the_mean_with_the_rows(stats: Stats) -> None:
    # From 09:15 on the first day (its rows read one by one, the next day from its rollup): l2
    # alone prices the local verdicts.
    later = (await stats(ROWS, since="2026-11-29T09:15:00"))["totals"]
    assert later["judged"] == 6
    assert local_figures(later) == (4, pytest.approx(4 / 6), pytest.approx(4 * 0.004))
    # The second day alone: local verdicts, and no LLM verdict to price them by.
    assert local_figures((await stats(ROWS, since="2026-11-30"))["totals"]) == (3, 1.0, None)
    # A group_by that reads the decisions themselves gives the same figures, per group too.
    grouped = await stats(ROWS, group_by="metadata.team")
    assert local_figures(grouped["totals"]) == (4, 0.5, pytest.approx(4 * MEAN_LLM_COST))
    groups = {group["group"]: group for group in grouped["groups"]}
    assert local_figures(groups["search"]) == (1, 0.5, pytest.approx(MEAN_LLM_COST))
    assert local_figures(groups["ads"]) == (1, 1.0, pytest.approx(MEAN_LLM_COST))
    # A filter narrows the mean to its rows: the high tier's one LLM verdict cost 0.004.
    high = (await stats(ROWS, tier="high"))["totals"]
    assert local_figures(high) == (1, 0.5, pytest.approx(0.004))


async def test_without_llm_verdicts_the_spend_avoided_is_unknown_not_zero(stats: Stats) -> None:
    only_local = [row(f"o{n}", f"2026-11-29T0{n}:00:00+00:00", "local") for n in range(3)]
    assert local_figures((await stats(only_local))["totals"]) == (3, 1.0, None)
    no_local = [row("l1", "2026-11-29T08:00:00+00:00", "llm", 0.002)]
    assert local_figures((await stats(no_local))["totals"]) == (0, 0.0, 0.0)
    assert local_figures((await stats([]))["totals"]) == (0, None, None)


async def test_the_verdicts_the_service_gives_are_counted(
    make_settings: Callable[..., Settings], tmp_path: Path, judge_route: respx.Route
) -> None:
    """Through the service: the LLM judge rates two prompts (its cost recorded), then, on the same
    ledger, a local model rates three; /stats prices the three at the LLM verdicts' mean."""
    path = tmp_path / "model.json"
    LocalModel(list(LABELS), [0.0, 5.0, 0.0], {}).save(path)
    llm = make_settings()
    local = make_settings(judge={"mode": "local", "local_model": str(path)})
    summary: dict[str, Any] = {}
    for settings, source, prompts in ((llm, "llm", ["one", "two"]),
                                      (local, "local", ["three", "four", "five"])):  # fmt: skip
        engine = build_engine(settings)
        transport = httpx.ASGITransport(app=create_app(settings, engine))
        async with httpx.AsyncClient(transport=transport, base_url="http://router.test") as client:
            for prompt in prompts:
                answer = (await client.post("/route", json={"prompt": prompt})).json()
                assert answer["source"] == source
            summary = (await client.get("/stats")).json()
        await engine.aclose()
    assert judge_route.call_count == 2
    totals = summary["totals"]
    mean = totals["judge_spend_usd"] / 2  # the local verdicts cost nothing
    assert mean > 0
    assert local_figures(totals) == (3, 0.6, pytest.approx(3 * mean))
