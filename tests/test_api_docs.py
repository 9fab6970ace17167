"""docs/api.md's field tables against real answers: nothing documented is missing, nothing present
is undocumented."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import respx

from judge_router.config import Settings
from judge_router.routing.judges.local_model import LocalModel
from judge_router.service.factory import build_engine
from judge_router.serving.app import create_app

from fakes import fake_upstream

API_DOC = Path(__file__).resolve().parent.parent / "docs" / "api.md"
# Objects whose keys are data (model names, sources), not fields: documented as one field.
MAPS = {"open_circuits.judge", "open_circuits.models", "verdicts_by_source", "where"}


def documented(table: str) -> set[str]:
    """The field names in the first column of the table after `<!-- fields: TABLE -->`."""
    text = API_DOC.read_text(encoding="utf-8")
    start = text.index(f"<!-- fields: {table} -->")
    rows = []
    for line in text[start:].splitlines()[1:]:
        if not line.startswith("|"):
            break
        rows.append(line)
    names = {m.group(1) for row in rows[2:] if (m := re.match(r"\| `([^`]+)` \|", row))}
    assert len(names) == len(rows) - 2, f"a row of the {table} table names no field"
    return names


def fields(value: Any, prefix: str = "") -> set[str]:
    """Every field path of a JSON answer: `a`, `a.b`, and `items[].c` for lists of objects."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            path = f"{prefix}{key}"
            found.add(path)
            if path not in MAPS:
                found |= fields(inner, f"{path}.")
    elif isinstance(value, list) and value and isinstance(value[0], dict):
        found |= fields(value[0], f"{prefix.rstrip('.')}[].")
    return found


async def answers(settings: Settings, respx_mock: respx.MockRouter) -> dict[str, Any]:
    engine = build_engine(settings)
    fake_upstream(respx_mock, {})
    transport = httpx.ASGITransport(app=create_app(settings, engine))
    async with httpx.AsyncClient(transport=transport, base_url="http://router.test") as client:
        routed = (await client.post("/route", json={"prompt": "hello"})).json()
        # The judge fails (judge_error) and `moderation` is a parameter the model does not take.
        body = {"messages": [{"role": "user", "content": "hi"}], "moderation": {"model": "m"}}
        proxied = (await client.post("/v1/chat/completions", json=body)).json()
        # A budget caps this one (and skips the judge), so its `router` names the budget.
        body = {"messages": [{"role": "user", "content": "hi"}], "metadata": {"team": "capped"}}
        capped = (await client.post("/v1/chat/completions", json=body)).json()
        # A cascade whose every answer fails `valid_json` (the fake answers plain text): its
        # `router` shows the steps and the flag.
        body = {"messages": [{"role": "user", "content": "hi"}], "strategy": "cascade",
                "response_format": {"type": "json_object"}}  # fmt: skip
        cascaded = (await client.post("/v1/chat/completions", json=body)).json()
        stats = (await client.get("/stats")).json()
        query = {"group_by": "metadata.team", "arm": "routed"}
        grouped = (await client.get("/stats", params=query)).json()
        health = (await client.get("/healthz")).json()
        reloaded = (await client.post("/admin/reload")).json()
    await engine.aclose()
    return {"route": routed, "router": proxied["router"], "capped": capped["router"],
            "cascaded": cascaded["router"],
            "stats": stats, "grouped": grouped, "healthz": health,
            "reload": reloaded}  # fmt: skip


async def test_every_answer_field_is_documented_and_every_documented_one_exists(
    make_settings: Callable[..., Settings], respx_mock: respx.MockRouter, tmp_path: Path
) -> None:
    respx_mock.post("http://127.0.0.1:9/judge/v1/chat/completions").mock(
        return_value=httpx.Response(500, json={"error": {"message": "judge down"}})
    )
    # A rule that matches everything and changes nothing, so answers name it.
    # A budget that caps one team's requests to the lowest tier, so answers and /stats name it.
    capped = {"name": "capped", "scope": {"metadata": "team"}, "value": "capped",
              "usd_per_month": 1, "soft_pct": 0, "over_soft": "max_tier_low"}  # fmt: skip
    # A local model file, so /healthz shows `judge.local_model` (it answers for the failing judge).
    LocalModel(["low", "medium", "high"], [0.0, 2.0, 0.0], {}).save(tmp_path / "model.json")
    settings = make_settings(
        rules=[{"name": "everything", "max_tier": "high"}],
        budgets=[capped],
        judge={"local_model": str(tmp_path / "model.json")},
    )
    got = await answers(settings, respx_mock)
    assert "judge_error" in got["router"] and "dropped_params" in got["router"]
    assert got["capped"]["budget"] == "capped"
    for table in ("route", "healthz", "reload"):
        assert fields(got[table]) == documented(table), table
    assert got["cascaded"]["quality_flag"] == "cascade_exhausted"
    seen = fields(got["router"]) | fields(got["capped"]) | fields(got["cascaded"])
    assert seen == documented("router")
    stats = got["stats"]
    assert set(stats) == documented("stats")
    group = documented("stats-group")
    assert set(stats["totals"]) == group
    for breakdown, key in (("by_tier", "tier"), ("by_model", "model"), ("by_day", "day")):
        assert set(stats[breakdown][0]) == group | {key}, breakdown
    assert set(stats["budgets"][0]) == documented("stats-budget")
    assert set(stats["by_arm"][0]) == group | documented("stats-arm")
    # A group_by answer: the plain fields, plus its own, each group with the figures besides.
    grouped = got["grouped"]
    assert set(stats) <= set(grouped)
    assert set(grouped) - set(stats) == {"group_by", "where", "groups", "groups_folded"}
    own = fields({key: grouped[key] for key in set(grouped) - set(stats)})
    assert own == documented("stats-groups") | {f"groups[].{name}" for name in group}


def test_the_table_reader_sees_every_row() -> None:
    assert {"request_id", "judge_error", "estimated_baseline_cost_usd"} <= documented("route")
    assert {"attempts[].model", "attempts[].error"} <= documented("router")
