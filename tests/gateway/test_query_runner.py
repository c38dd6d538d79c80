"""QueryRunner end to end: real worker processes, real DuckDB, real SeaweedFS for S3."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from catalog.duckdb_session import (
    DuckDBError,
    S3ReadCredentials,
    SandboxLimits,
    sandboxed_connection,
)
from catalog.errors import QueryError, QueryResourceExceeded, QueryTimeout
from catalog.storage.s3 import S3Store
from catalog.storage.seaweed import EmbeddedSeaweed
from gateway.query_runner import QueryRunner
from gateway.query_worker import MAX_LOCKED_DATABASES, Databases, WorkerJob, landlock_abi
from gateway.result_formats import encode_body
from policies.model import GovernedQuery, GovernedSource

WEED = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "weed"


def governed(sql: str, files: tuple[str, ...] = (), max_rows: int = 0) -> GovernedQuery:
    source = GovernedSource("ds1", "acme", "parts", 1, files, ("id",))
    return GovernedQuery(sql=sql, sources=(source,) if files else (), max_rows=max_rows)


def worker_children() -> set[int]:
    """Live (non-zombie) query worker processes started by this test process."""
    found = set()
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE and "gateway.query_worker" in child.cmdline():
                found.add(child.pid)
        except psutil.NoSuchProcess:
            continue
    return found


def wait_for_spares(runner: QueryRunner, count: int, settle: float = 1.5) -> None:
    """Wait until ``count`` spares exist, then give them time to import DuckDB."""
    deadline = time.monotonic() + 10
    while runner.spare_count() < count and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(settle)


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QueryRunner]:
    with QueryRunner(
        scratch_root=tmp_path_factory.mktemp("query-scratch"),
        timeout_seconds=10,
        memory_mb=512,
        threads=2,
        max_temp_mb=256,
        batch_rows=4096,
        pool_size=2,
    ) as shared:
        yield shared


@pytest.fixture
def parts(tmp_path: Path) -> dict[str, Path]:
    granted, sibling = tmp_path / "part-0.parquet", tmp_path / "other.parquet"
    table = pa.table({"id": list(range(10)), "name": [f"n{i}" for i in range(10)]})
    pq.write_table(table, granted)
    pq.write_table(pa.table({"secret": ["not granted"]}), sibling)
    return {"granted": granted, "sibling": sibling}


def test_run_returns_exact_rows_as_arrow(runner: QueryRunner, parts: dict[str, Path]) -> None:
    path = str(parts["granted"])
    sql = f"SELECT id, upper(name) AS name FROM read_parquet('{path}') WHERE id < 5 ORDER BY id"
    with runner.run(governed(sql, (path,), max_rows=100)) as stream:
        table = pa.Table.from_batches(list(stream), schema=stream.schema)
    expected = pa.table({"id": list(range(5)), "name": [f"N{i}" for i in range(5)]})
    assert table.equals(expected)
    assert stream.rows == 5 and not stream.truncated


def test_run_truncates_at_max_rows_in_bounded_batches(runner: QueryRunner) -> None:
    with runner.run(governed("SELECT range AS i FROM range(20001)", max_rows=10000)) as stream:
        batches = list(stream)
    assert stream.truncated and stream.rows == 10000
    assert sum(b.num_rows for b in batches) == 10000
    assert max(b.num_rows for b in batches) <= 4096
    assert pa.Table.from_batches(batches).column("i").to_pylist() == list(range(10000))
    with runner.run(governed("SELECT range AS i FROM range(10000)", max_rows=10000)) as exact:
        assert sum(b.num_rows for b in exact) == 10000
    assert not exact.truncated


def test_run_streams_without_collecting(runner: QueryRunner) -> None:
    """80 MB of int64 flows through while pyarrow holds at most a few batches."""
    before = pa.total_allocated_bytes()
    peak = rows = 0
    with runner.run(governed("SELECT range AS i FROM range(10000000)")) as stream:
        for batch in stream:
            rows += batch.num_rows
            peak = max(peak, pa.total_allocated_bytes() - before)
    assert rows == 10_000_000
    assert peak < 8 * 1024 * 1024


@pytest.mark.parametrize("fmt", ["json", "ndjson", "csv", "arrow"])
def test_worker_renders_each_format_as_the_gateway_encoder_would(
    runner: QueryRunner, fmt: str
) -> None:
    """The worker renders the client's format; the bytes are those the encoders make from
    the same query's Arrow batches (an Arrow IPC stream compared as the table it holds)."""
    sql = (
        "SELECT range AS i, '=x' || range AS s, range / 3 AS d, NULL AS n, "
        "DATE '2025-07-11' + CAST(range % 5 AS INTEGER) AS day FROM range(10000)"
    )
    with runner.run(governed(sql), output=fmt) as rendered:
        got = b"".join(rendered.chunks())
    with runner.run(governed(sql)) as batches:
        expected = b"".join(encode_body(fmt, batches.schema, batches))
    assert rendered.rows == 10000 and not rendered.truncated
    if fmt == "arrow":
        assert pa.ipc.open_stream(got).read_all().equals(pa.ipc.open_stream(expected).read_all())
    else:
        assert got == expected


def test_worker_caps_rendered_rows_and_counts_them_as_frames_arrive(runner: QueryRunner) -> None:
    """The row count grows frame by frame and always equals the rows delivered so far (the
    delivery ledger of a client that goes away), although batches render ahead."""
    sql = "SELECT range AS i FROM range(600001)"
    seen: list[int] = []
    body = b""
    with runner.run(governed(sql, max_rows=550000), output="ndjson") as stream:
        for chunk in stream.chunks():
            body += chunk
            assert stream.rows == body.count(b"\n")
            seen.append(stream.rows)
    lines = body.splitlines()
    assert len(lines) == 550000 and json.loads(lines[-1]) == {"i": 549999}
    assert stream.truncated and stream.rows == 550000
    assert len(seen) > 1 and seen == sorted(seen)
    with runner.run(governed("SELECT 1 AS x", max_rows=1), output="json") as exact:
        assert b"".join(exact.chunks()).endswith(b"[1]")
    assert exact.rows == 1 and not exact.truncated


def test_worker_rendering_error_mid_stream_is_sanitised(runner: QueryRunner) -> None:
    sql = (
        "SELECT CASE WHEN range < 50000 THEN range::VARCHAR "
        "ELSE error('secret value ' || range) END AS v FROM range(100000)"
    )
    with pytest.raises(QueryError) as failed, runner.run(governed(sql), output="csv") as stream:
        for _chunk in stream.chunks():
            pass
    assert "secret" not in str(failed.value) and "range" not in str(failed.value)


def test_rendered_stream_stops_at_the_deadline_while_caller_is_consuming(tmp_path: Path) -> None:
    with QueryRunner(scratch_root=tmp_path, timeout_seconds=3, batch_rows=1024, pool_size=1) as r:
        wait_for_spares(r, 1, settle=3)  # the deadline is about consuming, not start-up
        started = time.monotonic()
        stream = r.run(governed("SELECT range AS i FROM range(100000000)"), output="ndjson")
        with pytest.raises(QueryTimeout), stream:
            for _chunk in stream.chunks():
                time.sleep(0.2)  # 1 MiB of pipe buffer must not outlive the deadline either
        assert time.monotonic() - started < 3 + 3
        assert r.busy_pids() == []


def test_run_times_out_and_kills_worker(tmp_path: Path) -> None:
    with QueryRunner(scratch_root=tmp_path, timeout_seconds=1.5, pool_size=1) as short:
        wait_for_spares(short, 1)
        spare_pids = set(short.worker_pids())
        started = time.monotonic()
        with pytest.raises(QueryTimeout, match=r"1\.5 s time limit"):
            short.run(governed("SELECT count(*) FROM range(1000000000000)"))
        elapsed = time.monotonic() - started
        assert elapsed < 1.5 + 3
        used = spare_pids - set(short.worker_pids())
        assert used and not any(psutil.pid_exists(pid) for pid in used)
        assert not any(tmp_path.glob("w-*/spill/*"))


def test_run_times_out_while_caller_is_consuming(tmp_path: Path) -> None:
    with QueryRunner(scratch_root=tmp_path, timeout_seconds=3, batch_rows=1000, pool_size=1) as r:
        warm = time.monotonic() + 30  # the deadline is about consuming, not process start-up
        while r.spare_count() < 1 and time.monotonic() < warm:
            time.sleep(0.05)
        started = time.monotonic()
        stream = r.run(governed("SELECT range AS i FROM range(100000000)"))
        (pid,) = [p for p in r.worker_pids() if p in r.busy_pids()]
        with pytest.raises(QueryTimeout), stream:
            for _batch in stream:
                time.sleep(0.05)  # a slow client still cannot hold a worker beyond the deadline
        assert time.monotonic() - started < 3 + 3
        assert not psutil.pid_exists(pid) and r.busy_pids() == []


def test_run_memory_limit_raises_resource_exceeded(runner: QueryRunner) -> None:
    started = time.monotonic()
    with pytest.raises(QueryResourceExceeded, match="512 MiB memory limit"):
        runner.run(governed("SELECT unnest(range(2000000000)) AS x"))
    assert time.monotonic() - started < 8
    with runner.run(governed("SELECT 1 AS still_alive")) as stream:
        assert [b.to_pylist() for b in stream] == [[{"still_alive": 1}]]


def test_run_failing_query_hides_sql_and_values(runner: QueryRunner) -> None:
    sql = "SELECT CAST('topsecret-cell-value' AS INTEGER) AS leaked_column FROM range(3)"
    with pytest.raises(QueryError) as caught:
        runner.run(governed(sql))
    assert type(caught.value) is QueryError
    message = str(caught.value)
    assert "topsecret" not in message and "leaked_column" not in message and "CAST" not in message
    assert "ConversionException" in message and caught.value.attrs()["job_id"] in message
    with pytest.raises(QueryError) as binder:
        runner.run(governed("SELECT no_such_column_xyz FROM range(3)"))
    assert "no_such_column_xyz" not in str(binder.value)


def test_run_refuses_files_outside_allowed_paths(
    runner: QueryRunner, parts: dict[str, Path]
) -> None:
    granted = (str(parts["granted"]),)
    for sql in [f"SELECT * FROM '{parts['sibling']}'", "SELECT * FROM read_text('/etc/passwd')"]:
        with pytest.raises(QueryError, match="outside its grants") as caught:
            runner.run(governed(sql, granted))
        assert caught.value.attrs()["reason"] == "permission"
        assert "/etc/passwd" not in str(caught.value) and "other.parquet" not in str(caught.value)


def test_run_refuses_anything_but_one_select(runner: QueryRunner, parts: dict[str, Path]) -> None:
    path = str(parts["granted"])
    for sql in [
        f"COPY (SELECT 1 AS id) TO '{path}' (USE_TMP_FILE false)",
        f"ATTACH '{parts['granted'].parent}/evil.duckdb' AS evil",
        "SELECT 1; SELECT 2",
        "SET threads = 1",
        "EXPLAIN SELECT 1",
    ]:
        with pytest.raises(QueryError, match="only a single SELECT") as caught:
            runner.run(governed(sql, (path,)))
        assert caught.value.attrs()["reason"] == "statement"
    assert pq.read_table(path).num_rows == 10


LANDLOCK_PROBE = """
import json, socket, sys
from pathlib import Path
from catalog.duckdb_session import DuckDBError, SandboxLimits, error_kind, sandboxed_connection
from gateway.query_worker import restrict_writes
scratch, granted, port = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
restrict_writes(scratch, [])
result = {}
try:
    open(Path(granted).parent / "planted.txt", "w")
    result["outside"] = "written"
except PermissionError:
    result["outside"] = "refused"
(scratch / "inside.txt").write_text("ok")
try:
    socket.create_connection(("127.0.0.1", port), timeout=2).close()
    result["tcp"] = "connected"
except PermissionError:
    result["tcp"] = "refused"
limits = SandboxLimits(1, 128, 16, scratch / "spill")
con = sandboxed_connection(allowed_paths=[granted], s3=[], limits=limits)
try:
    con.execute(f"COPY (SELECT 1 AS id) TO '{granted}' (USE_TMP_FILE false)")
    result["copy"] = "written"
except DuckDBError as exc:
    result["copy"] = error_kind(exc)
print(json.dumps(result))
"""


@pytest.mark.skipif(landlock_abi() < 4, reason="kernel without Landlock ABI 4 (truncate, TCP)")
def test_worker_landlock_blocks_writes_and_tcp(tmp_path: Path, parts: dict[str, Path]) -> None:
    """What DuckDB's allowed_paths cannot stop (see test_duckdb_session), the worker's
    Landlock ruleset does: no write outside scratch, no TCP connect without S3."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-c", LANDLOCK_PROBE, str(scratch), str(parts["granted"]), str(port)],
            cwd=Path(__file__).resolve().parents[2],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"outside": "refused", "tcp": "refused", "copy": "permission"}
    assert (scratch / "inside.txt").read_text() == "ok"
    assert pq.read_table(parts["granted"]).num_rows == 10


def test_run_concurrent_queries_from_four_threads(runner: QueryRunner) -> None:
    def one(n: int) -> list[int]:
        sql = f"SELECT range * {n} AS v FROM range(50000) ORDER BY v"
        with runner.run(governed(sql)) as stream:
            return [v for batch in stream for v in batch.column(0).to_pylist()]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(one, [1, 2, 3, 4]))
    for n, values in zip([1, 2, 3, 4], results, strict=True):
        assert values == [i * n for i in range(50000)]


def test_close_leaves_no_worker_processes(tmp_path: Path) -> None:
    own = QueryRunner(scratch_root=tmp_path, pool_size=2)
    wait_for_spares(own, 2, settle=0)
    with own.run(governed("SELECT 42 AS x")) as stream:
        assert stream.schema.names == ["x"]
        mine = set(own.worker_pids())
        own.close()
    assert mine and not (mine & worker_children())
    assert own.worker_pids() == [] and list(tmp_path.iterdir()) == []
    with pytest.raises(QueryError, match="shut down"):
        own.run(governed("SELECT 1"))


def test_runner_sweeps_scratch_dirs_of_dead_gateways(tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    stale, foreign = tmp_path / f"w-{gone.pid}-0123", tmp_path / "unrelated"
    (stale / "spill").mkdir(parents=True)
    foreign.mkdir()
    QueryRunner(scratch_root=tmp_path, pool_size=0).close()
    assert not stale.exists() and foreign.exists()


def test_interpreter_exit_stops_spares(tmp_path: Path) -> None:
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from gateway.query_runner import QueryRunner\n"
        f"runner = QueryRunner(scratch_root=Path({str(tmp_path)!r}), pool_size=2)\n"
        "while runner.spare_count() < 2: time.sleep(0.05)\n"
        "print(*runner.worker_pids(), flush=True)\n"
    )  # exits without close()
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=30
    )
    pids = [int(pid) for pid in done.stdout.split()]
    assert len(pids) == 2
    deadline = time.monotonic() + 5
    while any(psutil.pid_exists(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(psutil.pid_exists(pid) for pid in pids)


# --- S3 against the suite's real SeaweedFS (tests/conftest.py) ------------------------------


def _upload(
    seaweed: EmbeddedSeaweed, objects: dict[tuple[str, str], bytes], tmp_path: Path
) -> None:
    c = seaweed.credentials
    store = S3Store(seaweed.endpoint_url, access_key=c.access_key, secret_key=c.secret_key)
    for (bucket, key), data in objects.items():
        store.ensure_bucket(bucket)
        source = tmp_path / "upload.bin"
        source.write_bytes(data)
        store.put_file(bucket, key, source)


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def test_run_reads_granted_s3_file_and_refuses_other_bucket(
    runner: QueryRunner, seaweed: EmbeddedSeaweed, tmp_path: Path
) -> None:
    granted, sibling = "s3://gba-gz/lake/ds1/part-0.parquet", "s3://gba-gz/lake/ds1/other.parquet"
    foreign = "s3://gba-hk/lake/ds9/part-0.parquet"
    data = _parquet_bytes(pa.table({"id": [1, 2, 3]}))
    _upload(
        seaweed,
        {
            ("gba-gz", "lake/ds1/part-0.parquet"): data,
            ("gba-gz", "lake/ds1/other.parquet"): data,
            ("gba-hk", "lake/ds9/part-0.parquet"): data,
        },
        tmp_path,
    )
    c = seaweed.credentials
    endpoint = seaweed.endpoint_url.removeprefix("http://")
    creds = [S3ReadCredentials("s3://gba-gz/", endpoint, c.read_access_key, c.read_secret_key)]

    sql = f"SELECT sum(id) AS total FROM read_parquet('{granted}')"
    with runner.run(governed(sql, (granted,)), creds) as stream:
        assert [b.to_pylist() for b in stream] == [[{"total": 6}]]

    for other in (foreign, sibling):
        with pytest.raises(QueryError, match="outside its grants"):
            runner.run(governed(f"SELECT * FROM '{other}'", (granted,)), creds)

    # allowed_paths does not stop writes: in-process (no statement check) DuckDB sends the PUT
    # and only the read-only key refuses it. The worker refuses non-SELECT statements earlier.
    overwrite = f"COPY (SELECT 9 AS id) TO '{granted}' (USE_TMP_FILE false)"
    limits = SandboxLimits(1, 128, 16, tmp_path / "spill")
    with (
        sandboxed_connection(allowed_paths=[granted], s3=creds, limits=limits) as con,
        pytest.raises(DuckDBError, match="403"),
    ):
        con.execute(overwrite)
    with runner.run(governed(sql, (granted,)), creds) as again:
        assert [b.to_pylist() for b in again] == [[{"total": 6}]]


def test_run_bounds_concurrent_queries(tmp_path: Path) -> None:
    single = QueryRunner(
        scratch_root=tmp_path / "scratch", pool_size=0, max_concurrent=1, queue_seconds=0.2
    )
    try:
        first = single.run(governed("SELECT * FROM range(10)"))
        with pytest.raises(QueryResourceExceeded, match="already running 1 queries"):
            single.run(governed("SELECT 1 AS x"))
        first.close()
        with single.run(governed("SELECT 1 AS x")) as second:
            assert [b.to_pylist() for b in second] == [[{"x": 1}]]
    finally:
        single.close()


def test_worker_serves_again_after_a_clean_query_and_is_retired_after_a_failure(
    tmp_path: Path,
) -> None:
    # no spares: the pool hands out the least recently used worker, and here it has one
    with QueryRunner(scratch_root=tmp_path, timeout_seconds=20, pool_size=0) as r:
        stream = r.run(governed("SELECT 1 AS x"))
        (pid,) = r.busy_pids()
        assert [b.to_pylist() for b in stream] == [[{"x": 1}]]
        with r.run(governed("SELECT 2 AS x")) as again:
            assert r.busy_pids() == [pid]  # the same process, a fresh connection
            assert [b.to_pylist() for b in again] == [[{"x": 2}]]
        with pytest.raises(QueryError):
            r.run(governed("SELECT CAST('not a number' AS INTEGER) AS x"))
        deadline = time.monotonic() + 10
        while psutil.pid_exists(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not psutil.pid_exists(pid)  # a failure never hands its process to the next query


@pytest.mark.integration
def test_embedded_seaweed_read_identity_reads_only_the_curated_buckets(tmp_path: Path) -> None:
    from catalog.errors import StorageError

    server = EmbeddedSeaweed(tmp_path / "weed", read_buckets=["cur-gz"])
    server.start()
    try:
        objects = {("cur-gz", "lake/a/part-0.parquet"): b"curated", ("cur-gz-exports", "x/y"): b"e"}
        _upload(server, objects, tmp_path)
        c = server.credentials
        reader = S3Store(
            server.endpoint_url, access_key=c.read_access_key, secret_key=c.read_secret_key
        )
        assert b"".join(reader.open_stream("cur-gz", "lake/a/part-0.parquet")) == b"curated"
        with pytest.raises(StorageError, match="AccessDenied"):
            b"".join(reader.open_stream("cur-gz-exports", "x/y"))
        with pytest.raises(StorageError, match="AccessDenied"):
            reader.put_file("cur-gz", "lake/a/evil.parquet", tmp_path / "upload.bin")
    finally:
        server.stop()


def test_a_reused_worker_locks_each_prepared_database_to_the_next_jobs_files(
    tmp_path: Path, parts: dict[str, Path]
) -> None:
    """Between jobs a worker prepares a new database (bootstrap steps 1-3); each job locks
    it down to its own files. What one job could read, the next cannot."""
    sibling, granted = str(parts["sibling"]), str(parts["granted"])
    with QueryRunner(scratch_root=tmp_path / "scratch", timeout_seconds=20, pool_size=0) as r:
        with r.run(governed(f"SELECT secret FROM '{sibling}'", (sibling,))) as first:
            (pid,) = r.busy_pids()
            assert [b.to_pylist() for b in first] == [[{"secret": "not granted"}]]
        settings = (
            "SELECT current_setting('lock_configuration') AS locked, "
            "current_setting('enable_external_access') AS external, "
            "current_setting('allowed_paths') AS paths"
        )
        with r.run(governed(settings, (granted,))) as second:
            assert r.busy_pids() == [pid]  # the prepared database of the same process
            assert [b.to_pylist() for b in second] == [
                [{"locked": True, "external": False, "paths": [granted]}]
            ]
        with pytest.raises(QueryError, match="outside its grants"):
            r.run(governed(f"SELECT secret FROM '{sibling}'", (granted,)))


def test_a_reused_worker_still_interrupts_a_query_past_its_deadline(tmp_path: Path) -> None:
    """The worker's query thread serves job after job; the deadline still stops a later
    job's query and retires the process."""
    with QueryRunner(scratch_root=tmp_path, timeout_seconds=2, pool_size=0) as r:
        for n in (1, 2):
            with r.run(governed(f"SELECT {n} AS x")) as stream:
                (pid,) = r.busy_pids()
                assert [b.to_pylist() for b in stream] == [[{"x": n}]]
        started = time.monotonic()
        with pytest.raises(QueryTimeout):
            r.run(governed("SELECT count(*) FROM range(1000000000000)"))
        assert time.monotonic() - started < 2 + 3
        deadline = time.monotonic() + 10
        while psutil.pid_exists(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not psutil.pid_exists(pid) and r.busy_pids() == []


def test_query_deadlines_fire_in_order_and_cancelled_ones_never() -> None:
    from gateway.query_runner import _Deadlines

    deadlines = _Deadlines()
    fired: list[str] = []
    stuck = threading.Event()
    deadlines.after(0.6, lambda: fired.append("late"))
    deadlines.after(0.2, lambda: (fired.append("blocking"), stuck.wait(5)))
    deadlines.after(0.3, lambda: fired.append("early"))  # not held up by the blocked one
    deadlines.after(0.1, lambda: fired.append("cancelled")).cancel()
    time.sleep(1.2)
    stuck.set()
    assert fired == ["blocking", "early", "late"]


def test_a_worker_keeps_a_database_per_set_of_files_and_opens_a_connection_per_job(
    tmp_path: Path, parts: dict[str, Path]
) -> None:
    """``Databases``: a job for files a kept database was locked for gets a new connection
    to it: the database's tables (which only this test can create: the worker runs one
    SELECT) are there, the last connection's session state is not. Other files get a
    database of their own; past ``MAX_LOCKED_DATABASES`` the least recently used goes."""
    granted, sibling = str(parts["granted"]), str(parts["sibling"])
    limits = SandboxLimits(threads=1, memory_limit_mb=256, max_temp_mb=64, temp_dir=tmp_path / "t")

    def job(*files: str) -> WorkerJob:
        return WorkerJob("j", "SELECT 1", files, (), limits, tmp_path, 1024, 0, 5.0, 0)

    databases = Databases()
    try:
        first = databases.connect(job(granted))
        first.execute("CREATE TABLE kept AS SELECT 42 AS v")
        first.execute("CREATE TEMP VIEW mine AS SELECT 1 AS v; SET VARIABLE leaked = 7")
        first.close()
        again = databases.connect(job(granted))
        assert again.execute("SELECT v FROM kept").fetchall() == [(42,)]  # the same database
        assert again.execute("SELECT getvariable('leaked')").fetchall() == [(None,)]
        with pytest.raises(DuckDBError, match="mine"):
            again.execute("SELECT v FROM mine")
        locked = "SELECT current_setting('lock_configuration'), current_setting('allowed_paths')"
        assert again.execute(locked).fetchall() == [(True, [granted])]
        again.close()
        other = databases.connect(job(sibling))
        with pytest.raises(DuckDBError, match="kept"):
            other.execute("SELECT v FROM kept")  # a database of its own
        other.close()
        databases.connect(job(granted, sibling)).close()
        assert len(databases) == 3
        databases.tidy(job(granted))  # after the job: the least recently used one goes
        assert len(databases) == MAX_LOCKED_DATABASES == 2
        with pytest.raises(DuckDBError, match="kept"):
            databases.connect(job(granted)).execute("SELECT v FROM kept")
        assert len(databases) == 3
        databases.discard(job(granted))  # what a query that failed does
        assert len(databases) == 2
    finally:
        databases.close()


def test_a_job_goes_to_the_worker_that_keeps_a_database_for_its_files(
    tmp_path: Path, parts: dict[str, Path]
) -> None:
    granted, sibling = str(parts["granted"]), str(parts["sibling"])
    with QueryRunner(scratch_root=tmp_path / "scratch", timeout_seconds=20, pool_size=3) as r:
        wait_for_spares(r, 3, settle=0.5)
        pids = []
        for files in [(granted,), (sibling,), (granted,), (sibling,), (granted,)]:
            sql = f"SELECT count(*) AS n FROM '{files[0]}'"
            with r.run(governed(sql, files)) as stream:
                pids.append(r.busy_pids()[0])
                assert [b.to_pylist() for b in stream] in ([[{"n": 10}]], [[{"n": 1}]])
        assert pids[0] == pids[2] == pids[4] and pids[1] == pids[3] and pids[0] != pids[1]
        # the kept database is still locked to exactly its files
        with pytest.raises(QueryError, match="outside its grants"):
            r.run(governed(f"SELECT secret FROM '{sibling}'", (granted,)))
