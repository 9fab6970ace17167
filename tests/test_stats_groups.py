"""/stats and `report` by any key: group_by, filters, the rollout arms side by side; every group's
figures are the sum of its rows, and no key or value the caller sends reaches the SQL as text."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from click.testing import CliRunner
from test_stats import row  # one row builder for both stats test files

from judge_router.accounting.ledger_row import LedgerRow
from judge_router.accounting.migrations import connect, migrate
from judge_router.accounting.sqlite_ledger import SqliteLedger
from judge_router.accounting.stats import summarise
from judge_router.accounting.stats_scan import SCAN_CHUNK_ROWS, ScanTooLong
from judge_router.accounting.stats_view import StatsView, ViewError, json_path, stats_view
from judge_router.cli.main import main
from judge_router.config import Settings
from judge_router.service.factory import build_engine
from judge_router.serving.app import create_app

from fakes import FakeLedger, settings_data

ROUTED_ONLY = {"status": "routed", "cost_usd": None, "baseline_cost_usd": None}
ROWS = [
    row("a", "2026-11-29T08:00:00+00:00", metadata={"team": "search", "task_type": "chat"},
        api_key_id="ops"),
    row("b", "2026-11-29T23:59:59+00:00", tier="high", model="m2", status="error",
        cost_usd=None, baseline_cost_usd=None, metadata={"team": "ads", "priority": 5}),
    row("c", "2026-11-30T09:00:00+00:00", source="cache", cached=True, judge_cost_usd=0.0,
        arm="holdout", model="b", cost_usd=0.2, metadata={"team": "search", "beta": True}),
    row("d", "2026-11-30T15:30:00+00:00", source="forced", **ROUTED_ONLY, api_key_id="ops",
        metadata={"team": None, "user": {"region": "eu"}}),
    row("e", "2026-11-30T16:00:00+00:00", status="incomplete", cost_usd=0.005, rule="cheap",
        source="rule", api_key_id="web", metadata={"task_type": "code"}),
    row("f", "2026-12-01T01:00:00+00:00", tier="medium", source="heuristic", judge_cost_usd=0.0,
        arm="holdout", model="b", metadata={"team": "ads", "user": {"region": "us"}}),
    row("g", "2026-12-01T02:00:00+00:00", **ROUTED_ONLY, estimated_cost_usd=0.03, rule="cheap",
        api_key_id="web", metadata={"team": "search", "priority": 5.5}),
    row("h", "2026-12-01T03:00:00+00:00", **ROUTED_ONLY, arm="holdout", model="b",
        estimated_cost_usd=0.09, metadata={"team": "search", "beta": False}),
    row("i", "2026-12-01T04:00:00+00:00", source="passthrough", model="m3", cost_usd=1.0,
        baseline_cost_usd=1.0),
]  # fmt: skip


def as_text(value: Any) -> str | None:
    """A metadata value as /stats reads it."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def value_of(item: LedgerRow, key: str) -> str | None:
    if key.startswith("metadata."):
        found: Any = item.metadata
        for part in key.removeprefix("metadata.").split("."):
            found = found.get(part) if isinstance(found, dict) else None
        return as_text(found)
    column = {"day": item.created_at[:10], "api_key": item.api_key_id}
    return column[key] if key in column else getattr(item, key)


def added_up(rows: list[LedgerRow]) -> dict[str, Any]:
    """A group's figures, the way the issue asks them to come out: the sum of its rows."""
    return {
        "requests": len(rows),
        "cache_hits": sum(r.cached for r in rows),
        "judged": sum(r.source not in ("forced", "passthrough", "rule") for r in rows),
        "proxied": sum(r.status != "routed" for r in rows),
        "errors": sum(r.status == "error" for r in rows),
        "incomplete": sum(r.status == "incomplete" for r in rows),
        "judge_spend_usd": pytest.approx(sum(r.judge_cost_usd for r in rows)),
        "realised_spend_usd": pytest.approx(sum(r.cost_usd or 0 for r in rows)),
        "baseline_spend_usd": pytest.approx(sum(r.baseline_cost_usd or 0 for r in rows)),
        "estimated_spend_usd": pytest.approx(sum(r.estimated_cost_usd for r in rows)),
        "estimated_baseline_spend_usd": pytest.approx(
            sum(r.estimated_baseline_cost_usd for r in rows)
        ),
    }


def by_model(rows: list[LedgerRow]) -> dict[str, Any]:
    found = {}
    for model in {r.model for r in rows}:
        mine = [r for r in rows if r.model == model]
        proxied = [r for r in mine if r.status != "routed"]
        routed = [r for r in mine if r.status == "routed"]
        spend = sum(r.cost_usd or 0 for r in mine)
        found[model] = {
            "model": model,
            "requests": len(mine),
            "proxied": len(proxied),
            "realised_spend_usd": pytest.approx(spend),
            "spend_per_request_usd": pytest.approx(spend / len(proxied)) if proxied else None,
            "estimated_spend_per_request_usd": (
                pytest.approx(sum(r.estimated_cost_usd for r in routed) / len(routed))
                if routed
                else None
            ),
        }
    return found


def kept(
    rows: list[LedgerRow], since: str | None, where: Iterable[tuple[str, str]] = ()
) -> list[LedgerRow]:
    wanted: dict[str, set[str]] = {}
    for key, value in where:
        wanted.setdefault(key, set()).add(value)
    return [
        r
        for r in rows
        if (since is None or r.created_at >= since)
        and all(value_of(r, key) in values for key, values in wanted.items())
    ]


def pick(figures: dict[str, Any]) -> dict[str, Any]:
    return {key: figures[key] for key in added_up([])}


async def ledger_with(path: Path, rows: list[LedgerRow]) -> SqliteLedger:
    ledger = SqliteLedger(path)
    for item in rows:
        assert await ledger.record(item)
    return ledger


GROUP_KEYS = ["tier", "model", "day", "rule", "arm", "api_key", "metadata.team",
              "metadata.task_type", "metadata.priority", "metadata.beta", "metadata.user.region"]  # fmt: skip


@pytest.mark.parametrize("key", GROUP_KEYS)
@pytest.mark.parametrize("since", [None, "2026-11-30T12:00:00+00:00"])
async def test_every_group_is_the_sum_of_its_rows(
    tmp_path: Path, key: str, since: str | None
) -> None:
    ledger = await ledger_with(tmp_path / "l.sqlite", ROWS)
    summary = await ledger.summary(since, stats_view(key))
    await ledger.close()
    rows = kept(ROWS, since)
    values = {value_of(r, key) for r in rows}
    assert summary["group_by"] == key and summary["where"] == {}
    assert summary["groups_folded"] == 0
    got = {group["group"]: group for group in summary["groups"]}
    assert set(got) == {"(none)" if v is None else v for v in values}
    for value in values:
        mine = [r for r in rows if value_of(r, key) == value]
        group = got["(none)" if value is None else value]
        assert pick(group) == added_up(mine), value
        assert {m["model"]: m for m in group["by_model"]} == by_model(mine), value
    # The totals are the sum of the groups, and of every row.
    assert pick(summary["totals"]) == added_up(rows)
    assert sum(g["requests"] for g in summary["groups"]) == summary["totals"]["requests"]
    realised = sum(g["realised_spend_usd"] for g in summary["groups"])
    assert realised == pytest.approx(summary["totals"]["realised_spend_usd"])


FILTERS = [
    [("metadata.team", "search")],
    [("metadata.team", "search"), ("metadata.team", "ads")],  # one key twice: either value
    [("metadata.team", "search"), ("arm", "holdout")],  # two keys: both
    [("api_key", "ops")],
    [("rule", "cheap")],
    [("arm", "holdout"), ("tier", "low")],  # from the rollups
    [("model", "b")],
    [("metadata.priority", "5")],  # numbers, booleans and nested keys as text
    [("metadata.beta", "true")],
    [("metadata.user.region", "eu")],
    [("metadata.team", "nobody")],
]


@pytest.mark.parametrize("where", FILTERS, ids=lambda w: ",".join(f"{k}={v}" for k, v in w))
@pytest.mark.parametrize("group_by", [None, "tier", "metadata.task_type"])
async def test_filters_apply_to_the_totals_the_breakdowns_and_the_groups(
    tmp_path: Path, where: list[tuple[str, str]], group_by: str | None
) -> None:
    ledger = await ledger_with(tmp_path / "l.sqlite", ROWS)
    since = "2026-11-29T12:00:00+00:00"
    summary = await ledger.summary(since, stats_view(group_by, where))
    await ledger.close()
    rows = kept(ROWS, since, where)
    assert pick(summary["totals"]) == added_up(rows)
    for breakdown, key in (("by_tier", "tier"), ("by_model", "model"), ("by_day", "day")):
        values = sorted({value_of(r, key) or "" for r in rows})
        assert [g[key] for g in summary[breakdown]] == values
        for group in summary[breakdown]:
            assert pick(group) == added_up([r for r in rows if value_of(r, key) == group[key]])
    assert summary["where"] == {k: [v for kk, v in where if kk == k] for k, _ in where}
    if group_by is None:
        assert summary["groups"] == []
    else:
        assert sum(g["requests"] for g in summary["groups"]) == len(rows)


async def test_by_arm_puts_the_two_arms_side_by_side(tmp_path: Path) -> None:
    ledger = await ledger_with(tmp_path / "l.sqlite", ROWS)
    summary = await ledger.summary()
    await ledger.close()
    arms = summary["by_arm"]
    assert [arm["arm"] for arm in arms] == ["routed", "holdout"]
    in_an_arm = [r for r in ROWS if r.source not in ("forced", "passthrough")]
    for arm in arms:
        mine = [r for r in in_an_arm if r.arm == arm["arm"]]
        assert pick(arm) == added_up(mine)
        proxied = [r for r in mine if r.status != "routed"]
        routed = [r for r in mine if r.status == "routed"]
        spend = sum(r.cost_usd or 0 for r in proxied)
        assert arm["spend_per_request_usd"] == pytest.approx(spend / len(proxied))
        estimate = sum(r.estimated_cost_usd for r in routed) / len(routed)
        assert arm["estimated_spend_per_request_usd"] == pytest.approx(estimate)
        # No outcome rows: zero counts and null means, never a made-up figure.
        assert arm["quality"]["sample"] == {**arm["quality"]["sample"], "outcomes": 0}
        assert arm["quality"]["sample"]["mean_score"] is None
    holdout = arms[1]
    assert holdout["requests"] == 3 and holdout["proxied"] == 2
    assert holdout["spend_per_request_usd"] == pytest.approx((0.2 + 0.02) / 2)
    assert holdout["estimated_spend_per_request_usd"] == pytest.approx(0.09)


async def test_the_plain_answer_keeps_its_shape(tmp_path: Path) -> None:
    ledger = await ledger_with(tmp_path / "l.sqlite", ROWS)
    plain = await ledger.summary("2026-11-30T00:00:00+00:00")
    grouped = await ledger.summary(None, stats_view("arm"))
    await ledger.close()
    shape = {"since", "totals", "verdicts_by_source", "by_tier", "by_model", "by_day", "by_arm",
             "quality"}  # fmt: skip
    assert set(plain) == shape
    assert set(grouped) == shape | {"group_by", "where", "groups", "groups_folded"}
    assert stats_view(None, []) is None  # nothing asked: the plain answer, from the rollups


async def test_groups_past_the_limit_are_added_up_as_one(tmp_path: Path) -> None:
    ledger = await ledger_with(tmp_path / "l.sqlite", ROWS)
    await ledger.close()
    conn = connect(tmp_path / "l.sqlite")
    for key in ("metadata.team", "model"):  # from the rows, and from the rollups
        summary = summarise(conn, None, stats_view(key), max_groups=2)
        groups = summary["groups"]
        assert len(groups) == 3 and groups[-1]["group"] == "(other)"
        values = {value_of(r, key) for r in ROWS}
        assert summary["groups_folded"] == len(values) - 2
        assert sum(g["requests"] for g in groups) == len(ROWS)
        top = [g["realised_spend_usd"] for g in groups[:2]]
        assert top == sorted(top, reverse=True)  # the groups that spent most come first
        folded = [r for r in ROWS if ("(none)" if (v := value_of(r, key)) is None else v)
                  not in {g["group"] for g in groups[:2]}]  # fmt: skip
        assert pick(groups[-1]) == added_up(folded)
        assert {m["model"]: m for m in groups[-1]["by_model"]} == by_model(folded)
    conn.close()


HOSTILE_KEYS = [
    "metadata.team') OR 1=1 --",
    'metadata.team"',
    "metadata.a\"].b",
    "metadata.",
    "metadata..team",
    "metadata.team.",
    "metadata.$",
    "metadata." + "a" * 65,
    "metadata.team; DROP TABLE decisions",
    "tier; DROP TABLE decisions",
    "prompt_text",
    "",
]


@pytest.mark.parametrize("key", HOSTILE_KEYS)
def test_a_key_that_is_not_a_plain_name_is_refused(key: str) -> None:
    with pytest.raises(ViewError):
        stats_view(key)
    with pytest.raises(ViewError):
        stats_view(None, [(key, "x")])


def test_a_metadata_key_becomes_a_quoted_json_path() -> None:
    assert json_path("metadata.user.region") == '$."user"."region"'
    assert json_path("metadata.task-type_2") == '$."task-type_2"'
    with pytest.raises(ViewError, match="day"):
        stats_view(None, [("day", "2026-11-30")])  # day is a grouping, not a filter (use since)


async def test_a_hostile_value_is_only_ever_a_value(tmp_path: Path) -> None:
    hostile = "search' OR '1'='1"
    ledger = await ledger_with(tmp_path / "l.sqlite", [*ROWS, row("z", "2026-12-02T00:00:00+00:00",
                               metadata={"team": hostile})])  # fmt: skip
    summary = await ledger.summary(None, stats_view("metadata.team", [("metadata.team", hostile)]))
    none = await ledger.summary(None, stats_view(None, [("tier", "low' OR 'a'='a")]))
    rows = await ledger.rows()
    await ledger.close()
    assert [g["group"] for g in summary["groups"]] == [hostile]
    assert summary["totals"]["requests"] == 1
    assert none["totals"]["requests"] == 0 and len(rows) == len(ROWS) + 1


async def test_metadata_sqlite_cannot_parse_is_no_value(tmp_path: Path) -> None:
    # A body's metadata may hold NaN (Python's json reads and writes it; SQLite's does not).
    odd = row("z", "2026-12-02T00:00:00+00:00", metadata={"team": float("nan")})
    ledger = await ledger_with(tmp_path / "l.sqlite", [*ROWS, odd])
    summary = await ledger.summary(None, stats_view("metadata.team", [("tier", "low")]))
    await ledger.close()
    teams = {g["group"]: g["requests"] for g in summary["groups"]}
    assert teams["(none)"] == 1 + sum(
        1 for r in ROWS if r.tier == "low" and value_of(r, "metadata.team") is None
    )


def test_a_scan_past_its_limit_gives_up_and_leaves_nothing_behind(tmp_path: Path) -> None:
    conn = connect(tmp_path / "l.sqlite")
    migrate(conn)
    conn.execute(many_rows(20_000))
    view = stats_view("metadata.team")
    with pytest.raises(ScanTooLong, match="later since"):
        summarise(conn, None, view, scan_limit_s=0.0)  # the deadline has passed at the first check
    assert summarise(conn, None, view)["totals"]["requests"] == 20_000
    assert not conn.execute("SELECT name FROM sqlite_temp_master").fetchall()
    conn.close()


def test_a_read_in_chunks_counts_every_row_once(tmp_path: Path) -> None:
    conn = connect(tmp_path / "l.sqlite")
    migrate(conn)
    conn.execute(many_rows(3 * SCAN_CHUNK_ROWS + 5))  # rowids out of time order, four chunks
    conn.execute("DELETE FROM decisions WHERE rowid % 7 = 0")  # and gaps in them
    since = "2026-06-15T00:00:00+00:00"
    direct = conn.execute(
        "SELECT api_key_id, COUNT(*), SUM(cost_usd) FROM decisions WHERE created_at >= ? "
        "GROUP BY api_key_id",
        (since,),
    ).fetchall()
    summary = summarise(conn, since, stats_view("api_key", [("tier", "low"), ("tier", "high")]))
    low_or_high = conn.execute(
        "SELECT COUNT(*) FROM decisions WHERE created_at >= ? AND tier IN ('low', 'high')",
        (since,),
    ).fetchone()[0]
    everything = summarise(conn, since, stats_view("api_key"))
    conn.close()
    assert {g["group"]: (g["requests"], g["realised_spend_usd"]) for g in everything["groups"]} == {
        key: (count, pytest.approx(spend)) for key, count, spend in direct
    }
    assert summary["totals"]["requests"] == low_or_high


def many_rows(count: int) -> str:
    """`count` decisions over eleven months, with metadata, keys, rules and arms."""
    return f"""
    WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {count - 1})
    INSERT INTO decisions (request_id, created_at, endpoint, prompt_hash, tier, model, source,
        cached, reason, judge_model, judge_cost_usd, judge_latency_ms, prompt_tokens,
        estimated_cost_usd, baseline_model, estimated_baseline_cost_usd, latency_ms, status,
        cost_usd, baseline_cost_usd, metadata, api_key_id, rule, arm)
    SELECT 'r' || i, '2026-' || printf('%02d', 1 + i % 11) || '-' || printf('%02d', 1 + i % 28)
            || 'T12:00:00+00:00',
        'chat', 'h', CASE i % 3 WHEN 0 THEN 'low' WHEN 1 THEN 'medium' ELSE 'high' END,
        'model-' || (i % 7), CASE WHEN i % 4 = 0 THEN 'llm' ELSE 'cache' END, i % 4 <> 0, 'r',
        'j', 0.0001, 1.0, 100, 0.001, 'b', 0.01, 5.0, 'ok', 0.002, 0.02,
        '{{"team": "team-' || (i % 12) || '", "task_type": "type-' || (i % 5) || '"}}',
        'key-' || (i % 20), CASE WHEN i % 10 = 0 THEN 'cheap' END,
        CASE WHEN i % 5 = 0 THEN 'holdout' ELSE 'routed' END
    FROM n
    """


# -- over HTTP ------------------------------------------------------------------------------


@pytest.fixture
async def stats_client(
    make_settings: Callable[..., Settings],
) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(judge={"model": "heuristic"})
    engine = build_engine(settings)
    for item in ROWS:
        assert await engine.ledger.record(item)
    transport = httpx.ASGITransport(app=create_app(settings, engine))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield client
    await engine.aclose()


async def test_stats_groups_and_filters_over_http(stats_client: httpx.AsyncClient) -> None:
    query = [("group_by", "metadata.team"), ("metadata.team", "search"), ("metadata.team", "ads"),
             ("since", "2026-11-29")]  # fmt: skip
    answer = (await stats_client.get("/stats", params=query)).json()
    rows = kept(ROWS, None, [("metadata.team", "search"), ("metadata.team", "ads")])
    assert answer["where"] == {"metadata.team": ["search", "ads"]}
    assert pick(answer["totals"]) == added_up(rows)
    assert {g["group"]: g["requests"] for g in answer["groups"]} == {"search": 4, "ads": 2}
    plain = (await stats_client.get("/stats")).json()
    assert "groups" not in plain and [a["arm"] for a in plain["by_arm"]] == ["routed", "holdout"]
    by_key = (await stats_client.get("/stats", params={"group_by": "api_key"})).json()
    assert [g["group"] for g in by_key["groups"]] == ["(none)", "ops", "web"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"group_by": "metadata.team') OR 1=1 --"}, "metadata key is 1-64 letters"),
        ({"group_by": "prompt_text"}, "is not one of tier, model, day"),
        ({"metadata.a'b": "x"}, "metadata key is 1-64 letters"),
        ({"teem": "search"}, "'teem' is not one of tier, model, rule, arm"),
        ([("group_by", "tier"), ("group_by", "arm")], "more than once"),
    ],
)
async def test_a_bad_group_by_or_filter_is_a_400_saying_why(
    stats_client: httpx.AsyncClient, query: Any, message: str
) -> None:
    answer = await stats_client.get("/stats", params=query)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error" and message in error["message"]


class SlowLedger(FakeLedger):
    """A ledger whose every read of the rows runs past its limit."""

    async def summary(self, since: str | None = None, view: Any = None) -> dict[str, Any]:
        raise ScanTooLong("reading the ledger's rows took over 30 s: ask for a later since")


async def test_a_read_past_its_limit_is_a_503(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(judge={"model": "heuristic"})
    engine = build_engine(settings, ledger=SlowLedger())
    transport = httpx.ASGITransport(app=create_app(settings, engine))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        answer = await client.get("/stats", params={"group_by": "api_key"})
    await engine.aclose()
    assert answer.status_code == 503
    assert "later since" in answer.json()["error"]["message"]


# -- the report command ---------------------------------------------------------------------


def report_config(tmp_path: Path) -> Path:
    data = settings_data(tmp_path, judge={"model": "heuristic"})
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(data))

    async def write() -> None:
        ledger = await ledger_with(Path(data["ledger"]["path"]), ROWS)
        await ledger.close()

    asyncio.run(write())
    return config


def test_report_group_by_and_where_as_json(tmp_path: Path) -> None:
    config = report_config(tmp_path)
    args = ["report", "--config", str(config), "--json", "--group-by", "metadata.team",
            "--where", "arm=holdout", "--where", "metadata.beta=false"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["where"] == {"arm": ["holdout"], "metadata.beta": ["false"]}
    assert [(g["group"], g["requests"]) for g in summary["groups"]] == [("search", 1)]


@pytest.mark.parametrize("columns", [50, 80, 120, 200])
def test_report_tables_fit_the_width(tmp_path: Path, columns: int) -> None:
    config = report_config(tmp_path)
    env = {"COLUMNS": str(columns)}
    grouped = CliRunner().invoke(
        main, ["report", "--config", str(config), "--group-by", "metadata.team",
               "--where", "tier=low"], env=env,
    )  # fmt: skip
    plain = CliRunner().invoke(main, ["report", "--config", str(config)], env=env)
    for result in (grouped, plain):
        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()
        assert max(len(line) for line in lines) <= columns, "\n".join(lines)
    assert "by metadata.team where tier=low" in grouped.stdout
    assert "search" in grouped.stdout and "(none)" in grouped.stdout
    assert "spend per request by model" in grouped.stdout
    assert "by rollout arm" in plain.stdout and "not measured yet" in plain.stdout
    if columns >= 120:  # wide enough for the table form: every figure whole in its cell
        assert "holdout" in plain.stdout and "$0.110000" in plain.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--where", "metadata.team"], "is not KEY=VALUE"),
        (["--where", "metadata.t'eam=x"], "metadata key is 1-64 letters"),
        (["--group-by", "prompt_text"], "is not one of"),
    ],
)
def test_report_refuses_a_bad_group_by_or_where(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = CliRunner().invoke(main, ["report", "--config", str(report_config(tmp_path)), *args])
    assert result.exit_code == 2 and message in result.output


# -- on a million rows ----------------------------------------------------------------------


@pytest.mark.slow
async def test_groups_from_a_million_rows(make_settings: Callable[..., Settings]) -> None:
    """Prints the figures benchmarks/README.md reports (`pytest -m slow -s` shows them)."""
    settings = make_settings(judge={"model": "heuristic"})
    conn = connect(settings.ledger.path)
    migrate(conn)
    conn.execute(many_rows(1_000_000))
    conn.close()
    engine = build_engine(settings)
    timings = {}
    for label, view in (
        ("plain", None),
        ("group_by=arm (rollups)", stats_view("arm")),
        ("group_by=metadata.team", stats_view("metadata.team")),
        ("group_by=api_key", stats_view("api_key")),
        ("metadata.team=team-3", stats_view(None, [("metadata.team", "team-3")])),
        ("group_by=metadata.task_type, since 2026-11-01",
         stats_view("metadata.task_type")),
    ):  # fmt: skip
        since = "2026-11-01T00:00:00+00:00" if "since" in label else None
        started = time.perf_counter()
        summary = await engine.ledger.summary(since, view)
        timings[label] = time.perf_counter() - started
        if since is None and (view is None or not view.where):
            assert summary["totals"]["requests"] == 1_000_000
    print("\n" + "\n".join(f"{label}: {s * 1000:.0f} ms" for label, s in timings.items()))
    assert timings["group_by=metadata.team"] <= 10, timings
    # A scan runs in a thread: /route goes on meanwhile.
    transport = httpx.ASGITransport(app=create_app(settings, engine))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        await client.post("/route", json={"prompt": "warm up"})
        quiet = []
        for _ in range(20):
            begun = time.perf_counter()
            await client.post("/route", json={"prompt": "hello"})
            quiet.append(time.perf_counter() - begun)
        scans = [asyncio.create_task(client.get("/stats", params={"group_by": "metadata.team"}))
                 for _ in range(2)]  # fmt: skip
        during = []
        while not all(task.done() for task in scans):
            begun = time.perf_counter()
            await client.post("/route", json={"prompt": "hello"})
            during.append(time.perf_counter() - begun)
            await asyncio.sleep(0)
        assert all(task.result().status_code == 200 for task in scans)
    await engine.aclose()
    median = sorted(quiet)[len(quiet) // 2]
    print(f"/route during two scans: max {max(during) * 1000:.1f} ms, quiet median "
          f"{median * 1000:.1f} ms, {len(during)} routes")  # fmt: skip
    # The scans take seconds; in a thread they hold /route up by a WAL checkpoint at most (tens of
    # ms on a loaded machine), never by their own length.
    assert during and max(during) - median <= 0.25


def test_view_needs_rows_only_for_keys_outside_the_rollups() -> None:
    assert not StatsView("arm", (("tier", ("low",)),)).needs_rows
    assert StatsView("api_key").needs_rows
    assert StatsView(None, (("metadata.team", ("x",)),)).needs_rows
