"""The ingest worker: claims queued jobs from the catalog and runs N of them at a time.

Several workers, in one process or on several machines, share one catalog: a claim
is one conditional ``UPDATE`` (``JobStore.claim``), so each job runs once. A worker

- polls for claimable jobs every ``poll_seconds`` (one indexed query) and wakes up at
  once when told a job was queued (``wake``: in-process by the ingest service, across
  processes by the gateway sending SIGUSR1 to its embedded workers);
- renews the leases of the jobs it runs (a heartbeat at a third of the lease); a job
  whose lease was taken over is stopped before it commits;
- on ``stop`` (SIGTERM) claims nothing more, lets running jobs finish for
  ``grace_seconds``, then releases the rest to the queue for another worker.

The waiting is done on a socket pair rather than a ``threading.Event`` so that a signal
handler can wake the loop without taking a lock.
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import logging
import os
import select
import signal
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ingest.run import IngestService

log = logging.getLogger(__name__)
_instances = itertools.count(1)


def worker_name() -> str:
    """``host:pid`` of this process, with ``#n`` for a second worker in the same process."""
    number = next(_instances)
    base = f"{socket.gethostname()}:{os.getpid()}"
    return base if number == 1 else f"{base}#{number}"


class _Wakeup:
    """A wake-up flag that a signal handler may set: a byte on a non-blocking socket pair."""

    def __init__(self) -> None:
        self._read, self._write = socket.socketpair()
        self._read.setblocking(False)
        self._write.setblocking(False)

    def set(self) -> None:
        # a full buffer means a wake-up is already pending; a closed one, that we stopped
        with contextlib.suppress(OSError):
            self._write.send(b"\0")

    def wait(self, timeout: float) -> None:
        select.select([self._read], [], [], max(timeout, 0.0))
        with contextlib.suppress(OSError):  # BlockingIOError: drained
            while self._read.recv(4096):
                pass

    def close(self) -> None:
        self._read.close()
        self._write.close()


class Worker:
    def __init__(
        self,
        service: IngestService,
        *,
        slots: int,
        poll_seconds: float,
        grace_seconds: float,
        name: str | None = None,
    ) -> None:
        self.service = service
        self.jobs = service.jobs
        self.slots = slots
        self.poll_seconds = poll_seconds
        self.grace_seconds = grace_seconds
        self.name = name or worker_name()
        self._executor = ThreadPoolExecutor(slots, thread_name_prefix="ingest")
        self._running: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._wakeup = _Wakeup()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()

    # control -----------------------------------------------------------------------
    def wake(self) -> None:
        """Look for jobs now instead of at the next poll (safe from a signal handler)."""
        self._wakeup.set()

    def request_stop(self) -> None:
        """Claim nothing more; running jobs get ``grace_seconds`` (safe from a signal handler)."""
        self._stopping = True
        self._wakeup.set()

    def start(self) -> None:
        """Run the loop on a background thread (in-process workers: tests, single process)."""
        self._thread = threading.Thread(target=self.run_forever, name="ingest-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout if timeout is not None else self.grace_seconds + 60)
        else:
            self._stopped.wait(timeout if timeout is not None else self.grace_seconds + 60)

    def serve_until_signalled(self) -> None:
        """Run on the main thread until SIGTERM/SIGINT; SIGUSR1 wakes the loop."""

        def stop(_signum: int, _frame: FrameType | None) -> None:
            self.request_stop()

        def wake(_signum: int, _frame: FrameType | None) -> None:
            self.wake()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        if hasattr(signal, "SIGUSR1"):
            signal.signal(signal.SIGUSR1, wake)
        self.run_forever()

    @property
    def running(self) -> list[str]:
        with self._lock:
            return list(self._running)

    # the loop ------------------------------------------------------------------------
    def run_forever(self) -> None:
        # Great Expectations takes seconds to import: load it before the first job, on the
        # side, so that a SIGTERM during start-up is not held up by it
        threading.Thread(
            target=importlib.import_module, args=("ingest.pipeline",), daemon=True
        ).start()
        heartbeat = threading.Thread(target=self._heartbeat, name="ingest-lease", daemon=True)
        heartbeat.start()
        log.info("ingest worker started", extra={"worker": self.name, "slots": self.slots})
        last_sweep = 0.0
        try:
            while not self._stopping:
                if time.monotonic() - last_sweep > self.jobs.lease.total_seconds() / 2:
                    last_sweep = time.monotonic()
                    self._guarded(self.jobs.exhaust_stale)
                self._guarded(self._claim_free_slots)
                self._wakeup.wait(self.poll_seconds)
        finally:
            self._drain()
            self._stopped.set()
            heartbeat.join(timeout=5)
            self._wakeup.close()
            log.info("ingest worker stopped", extra={"worker": self.name})

    def _claim_free_slots(self) -> None:
        while not self._stopping and len(self.running) < self.slots:
            job_id = self.jobs.claim_next(worker=self.name)
            if job_id is None:
                return
            cancel = threading.Event()
            with self._lock:
                self._running[job_id] = cancel
            log.info("ingest job claimed", extra={"job": job_id, "worker": self.name})
            self._executor.submit(self._run, job_id, cancel)

    def _run(self, job_id: str, cancel: threading.Event) -> None:
        try:
            self.service.run(job_id, worker=self.name, cancel=cancel)
        except Exception:  # run() records every failure on the job; this is a last resort
            log.exception("ingest job runner failed", extra={"job": job_id})
        finally:
            with self._lock:
                self._running.pop(job_id, None)
            self._wakeup.set()  # a slot is free

    def _heartbeat(self) -> None:
        interval = max(self.jobs.lease.total_seconds() / 3, 0.2)
        while not self._stopped.wait(interval):
            with self._lock:
                running = dict(self._running)
            if not running:
                continue
            try:
                held = self.jobs.renew(running, worker=self.name)
            except Exception:
                log.warning("could not renew ingest leases", exc_info=True)
                continue
            for job_id in set(running) - held:
                log.warning("lost the lease on a job; stopping it", extra={"job": job_id})
                running[job_id].set()

    def _drain(self) -> None:
        """Let running jobs finish for ``grace_seconds``; then release the rest."""
        deadline = time.monotonic() + self.grace_seconds
        while self.running and time.monotonic() < deadline:
            time.sleep(0.1)
        with self._lock:
            leftover = dict(self._running)
        for job_id, cancel in leftover.items():
            log.info("releasing an ingest job to the queue", extra={"job": job_id})
            cancel.set()
        self._executor.shutdown(wait=True)

    def _guarded(self, step: Callable[[], object]) -> None:
        try:
            step()
        except Exception:
            log.warning("ingest worker step failed; will try again", exc_info=True)
            time.sleep(min(self.poll_seconds * 4, 5.0))
