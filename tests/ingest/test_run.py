"""Job leases, the in-process worker and quarantine pages, on real catalogs and stores.

The job store runs on SQLite and PostgreSQL (``catalog_url``); the workers run real jobs
through the real pipeline on the local store and on S3 (``platform``).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from sqlalchemy import update

from catalog.database import make_engine, session_factory, upgrade_to_head
from catalog.errors import StorageError
from catalog.jobs import MAX_ATTEMPTS, JobStore
from catalog.models import Job, utcnow
from catalog.registry import Registry
from catalog.storage.local import LocalStore
from ingest.quarantine import read_page
from ingest.run import compressed, fetch_raw
from ingest.worker import Worker
from tests.factories import ENERGY_CONTRACT, ENERGY_CSV, REGISTRATION, make_org, suffix


@pytest.fixture
def sessions(catalog_url: str):
    engine = make_engine(catalog_url)
    upgrade_to_head(engine)
    yield session_factory(engine)
    engine.dispose()


def queued_jobs(sessions, count: int) -> list[str]:
    registry, jobs = Registry(sessions), JobStore(sessions)
    org = registry.create_org(
        name=f"Jobs {suffix()}",
        slug=f"jobs_{suffix()}",
        kind="provider",
        region="GZ",
        registration_id=REGISTRATION["GZ"],
    )
    dataset = registry.create_dataset(
        org=org,
        name="welds",
        title="",
        description="",
        classification="internal",
        licence="",
        contract={},
    )
    return [
        jobs.create(
            dataset_id=dataset.id,
            created_by="c",
            source_bucket="b",
            source_key="k",
            source_sha256="0" * 64,
            source_bytes=1,
        ).id
        for _ in range(count)
    ]


def test_claim_next_gives_each_job_to_exactly_one_of_racing_workers(sessions) -> None:
    ids = queued_jobs(sessions, 24)
    jobs = JobStore(sessions)
    claims: list[tuple[str, str]] = []
    lock = threading.Lock()

    def work(name: str) -> None:
        while (job_id := jobs.claim_next(worker=name)) is not None:
            with lock:
                claims.append((job_id, name))

    threads = [threading.Thread(target=work, args=(f"host:{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Counter(job_id for job_id, _ in claims) == Counter(ids)  # each once, none lost
    for job_id, name in claims:
        job = jobs.get(job_id)
        assert (job.status, job.phase, job.worker, job.attempts) == ("running", "reading", name, 1)


def test_release_requeues_without_counting_the_attempt(sessions) -> None:
    (job_id,) = queued_jobs(sessions, 1)
    jobs = JobStore(sessions)
    assert jobs.claim_next(worker="a:1") == job_id
    assert jobs.release(job_id, worker="b:2") is False  # only the holder releases
    assert jobs.release(job_id, worker="a:1") is True
    job = jobs.get(job_id)
    assert (job.status, job.phase, job.worker, job.attempts) == ("queued", "queued", None, 0)
    assert jobs.claim_next(worker="b:2") == job_id


def test_only_the_lease_holder_records_progress_renews_or_finishes(sessions) -> None:
    (job_id,) = queued_jobs(sessions, 1)
    jobs = JobStore(sessions, lease=timedelta(seconds=30))
    jobs.claim(job_id, worker="a:1")
    before = jobs.get(job_id).lease_until
    assert jobs.progress(job_id, worker="b:2", rows_read=5) is False
    assert jobs.renew([job_id], worker="b:2") == set()
    assert jobs.finish(job_id, status="failed", worker="b:2") is False
    time.sleep(0.01)
    assert jobs.progress(job_id, worker="a:1", rows_read=7, phase="uploading") is True
    assert jobs.renew([job_id], worker="a:1") == {job_id}
    job = jobs.get(job_id)
    assert (job.rows_read, job.phase, job.status) == (7, "uploading", "running")
    assert job.lease_until is not None and before is not None and job.lease_until > before


def test_retry_requeues_only_failed_jobs_with_attempts_reset(sessions) -> None:
    failed, succeeded = queued_jobs(sessions, 2)
    jobs = JobStore(sessions)
    for job_id, status in ((failed, "failed"), (succeeded, "succeeded")):
        jobs.claim(job_id, worker="a:1")
        jobs.finish(job_id, status=status, error={"code": "x"}, rows_read=3)
    assert jobs.retry(succeeded) is False
    assert jobs.retry(failed) is True
    assert jobs.retry(failed) is False  # queued now
    job = jobs.get(failed)
    assert (job.status, job.phase, job.attempts, job.error, job.rows_read) == (
        "queued",
        "queued",
        0,
        None,
        0,
    )
    assert failed in jobs.claimable()


def test_a_job_whose_worker_keeps_dying_fails_as_abandoned_and_can_be_retried(sessions) -> None:
    (job_id,) = queued_jobs(sessions, 1)
    jobs = JobStore(sessions)
    now = utcnow()
    for attempt in range(MAX_ATTEMPTS):  # each worker dies: its lease runs out
        assert jobs.claim(job_id, worker=f"w:{attempt}", now=now + timedelta(hours=attempt))
    assert job_id not in jobs.claimable(now=now + timedelta(days=1))
    assert jobs.exhaust_stale(now=now + timedelta(days=1)) == 1
    job = jobs.get(job_id)
    assert (job.status, job.error["code"]) == ("failed", "job_abandoned")
    assert "retry" in job.error["message"]
    assert jobs.retry(job_id) is True


# -- workers running real jobs ---------------------------------------------------------


def energy_dataset(platform, contract: dict[str, Any] | None = None):
    org = make_org(platform)
    return platform.registry.create_dataset(
        org=org,
        name=f"energy_{suffix()}",
        title="",
        description="",
        classification="internal",
        licence="",
        contract=contract or ENERGY_CONTRACT,
    )


def submit(platform, dataset, content: bytes, mode: str = "replace") -> Job:
    received = platform.ingest.receive([content], encoding="utf-8")
    return platform.ingest.submit(
        dataset, received, filename="meters.csv", encoding="utf-8", actor="test", mode=mode
    )


def energy_csv(rows: int, seed: int = 0) -> bytes:
    lines = ["设备编号,时间,用电量(度),时段"]
    lines += [
        f"DG-P{i % 9}-MCC-{i % 97:02d},2025-07-11 {i % 24:02d}:{i % 60:02d},"
        f"{(i + seed) % 4000}.5,峰"
        for i in range(rows)
    ]
    return ("\n".join(lines) + "\n").encode()


def wait_for(predicate, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def finished(platform, job_id: str) -> bool:
    return platform.jobs.get(job_id).status in ("succeeded", "failed", "duplicate")


def test_two_workers_on_one_queue_run_each_job_once(platform) -> None:
    dataset = energy_dataset(platform)
    ingest = platform.ingest
    workers = [
        Worker(ingest, slots=2, poll_seconds=0.2, grace_seconds=5, name=f"test:{i}")
        for i in range(2)
    ]
    for worker in workers:
        ingest.on_queued(worker.wake)
        worker.start()
    try:
        jobs = [submit(platform, dataset, energy_csv(200, seed=i)) for i in range(6)]
        for job in jobs:
            wait_for(lambda job=job: finished(platform, job.id), what=f"job {job.id}")
    finally:
        for worker in workers:
            worker.stop()
    states = [platform.jobs.get(job.id) for job in jobs]
    assert [(s.status, s.attempts, s.phase) for s in states] == [("succeeded", 1, "done")] * 6
    assert {s.worker for s in states} <= {"test:0", "test:1"}
    versions = platform.registry.versions(dataset.id)
    assert sorted(v.job_id for v in versions) == sorted(job.id for job in jobs)
    assert [v.version for v in versions] == [1, 2, 3, 4, 5, 6]


def test_stopping_a_worker_hands_its_running_job_back_to_the_queue(platform) -> None:
    dataset = energy_dataset(platform)
    first = Worker(platform.ingest, slots=1, poll_seconds=0.1, grace_seconds=0, name="test:a")
    first.start()
    job = submit(platform, dataset, energy_csv(300_000))

    def reading() -> bool:
        state = platform.jobs.get(job.id)
        return state.status == "running" and state.rows_read > 0

    wait_for(reading, what="the job to be reading")
    first.stop()
    state = platform.jobs.get(job.id)
    released = (state.status, state.phase, state.worker, state.attempts)
    assert released == ("queued", "queued", None, 0)
    assert platform.registry.versions(dataset.id) == []
    second = Worker(platform.ingest, slots=1, poll_seconds=0.1, grace_seconds=0, name="test:b")
    second.start()
    try:
        wait_for(lambda: finished(platform, job.id), timeout=120, what="the second worker")
    finally:
        second.stop()
    state = platform.jobs.get(job.id)
    assert (state.status, state.worker, state.attempts, state.rows_valid) == (
        "succeeded",
        "test:b",
        1,
        300_000,
    )


def test_a_worker_that_lost_its_lease_does_not_commit(platform) -> None:
    dataset = energy_dataset(platform)
    worker = Worker(platform.ingest, slots=1, poll_seconds=0.1, grace_seconds=0, name="test:slow")
    worker.start()
    job = submit(platform, dataset, energy_csv(300_000))
    try:
        wait_for(lambda: platform.jobs.get(job.id).rows_read > 0, what="the job to be reading")
        with platform.sessions.begin() as session:  # what another worker's claim does
            session.execute(update(Job).where(Job.id == job.id).values(worker="other:1"))
        wait_for(lambda: worker.running == [], what="the worker to drop the job")
    finally:
        worker.stop()
    state = platform.jobs.get(job.id)
    assert (state.status, state.worker) == ("running", "other:1")  # left to its new holder
    assert platform.registry.versions(dataset.id) == []


def test_submit_wakes_an_idle_worker_before_its_poll(platform) -> None:
    dataset = energy_dataset(platform)
    worker = Worker(platform.ingest, slots=1, poll_seconds=30, grace_seconds=0, name="test:w")
    platform.ingest.on_queued(worker.wake)
    worker.start()
    try:
        time.sleep(0.5)  # the loop is idle, waiting up to 30 s
        job = submit(platform, dataset, ENERGY_CSV)
        wait_for(lambda: finished(platform, job.id), timeout=10, what="the woken worker")
    finally:
        worker.stop()
    state = platform.jobs.get(job.id)
    assert state.status == "succeeded"
    assert state.started_at is not None and state.created_at is not None
    assert (state.started_at - state.created_at).total_seconds() < 2


# -- the raw zone ---------------------------------------------------------------------

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def run_one(platform, job_id: str) -> Job:
    worker = Worker(platform.ingest, slots=1, poll_seconds=0.1, grace_seconds=0, name="test:raw")
    worker.start()
    try:
        wait_for(lambda: finished(platform, job_id), what=f"job {job_id}")
    finally:
        worker.stop()
    return platform.jobs.get(job_id)


@pytest.mark.parametrize("streamed", [True, False], ids=["streamed", "via-scratch-file"])
def test_raw_uploads_are_stored_as_one_zstd_frame_and_ingest_as_uploaded(
    platform, streamed: bool
) -> None:
    dataset = energy_dataset(platform)
    content = energy_csv(20_000)
    chunks = [content[i : i + 65_536] for i in range(0, len(content), 65_536)]
    received = platform.ingest.receive(
        chunks, encoding="utf-8", dataset=dataset if streamed else None
    )
    assert (received.size, received.sha256) == (len(content), hashlib.sha256(content).hexdigest())
    job = platform.ingest.submit(
        dataset, received, filename="meters.csv", encoding="utf-8", actor="test"
    )
    store = platform.lake.store(dataset.region)
    stored = b"".join(store.open_stream(job.source_bucket, job.source_key))
    assert job.source_key.endswith(".zst") and stored[:4] == ZSTD_MAGIC
    assert zstandard.ZstdDecompressor().decompressobj().decompress(stored) == content
    assert len(stored) < len(content) / 3
    state = run_one(platform, job.id)
    assert (state.status, state.rows_read, state.rows_valid) == ("succeeded", 20_000, 20_000)


def job_on_raw_object(platform, dataset, key: str, body: bytes, uploaded: bytes) -> Job:
    """A queued job whose raw object is ``body`` under ``key``, for an upload of ``uploaded``."""
    bucket = platform.lake.bucket(dataset.region)
    platform.lake.store(dataset.region).put_stream(bucket, key, [body])
    return platform.jobs.create(
        dataset_id=dataset.id,
        created_by="test",
        filename="meters.csv",
        source_bucket=bucket,
        source_key=key,
        source_sha256=hashlib.sha256(uploaded).hexdigest(),
        source_bytes=len(uploaded),
    )


def test_a_job_whose_raw_object_predates_compression_still_runs(platform) -> None:
    """Jobs queued (or failed, to be retried) before raw objects were compressed point at
    the bytes as uploaded, under a key without ``.zst``."""
    dataset = energy_dataset(platform)
    key = f"raw/{dataset.id}/old-job/source"
    job = job_on_raw_object(platform, dataset, key, ENERGY_CSV, ENERGY_CSV)
    state = run_one(platform, job.id)
    assert state.status == "succeeded"
    assert state.rows_read == ENERGY_CSV.count(b"\n") - 1


@pytest.mark.parametrize("damage", ["truncated", "not-zstd"])
def test_a_damaged_raw_object_fails_its_job_with_a_storage_error(platform, damage: str) -> None:
    dataset = energy_dataset(platform)
    uploaded = energy_csv(5_000)
    frame = b"".join(compressed([uploaded]))
    body = frame[: len(frame) // 2] if damage == "truncated" else b"plain text, no frame" * 9
    key = f"raw/{dataset.id}/bad/source.zst"
    state = run_one(platform, job_on_raw_object(platform, dataset, key, body, uploaded).id)
    assert state.status == "failed"
    assert state.error is not None and state.error["code"] == "storage_error"
    assert key in state.error["message"]
    assert platform.registry.versions(dataset.id) == []


BOMB_PROBE = """
import resource, sys
from pathlib import Path
from catalog.storage.local import LocalStore
from ingest.run import compressed, fetch_raw
root = Path(sys.argv[1])
store = LocalStore(root / "objects")
store.ensure_bucket("raw")
zeros = (bytes(1 << 20) for _ in range(int(sys.argv[2])))
store.put_stream("raw", "raw/ds/job/source.zst", compressed(zeros))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
fetch_raw(store, "raw", "raw/ds/job/source.zst", root / "out", size=int(sys.argv[2]) << 20)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((root / "out").stat().st_size, (after - before) >> 10)
"""


def test_a_raw_frame_that_expands_a_thousandfold_decompresses_in_bounded_memory(
    tmp_path: Path,
) -> None:
    """256 MiB of zeros is a frame of a few KB: a provider can upload it. The worker
    decompresses it in pieces of ``RAW_READ_BYTES`` (one call for the whole frame held
    all 256 MiB at once)."""
    done = subprocess.run(
        [sys.executable, "-c", BOMB_PROBE, str(tmp_path), "256"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    size, grew_mib = map(int, done.stdout.split())
    assert size == 256 << 20
    assert grew_mib < 64, f"decompressing grew the process by {grew_mib} MiB"


def test_a_raw_frame_of_another_size_than_the_upload_is_refused(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "objects")
    store.ensure_bucket("raw")
    store.put_stream("raw", "raw/ds/job/source.zst", compressed([b"a,b\n1,2\n"]))
    with pytest.raises(StorageError, match="decompresses to 8 bytes; the upload had 9"):
        fetch_raw(store, "raw", "raw/ds/job/source.zst", tmp_path / "out", size=9)
    assert not (tmp_path / "out").exists()
    fetch_raw(store, "raw", "raw/ds/job/source.zst", tmp_path / "out", size=8)
    assert (tmp_path / "out").read_bytes() == b"a,b\n1,2\n"


# -- quarantine pages ----------------------------------------------------------------------

REASONS = pa.list_(
    pa.struct(
        [
            pa.field("column", pa.string()),
            pa.field("rule", pa.string()),
            pa.field("expected", pa.string()),
            pa.field("actual", pa.string()),
        ]
    )
)


def quarantine_file(path: Path, rows: int, group: int) -> Path:
    schema = pa.schema(
        [
            pa.field("row", pa.int64(), nullable=False),
            pa.field("values", pa.struct([pa.field("温度", pa.string())])),
            pa.field("reasons", REASONS),
        ]
    )
    table = pa.table(
        {
            "row": [i * 2 for i in range(rows)],
            "values": [{"温度": str(i)} for i in range(rows)],
            "reasons": [
                [{"column": "温度", "rule": "range", "expected": "<= 100", "actual": str(i)}]
                for i in range(rows)
            ],
        },
        schema=schema,
    )
    pq.write_table(table, path, row_group_size=group)
    assert pq.ParquetFile(path).metadata.num_row_groups == -(-rows // group)
    return path


@pytest.mark.parametrize(
    ("offset", "limit", "expected"),
    [
        (0, 3, [0, 1, 2]),
        (98, 5, [98, 99, 100, 101, 102]),  # straddles the first row-group boundary
        (299, 10, [299, 300, 301, 302, 303, 304, 305, 306, 307, 308]),
        (348, 10, [348, 349]),
        (350, 10, []),
        (5000, 10, []),
    ],
)
def test_quarantine_page_reads_the_rows_at_the_offset(tmp_path, offset, limit, expected) -> None:
    path = quarantine_file(tmp_path / "q.parquet", rows=350, group=100)
    page = read_page(path, offset=offset, limit=limit)
    assert (page.total, page.offset, page.limit) == (350, offset, limit)
    assert [r["row"] for r in page.rows] == [i * 2 for i in expected]
    assert [r["values"]["温度"] for r in page.rows] == [str(i) for i in expected]
    if page.rows:
        assert page.rows[0]["reasons"][0] == {
            "column": "温度",
            "rule": "range",
            "expected": "<= 100",
            "actual": str(expected[0]),
        }


def test_quarantine_page_reads_reports_of_the_json_lines_era(tmp_path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(
        "".join(
            f'{{"row": {i}, "values": {{"a": "{i}"}}, "reasons": [{{"rule": "range"}}]}}\n'
            for i in range(1, 8)
        ),
        encoding="utf-8",
    )
    page = read_page(path, offset=5, limit=10)
    assert page.total == 7
    assert [r["row"] for r in page.rows] == [6, 7]
    assert page.rows[0]["values"] == {"a": "6"}
