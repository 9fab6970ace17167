"""POST /v1/feedback: a score for an answered request becomes its `feedback` outcome row, once per
request (sent again, it replaces), given by the key that made the request or an admin."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_api_docs import documented, fields

from judge_router.config import Settings
from judge_router.service.engine import Engine
from judge_router.service.factory import build_engine
from judge_router.serving.app import create_app
from judge_router.testing.fake_upstream import FakeUpstream

from fakes import FakeLedger, ledger_row, model_entry, settings_data

USER_KEY = "user-key-0123456789abcdef"
OTHER_KEY = "other-key-0123456789abcdef"
ADMIN_KEY = "admin-key-0123456789abcdef"
KEYS = [
    {"id": "team-a", "key": USER_KEY},
    {"id": "team-b", "key": OTHER_KEY},
    {"id": "ops", "key": ADMIN_KEY, "admin": True},
]
ASK = {"model": "auto:low", "messages": [{"role": "user", "content": "Name a prime number."}]}


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


@dataclass
class Router:
    client: httpx.AsyncClient
    engine: Engine

    async def answered(self, key: str | None = None) -> str:
        """The request id of a chat completion the fake provider answered."""
        headers = bearer(key) if key else {}
        answer = await self.client.post("/v1/chat/completions", json=ASK, headers=headers)
        assert answer.status_code == 200, answer.text
        request_id: str = answer.headers["x-judge-router-request-id"]
        return request_id

    async def feedback(self, key: str | None = None, **body: Any) -> httpx.Response:
        return await self.client.post("/v1/feedback", json=body, headers=bearer(key) if key else {})

    async def outcomes(self) -> list[dict[str, Any]]:
        return await self.engine.ledger.outcomes(source="feedback")


@pytest.fixture
def make_router(tmp_path: Path, fake_provider: FakeUpstream) -> Callable[..., Any]:
    """The app in process on a real SQLite ledger, every tier's model on the loopback provider."""

    @asynccontextmanager
    async def make(ledger: Any = None, **server: Any) -> AsyncIterator[Router]:
        data = settings_data(tmp_path, judge={"model": "heuristic"}, server=server)
        data["tiers"] = {
            tier: [model_entry(name, fake_provider.base_url)]
            for tier, name in (("low", "cheap-a"), ("medium", "mid-a"), ("high", "big-a"))
        }
        settings = Settings(**data)
        engine = build_engine(settings, ledger=ledger)
        transport = httpx.ASGITransport(app=create_app(settings, engine))
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                yield Router(client, engine)
        finally:
            await engine.aclose()

    return make


async def test_feedback_is_stored_as_the_requests_outcome(make_router: Callable[..., Any]) -> None:
    async with make_router() as router:
        request_id = await router.answered()
        given = await router.feedback(request_id=request_id, score=0.8, comment="right, and short")
        stored = await router.outcomes()
        decision = await router.engine.ledger.decision(request_id)
    assert given.status_code == 200, given.text
    assert given.json() == {
        "request_id": request_id, "model": "openai/cheap-a", "tier": "low", "score": 0.8,
        "replaced": False, "stored": True,
    }  # fmt: skip
    assert fields(given.json()) == documented("feedback")  # docs/api.md's table
    [row] = stored
    assert (row["request_id"], row["source"], row["model"], row["tier"]) == (
        request_id, "feedback", "openai/cheap-a", "low"
    )  # fmt: skip
    assert (row["score"], row["reason"], row["api_key_id"]) == (0.8, "right, and short", None)
    assert row["prompt_hash"] == decision["prompt_hash"]  # joined to its request, as every outcome
    assert row["grader_cost_usd"] == row["answer_cost_usd"] == 0


async def test_feedback_sent_again_replaces_the_earlier_one(
    make_router: Callable[..., Any],
) -> None:
    async with make_router() as router:
        request_id, other = await router.answered(), await router.answered()
        first = await router.feedback(request_id=request_id, score=1, comment="great")
        again = await router.feedback(request_id=request_id, score=0)  # integers 0 and 1 are scores
        elsewhere = await router.feedback(request_id=other, score=0.5)
        stored = {row["request_id"]: row for row in await router.outcomes()}
    assert (first.json()["score"], first.json()["replaced"]) == (1.0, False)
    assert (again.status_code, again.json()["score"], again.json()["replaced"]) == (200, 0.0, True)
    assert elsewhere.json()["replaced"] is False  # another request's feedback is its own
    assert len(stored) == 2
    assert (stored[request_id]["score"], stored[request_id]["reason"]) == (0.0, None)  # all of it


async def test_an_unknown_request_id_is_a_404(make_router: Callable[..., Any]) -> None:
    async with make_router() as router:
        await router.answered()
        unknown = await router.feedback(request_id="jr-nothing-like-it", score=0.5)
        stored = await router.outcomes()
    assert unknown.status_code == 404
    error = unknown.json()["error"]
    assert error["type"] == "request_not_found" and "'jr-nothing-like-it'" in error["message"]
    assert stored == []


async def test_only_the_requests_own_key_or_an_admin_key_may_give_feedback(
    make_router: Callable[..., Any],
) -> None:
    async with make_router(api_keys=KEYS) as router:
        request_id = await router.answered(USER_KEY)
        anonymous = await router.feedback(request_id=request_id, score=0.1)
        wrong = await router.client.post(
            "/v1/feedback", json={"request_id": request_id, "score": 0.1},
            headers=bearer("wrong-key-0123456789abcdef"),
        )  # fmt: skip
        other = await router.feedback(OTHER_KEY, request_id=request_id, score=0.1)
        before = await router.outcomes()
        own = await router.feedback(USER_KEY, request_id=request_id, score=0.9)
        after_own = await router.outcomes()
        admin = await router.feedback(ADMIN_KEY, request_id=request_id, score=0.4, comment="no")
        after_admin = await router.outcomes()
    assert anonymous.status_code == wrong.status_code == 401
    assert anonymous.json()["error"]["type"] == "authentication_error"
    assert other.status_code == 403
    error = other.json()["error"]
    assert error["type"] == "permission_error"
    assert "another API key" in error["message"] and "team-a" not in error["message"]
    assert before == []
    assert own.status_code == 200 and [r["api_key_id"] for r in after_own] == ["team-a"]
    assert admin.status_code == 200 and admin.json()["replaced"] is True
    [row] = after_admin
    assert (row["api_key_id"], row["score"], row["reason"]) == ("ops", 0.4, "no")


async def test_feedback_on_a_route_decision_scores_the_model_it_chose(
    make_router: Callable[..., Any],
) -> None:
    async with make_router() as router:
        routed = (await router.client.post("/route", json={"prompt": "hi", "tier": "high"})).json()
        given = await router.feedback(request_id=routed["request_id"], score=0.7)
        [row] = await router.outcomes()
    assert given.status_code == 200
    assert (row["model"], row["tier"], row["score"]) == ("openai/big-a", "high", 0.7)


@pytest.mark.parametrize("status", ["error", "timeout"])
async def test_a_request_that_was_never_answered_is_a_409(
    make_router: Callable[..., Any], status: str
) -> None:
    async with make_router() as router:
        failed = ledger_row("jr-failed")
        failed.status, failed.endpoint = status, "chat"
        assert await router.engine.ledger.record(failed)
        refused = await router.feedback(request_id="jr-failed", score=0.0)
        stored = await router.outcomes()
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["type"] == "no_answer" and f"status is '{status}'" in error["message"]
    assert stored == []


BAD_BODIES = [
    (b'{"request_id": "jr-1", "score": 1.5}', "less than or equal to 1"),
    (b'{"request_id": "jr-1", "score": -0.1}', "greater than or equal to 0"),
    (b'{"request_id": "jr-1", "score": NaN}', "finite number"),
    (b'{"request_id": "jr-1", "score": Infinity}', "finite number"),
    (b'{"request_id": "jr-1", "score": 1e400}', "finite number"),
    (b'{"request_id": "jr-1", "score": true}', "score"),
    (b'{"request_id": "jr-1", "score": "0.5"}', "score"),
    (b'{"request_id": "jr-1", "score": null}', "score"),
    (b'{"score": 0.5}', "request_id"),
    (b'{"request_id": "", "score": 0.5}', "request_id"),
    (b'{"request_id": 7, "score": 0.5}', "request_id"),
    (b'{"request_id": "jr-1"}', "score"),
    (b'{"request_id": "jr-1", "score": 0.5, "rating": 5}', "rating"),
    (b'{"request_id": "jr-1", "score": 0.5, "comment": 3}', "comment"),
    (b'{"request_id": "jr-1", "score": 0.5, "comment": "' + b"x" * 2001 + b'"}', "comment"),
    (b'{"request_id": "jr-1", "score": true, "comment": "\\ud800"}', "boolean"),  # lax re-parse
    (b"[0.5]", "JSON object"),
    (b"not json", "not valid JSON"),
    (b"", "missing"),
]


@pytest.mark.parametrize(("body", "named"), BAD_BODIES)
async def test_a_bad_body_is_a_400_saying_what_is_wrong(
    make_router: Callable[..., Any], body: bytes, named: str
) -> None:
    async with make_router() as router:
        answer = await router.client.post(  # the body is read first: not a 404 for "jr-1"
            "/v1/feedback", content=body, headers={"content-type": "application/json"}
        )
        stored = await router.outcomes()
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error" and named in error["message"], error
    assert stored == []


async def test_a_body_not_sent_as_json_is_a_415(make_router: Callable[..., Any]) -> None:
    async with make_router() as router:
        answer = await router.client.post(
            "/v1/feedback", content=b'{"request_id": "x", "score": 1}',
            headers={"content-type": "text/plain"},
        )  # fmt: skip
    assert answer.status_code == 415 and answer.json()["error"]["type"] == "unsupported_media_type"


async def test_a_ledger_that_cannot_be_read_is_a_503(
    make_router: Callable[..., Any], tmp_path: Path
) -> None:
    async with make_router() as router:
        request_id = await router.answered()
        # The ledger's path can no longer be opened as a database (a volume unmounted and a
        # directory left in its place): every read fails.
        for name in ("ledger.sqlite", "ledger.sqlite-wal", "ledger.sqlite-shm"):
            (tmp_path / name).unlink(missing_ok=True)
        (tmp_path / "ledger.sqlite").mkdir()
        unreadable = await router.feedback(request_id=request_id, score=0.5)
    assert unreadable.status_code == 503
    error = unreadable.json()["error"]
    assert error["type"] == "service_unavailable"
    assert "ledger could not be read" in error["message"] and "retry" in error["message"]


async def test_a_read_that_raises_anything_is_a_503_too(make_router: Callable[..., Any]) -> None:
    class BrokenLedger(FakeLedger):
        async def outcomes_of(self, request_id: str) -> list[dict[str, Any]]:
            raise OSError("disk gone")

    async with make_router(ledger=BrokenLedger()) as router:
        request_id = await router.answered()
        answer = await router.feedback(request_id=request_id, score=0.5)
    assert answer.status_code == 503 and "OSError" in answer.json()["error"]["message"]
    assert "disk gone" not in answer.json()["error"]["message"]  # the log has the details


async def test_feedback_the_ledger_cannot_write_now_is_accepted_and_written_later(
    make_router: Callable[..., Any], tmp_path: Path
) -> None:
    async with make_router() as router:
        request_id = await router.answered()
        # Another process holds the write lock: the row is queued, not lost.
        holder = sqlite3.connect(tmp_path / "ledger.sqlite", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            queued = await router.feedback(request_id=request_id, score=0.3)
            health = await router.engine.ledger.health()
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        await router.engine.ledger.close()  # waits for the writer: the queued row is written
        stored = await router.outcomes()
    assert queued.status_code == 202, queued.text
    assert queued.json()["stored"] is False and queued.json()["score"] == 0.3
    assert health.pending_rows == 1
    assert [(row["request_id"], row["score"]) for row in stored] == [(request_id, 0.3)]


async def test_the_endpoint_and_its_body_are_in_the_openapi_document(
    make_router: Callable[..., Any],
) -> None:
    async with make_router() as router:
        document = (await router.client.get("/openapi.json")).json()
    operation = document["paths"]["/v1/feedback"]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/FeedbackRequest"}
    schema = document["components"]["schemas"]["FeedbackRequest"]
    assert schema["required"] == ["request_id", "score"]
    assert schema["additionalProperties"] is False
    assert (schema["properties"]["score"]["minimum"], schema["properties"]["score"]["maximum"]) == (
        0, 1
    )  # fmt: skip
    assert {"200", "202", "400", "401", "403", "404", "409", "503"} <= set(operation["responses"])
    assert "422" not in operation["responses"]
