"""Query worker: runs governed queries, one at a time, in a sandboxed DuckDB, in its own process.

Started by ``gateway.query_runner`` as ``python -m gateway.query_worker``. The
worker imports DuckDB and pyarrow first, then blocks on stdin, so a warm spare
pays the import cost before a query arrives. Protocol:

* stdin: one line of JSON, a ``WorkerJob`` (SQL, allowed paths, read-only S3
  credentials, limits). EOF without a job means "retire": exit 0.
* stdout: a one-line JSON header, ``{"ok": true, ...}`` or
  ``{"ok": false, "code", "reason", "message", "detail"}``; after a good
  header the result, then a one-line JSON trailer with the same shape as the
  header (an error can happen mid-stream). The result depends on the job's
  ``output``:

  - ``"batches"``: an Arrow IPC stream (schema + batches of at most
    ``batch_rows``, at most ``max_rows + 1`` rows in total) that the gateway
    decodes (Parquet, exports).
  - ``"json"``, ``"ndjson"``, ``"csv"``, ``"arrow"``: the client's bytes, rendered
    here by ``gateway.result_formats`` (a JSON result without its tail), in
    frames of ``FRAME`` (payload length, rows completed in the payload) ending
    with an empty frame; the gateway forwards the payloads unchanged. The row cap
    is applied here: at most ``max_rows`` rows are rendered and the trailer says
    ``{"ok": true, "rows": n, "truncated": bool}``.

``message`` is safe for clients: it never contains the SQL or data values
(SECURITY.md finding 8). ``detail`` is DuckDB's raw message, for server logs only.

The worker runs only a single ``SELECT`` statement (checked with DuckDB's own
parser), whatever the policy rewrite produced. Before connecting, it lowers
its own rlimits (address space, CPU time, file size, no core dumps) and, where
the kernel has Landlock, forbids every filesystem write outside its scratch
directory and every TCP connection except to the S3 endpoints' ports.
DuckDB's ``allowed_paths`` alone does not prevent writes (see ``catalog.duckdb_session``).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import importlib.abc
import json
import math
import os
import queue
import resource
import shutil
import signal
import struct
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any, Literal

import pyarrow as pa
import pyarrow.ipc as ipc

from catalog.duckdb_session import (
    DuckDBConnection,
    PreparedConnection,
    S3ReadCredentials,
    SandboxLimits,
    error_kind,
    lock_down,
    prepare_connection,
    statement_types,
    warm_up,
)
from gateway.result_formats import RENDERED_IN_WORKER, encode_body, warm_renderers

ErrorCode = Literal["timeout", "resource_exceeded", "refused", "failed"]
Reason = Literal[
    "timeout",
    "memory",
    "temp",
    "cpu",
    "permission",
    "statement",
    "engine",
    "crash",
    "setup",
    "respawn",
]

MAX_JOB_BYTES = 16 * 1024 * 1024
FRAME = struct.Struct(">QQ")  # payload bytes, rows whose rendering the payload completes
FRAME_MIN_BYTES = 256 * 1024  # smaller rendered pieces are sent together
RENDER_ROWS, RENDER_BYTES = 262_144, 16 << 20  # JSON/NDJSON: rows or bytes rendered at once
PIPE_BYTES = 1 << 20  # F_SETPIPE_SZ for stdout: fewer, larger reads in the gateway
TERMINATING = threading.Event()  # SIGTERM arrived during a job: exit after it
INTERRUPT_EVERY_S = 0.05
INTERRUPT_GRACE_S = 1.5  # then give up on DuckDB and exit (the parent SIGKILLs anyway)

_CODES: dict[Reason, ErrorCode] = {
    "timeout": "timeout",
    "memory": "resource_exceeded",
    "temp": "resource_exceeded",
    "cpu": "resource_exceeded",
    "permission": "refused",
    "statement": "refused",
    "engine": "failed",
    "crash": "failed",
    "setup": "failed",
    "respawn": "failed",
}
_KIND_REASONS: dict[str, Reason] = {
    "interrupted": "timeout",
    "out_of_memory": "memory",
    "temp_limit": "temp",
    "permission": "permission",
    "engine": "engine",
}


@dataclass(frozen=True)
class WorkerJob:
    job_id: str
    sql: str
    allowed_paths: tuple[str, ...]
    s3: tuple[S3ReadCredentials, ...]
    limits: SandboxLimits  # temp_dir lies inside scratch_dir
    scratch_dir: Path  # the only place the worker may write
    batch_rows: int
    max_rows: int  # 0: no cap; otherwise send at most max_rows + 1 rows
    timeout_s: float
    address_space_mb: int  # RLIMIT_AS on top of what the interpreter already maps
    output: str = "batches"  # "batches" (Arrow IPC to decode) or a RENDERED_IN_WORKER format

    def to_json(self) -> bytes:
        doc = asdict(self)
        doc["limits"]["temp_dir"] = str(self.limits.temp_dir)
        doc["scratch_dir"] = str(self.scratch_dir)
        return json.dumps(doc).encode() + b"\n"

    @classmethod
    def from_json(cls, raw: bytes) -> WorkerJob:
        doc: dict[str, Any] = json.loads(raw)
        limits = doc.pop("limits")
        limits["temp_dir"] = Path(limits["temp_dir"])
        return cls(
            **{k: v for k, v in doc.items() if k not in ("s3", "allowed_paths", "scratch_dir")},
            allowed_paths=tuple(doc["allowed_paths"]),
            s3=tuple(S3ReadCredentials(**creds) for creds in doc["s3"]),
            limits=SandboxLimits(**limits),
            scratch_dir=Path(doc["scratch_dir"]),
        )

    def cpu_seconds(self) -> int:
        """CPU-time budget: every DuckDB thread busy for the whole wall-clock limit, plus slack."""
        return math.ceil(self.timeout_s * (self.limits.threads + 1)) + 5


@dataclass(frozen=True)
class WorkerFailure:
    code: ErrorCode
    reason: Reason
    message: str  # client-facing: names the limit and what to change, never SQL or data
    detail: str = ""  # raw engine text: server logs only

    def header(self) -> dict[str, Any]:
        return {"ok": False, **asdict(self)}


def failure(
    reason: Reason, job: WorkerJob, detail: str = "", error_type: str = ""
) -> WorkerFailure:
    """The client-safe failure for ``reason``; shared by the worker and the runner."""
    limits, ref = job.limits, job.job_id
    messages: dict[Reason, str] = {
        "timeout": f"query exceeded the {job.timeout_s:g} s time limit; add a WHERE clause, "
        "aggregate, or use LIMIT to return fewer rows",
        "memory": f"query exceeded the {limits.memory_limit_mb} MiB memory limit; select fewer "
        "columns, filter rows earlier, or aggregate before sorting or joining",
        "temp": f"query exceeded the {limits.max_temp_mb} MiB temporary-storage limit; filter "
        "rows earlier or aggregate before sorting or joining",
        "cpu": f"query exceeded its {job.cpu_seconds()} s CPU-time budget; add a WHERE clause "
        "or aggregate",
        "permission": "query tried to read data outside its grants and was refused "
        f"(reference {ref})",
        "statement": "only a single SELECT statement can run; the query was refused "
        f"(reference {ref})",
        "engine": f"query failed in the engine ({error_type or 'error'}); the details are in "
        f"the server log under reference {ref}",
        "crash": f"the query worker stopped unexpectedly (reference {ref}); a smaller query "
        "may succeed",
        "setup": f"the query engine could not be prepared (reference {ref}); try again later",
        "respawn": f"the query worker cannot serve this query (reference {ref}); try again",
    }
    return WorkerFailure(_CODES[reason], reason, messages[reason], _redact(detail, job))


def _redact(text: str, job: WorkerJob) -> str:
    for creds in job.s3:
        if creds.secret_key:
            text = text.replace(creds.secret_key, "***")
    return text[:4000]


def classify(exc: BaseException, job: WorkerJob) -> WorkerFailure:
    reason = _KIND_REASONS[error_kind(exc)]
    return failure(reason, job, f"{type(exc).__name__}: {exc}", type(exc).__name__)


# --- OS-level limits ---------------------------------------------------------------------


def _mapped_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def apply_rlimits(job: WorkerJob, *, first: bool = True) -> None:
    """Address space, file size and core dumps once per process (lowered hard limits stay
    lowered); the CPU-time budget for each job (soft limit: SIGXCPU ends the process)."""
    mib = 1024 * 1024
    if first:
        address_space = _mapped_bytes() + job.address_space_mb * mib
        file_size = (job.limits.max_temp_mb + 64) * mib
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))
    cpu_used = math.ceil(sum(resource.getrusage(resource.RUSAGE_SELF)[:2]))
    cpu = cpu_used + job.cpu_seconds()
    _soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if hard != resource.RLIM_INFINITY:
        cpu = min(cpu, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, hard))


@dataclass
class Sandbox:
    """What a worker process applied with its first job; later jobs must fit in it."""

    landlock: int = -1  # -1: not applied yet
    ports: frozenset[int] = frozenset()
    address_space_mb: int = 0
    max_temp_mb: int = 0

    def admits(self, job: WorkerJob) -> bool:
        return (
            set(endpoint_ports(job.s3)) <= self.ports
            and job.address_space_mb == self.address_space_mb
            and job.limits.max_temp_mb == self.max_temp_mb
        )

    def apply(self, job: WorkerJob) -> None:
        first = self.landlock < 0
        apply_rlimits(job, first=first)
        if first:
            self.ports = frozenset(endpoint_ports(job.s3))
            self.address_space_mb, self.max_temp_mb = job.address_space_mb, job.limits.max_temp_mb
            self.landlock = restrict_writes(job.scratch_dir, sorted(self.ports))


class _RulesetAttr(ctypes.Structure):
    _fields_ = (("fs", ctypes.c_uint64), ("net", ctypes.c_uint64))


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = (("allowed", ctypes.c_uint64), ("parent_fd", ctypes.c_int32))


class _NetPortAttr(ctypes.Structure):
    _fields_ = (("allowed", ctypes.c_uint64), ("port", ctypes.c_uint64))


_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446  # x86-64 and arm64
_FS_WRITES = (1 << 1) | sum(1 << bit for bit in range(4, 13))  # write, remove, make*
_FS_REFER, _FS_TRUNCATE = 1 << 13, 1 << 14
_NET_BIND, _NET_CONNECT = 1 << 0, 1 << 1


def _write_rights(abi: int) -> int:
    return _FS_WRITES | (_FS_REFER if abi >= 2 else 0) | (_FS_TRUNCATE if abi >= 3 else 0)


def landlock_abi() -> int:
    """The kernel's Landlock ABI version; 0 when Landlock is unavailable."""
    libc = ctypes.CDLL(None, use_errno=True)
    abi = int(libc.syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(1)))
    return max(abi, 0)


def restrict_writes(scratch: Path, tcp_ports: Sequence[int]) -> int:
    """Landlock: writes only below ``scratch``; TCP connect only to ``tcp_ports`` (ABI >= 4).

    Returns the Landlock ABI applied, 0 when the kernel has no Landlock.
    """
    abi = landlock_abi()
    if abi <= 0:
        return 0
    libc = ctypes.CDLL(None, use_errno=True)
    fs = _write_rights(abi)
    net = (_NET_BIND | _NET_CONNECT) if abi >= 4 else 0
    attr = _RulesetAttr(fs, net)
    size = ctypes.sizeof(attr) if net else ctypes.sizeof(ctypes.c_uint64)
    ruleset = int(libc.syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), 0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    try:
        _add_rules(libc, ruleset, scratch, fs, tcp_ports if net else ())
        if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS, required by restrict_self
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        if libc.syscall(_SYS_RESTRICT_SELF, ruleset, 0) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(ruleset)
    return abi


def _add_rules(
    libc: ctypes.CDLL, ruleset: int, scratch: Path, fs: int, ports: Sequence[int]
) -> None:
    directory = os.open(scratch, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        rule = _PathBeneathAttr(fs, directory)
        if libc.syscall(_SYS_ADD_RULE, ruleset, 1, ctypes.byref(rule), 0) != 0:
            raise OSError(ctypes.get_errno(), f"landlock rule for {scratch} failed")
    finally:
        os.close(directory)
    for port in sorted(set(ports)):
        net_rule = _NetPortAttr(_NET_CONNECT, port)
        if libc.syscall(_SYS_ADD_RULE, ruleset, 2, ctypes.byref(net_rule), 0) != 0:
            raise OSError(ctypes.get_errno(), f"landlock rule for TCP port {port} failed")


def endpoint_ports(s3: Sequence[S3ReadCredentials]) -> list[int]:
    ports = []
    for creds in s3:
        host_port = creds.endpoint.rsplit(":", 1)
        default = 443 if creds.use_ssl else 80
        ports.append(int(host_port[1]) if len(host_port) == 2 else default)
    return ports


def clean_directory(path: Path) -> None:
    """Delete everything below ``path`` (spill files survive a killed DuckDB)."""
    if not path.is_dir():
        return
    for entry in path.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                entry.unlink()


# --- execution ---------------------------------------------------------------------------


def _write_line(out: IO[bytes], doc: dict[str, Any]) -> None:
    out.write(json.dumps(doc).encode() + b"\n")
    out.flush()


def _capped(batch: pa.RecordBatch, sent: int, job: WorkerJob) -> pa.RecordBatch | None:
    if job.max_rows <= 0:
        return batch
    room = job.max_rows + 1 - sent
    return None if room <= 0 else batch.slice(0, room) if batch.num_rows > room else batch


def _stream(reader: pa.RecordBatchReader, out: IO[bytes], job: WorkerJob) -> int:
    """Write the IPC stream; a DuckDB error mid-stream ends it and becomes ``_MidStreamError``."""
    sent = 0
    writer = ipc.new_stream(out, reader.schema)
    try:
        for batch in reader:
            for offset in range(0, max(batch.num_rows, 1), job.batch_rows):
                piece = _capped(batch.slice(offset, job.batch_rows), sent, job)
                if piece is None:
                    return sent
                writer.write_batch(piece)
                out.flush()  # deliver each batch now, not when the pipe buffer fills
                sent += piece.num_rows
    except (BrokenPipeError, ConnectionResetError):
        raise
    except Exception as exc:
        raise _MidStreamError(classify(exc, job)) from exc
    finally:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            writer.close()
    return sent


class _MidStreamError(Exception):
    def __init__(self, failed: WorkerFailure) -> None:
        super().__init__(failed.reason)
        self.failed = failed


class _CappedRows:
    """The reader's batches in pieces of at most ``batch_rows``, at most ``max_rows`` rows
    in all; ``rows`` counts the rows handed out, ``truncated`` says more existed."""

    def __init__(self, reader: pa.RecordBatchReader, job: WorkerJob) -> None:
        self.reader, self.job = reader, job
        self.rows = 0
        self.truncated = False

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        cap, size = self.job.max_rows, self.job.batch_rows
        for batch in self.reader:
            for offset in range(0, batch.num_rows, size):
                piece = batch.slice(offset, size)
                if cap > 0 and self.rows + piece.num_rows > cap:
                    self.truncated = True
                    piece = piece.slice(0, cap - self.rows)
                if piece.num_rows:
                    self.rows += piece.num_rows
                    yield piece
                if self.truncated:
                    return


def _coalesced(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Batches joined up to ``RENDER_ROWS`` rows or ``RENDER_BYTES``: DuckDB spends ~7 ms on
    each batch it renders (registering and scanning it), whatever its size."""
    pending: list[pa.RecordBatch] = []
    rows = size = 0
    for batch in batches:
        pending.append(batch)
        rows, size = rows + batch.num_rows, size + batch.nbytes
        if rows >= RENDER_ROWS or size >= RENDER_BYTES:
            yield pending[0] if len(pending) == 1 else pa.concat_batches(pending)
            pending, rows, size = [], 0, 0
    if pending:
        yield pending[0] if len(pending) == 1 else pa.concat_batches(pending)


class _Frames:
    """Writes rendered bytes as frames; pieces under ``FRAME_MIN_BYTES`` wait for more.
    ``done`` is told the rows each piece completes (``encode_body``)."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.pending: list[bytes] = []
        self.pending_bytes = 0
        self.rows = 0  # rows completed by the pending pieces

    def done(self, rows: int) -> None:
        self.rows += rows

    def write(self, data: bytes) -> None:
        if data:
            self.pending.append(data)
            self.pending_bytes += len(data)
        if self.pending_bytes >= FRAME_MIN_BYTES:
            self.flush()

    def flush(self) -> None:
        if not self.pending and not self.rows:
            return
        payload = self.pending[0] if len(self.pending) == 1 else b"".join(self.pending)
        self.out.write(FRAME.pack(len(payload), self.rows))
        self.out.write(payload)
        self.out.flush()
        self.pending, self.pending_bytes, self.rows = [], 0, 0

    def end(self) -> None:
        self.flush()
        self.out.write(FRAME.pack(0, 0))


def _render(reader: pa.RecordBatchReader, out: IO[bytes], job: WorkerJob) -> _CappedRows:
    """Render the result in the job's format as frames; an error mid-stream ends the frames
    and becomes ``_MidStreamError``."""
    rows = _CappedRows(reader, job)
    frames = _Frames(out)
    batches = _coalesced(rows) if job.output in ("json", "ndjson") else rows
    try:
        chunks = encode_body(job.output, reader.schema, batches, job.limits.threads, frames.done)
        for chunk in chunks:
            frames.write(chunk)
        frames.flush()
    except (BrokenPipeError, ConnectionResetError):
        raise
    except Exception as exc:
        frames.end()
        raise _MidStreamError(classify(exc, job)) from exc
    frames.end()
    return rows


def execute(
    con: DuckDBConnection,
    job: WorkerJob,
    out: IO[bytes],
    landlock: int,
    setup_ms: float = 0.0,
) -> bool:
    """Run the query and write header, result and trailer (runs in the query thread); True
    when it ended with a good trailer.

    The header carries the worker's own timings (``ms``: setting up the sandbox and the
    database for this job, then running the statement until its first result is ready)
    for the gateway's ``Server-Timing``."""
    started = time.perf_counter()
    try:
        if job.output != "batches" and job.output not in RENDERED_IN_WORKER:
            raise ValueError(f"unknown output {job.output!r}")
        kinds = statement_types(con, job.sql)
        if kinds != ["SELECT"]:
            _write_line(out, failure("statement", job, f"statement types {kinds}").header())
            return False
        con.execute(job.sql)
        reader = con.to_arrow_reader(job.batch_rows)
    except Exception as exc:
        _write_line(out, classify(exc, job).header())
        return False
    executed_ms = (time.perf_counter() - started) * 1000
    timings = {"setup": round(setup_ms, 2), "execute": round(executed_ms, 2)}
    _write_line(out, {"ok": True, "landlock": landlock, "ms": timings})
    try:
        if job.output == "batches":
            sent = _stream(reader, out, job)
            _write_line(out, {"ok": True, "rows": sent})
        else:
            rendered = _render(reader, out, job)
            trailer = {"ok": True, "rows": rendered.rows, "truncated": rendered.truncated}
            _write_line(out, trailer)
    except _MidStreamError as exc:
        _write_line(out, exc.failed.header())
        return False
    return True


class _QueryThread:
    """The worker's one query thread, started once and reused for every job (starting a
    thread per query cost ~1 ms of CPU under load)."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="query", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            self._jobs.get()()

    def submit(self, work: Callable[[], None]) -> threading.Event:
        done = threading.Event()

        def run() -> None:
            try:
                work()
            finally:
                done.set()

        self._jobs.put(run)
        return done


_QUERY_THREAD: _QueryThread | None = None


def _query_thread() -> _QueryThread:
    global _QUERY_THREAD
    if _QUERY_THREAD is None:
        _QUERY_THREAD = _QueryThread()
    return _QUERY_THREAD


class _Supervisor:
    """Runs ``execute`` in the query thread; on the deadline or SIGTERM re-sends interrupt
    until done."""

    def __init__(
        self,
        con: DuckDBConnection,
        job: WorkerJob,
        out: IO[bytes],
        landlock: int,
        setup_ms: float = 0.0,
    ):
        self.con, self.job, self.out, self.landlock = con, job, out, landlock
        self.setup_ms = setup_ms
        self.stop = threading.Event()
        self.ok = False  # the query ended with a good trailer

    def _guarded(self) -> None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.ok = execute(self.con, self.job, self.out, self.landlock, self.setup_ms)

    def run(self) -> bool:
        """True when the query finished; False when it ignored interrupts."""
        deadline = time.monotonic() + self.job.timeout_s
        interrupted_at: float | None = None
        done = _query_thread().submit(self._guarded)
        while not done.wait(INTERRUPT_EVERY_S):
            now = time.monotonic()
            if interrupted_at is None and (now >= deadline or self.stop.is_set()):
                interrupted_at = now
            if interrupted_at is not None:
                self.con.interrupt()
                if now - interrupted_at > INTERRUPT_GRACE_S:
                    return False
        return True


def _claim_stdout() -> IO[bytes]:
    """Keep the real stdout for the protocol; anything else printing goes to stderr."""
    fd = os.dup(1)
    with contextlib.suppress(OSError):  # a pipe (not a file or terminal) of 1 MiB
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    protocol = os.fdopen(fd, "wb", buffering=1 << 16)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return protocol


def serve(job: WorkerJob, out: IO[bytes], sandbox: Sandbox, databases: Databases) -> bool:
    """Run one job; False when DuckDB ignored interrupts (the process must end)."""
    received = time.perf_counter()
    if sandbox.landlock >= 0 and not sandbox.admits(job):
        _write_line(out, failure("respawn", job, "limits or S3 ports differ").header())
        return True
    try:
        sandbox.apply(job)
        con = databases.connect(job)
    except Exception as exc:
        kind: Reason = "memory" if isinstance(exc, MemoryError) else "setup"
        _write_line(out, failure(kind, job, f"{type(exc).__name__}: {exc}").header())
        return True
    setup_ms = (time.perf_counter() - received) * 1000
    supervisor = _Supervisor(con, job, out, sandbox.landlock, setup_ms)

    def terminate(*_: object) -> None:  # interrupt the query, then leave instead of waiting
        TERMINATING.set()
        supervisor.stop.set()

    signal.signal(signal.SIGTERM, terminate)
    finished = supervisor.run()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # idle again
    if finished:
        con.close()
        if not supervisor.ok:  # an engine error, a broken pipe: start over next time
            databases.discard(job)
    return finished


MAX_LOCKED_DATABASES = 2  # per worker; each an idle in-memory DuckDB (a few MiB)


class Databases:
    """A worker's DuckDB databases between jobs (SECURITY.md §1.4's bootstrap, done once
    per set of files rather than once per query).

    ``connect(job)`` answers a new connection (a DuckDB cursor) to a database locked down
    for exactly the job's files, S3 credentials and limits: one kept from an earlier job
    with the same three, else the spare prepared while the worker was idle (steps 1–3
    and the query-independent part of 4; made now if there is none), locked for the
    job. Up to ``MAX_LOCKED_DATABASES`` are kept, least recently used first out.

    What a kept database carries from one query to the next: its locked settings, its
    secrets, and the engine's caches of the same files. Not session state: temporary
    views and macros, variables, ``search_path`` and ``USE`` belong to the connection,
    which is new per query (tests/gateway/test_query_runner.py checks this on DuckDB);
    and only a single SELECT ever runs (DuckDB's parser decides, ``execute``), so no
    statement can create, attach, set or load anything in the database. A query that did
    not end cleanly discards its database (``discard``). Creating and closing a database
    cost ~14 ms of CPU per query before (DuckDB registers its built-in functions per
    database); ``tidy`` does both in a background thread after a job."""

    def __init__(self) -> None:
        self._locked: OrderedDict[tuple[Any, ...], DuckDBConnection] = OrderedDict()
        self._prepared: PreparedConnection | None = None
        self._tidying: threading.Thread | None = None
        self._renderers_warm = False

    def __len__(self) -> int:
        """How many locked databases are kept."""
        return len(self._locked)

    @staticmethod
    def _key(job: WorkerJob) -> tuple[Any, ...]:
        return (job.allowed_paths, job.s3, job.limits)

    def connect(self, job: WorkerJob) -> DuckDBConnection:
        key = self._key(job)
        database = self._locked.get(key)
        if database is None:
            database = lock_down(self._take_prepared(job), job.allowed_paths)
            self._locked[key] = database
        else:  # the scratch directory, spill space included, was emptied after the last job
            job.limits.temp_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._locked.move_to_end(key)
        return database.cursor()

    def _take_prepared(self, job: WorkerJob) -> PreparedConnection:
        self._wait_for_tidy()
        prepared, self._prepared = self._prepared, None
        if prepared is not None and prepared.fits(job.s3, job.limits):
            return prepared
        if prepared is not None:
            prepared.close()
        return _prepare_for(job)

    def discard(self, job: WorkerJob) -> None:
        database = self._locked.pop(self._key(job), None)
        if database is not None:
            database.close()

    def tidy(self, job: WorkerJob) -> None:
        """After a job: close the databases past the limit and, unless a spare is ready,
        prepare one (assuming the next job has this job's limits and S3 credentials: they
        come from the gateway's settings), in a thread of its own, so that a job for a
        kept database can start at once; a job that needs the spare waits for it."""
        if not self._renderers_warm:  # the JSON render threads open their connections
            with contextlib.suppress(Exception):
                warm_renderers(job.limits.threads)
            self._renderers_warm = True
        self._wait_for_tidy()
        surplus = []
        while len(self._locked) > MAX_LOCKED_DATABASES:
            surplus.append(self._locked.popitem(last=False)[1])
        if not surplus and self._prepared is not None:
            return

        def work() -> None:
            for database in surplus:
                database.close()
            if self._prepared is None:
                with contextlib.suppress(Exception):  # the next job then prepares its own
                    self._prepared = _prepare_for(job)

        self._tidying = threading.Thread(target=work, name="tidy", daemon=True)
        self._tidying.start()

    def _wait_for_tidy(self) -> None:
        if self._tidying is not None:
            self._tidying.join()
            self._tidying = None

    def close(self) -> None:
        self._wait_for_tidy()
        for database in self._locked.values():
            database.close()
        self._locked.clear()
        if self._prepared is not None:
            self._prepared.close()
            self._prepared = None


def _prepare_for(job: WorkerJob) -> PreparedConnection:
    """Bootstrap steps 1–3 for ``job``'s limits and S3 credentials (httpfs if it reads S3)."""
    httpfs = any(path.startswith("s3://") for path in job.allowed_paths)
    return prepare_connection(s3=job.s3, limits=job.limits, httpfs=httpfs)


class _NoPandas(importlib.abc.MetaPathFinder):
    """The worker never needs pandas: pyarrow and DuckDB then run as without it installed.
    (Registering an Arrow batch in DuckDB imports ``pyarrow.dataset``, which would import
    pandas: seconds of CPU and tens of MiB per worker.)"""

    def find_spec(self, name: str, *_: object) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


def _warm_rendering() -> None:
    """Import what rendering JSON needs now, while no query waits (see ``_NoPandas``)."""
    schema = pa.schema([("x", pa.int64())])
    batch = pa.record_batch([pa.array([1])], schema=schema)
    b"".join(encode_body("json", schema, [batch]))


def main() -> int:
    """Serve jobs, one line of JSON each, until stdin closes (each gets a new connection
    and a cleaned scratch directory); exit at once when a query ignored interrupts.

    Between jobs the worker keeps the databases it locked for recent jobs' files and
    prepares a spare for new files (``Databases``), so a query does not wait for DuckDB to
    start."""
    out = _claim_stdout()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # an idle worker being retired
    sys.meta_path.insert(0, _NoPandas())
    warm_up()
    _warm_rendering()
    sandbox = Sandbox()
    databases = Databases()
    finished = True
    while finished and not TERMINATING.is_set():
        raw = sys.stdin.buffer.readline(MAX_JOB_BYTES + 1)
        if not raw.strip():
            break
        job = WorkerJob.from_json(raw)
        if sandbox.landlock < 0:  # the first job; after a job the scratch was cleaned below
            clean_directory(job.scratch_dir)
        finished = False
        try:
            finished = serve(job, out, sandbox, databases)
        finally:
            clean_directory(job.scratch_dir)
        if finished and not TERMINATING.is_set() and sandbox.landlock >= 0:
            databases.tidy(job)
    if finished:
        databases.close()
    with contextlib.suppress(OSError):
        out.close()
    # Skip interpreter teardown (tens of ms with pyarrow loaded); a DuckDB thread that
    # ignored interrupts must not keep the process alive either.
    os._exit(0 if finished else 3)


if __name__ == "__main__":
    sys.exit(main())
