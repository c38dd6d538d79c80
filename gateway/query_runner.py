"""Run governed SQL in resource-limited worker processes and stream Arrow back.

``QueryRunner.run`` hands a ``GovernedQuery`` to a ``python -m gateway.query_worker``
process (SECURITY.md §1.3, §3.12) taken from a pool of warm workers that have
already imported DuckDB and pyarrow, replenished by a background thread. A worker
runs one query at a time; it applies its rlimits and Landlock sandbox with its
first job and runs each query on a new DuckDB connection to a database locked down
to read exactly ``query.allowed_paths`` (kept for later jobs with the same files:
``gateway.query_worker.Databases``; such a job goes to the worker that keeps one),
with its scratch directory cleaned before and after. A worker whose query ended
cleanly (trailer read) goes back to the pool for up to ``max_jobs_per_worker``
queries, so starting a process (~0.5 s of CPU) is not paid per query; any failure,
timeout, truncation or abandoned stream retires it.

The wall-clock deadline covers the whole run, including the time the caller
spends consuming batches: at the deadline the worker gets SIGTERM (it
interrupts DuckDB), then SIGKILL after ``kill_grace_s``; its scratch
directory is deleted either way. Errors are ``QueryTimeout``,
``QueryResourceExceeded`` or ``QueryError``; their messages name the limit and
what to change, never the SQL or data. DuckDB's own message goes to the log.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import logging
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, get_args

import pyarrow as pa
import pyarrow.ipc as ipc

from catalog.duckdb_session import S3ReadCredentials, SandboxLimits
from catalog.errors import InvalidInput, QueryError, QueryResourceExceeded, QueryTimeout
from gateway.query_worker import (
    FRAME,
    MAX_LOCKED_DATABASES,
    Reason,
    WorkerFailure,
    WorkerJob,
    failure,
)
from policies.model import GovernedQuery

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
HEADER_MAX_BYTES = 1 << 20
_REASONS: dict[str, Reason] = {reason: reason for reason in get_args(Reason)}
_ERROR_CLASSES: dict[str, type[QueryError]] = {
    "timeout": QueryTimeout,
    "resource_exceeded": QueryResourceExceeded,
}


@dataclass(frozen=True)
class _Limits:
    timeout_s: float
    memory_mb: int
    threads: int
    max_temp_mb: int
    batch_rows: int
    address_space_mb: int
    kill_grace_s: float


Affinity = tuple[tuple[str, ...], tuple[S3ReadCredentials, ...]]  # a job's files and S3 keys


@dataclass(eq=False)
class _Worker:
    process: subprocess.Popen[bytes]
    scratch: Path
    jobs: int = 0  # queries served so far
    # the files (and S3 credentials) of its last clean jobs: it keeps a database locked
    # for each (``gateway.query_worker.Databases``), so a job for them starts sooner there
    warm: deque[Affinity] = field(default_factory=lambda: deque(maxlen=MAX_LOCKED_DATABASES))

    def stop(self, grace: float) -> None:
        """SIGTERM, SIGKILL after ``grace`` seconds (at once when ``grace`` is 0); reap."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM if grace > 0 else signal.SIGKILL)
            try:
                self.process.wait(timeout=grace if grace > 0 else None)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def close_pipes(self) -> None:
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


def _worker_env(scratch: Path) -> dict[str, str]:
    """No inherited secrets: the worker gets only what it needs to start Python."""
    return {
        "PATH": os.defpath,
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(PROJECT_ROOT),
        "PYTHONSAFEPATH": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "HOME": str(scratch / "home"),
        # glibc reserves 64 MiB of address space per malloc arena (up to 8 per core); under
        # RLIMIT_AS a reused worker would run out of address space, not memory
        "MALLOC_ARENA_MAX": "2",
    }


def _sweep_stale(scratch_root: Path) -> None:
    """Delete scratch dirs left by a gateway process that died (``w-<owner pid>-<token>``)."""
    for entry in scratch_root.glob("w-*-*"):
        owner = entry.name.split("-")[1]
        if not owner.isdigit() or int(owner) == os.getpid():
            continue
        try:
            os.kill(int(owner), 0)
        except ProcessLookupError:
            shutil.rmtree(entry, ignore_errors=True)
        except PermissionError:
            continue  # alive, someone else's


class _WorkerPool:
    """Warm spare processes; each serves one query at a time. Thread-safe."""

    def __init__(self, scratch_root: Path, size: int, max_jobs: int = 1000) -> None:
        self._root = scratch_root
        self._size = size
        self._max_jobs = max_jobs
        self._cond = threading.Condition()
        self._spares: deque[_Worker] = deque()
        self._live: set[_Worker] = set()
        self._closed = False
        self._refill = threading.Thread(target=self._refill_loop, name="query-pool", daemon=True)
        if size > 0:
            self._refill.start()

    def spawn(self) -> _Worker:
        scratch = self._root / f"w-{os.getpid()}-{secrets.token_hex(6)}"
        scratch.mkdir(mode=0o700, parents=True)
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway.query_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=scratch,
            env=_worker_env(scratch),
            start_new_session=True,
        )
        worker = _Worker(process, scratch)
        with self._cond:
            closed = self._closed
            if not closed:
                self._live.add(worker)
        if closed:
            self._discard(worker)
            raise QueryError("the query runner is shut down", reason="closed")
        return worker

    def take(self, affinity: Affinity | None = None) -> _Worker:
        """A spare that keeps a database for ``affinity`` when there is one, else the spare
        that waited longest (it has prepared its next database), else a new process."""
        with self._cond:
            if self._closed:
                raise QueryError("the query runner is shut down", reason="closed")
            spares = self._spares
            worker = next((w for w in reversed(spares) if affinity in w.warm), None)
            if worker is not None:
                spares.remove(worker)
            elif spares:
                worker = spares.popleft()
            self._cond.notify_all()
        if worker is not None and worker.process.poll() is None:
            return worker
        if worker is not None:
            self.retire(worker)
        return self.spawn()

    def give_back(self, worker: _Worker, affinity: Affinity | None = None) -> None:
        """A worker that finished a query cleanly serves again (up to ``max_jobs``)."""
        worker.jobs += 1
        if affinity is not None:
            with contextlib.suppress(ValueError):
                worker.warm.remove(affinity)
            worker.warm.append(affinity)
        with self._cond:
            keep = (
                not self._closed
                and worker.jobs < self._max_jobs
                and worker.process.poll() is None
                and worker in self._live
            )
            if keep:
                # least recently used first: a worker prepares its next database after a
                # query, so the one that waited longest is the one ready at once
                self._spares.append(worker)
                self._cond.notify_all()
        if not keep:
            self.retire(worker)

    def retire(self, worker: _Worker) -> None:
        """Kill ``worker`` if it still runs, reap it and delete its scratch directory."""
        self._discard(worker)
        with self._cond:
            self._live.discard(worker)

    @staticmethod
    def _discard(worker: _Worker) -> None:
        worker.stop(0)
        worker.close_pipes()
        shutil.rmtree(worker.scratch, ignore_errors=True)

    def _refill_loop(self) -> None:
        while True:
            with self._cond:
                while not self._closed and len(self._spares) >= self._size:
                    self._cond.wait()
                if self._closed:
                    return
            try:
                worker = self.spawn()
            except QueryError:
                return
            except OSError:
                log.exception("could not start a spare query worker; retrying in 1 s")
                with self._cond:
                    self._cond.wait(1.0)
                continue
            with self._cond:
                self._spares.append(worker)

    def live_pids(self) -> list[int]:
        with self._cond:
            return [worker.process.pid for worker in self._live]

    def spare_count(self) -> int:
        with self._cond:
            return len(self._spares)

    def busy_pids(self) -> list[int]:
        with self._cond:
            idle = {id(worker) for worker in self._spares}
            return [w.process.pid for w in self._live if id(w) not in idle]

    def close(self) -> None:
        with self._cond:
            self._closed = True
            workers = list(self._live)
            self._live.clear()
            self._spares.clear()
            self._cond.notify_all()
        for worker in workers:
            self._discard(worker)
        if self._refill.is_alive() and self._refill is not threading.current_thread():
            self._refill.join(timeout=5)


_KEY_LITERAL = re.compile(r"UNHEX\('([0-9A-Fa-f]{16,})'\)", re.IGNORECASE)


def redact_keys(text: str, sql: str) -> str:
    """``text`` without the HMAC key material of ``sql`` (DuckDB errors echo the SQL)."""
    for key in set(_KEY_LITERAL.findall(sql)):
        text = text.replace(key, "<mask key redacted>")
    return text


def _error(failed: WorkerFailure, job: WorkerJob) -> QueryError:
    """The exception for ``failed``; DuckDB's raw text goes to the server log only, without
    mask keys; the caller gets the client-safe message."""
    detail = redact_keys(failed.detail, job.sql) if failed.detail else "-"
    log.warning("query %s failed (%s/%s): %s", job.job_id, failed.code, failed.reason, detail)
    cls = _ERROR_CLASSES.get(failed.code, QueryError)
    return cls(failed.message, job_id=job.job_id, reason=failed.reason)


def _failure_from(doc: dict[str, Any], job: WorkerJob) -> WorkerFailure:
    """Rebuild the worker's failure from its JSON; unknown shapes count as a crash."""
    reason = _REASONS.get(str(doc.get("reason")), "crash")
    rebuilt = failure(reason, job)
    message = doc.get("message")
    if reason == "crash" or not isinstance(message, str) or not message:
        message = rebuilt.message
    return WorkerFailure(rebuilt.code, reason, message, str(doc.get("detail", "")))


def _affinity(paths: Sequence[str], s3: Sequence[S3ReadCredentials]) -> Affinity:
    return tuple(paths), tuple(s3)


class _Deadline:
    __slots__ = ("at", "callback", "cancelled")

    def __init__(self, at: float, callback: Callable[[], None]) -> None:
        self.at, self.callback, self.cancelled = at, callback, False

    def __lt__(self, other: _Deadline) -> bool:
        return self.at < other.at

    def cancel(self) -> None:
        self.cancelled = True  # dropped when it comes due; no thread to wake


class _Deadlines:
    """One daemon thread watches every query's deadline (a ``threading.Timer`` per query
    started a thread, and cancelling it woke that thread); a deadline that comes due runs
    its callback in a thread of its own."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[_Deadline] = []
        self._thread: threading.Thread | None = None

    def after(self, seconds: float, callback: Callable[[], None]) -> _Deadline:
        deadline = _Deadline(time.monotonic() + seconds, callback)
        with self._cond:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="query-deadlines")
                self._thread.daemon = True
                self._thread.start()
            heapq.heappush(self._heap, deadline)
            if self._heap[0] is deadline:  # earlier than what the thread sleeps for
                self._cond.notify()
        return deadline

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._heap and self._heap[0].cancelled:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                wait = self._heap[0].at - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                due = heapq.heappop(self._heap)
            # the callback may wait out a kill grace period: never hold up the next deadline
            threading.Thread(target=due.callback, name="query-deadline", daemon=True).start()


_DEADLINES = _Deadlines()


class _WorkerGone(Exception):
    """The worker died before it accepted the job (a spare that crashed while idle)."""


class QueryStream:
    """Results of one query, read from its worker one piece at a time, never collected.

    With ``output="batches"``: ``.schema``, then iterate ``RecordBatch``es. With a
    format the worker renders (``json``, ``ndjson``, ``csv``, ``arrow``): iterate
    ``chunks()``, the client's bytes as the worker wrote them (a JSON result without
    its tail). Use as a context manager (or call ``close()``). ``rows`` counts the rows
    delivered so far; ``truncated`` and ``rows`` are final once iteration has finished:
    more than ``max_rows`` rows existed, only ``max_rows`` were delivered.
    """

    def __init__(
        self,
        worker: _Worker,
        job: WorkerJob,
        pool: _WorkerPool,
        grace: float,
        release: Callable[[], None] = lambda: None,
    ) -> None:
        self._release = release
        self._callbacks: list[Callable[[], None]] = []
        self._close_lock = threading.Lock()
        self.rows = 0
        self.truncated = False
        self.job_id = job.job_id
        self._worker, self._job, self._pool, self._grace = worker, job, pool, grace
        self._expired = threading.Event()
        self._deadline: _Deadline | None = None
        self._closed = False
        self._complete = False
        self._reader: ipc.RecordBatchStreamReader | None = None
        # milliseconds: "worker" from sending the job to its header, and the worker's own
        # "setup" and "execute" within it (``Server-Timing`` of the query response)
        self.timings: dict[str, float] = {}

    @property
    def schema(self) -> pa.Schema:
        assert self._reader is not None, "QueryStream used before it was started"
        return self._reader.schema

    def start(self, while_starting: list[Callable[[], None]] | None = None) -> None:
        """Send the job, run (and remove) ``while_starting``'s callables while the worker
        works, wait for the header (raises the query's error) and open the stream."""
        self._deadline = _DEADLINES.after(self._job.timeout_s, self._expire)
        sent = time.perf_counter()
        process = self._worker.process
        assert process.stdin is not None and process.stdout is not None
        try:
            process.stdin.write(self._job.to_json())
            process.stdin.flush()
        except (BrokenPipeError, ConnectionResetError, ValueError) as exc:
            raise _WorkerGone from exc
        while while_starting:
            while_starting.pop()()
        header = self._read_line()
        if header.get("reason") == "respawn":  # a reused worker's sandbox does not fit
            raise _WorkerGone
        if not header.get("ok"):
            raise _error(_failure_from(header, self._job), self._job)
        self.timings = {"worker": (time.perf_counter() - sent) * 1000}
        reported = header.get("ms")
        if isinstance(reported, dict):
            self.timings.update(
                (name, float(value))
                for name, value in reported.items()
                if name in ("setup", "execute") and isinstance(value, int | float)
            )
        if self._job.output != "batches":
            return
        try:
            self._reader = ipc.open_stream(process.stdout)
        except (pa.ArrowException, OSError) as exc:
            raise self._died() from exc

    def _read_line(self) -> dict[str, Any]:
        stdout = self._worker.process.stdout
        assert stdout is not None
        try:
            line = stdout.readline(HEADER_MAX_BYTES)
            doc = json.loads(line) if line.endswith(b"\n") else None
        except (OSError, ValueError):
            doc = None
        if not isinstance(doc, dict):
            raise self._died()
        return doc

    def _died(self) -> QueryError:
        """The worker's output ended early: our deadline, the OOM killer, RLIMIT_CPU, a crash."""
        if self._expired.is_set():
            return _error(failure("timeout", self._job), self._job)
        try:
            code = self._worker.process.wait(timeout=self._grace)
        except subprocess.TimeoutExpired:
            self._worker.stop(0)
            code = self._worker.process.returncode
        signals: dict[int, Reason] = {-signal.SIGKILL: "memory", -signal.SIGXCPU: "cpu"}
        reason = signals.get(code, "crash")
        return _error(failure(reason, self._job, f"worker exit status {code}"), self._job)

    def _check_deadline(self) -> None:
        """Past the deadline nothing more is delivered, not even what the pipe still holds."""
        if self._expired.is_set():
            raise _error(failure("timeout", self._job), self._job)

    def _expire(self) -> None:
        self._expired.set()
        self._worker.stop(self._grace)

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        return self._batches()

    def _batches(self) -> Iterator[pa.RecordBatch]:
        try:
            for batch in self._read_batches():
                self._check_deadline()
                cap = self._job.max_rows
                if cap > 0 and self.rows + batch.num_rows > cap:
                    self.truncated = True
                    batch = batch.slice(0, cap - self.rows)
                if batch.num_rows:
                    self.rows += batch.num_rows
                    yield batch
                if self.truncated:
                    return
            if self._closed:
                return
            trailer = self._read_line()
            if not trailer.get("ok"):
                raise _error(_failure_from(trailer, self._job), self._job)
            self._complete = True
        finally:
            self.close()

    def _read_batches(self) -> Iterator[pa.RecordBatch]:
        assert self._reader is not None, "QueryStream used before it was started"
        while True:
            try:
                yield self._reader.read_next_batch()
            except StopIteration:
                return
            except (pa.ArrowException, OSError) as exc:
                if self._closed:  # closed by another thread (client gone): not a failure
                    return
                raise self._died() from exc

    def chunks(self) -> Iterator[bytes]:
        """The rendered result's bytes, frame by frame, unchanged (no decoding here)."""
        assert self._job.output != "batches", "chunks() needs a rendered output"
        try:
            while (frame := self._read_frame()) is not None:
                self._check_deadline()
                payload, rows = frame
                self.rows += rows
                if payload:
                    yield payload
            if self._closed:
                return
            trailer = self._read_line()
            if not trailer.get("ok"):
                raise _error(_failure_from(trailer, self._job), self._job)
            self.rows = int(trailer.get("rows", self.rows))
            self.truncated = bool(trailer.get("truncated", False))
            self._complete = True
        finally:
            self.close()

    def _read_frame(self) -> tuple[bytes, int] | None:
        """The next frame's payload and rows; None after the last frame or once closed."""
        stdout = self._worker.process.stdout
        assert stdout is not None
        try:
            head = stdout.read(FRAME.size)
            if len(head) == FRAME.size:
                size, rows = FRAME.unpack(head)
                if size == 0 and rows == 0:
                    return None
                payload = stdout.read(size) if size else b""
                if len(payload) == size:
                    return payload, rows
        except (OSError, ValueError) as exc:
            if self._closed:  # closed by another thread (client gone): not a failure
                return None
            raise self._died() from exc
        if self._closed:
            return None
        raise self._died()

    def on_close(self, callback: Callable[[], None]) -> None:
        """Also run ``callback`` (once) when the stream closes; at once if already closed."""
        with self._close_lock:
            if not self._closed:
                self._callbacks.append(callback)
                return
        callback()

    def close(self) -> None:
        """Stop the worker (if still running), reap it and delete its scratch directory.

        Safe from any thread, also while another thread is reading batches (that read then
        ends with the worker's EOF); only the first call does anything."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        self._release()
        for callback in self._callbacks:
            callback()
        if self._deadline is not None:
            self._deadline.cancel()
        if self._complete:  # trailer read: the worker waits for its next job
            self._pool.give_back(self._worker, _affinity(self._job.allowed_paths, self._job.s3))
        else:
            self._pool.retire(self._worker)

    def __enter__(self) -> QueryStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _check_limits(
    timeout: float, memory: int, threads: int, temp: int, batch: int, pool: int
) -> None:
    checks = {
        "timeout_seconds": timeout > 0,
        "memory_mb": memory >= 64,
        "threads": threads >= 1,
        "max_temp_mb": temp >= 0,
        "batch_rows": batch >= 1,
        "pool_size": pool >= 0,
    }
    for name, ok in checks.items():
        if not ok:
            raise InvalidInput(f"query runner setting {name} is out of range", field=name)


class QueryRunner:
    """Executes governed queries in sandboxed worker processes; safe to share between threads.

    ``pool_size`` warm spares wait on stdin; each serves one query at a time.
    ``close()`` (also run at interpreter exit) kills spares and running workers.
    """

    def __init__(
        self,
        *,
        scratch_root: Path,
        timeout_seconds: float = 30.0,
        memory_mb: int = 1024,
        threads: int = 2,
        max_temp_mb: int = 2048,
        batch_rows: int = 8192,
        pool_size: int = 2,
        address_space_mb: int | None = None,
        kill_grace_s: float = 1.0,
        max_concurrent: int = 4,
        queue_seconds: float = 10.0,
        max_jobs_per_worker: int = 1000,
    ) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self._max_concurrent, self._queue_seconds = max_concurrent, queue_seconds
        _check_limits(timeout_seconds, memory_mb, threads, max_temp_mb, batch_rows, pool_size)
        scratch_root.mkdir(mode=0o700, parents=True, exist_ok=True)
        _sweep_stale(scratch_root)
        self._limits = _Limits(
            timeout_s=timeout_seconds,
            memory_mb=memory_mb,
            threads=threads,
            max_temp_mb=max_temp_mb,
            batch_rows=batch_rows,
            address_space_mb=address_space_mb or 2 * memory_mb + 1024,
            kill_grace_s=kill_grace_s,
        )
        self._pool = _WorkerPool(scratch_root, pool_size, max_jobs=max_jobs_per_worker)
        self._finalizer = weakref.finalize(self, self._pool.close)

    def _job(
        self,
        worker: _Worker,
        query: GovernedQuery,
        s3: Sequence[S3ReadCredentials],
        output: str = "batches",
    ) -> WorkerJob:
        limits = self._limits
        return WorkerJob(
            job_id=secrets.token_hex(8),
            sql=query.sql,
            allowed_paths=query.allowed_paths,
            s3=tuple(s3),
            limits=SandboxLimits(
                threads=limits.threads,
                memory_limit_mb=limits.memory_mb,
                max_temp_mb=limits.max_temp_mb,
                temp_dir=worker.scratch / "spill",
            ),
            scratch_dir=worker.scratch,
            batch_rows=limits.batch_rows,
            max_rows=max(query.max_rows, 0),
            timeout_s=limits.timeout_s,
            address_space_mb=limits.address_space_mb,
            output=output,
        )

    def run(
        self,
        query: GovernedQuery,
        s3: Sequence[S3ReadCredentials] = (),
        output: str = "batches",
        while_starting: Callable[[], None] | None = None,
    ) -> QueryStream:
        """Start ``query``; returns its stream once DuckDB has started producing results.

        ``output``: ``"batches"`` (Arrow record batches, decoded here) or a format the
        worker renders and this process forwards unchanged (``gateway.result_formats.
        RENDERED_IN_WORKER``; the row cap is then applied by the worker).

        ``while_starting`` runs at most once in the calling thread, after a worker accepted
        the job and before its first result is read, so the two overlap (the audit append
        of ``POST /v1/query``). If it raises, the query is stopped and its error propagates;
        if the query cannot start, it does not run.

        Errors found before that (parse, binder, permission, statement type,
        memory in a sort or aggregate, timeout) are raised here; one that
        happens while batches stream is raised by iteration.
        """
        if not self._slots.acquire(timeout=self._queue_seconds):
            raise QueryResourceExceeded(
                f"the gateway is already running {self._max_concurrent} queries; retry in a few "
                "seconds",
                reason="concurrency",
            )
        try:
            return self._start(query, s3, output, [while_starting] if while_starting else [])
        except BaseException:
            self._slots.release()
            raise

    def _start(
        self,
        query: GovernedQuery,
        s3: Sequence[S3ReadCredentials],
        output: str,
        while_starting: list[Callable[[], None]],
    ) -> QueryStream:
        job: WorkerJob | None = None
        affinity = _affinity(query.allowed_paths, s3)
        for attempt in range(2):  # a second try when an idle worker had died or cannot serve
            worker = self._pool.take(affinity) if attempt == 0 else self._pool.spawn()
            job = self._job(worker, query, s3, output)
            stream = QueryStream(worker, job, self._pool, self._limits.kill_grace_s)
            try:
                stream.start(while_starting)
            except _WorkerGone:
                stream.close()
                continue
            except BaseException:
                stream.close()
                raise
            stream._release = self._slots.release  # held until the stream closes
            return stream
        assert job is not None
        raise _error(failure("crash", job, "worker died before accepting the job"), job)

    def worker_pids(self) -> list[int]:
        """Process ids of every worker this runner has not yet reaped (spares included)."""
        return self._pool.live_pids()

    def spare_count(self) -> int:
        return self._pool.spare_count()

    def busy_pids(self) -> list[int]:
        """Process ids of workers running a query now (not idle in the pool)."""
        return self._pool.busy_pids()

    def close(self) -> None:
        self._finalizer()

    def __enter__(self) -> QueryRunner:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
