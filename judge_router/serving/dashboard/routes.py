"""GET /dashboard: the page and its files (packaged with the service, nothing from the network),
the sign-in, the savings simulator, and the data endpoints (data_api.py); and the background
roll-up the data read (accounting/dashboard_rollups.py), started and stopped with the app."""

from __future__ import annotations

import asyncio
import hmac
from importlib import resources
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from judge_router.accounting import simulator
from judge_router.accounting.dashboard_reader import DashboardReader, PooledReads
from judge_router.accounting.dashboard_rollups import RollupKeeper
from judge_router.config import ConfigError, Settings
from judge_router.service.simulation import simulate
from judge_router.serving.dashboard import session
from judge_router.serving.dashboard.data_api import API, NO_STORE, add_data_routes
from judge_router.serving.errors import error_response
from judge_router.serving.json_response import FastJSONResponse as JSONResponse
from judge_router.serving.openapi import COMMON_ERRORS, errors
from judge_router.serving.request_body import documented, read

EXAMPLE_MIX = "traffic-mix.yaml"  # a copy of examples/traffic-mix.yaml (a test keeps them equal)
TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".yaml": "text/yaml"}
# The page loads its own files only: no CDN, no fonts, no inline script (so an injected one
# would not run), no frames around it.
SECURITY = {
    "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


class SessionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, max_length=4096, description="an admin key of server.api_keys")


class SimulateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    yaml: str | None = Field(
        default=None, max_length=200_000, description="a traffic mix as YAML (or JSON) text"
    )
    mix: dict[str, Any] | None = Field(default=None, description="a traffic mix as an object")

    @model_validator(mode="after")
    def _one(self) -> SimulateRequest:
        if (self.yaml is None) == (self.mix is None):
            raise ValueError("send either `yaml` (the mix's text) or `mix` (an object)")
        return self


BODIES: list[type[BaseModel]] = [SessionRequest, SimulateRequest]


def _assets() -> dict[str, tuple[bytes, str]]:
    """The page's files, read once (name: (bytes, media type))."""
    found = {}
    for entry in resources.files("judge_router.serving.dashboard").joinpath("static").iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in TYPES:
            found[entry.name] = (entry.read_bytes(), TYPES[suffix])
    return found


class Dashboard:
    """What the dashboard keeps for the app's lifetime: its reader and, for a SQLite ledger, the
    background roll-up (a PostgreSQL ledger's views read its decisions)."""

    def __init__(self, settings: Settings):
        ledger = settings.ledger
        self.reader: PooledReads
        self.keeper: RollupKeeper | None = None
        if ledger.backend == "postgresql" and ledger.url is not None:
            # Only with the `postgres` extra, which the ledger itself needs first.
            from judge_router.accounting.postgres_dashboard_reader import PgDashboardReader

            self.reader = PgDashboardReader(ledger.url)
        else:
            self.reader = DashboardReader(ledger.path)
            self.keeper = RollupKeeper(ledger.path)

    def start(self) -> None:
        if self.keeper is not None:
            self.keeper.start()

    async def close(self) -> None:
        if self.keeper is not None:
            await asyncio.to_thread(self.keeper.stop)
        await asyncio.to_thread(self.reader.close)


def add_dashboard(app: FastAPI, settings: Settings) -> Dashboard:
    """Declare /dashboard and /dashboard/api/… on `app` (access control: dashboard/session.py)."""
    dashboard = Dashboard(settings)
    assets = _assets()
    keys = list(settings.server.api_keys)
    router = APIRouter()

    @router.get("/dashboard", include_in_schema=False)
    @router.get("/dashboard/", include_in_schema=False)
    async def page() -> Response:
        body, media = assets["index.html"]
        return Response(body, media_type=media, headers={**SECURITY, "cache-control": "no-cache"})

    @router.get("/dashboard/assets/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        if name not in assets:
            return error_response(404, f"no dashboard file named {name!r}")
        body, media = assets[name]
        return Response(body, media_type=media, headers={**SECURITY, "cache-control": "no-cache"})

    @router.get(session.SESSION_PATH, responses=errors(*COMMON_ERRORS))
    async def who(request: Request) -> JSONResponse:
        """Whether the dashboard needs a key, and whether this browser has signed in."""
        key_id = getattr(request.state, "api_key_id", None)
        return JSONResponse(
            {
                "keys_required": bool(keys),
                "signed_in": not keys or key_id is not None,
                "key_id": key_id,
            },  # fmt: skip
            headers=NO_STORE,
        )

    @router.post(
        session.SESSION_PATH,
        responses=errors(*COMMON_ERRORS, 400, 415),
        openapi_extra=documented(SessionRequest),
    )
    async def sign_in(request: Request) -> Response:
        """Trade an admin key for a session cookie (HttpOnly, SameSite=Strict, 12 hours)."""
        body = await read(request, SessionRequest)
        if not keys:
            return JSONResponse({"keys_required": False, "signed_in": True, "key_id": None})
        found = None
        for key in keys:  # compare with every key: timing says nothing about which
            if hmac.compare_digest(key.key.encode(), body.key.encode()):
                found = key
        if found is None:
            return error_response(401, "that key is not one of server.api_keys")
        if not found.admin:
            return error_response(
                403, f"key {found.id!r} is not an admin key: the dashboard needs `admin: true`"
            )
        secure = request.url.scheme == "https"
        cookie = session.set_cookie(session.session_value(found), secure)
        return JSONResponse(
            {"keys_required": True, "signed_in": True, "key_id": found.id},
            headers={**NO_STORE, "set-cookie": cookie},
        )

    @router.delete(session.SESSION_PATH, responses=errors(*COMMON_ERRORS))
    async def sign_out(request: Request) -> JSONResponse:
        """End this browser's session (the cookie is cleared)."""
        cookie = session.set_cookie("", request.url.scheme == "https", max_age=0)
        return JSONResponse({"signed_in": False}, headers={**NO_STORE, "set-cookie": cookie})

    @router.get(f"{API}/simulator/example", responses=errors(*COMMON_ERRORS))
    async def example_mix() -> JSONResponse:
        """The example traffic mix (examples/traffic-mix.yaml) as YAML text, to edit."""
        text = assets[EXAMPLE_MIX][0].decode("utf-8")
        return JSONResponse({"yaml": text, "name": "examples/traffic-mix.yaml"}, headers=NO_STORE)

    @router.post(
        f"{API}/simulate",
        responses=errors(*COMMON_ERRORS, 400, 415),
        openapi_extra=documented(SimulateRequest),
    )
    async def simulate_mix(request: Request) -> Response:
        """Price a traffic mix before and after routing, judge included: `judge-router simulate`'s
        figures, with this service's judge prompt."""
        body = await read(request, SimulateRequest)
        try:
            if body.yaml is not None:
                mix = simulator.parse_mix(body.yaml, "from the page")
            else:
                mix = simulator.validate_mix(body.mix, "from the page")
            # In a thread: tokenizing the judge's prompt and litellm's price lookups take ms.
            result = await asyncio.to_thread(simulate, mix, settings.judge)
        except ConfigError as exc:
            return error_response(400, str(exc))
        return JSONResponse(result, headers=NO_STORE)

    add_data_routes(router, lambda: dashboard.reader, settings.ledger.store_prompts)
    app.include_router(router)
    app.state.dashboard = dashboard
    return dashboard
