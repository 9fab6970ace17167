"""Reloading the local judge's model (POST /admin/reload, SIGHUP): no request fails while models
are swapped under them, verdicts name the new version after, a bad file changes nothing, and only
admin keys may ask."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from judge_router.config import Settings
from judge_router.routing.judges.local import ModelSlot
from judge_router.routing.judges.local_model import LABELS, LocalModel
from judge_router.service.factory import build_engine
from judge_router.serving.admin_api import ModelReloader
from judge_router.serving.app import create_app

from fakes import settings_data
from servers import clean_env, start_server

LOW = (5.0, 0.0, 0.0)  # intercepts only: every prompt is `low`
HIGH = (0.0, 0.0, 5.0)
ADMIN_KEY, TEAM_KEY = "sk-admin-key-0123456789", "sk-team-key-0123456789"
HAS_SIGHUP = hasattr(signal, "SIGHUP")


def write_model(path: Path, intercepts: tuple[float, ...], buckets: int = 0) -> str:
    """A model file predicting by its intercepts; `buckets` weights make it big, and slow to load
    (~0.15 s for 50,000). Returns its version."""
    weights = dict.fromkeys(range(buckets), (0.001, 0.0, -0.001))
    model = LocalModel(list(LABELS), [float(value) for value in intercepts], weights)
    model.save(path)
    return model.version


def nudged(intercepts: tuple[float, ...], step: int) -> tuple[float, ...]:
    """The same prediction with other weights: another version."""
    return tuple(value + step / 100 for value in intercepts)


@pytest.fixture
def model_path(tmp_path: Path) -> Path:
    return tmp_path / "model.json"


@pytest.fixture
def local_settings(make_settings: Callable[..., Settings], model_path: Path) -> Settings:
    write_model(model_path, LOW)
    return make_settings(judge={"mode": "local", "local_model": str(model_path)})


async def client_of(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    engine = build_engine(settings)
    transport = httpx.ASGITransport(app=create_app(settings, engine))
    async with httpx.AsyncClient(transport=transport, base_url="http://router.test") as client:
        yield client
    await engine.aclose()


@pytest.fixture
async def client(local_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async for made in client_of(local_settings):
        yield made


async def route(client: httpx.AsyncClient, prompt: str = "what is a ledger") -> dict[str, Any]:
    answer = await client.post("/route", json={"prompt": prompt})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def test_requests_never_fail_while_the_model_is_reloaded(
    client: httpx.AsyncClient, model_path: Path
) -> None:
    first = await asyncio.to_thread(write_model, model_path, LOW, 50_000)
    assert (await client.post("/admin/reload")).json()["version"] == first
    versions = {first}
    answered: list[tuple[float, int, str]] = []  # (when, status, reason)
    stop = asyncio.Event()

    async def keep_routing(worker: int) -> None:
        count = 0
        while not stop.is_set():
            got = await client.post("/route", json={"prompt": f"question {worker}-{count}"})
            answered.append((time.perf_counter(), got.status_code, got.json().get("reason", "")))
            count += 1
            # In process a local verdict never waits on I/O, so without this one task would keep
            # the loop to itself (over a socket, the network is where a client waits).
            await asyncio.sleep(0)

    workers = [asyncio.create_task(keep_routing(n)) for n in range(8)]
    answered_while_loading = 0
    try:
        for step in range(1, 7):
            tier, intercepts = ("high", HIGH) if step % 2 else ("low", LOW)
            version = await asyncio.to_thread(
                write_model, model_path, nudged(intercepts, step), 50_000
            )
            versions.add(version)
            started = time.perf_counter()
            reloaded = await client.post("/admin/reload")
            ended = time.perf_counter()
            assert reloaded.status_code == 200, reloaded.text
            assert reloaded.json()["version"] == version
            answered_while_loading += sum(started < at < ended for at, _, _ in answered)
            after = await route(client)
            assert after["source"] == "local" and after["tier"] == tier
            assert after["reason"].startswith(f"local model {version}:")
    finally:
        stop.set()
        await asyncio.gather(*workers)
    assert len(versions) == 7
    assert len(answered) > 100
    assert {status for _, status, _ in answered} == {200}
    named = {reason.split(":")[0].removeprefix("local model ") for _, _, reason in answered}
    assert named <= versions  # every verdict came whole from one model or another
    # Loading ran off the event loop: requests were answered while each file was read.
    assert answered_while_loading > 0


async def test_the_answer_names_the_new_version_and_the_one_before(
    client: httpx.AsyncClient, model_path: Path
) -> None:
    before = (await client.get("/healthz")).json()["judge"]["local_model"]["version"]
    version = write_model(model_path, HIGH)
    reloaded = await client.post("/admin/reload")
    body = reloaded.json()
    assert body["reloaded"] is True and body["path"] == str(model_path)
    assert (body["version"], body["previous_version"]) == (version, before)
    health = (await client.get("/healthz")).json()
    assert health["status"] == "ok" and health["judge"]["mode"] == "local"
    assert health["judge"]["local_model"] == {
        "path": str(model_path), "version": version, "error": None,
        "loaded_at": body["loaded_at"],
    }  # fmt: skip


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text[: len(text) // 2],  # truncated
        lambda text: '{"format": "some-other-file"}',
        lambda text: text.replace("5.0", "4.0", 1),  # edited: the digest no longer matches
    ],
    ids=["truncated", "not-a-model", "edited"],
)
async def test_a_bad_file_is_an_error_and_the_old_model_goes_on_answering(
    client: httpx.AsyncClient, model_path: Path, damage: Callable[[str], str]
) -> None:
    old = (await route(client))["reason"].split(":")[0].removeprefix("local model ")
    model_path.write_text(damage(model_path.read_text()))
    refused = await client.post("/admin/reload")
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["type"] == "model_file_error"
    assert str(model_path) in error["message"]
    assert f"the model loaded before (local:{old}) is still in use" in error["message"]
    after = await route(client)
    assert after["source"] == "local" and after["reason"].startswith(f"local model {old}:")
    health = (await client.get("/healthz")).json()
    local = health["judge"]["local_model"]
    assert health["status"] == "degraded" and local["version"] == old
    assert str(model_path) in local["error"]
    # A good file again: in use, and healthy.
    version = write_model(model_path, HIGH)
    assert (await client.post("/admin/reload")).json()["previous_version"] == old
    health = (await client.get("/healthz")).json()
    assert health["status"] == "ok" and health["judge"]["local_model"]["error"] is None
    assert (await route(client))["reason"].startswith(f"local model {version}:")


async def test_a_model_missing_at_start_can_be_reloaded_once_written(
    make_settings: Callable[..., Settings], model_path: Path, judge_route: Any
) -> None:
    settings = make_settings(judge={"mode": "local", "local_model": str(model_path)})
    async for client in client_of(settings):
        health = (await client.get("/healthz")).json()
        assert health["status"] == "degraded" and health["judge"]["mode"] == "llm"
        assert health["judge"]["local_model"]["version"] is None
        assert health["judge"]["local_model"]["loaded_at"] is None
        assert (await route(client))["source"] == "llm"  # the LLM judge stands in
        refused = (await client.post("/admin/reload")).json()["error"]
        assert (
            "no local model is loaded, so the LLM judge or judge.on_failure answers"
            in (refused["message"])
        )
        version = write_model(model_path, HIGH)
        body = (await client.post("/admin/reload")).json()
        assert (body["version"], body["previous_version"]) == (version, None)
        # (A prompt the LLM judge rated before is answered from the cache, as in `hybrid`.)
        assert (await route(client, "a prompt not seen before"))["source"] == "local"
        health = (await client.get("/healthz")).json()
        assert health["status"] == "ok" and health["judge"]["mode"] == "local"


async def test_without_a_local_model_there_is_nothing_to_reload(settings: Settings) -> None:
    async for client in client_of(settings):
        refused = await client.post("/admin/reload")
        assert refused.status_code == 404
        error = refused.json()["error"]
        assert error["type"] == "local_model_not_configured"
        assert "judge.local_model" in error["message"]
        assert (await client.get("/healthz")).json()["judge"]["local_model"] is None


async def test_only_an_admin_key_may_reload(
    make_settings: Callable[..., Settings], model_path: Path
) -> None:
    write_model(model_path, LOW)
    keys = [{"id": "team", "key": TEAM_KEY}, {"id": "ops", "key": ADMIN_KEY, "admin": True}]
    # An empty admin_paths opens /stats and /metrics to every key, but never /admin/.
    server = {"api_keys": keys, "admin_paths": []}
    settings = make_settings(judge={"local_model": str(model_path)}, server=server)
    async for client in client_of(settings):
        assert (await client.post("/admin/reload")).status_code == 401
        refused = await client.post("/admin/reload", headers={"x-api-key": TEAM_KEY})
        assert refused.status_code == 403
        assert refused.json()["error"]["message"] == "/admin/reload needs an admin key"
        done = await client.post("/admin/reload", headers={"authorization": f"Bearer {ADMIN_KEY}"})
        assert done.status_code == 200


async def test_sighup_reloads_and_logs_what_happened(
    model_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_model(model_path, LOW)
    slot = ModelSlot(model_path)
    slot.load()
    reloader = ModelReloader(slot)
    version = write_model(model_path, HIGH)
    with caplog.at_level(logging.INFO, logger="judge_router.serving.admin_api"):
        await reloader.on_sighup()
    assert slot.model is not None and slot.model.version == version
    assert f"SIGHUP: local judge model {version} loaded from {model_path}" in caplog.text
    model_path.write_text("{not json")
    caplog.clear()
    await reloader.on_sighup()  # a bad file: logged, nothing raised, the model stays
    assert slot.model.version == version
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any(m.startswith("SIGHUP: local model") and "is not JSON" in m for m in errors)
    assert any("is still in use" in m for m in errors)


@pytest.mark.skipif(not HAS_SIGHUP, reason="no SIGHUP on this platform")
async def test_the_sighup_handler_lives_as_long_as_the_app(
    local_settings: Settings, settings: Settings
) -> None:
    before = signal.getsignal(signal.SIGHUP)
    app = create_app(local_settings)
    async with app.router.lifespan_context(app):  # as uvicorn runs it, on the main thread
        assert signal.getsignal(signal.SIGHUP) != before
    assert signal.getsignal(signal.SIGHUP) == before
    plain = create_app(settings)  # no local model: SIGHUP is left alone
    async with plain.router.lifespan_context(plain):
        assert signal.getsignal(signal.SIGHUP) == before


def test_off_the_main_thread_the_app_starts_without_a_handler(model_path: Path) -> None:
    write_model(model_path, LOW)
    failures: list[BaseException] = []

    async def enter() -> None:
        with ModelReloader(ModelSlot(model_path)).reloading_on_sighup():
            pass

    def run() -> None:
        try:
            asyncio.run(enter())
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            failures.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert failures == []


@pytest.mark.slow
@pytest.mark.skipif(not HAS_SIGHUP, reason="no SIGHUP on this platform")
def test_kill_hup_reloads_a_running_server(tmp_path: Path) -> None:
    model_path = tmp_path / "model.json"
    first = write_model(model_path, LOW)
    data = settings_data(tmp_path, judge={"mode": "local", "local_model": str(model_path)})
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(data))
    process, base = start_server(config, clean_env(tmp_path), tmp_path / "server.log")
    try:
        assert httpx.get(f"{base}/healthz").json()["judge"]["local_model"]["version"] == first
        second = write_model(model_path, HIGH)
        process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while True:
            local = httpx.get(f"{base}/healthz").json()["judge"]["local_model"]
            if local["version"] == second or time.monotonic() > deadline:
                break
            time.sleep(0.05)  # polling the reload, bounded by the deadline
        assert local["version"] == second
        assert process.poll() is None  # still serving: SIGHUP did not end it
        reason = httpx.post(f"{base}/route", json={"prompt": "hi"}).json()["reason"]
        assert reason.startswith(f"local model {second}:")
    finally:
        process.terminate()
        process.wait(timeout=20)
