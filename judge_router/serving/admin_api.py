"""POST /admin/reload and SIGHUP: read the local judge's model file again under running requests.

The file is read and checked in a worker thread (asyncio.to_thread), so a large model never holds
up the requests being answered meanwhile, and ModelSlot.load puts the new model in place with one
assignment: a request rates with the old model or the new one, never half of each. A file that
cannot be used changes nothing: the model loaded before stays in use, and the answer (or, for a
signal, the log) says why. Each worker process has its own slot, so each reloads on its own.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

from judge_router.routing.judges.local import ModelSlot
from judge_router.routing.judges.local_model import ModelFileError
from judge_router.serving.errors import ErrorBody, error_response
from judge_router.serving.json_response import FastJSONResponse as JSONResponse
from judge_router.serving.openapi import COMMON_ERRORS, errors

log = logging.getLogger(__name__)

PATH = "/admin/reload"


def timestamp(seconds: float | None) -> str | None:
    """An epoch time as ISO 8601 in UTC, as the ledger writes its times."""
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


def local_model_health(slot: ModelSlot | None) -> dict[str, Any] | None:
    """/healthz's `judge.local_model`: the file, the version in use (None: no usable model), the
    last load's error and when the model in use was loaded; None without `judge.local_model`."""
    if slot is None:
        return None
    state = slot.state()
    return {
        "path": state.path,
        "version": state.version,
        "error": state.error,
        "loaded_at": timestamp(state.loaded_at),
    }


class NoLocalModel(Exception):
    """There is no model file to reload: `judge.local_model` is not set."""


class ReloadFailed(Exception):
    """The file cannot be used; the message says why and which model answers instead."""


class ReloadAnswer(BaseModel):
    reloaded: bool = Field(default=True, description="always true: failures are error answers")
    path: str = Field(description="the file read (`judge.local_model`)")
    version: str = Field(description="the version now in use; verdicts name it `local:VERSION`")
    previous_version: str | None = Field(
        description="the version in use before (null: no model was loaded)"
    )
    loaded_at: str | None = Field(description="when the file was loaded, ISO 8601 in UTC")


class ModelReloader:
    """Reloads one slot, one reload at a time (a second waits, then reads the file again)."""

    def __init__(self, slot: ModelSlot | None):
        self.slot = slot
        self._lock = asyncio.Lock()
        self._signalled: set[asyncio.Task[None]] = set()  # kept referenced until they finish

    async def reload(self) -> ReloadAnswer:
        """Raises NoLocalModel or ReloadFailed (the model in use, if any, still answers)."""
        slot = self.slot
        if slot is None:
            raise NoLocalModel(
                "no local model is configured: set judge.local_model to a file written by "
                "`judge-router train`, then restart"
            )
        async with self._lock:
            before = slot.model
            try:
                model = await asyncio.to_thread(slot.load)
            except ModelFileError as exc:
                still = (
                    f"the model loaded before (local:{before.version}) is still in use"
                    if before is not None
                    else "no local model is loaded, so the LLM judge or judge.on_failure answers"
                )
                raise ReloadFailed(f"{exc}; {still}") from None
        return ReloadAnswer(
            path=str(slot.path),
            version=model.version,
            previous_version=before.version if before is not None else None,
            loaded_at=timestamp(slot.state().loaded_at),
        )

    def on_sighup(self) -> asyncio.Task[None]:
        """The signal handler: start a reload and return (a handler must not block the loop)."""
        task = asyncio.get_running_loop().create_task(self._reload_and_log())
        self._signalled.add(task)
        task.add_done_callback(self._signalled.discard)
        return task

    async def _reload_and_log(self) -> None:
        try:
            answer = await self.reload()
        except (NoLocalModel, ReloadFailed) as exc:
            log.error("SIGHUP: %s", exc)
            return
        log.warning("SIGHUP: local judge model %s loaded from %s", answer.version, answer.path)

    @contextmanager
    def reloading_on_sighup(self) -> Iterator[None]:
        """For the app's lifetime, SIGHUP reloads the model, where the platform lets a handler be
        installed (Unix, the main thread). Without a local model SIGHUP is left as it was."""
        hangup = getattr(signal, "SIGHUP", None)  # Windows has none
        if self.slot is None or hangup is None:
            yield
            return
        loop = asyncio.get_running_loop()
        previous = signal.getsignal(hangup)
        try:
            loop.add_signal_handler(hangup, self.on_sighup)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no Unix
            log.info("SIGHUP cannot be handled here; POST %s reloads the local model", PATH)
            yield
            return
        log.info("kill -HUP %d (or POST %s) reloads the local model", os.getpid(), PATH)
        try:
            yield
        finally:
            loop.remove_signal_handler(hangup)
            if previous is not None:  # e.g. SIG_IGN under nohup: as it was before the app
                signal.signal(hangup, previous)


RESPONSES: dict[int | str, dict[str, Any]] = {
    **errors(*COMMON_ERRORS),
    404: {"model": ErrorBody, "description": "local_model_not_configured: no judge.local_model"},
    409: {
        "model": ErrorBody,
        "description": "model_file_error: the file cannot be used; the old model stays in use",
    },
}


def add_reload_route(app: FastAPI, reloader: ModelReloader) -> None:
    """Declare POST /admin/reload on `app` (an admin path: serving/access.py)."""

    @app.post(PATH, response_model=ReloadAnswer, responses=RESPONSES)
    async def reload_local_model() -> JSONResponse:
        """Read `judge.local_model` again and put it in use without a restart (this worker
        process only); a file that cannot be used is a 409 and the model in use stays."""
        try:
            answer = await reloader.reload()
        except NoLocalModel as exc:
            return error_response(404, str(exc), "local_model_not_configured")
        except ReloadFailed as exc:
            return error_response(409, str(exc), "model_file_error")
        return JSONResponse(answer.model_dump(mode="json"))
