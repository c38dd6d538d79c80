"""Run the gateway under uvicorn with its embedded ingest workers, and run a worker alone.

``datashare serve`` = the HTTP server plus ``ingest.embedded_workers`` worker processes
(``datashare worker``), which die with it (Linux PDEATHSIG) and are woken by SIGUSR1
when an upload is queued. ``datashare worker`` = one worker process, for deployments
that run the workers separately (``ingest.embedded_workers=0`` on the gateways).
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import NoReturn

import httpx
import uvicorn

from gateway.app import create_app
from gateway.observability import configure_logging
from gateway.services import Platform, build_ingest_host, build_platform, embedded_worker_settings
from gateway.settings import PlatformSettings
from ingest.worker import Worker

log = logging.getLogger("datashare.server")


def make_server(settings: PlatformSettings, platform: Platform | None) -> uvicorn.Server:
    """``platform=None``: the app builds the platform on startup and closes it on shutdown."""
    config = uvicorn.Config(
        create_app(settings, platform),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    return uvicorn.Server(config)


def run_server(settings: PlatformSettings) -> None:
    """Serve until SIGINT/SIGTERM, then stop the workers (they hand back unfinished jobs),
    the embedded S3 server and the rest. uvicorn re-raises SIGTERM once it has shut down;
    the handler installed here turns it into ``SystemExit`` so the clean-up still runs."""
    configure_logging(settings.log.level, settings.log.json_format)
    log.info("gateway starting", extra={"url": settings.public_url})
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    platform = build_platform(settings)
    try:
        start_embedded_workers(platform)
        server = make_server(settings, platform)
        freeze_startup_heap()
        server.run()
    finally:
        platform.close()


def freeze_startup_heap() -> int:
    """Take what start-up allocated (modules, the app, the platform) out of the cyclic
    garbage collector's reach; the number of objects frozen. A full collection traversed
    all of them (~250,000) with the GIL held: 100-460 ms per collection measured here,
    a stall of every request in flight. They live as long as the process anyway."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def _exit_on_sigterm(_signum: int, _frame: FrameType | None) -> NoReturn:
    raise SystemExit(0)


def start_embedded_workers(platform: Platform) -> None:
    """Ingest runs in worker processes, not in the gateway: start this platform's share of
    them (``ingest.embedded_workers``; none when they run separately)."""
    platform.ingest.delegate_to_workers()
    count = platform.settings.ingest.embedded_workers
    if count == 0 or platform.workers is not None:
        return
    workers = EmbeddedWorkers(platform, count)
    workers.start()
    platform.workers = workers
    platform.ingest.on_queued(workers.wake)


class EmbeddedWorkers:
    """``datashare worker`` processes owned by a gateway process.

    Each receives the gateway's settings (secrets included) on its stdin, dies with the
    gateway (PDEATHSIG=SIGTERM, so it still hands back its jobs) and is restarted if it
    exits on its own. ``stop`` sends SIGTERM and waits for the grace period.
    """

    def __init__(self, platform: Platform, count: int) -> None:
        self.settings = platform.settings
        self.count = count
        self._document = json.dumps(embedded_worker_settings(platform)).encode()
        self._processes: list[subprocess.Popen[bytes] | None] = [None] * count
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._monitor = threading.Thread(target=self._watch, name="worker-monitor", daemon=True)

    @property
    def pids(self) -> list[int]:
        with self._lock:
            return [p.pid for p in self._processes if p is not None and p.poll() is None]

    def start(self) -> None:
        for slot in range(self.count):
            self._spawn(slot)
        self._monitor.start()

    def _spawn(self, slot: int) -> None:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "worker", "--settings-stdin"],
            stdin=subprocess.PIPE,
            start_new_session=True,  # the terminal's Ctrl-C goes to the gateway, which stops us
            preexec_fn=_die_with(os.getpid()),
        )
        assert process.stdin is not None
        process.stdin.write(self._document)
        process.stdin.close()
        with self._lock:
            self._processes[slot] = process
        log.info("ingest worker process started", extra={"pid": process.pid})

    def _watch(self) -> None:
        """Restart a worker that exited on its own (at most every 5 s per slot)."""
        backoff = [0.0] * self.count
        while not self._stopping.wait(1.0):
            for slot in range(self.count):
                with self._lock:
                    process = self._processes[slot]
                if process is None or process.poll() is None:
                    continue
                if time.monotonic() < backoff[slot]:
                    continue
                log.warning(
                    "ingest worker process %s exited with code %s; restarting it",
                    process.pid,
                    process.returncode,
                    extra={"pid": process.pid, "code": process.returncode},
                )
                backoff[slot] = time.monotonic() + 5.0
                if not self._stopping.is_set():
                    self._spawn(slot)

    def wake(self) -> None:
        """An upload was queued: tell the workers to look now rather than at their next poll."""
        if not hasattr(signal, "SIGUSR1"):
            return
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGUSR1)

    def stop(self) -> None:
        self._stopping.set()
        if self._monitor.is_alive():
            self._monitor.join(timeout=5)
        with self._lock:
            processes = [p for p in self._processes if p is not None]
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.settings.ingest.shutdown_grace_seconds + 15
        for process in processes:
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                log.warning("ingest worker did not stop; killing it", extra={"pid": process.pid})
                process.kill()
                process.wait()


def _die_with(parent: int) -> Callable[[], None]:
    """Linux: SIGTERM the worker when the process that started it dies (even by SIGKILL).

    Also ignore SIGUSR1 until the worker installs its wake-up handler: an upload queued
    while the worker is still importing would otherwise kill it (SIGUSR1's default action
    is to terminate). The worker polls the queue once it is up, so no wake-up is lost."""

    def arm() -> None:
        if sys.platform.startswith("linux"):
            import ctypes

            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.signal(signal.SIGUSR1, ctypes.c_void_p(1))  # SIG_IGN survives exec
            pr_set_pdeathsig = 1
            libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
            if os.getppid() != parent:  # the parent died before the signal was armed
                os.kill(os.getpid(), signal.SIGTERM)

    return arm


def run_worker(settings: PlatformSettings, *, slots: int | None = None) -> None:
    """One worker process: claim and run jobs until SIGTERM/SIGINT."""
    configure_logging(settings.log.level, settings.log.json_format)
    host = build_ingest_host(settings)
    ingest = settings.ingest
    worker = Worker(
        host.ingest,
        slots=slots or ingest.workers,
        poll_seconds=ingest.poll_seconds,
        grace_seconds=ingest.shutdown_grace_seconds,
    )
    try:
        worker.serve_until_signalled()
    finally:
        host.close()


class BackgroundServer:
    """The gateway on a thread plus its worker processes (demo and end-to-end tests):
    ``start()`` waits for /readyz."""

    def __init__(self, settings: PlatformSettings, platform: Platform) -> None:
        self.settings = settings
        self.platform = platform
        self.server = make_server(settings, platform)
        self._thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)

    def start(self, timeout: float = 60.0) -> None:
        start_embedded_workers(self.platform)
        self._thread.start()
        deadline = time.monotonic() + timeout
        url = f"http://{self.settings.host}:{self.settings.port}/readyz"
        while time.monotonic() < deadline:
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if not self._thread.is_alive():
                raise RuntimeError(
                    f"the gateway did not start on {self.settings.host}:{self.settings.port}"
                )
            time.sleep(0.1)
        raise RuntimeError(f"the gateway was not ready within {timeout:.0f} s")

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=15)
