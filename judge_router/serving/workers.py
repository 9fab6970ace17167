"""`serve --workers N`: N worker processes, each accepting from a listening socket of its own.

uvicorn's own supervisor binds one socket and hands it to every worker. Clients that keep their
connections open (SDKs, load balancers, the benchmarks' load generator) open them in bursts, and
the worker that wakes first accepts most of a burst and keeps it: at 20 connections one worker
did 73% of the two's work (by CPU) in benchmarks/overhead.py's two-worker run of 2026-12-04.
Here the supervisor opens N listening sockets on the address with SO_REUSEPORT, and the kernel
spreads connections across them by a hash of each; worker k accepts from socket k.

The supervisor keeps every socket open itself, and a worker that replaces worker k (after SIGHUP,
or after it died) is handed socket k: a worker that stops or dies closes only its own handle, so
connections the kernel queued on its socket wait there for the next worker instead of being reset
(which is what closing a socket of a SO_REUSEPORT group does to its queue).

Signals, as uvicorn's supervisor takes them: SIGINT and SIGTERM stop every worker (each finishes
its requests within server.shutdown_timeout_s); SIGHUP replaces the workers one at a time, each new
one reading the config and the local judge's model as it starts, and serving before the old one
stops. A worker that dies is started again. Where SO_REUSEPORT is missing (Windows), uvicorn's
supervisor serves instead.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event as EventType
from typing import Any

import uvicorn

log = logging.getLogger("uvicorn.error")

APP = "judge_router.serving.app:app_from_env"
RESTART_PAUSE_S = 1.0  # between restarts of a worker that keeps dying at start-up
READY_TIMEOUT_S = 120.0  # for a replacement worker to start (imports, config, model, app)
_EXTRA_STOP_S = 10.0  # a stopping worker's grace beyond its own shutdown timeout


def reuse_port_supported() -> bool:
    return hasattr(socket, "SO_REUSEPORT")


def listening_socket(host: str, port: int, backlog: int) -> socket.socket:
    """A socket listening on (host, port), one of a SO_REUSEPORT group (the same user's only)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


class _Server(uvicorn.Server):
    """uvicorn's server, telling the supervisor once it listens and its app has started."""

    def __init__(self, config: uvicorn.Config, ready: EventType):
        super().__init__(config)
        self._ready = ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self._ready.set()


def _worker(
    sock: socket.socket, host: str, port: int, options: dict[str, Any], ready: EventType
) -> None:
    """One worker: uvicorn serving the app on the listening socket it was handed."""
    config = uvicorn.Config(APP, factory=True, host=host, port=port, **options)
    _Server(config, ready).run(sockets=[sock])


class _Worker:
    def __init__(self, process: BaseProcess, ready: EventType):
        self.process, self.ready = process, ready


class Supervisor:
    def __init__(self, count: int, host: str, port: int, options: dict[str, Any]):
        self.count, self.host, self.port, self.options = count, host, port, options
        self._context = multiprocessing.get_context("spawn")  # as uvicorn starts its workers
        self._workers: list[_Worker] = []
        self._sockets: list[socket.socket] = []  # worker k's, kept open here across its restarts
        self._stopping = threading.Event()
        self._hangup = threading.Event()

    def run(self) -> None:
        backlog = int(self.options.get("backlog") or 2048)  # uvicorn's default
        try:  # the first fails if the port is taken
            for _ in range(self.count):
                self._sockets.append(listening_socket(self.host, self.port, backlog))
        except OSError:
            self._close_sockets()
            raise
        handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in handled}
        try:
            log.info("serving on %s:%s with %s workers", self.host, self.port, self.count)
            self._workers = [self._start(index) for index in range(self.count)]
            self._watch()
        finally:
            self._stop(self._workers)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._close_sockets()

    def _close_sockets(self) -> None:
        for sock in self._sockets:
            sock.close()

    def _on_signal(self, signum: int, _frame: object) -> None:
        if signum == signal.SIGHUP:
            self._hangup.set()
        else:
            self._stopping.set()

    def _start(self, index: int) -> _Worker:
        ready = self._context.Event()
        sock = self._sockets[index]
        process = self._context.Process(
            target=_worker, args=(sock, self.host, self.port, self.options, ready), daemon=False
        )
        process.start()
        log.info("started worker process [%s]", process.pid)
        return _Worker(process, ready)

    def _watch(self) -> None:
        while not self._stopping.wait(0.5):
            if self._hangup.is_set():
                self._hangup.clear()
                self._replace_all()
            for index, worker in enumerate(self._workers):
                process = worker.process
                if process.is_alive() or self._stopping.is_set():
                    continue
                log.warning(
                    "worker [%s] exited (%s): starting another", process.pid, process.exitcode
                )
                self._stopping.wait(RESTART_PAUSE_S)
                if not self._stopping.is_set():
                    self._workers[index] = self._start(index)

    def _replace_all(self) -> None:
        """SIGHUP: each worker in turn replaced by a new one, which is serving before the old one
        is told to stop; a new one that does not start in time is stopped and the old one kept."""
        log.info("SIGHUP: replacing the %s workers one at a time", len(self._workers))
        for index, old in enumerate(self._workers):
            new = self._start(index)
            if not _wait_ready(new, self._stopping):
                log.error("worker [%s] did not start: [%s] kept", new.process.pid, old.process.pid)
                self._stop([new])
                continue
            self._workers[index] = new
            self._stop([old])

    def _stop(self, workers: list[_Worker]) -> None:
        """SIGTERM to each (a graceful stop), then a kill for any still running after its grace."""
        for worker in workers:
            if worker.process.is_alive():
                _signal(worker.process, signal.SIGTERM)
        grace = float(self.options.get("timeout_graceful_shutdown") or 0) + _EXTRA_STOP_S
        for worker in workers:
            process = worker.process
            process.join(grace)
            if process.is_alive():
                log.warning("worker [%s] still running after %s s: killed", process.pid, grace)
                process.kill()
                process.join()


def _wait_ready(worker: _Worker, stopping: threading.Event) -> bool:
    """Whether `worker` starts serving within READY_TIMEOUT_S (and before a stop)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline and not stopping.is_set():
        if worker.ready.wait(0.2):
            return True
        if not worker.process.is_alive():
            return False
    return False


def _signal(process: BaseProcess, signum: int) -> None:
    try:
        assert process.pid is not None
        os.kill(process.pid, signum)
    except ProcessLookupError:
        pass  # it has just exited: the watch loop starts another


def serve_workers(count: int, host: str, port: int, options: dict[str, Any]) -> None:
    """Serve the app (built by each worker from JUDGE_ROUTER_CONFIG) in `count` processes."""
    if not reuse_port_supported():
        uvicorn.run(APP, factory=True, workers=count, host=host, port=port, **options)
        return
    Supervisor(count, host, port, options).run()
