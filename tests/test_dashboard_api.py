"""The dashboard over HTTP: who may see it (admin keys, the session cookie), every error in the
error body, the simulator as `judge-router simulate` computes it, and the page's own files."""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from judge_router.accounting import simulator
from judge_router.accounting.dashboard_reader import DashboardReader
from judge_router.config import Settings
from judge_router.service.factory import build_engine
from judge_router.service.simulation import simulate
from judge_router.serving.app import create_app
from judge_router.serving.dashboard import session
from judge_router.thread_priority import BACKGROUND_NICENESS

from dashboard_seed import seed_async

ADMIN_KEY, USER_KEY = "admin-key-0123456789", "user-key-0123456789"
KEYS = [{"id": "ops", "key": ADMIN_KEY, "admin": True}, {"id": "app", "key": USER_KEY}]
ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "judge_router" / "serving" / "dashboard" / "static"


@asynccontextmanager
async def dashboard_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    engine = build_engine(settings)
    app = create_app(settings, engine)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield client
    finally:
        await app.state.dashboard.close()
        await engine.aclose()


@pytest.fixture
async def keyed(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    await seed_async(tmp_path / "ledger.sqlite", count=400)
    async with dashboard_client(make_settings(server={"api_keys": KEYS})) as client:
        yield client


@pytest.fixture
async def open_client(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    await seed_async(tmp_path / "ledger.sqlite", count=400)
    async with dashboard_client(make_settings()) as client:
        yield client


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) >= {"type", "message"}, body
    error: dict[str, Any] = body["error"]
    return error


async def test_the_page_is_open_and_its_data_need_an_admin_key(keyed: httpx.AsyncClient) -> None:
    page = await keyed.get("/dashboard")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert (
        (await keyed.get("/dashboard/assets/charts.js"))
        .headers["content-type"]
        .startswith("text/javascript")
    )
    missing = await keyed.get("/dashboard/assets/nothing.js")
    assert missing.status_code == 404 and "nothing.js" in error_of(missing)["message"]
    refused = await keyed.get("/dashboard/api/spend")
    assert refused.status_code == 401 and error_of(refused)["type"] == "authentication_error"
    user = await keyed.get("/dashboard/api/spend", headers=bearer(USER_KEY))
    assert user.status_code == 403 and "needs an admin key" in error_of(user)["message"]
    admin = await keyed.get("/dashboard/api/spend", headers=bearer(ADMIN_KEY))
    assert admin.status_code == 200 and admin.headers["cache-control"] == "no-store"
    assert admin.json()["totals"]["requests"] == 400 + 0  # replaced rows count once


async def test_a_session_cookie_stands_for_the_admin_key_on_the_dashboard_only(
    keyed: httpx.AsyncClient,
) -> None:
    assert (await keyed.get("/dashboard/api/session")).json() == {
        "keys_required": True, "signed_in": False, "key_id": None,
    }  # fmt: skip
    wrong = await keyed.post("/dashboard/api/session", json={"key": "not-a-key-at-all-000"})
    assert wrong.status_code == 401
    user = await keyed.post("/dashboard/api/session", json={"key": USER_KEY})
    assert user.status_code == 403 and "not an admin key" in error_of(user)["message"]
    assert "set-cookie" not in user.headers
    signed = await keyed.post("/dashboard/api/session", json={"key": ADMIN_KEY})
    cookie = signed.headers["set-cookie"]
    assert signed.json()["key_id"] == "ops"
    for flag in ("HttpOnly", "SameSite=Strict", "Path=/dashboard", "Max-Age=43200"):
        assert flag in cookie
    assert ADMIN_KEY not in cookie  # the key itself never leaves in the cookie
    value = re.match(rf"{session.COOKIE}=([^;]+)", cookie).group(1)  # type: ignore[union-attr]
    # The client keeps the cookie (for /dashboard paths), as a browser does.
    assert (await keyed.get("/dashboard/api/spend")).status_code == 200
    assert (await keyed.get("/dashboard/api/session")).json()["signed_in"] is True
    keyed.cookies.clear()
    keyed.cookies.set(session.COOKIE, value)  # now sent everywhere: honoured on the dashboard only
    assert (await keyed.get("/dashboard/api/mix")).status_code == 200
    assert (await keyed.get("/stats")).status_code == 401
    keyed.cookies.set(session.COOKIE, value[:-1] + ("0" if value[-1] != "0" else "1"))
    assert (await keyed.get("/dashboard/api/spend")).status_code == 401
    out = await keyed.delete("/dashboard/api/session")
    assert "Max-Age=0" in out.headers["set-cookie"]


def test_a_session_expires_and_ends_with_its_key() -> None:
    from judge_router.config import ApiKey

    key = ApiKey(id="ops", key=ADMIN_KEY, admin=True)
    value = session.session_value(key, now=1000.0)
    assert session.key_of(value, [key], now=1000.0 + 3600) == key
    assert session.key_of(value, [key], now=1000.0 + session.SESSION_S + 1) is None
    rotated = ApiKey(id="ops", key="another-admin-key-000", admin=True)
    assert session.key_of(value, [rotated], now=1000.0) is None
    for broken in ("", "v1.x", "v2.b3Bz.9999999999.00", "v1.%%%.1.2"):
        assert session.key_of(broken, [key]) is None


async def test_without_keys_the_dashboard_needs_no_sign_in(open_client: httpx.AsyncClient) -> None:
    who = (await open_client.get("/dashboard/api/session")).json()
    assert who == {"keys_required": False, "signed_in": True, "key_id": None}
    assert (await open_client.get("/dashboard/api/mix")).status_code == 200


@pytest.mark.parametrize(
    ("path", "params", "status", "message"),
    [
        ("spend", {"since": "yesterday"}, 400, "is not an ISO date"),
        ("spend", {"since": "2026-11-05", "until": "2026-11-01"}, 400, "must be after since"),
        ("spend", {"teem": "x"}, 400, "'teem' is not one of"),
        ("spend", [("since", "2026-11-01"), ("since", "2026-11-02")], 400, "more than once"),
        ("groups", {}, 400, "group_by is required"),
        ("groups", {"group_by": "prompt_text"}, 400, "is not one of"),
        ("models", {"group": "search"}, 400, "group needs group_by"),
        ("models", {"group_by": "metadata.team", "group": "(other)"}, 400, "pick one"),
        ("decisions", {"limit": "0"}, 400, "1 to 200"),
        ("decisions", {"before": "garbage"}, 400, "not a cursor"),
        ("decisions", {"group_by": "tier"}, 400, "takes no group_by"),
        ("dimensions", {"tier": "low"}, 400, "takes since and until only"),
        ("decisions/jr-nothing", {}, 404, "no ledger row"),
    ],
)
async def test_every_refusal_says_why_in_the_error_body(
    open_client: httpx.AsyncClient, path: str, params: Any, status: int, message: str
) -> None:
    answer = await open_client.get(f"/dashboard/api/{path}", params=params)
    assert answer.status_code == status
    assert message in error_of(answer)["message"]


async def test_a_wrong_method_names_every_method_of_the_path(
    open_client: httpx.AsyncClient,
) -> None:
    """The session path has three routes: a 405 lists them all, not the first one's alone."""
    answer = await open_client.put("/dashboard/api/session")
    assert answer.status_code == 405 and error_of(answer)["type"] == "method_not_allowed"
    assert answer.headers["allow"] == "DELETE, GET, POST"
    assert (await open_client.delete("/dashboard")).headers["allow"] == "GET"


async def test_the_simulator_computes_what_the_cli_does(
    open_client: httpx.AsyncClient, make_settings: Callable[..., Settings]
) -> None:
    example = await open_client.get("/dashboard/api/simulator/example")
    text = example.json()["yaml"]
    assert text == (ROOT / "examples" / "traffic-mix.yaml").read_text(encoding="utf-8")
    by_text = await open_client.post("/dashboard/api/simulate", json={"yaml": text})
    expected = simulate(simulator.parse_mix(text), make_settings().judge)
    assert by_text.status_code == 200 and by_text.json() == expected
    mix = simulator.parse_mix(text).model_dump(mode="json")
    by_object = await open_client.post("/dashboard/api/simulate", json={"mix": mix})
    assert by_object.json() == expected
    bad = await open_client.post("/dashboard/api/simulate", json={"yaml": "requests_per_month: -1"})
    assert bad.status_code == 400 and "invalid traffic mix" in error_of(bad)["message"]
    both = await open_client.post("/dashboard/api/simulate", json={"yaml": text, "mix": mix})
    assert both.status_code == 400 and "either" in error_of(both)["message"]
    form = await open_client.post(
        "/dashboard/api/simulate", content=b"yaml=x", headers={"content-type": "text/plain"}
    )
    assert form.status_code == 415


async def test_reads_run_on_the_dashboards_own_threads(tmp_path: Path) -> None:
    await seed_async(tmp_path / "ledger.sqlite", count=10)
    reader = DashboardReader(tmp_path / "ledger.sqlite")
    try:
        name = await reader.read(lambda conn: threading.current_thread().name)
    finally:
        reader.close()
    assert name.startswith("dashboard-read") and name != threading.current_thread().name


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread niceness is Linux's")
async def test_reads_run_at_a_lower_cpu_priority_than_requests(tmp_path: Path) -> None:
    await seed_async(tmp_path / "ledger.sqlite", count=10)
    reader = DashboardReader(tmp_path / "ledger.sqlite")
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    try:
        theirs = await reader.read(
            lambda conn: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        )
    finally:
        reader.close()
    assert theirs >= BACKGROUND_NICENESS > mine
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine  # only theirs


def test_the_page_loads_nothing_from_elsewhere_and_ships_with_the_package() -> None:
    names = {path.name for path in STATIC.iterdir()}
    assert {"index.html", "dashboard.js", "charts.js", "dashboard.css", "traffic-mix.yaml"} <= names
    for path in STATIC.iterdir():
        text = path.read_text(encoding="utf-8")
        # The only absolute URL is SVG's namespace name, which is never fetched.
        urls = set(re.findall(r"\bhttps?://[^\s\"'`)]+", text)) - {"http://www.w3.org/2000/svg"}
        assert not urls, (path.name, urls)
        assert "@import" not in text and "fonts.googleapis" not in text
    assert (STATIC / "traffic-mix.yaml").read_text() == (
        ROOT / "examples" / "traffic-mix.yaml"
    ).read_text()
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'packages = ["judge_router"]' in pyproject  # hatch ships every file under it
    assert "playwright" in pyproject
