"""`datashare worker` processes share one catalog and one store; `datashare serve` owns its own.

Real processes throughout: a platform in the test process plays the gateway (it only
receives uploads and queues jobs), and separate `datashare worker` processes, started
with nothing but environment variables, claim and run them. PostgreSQL and S3 when
active (``ACTIVE_CATALOGS``, ``ACTIVE_BACKENDS``), else SQLite and the local store in a
shared data directory.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from catalog.storage.seaweed import free_ports
from tests.conftest import ACTIVE_BACKENDS, ACTIVE_CATALOGS, SESSION_PREFIX, make_settings
from tests.factories import ENERGY_CONTRACT, ENERGY_CSV, make_caller, make_org, suffix

pytestmark = [pytest.mark.integration, pytest.mark.slow]
DATASHARE = [sys.executable, "-m", "gateway.cli"]


@pytest.fixture
def gateway(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A platform that only queues jobs (as `datashare serve` with embedded_workers=0)."""
    from gateway.services import build_platform

    catalog_url = None
    if "postgres" in ACTIVE_CATALOGS:
        from tests.conftest import fresh_postgres_url

        catalog_url = fresh_postgres_url(request.getfixturevalue("postgres_server"))
    backend = "s3" if "s3" in ACTIVE_BACKENDS else "local"
    weed = request.getfixturevalue("seaweed") if backend == "s3" else None
    settings = make_settings(
        tmp_path / "data", backend=backend, seaweed=weed, catalog_url=catalog_url
    )
    platform = build_platform(settings)
    platform.ingest.delegate_to_workers()
    yield platform
    platform.close()


def env_for(platform: Any, **extra: str) -> dict[str, str]:
    """What a worker on another machine would be given: environment variables only."""
    settings = platform.settings
    env = {
        **os.environ,
        "DATASHARE_ENVIRONMENT": "test",
        "DATASHARE_DATA_DIR": str(settings.data_dir),
        "DATASHARE_CATALOG__URL": settings.catalog_url,
        "DATASHARE_STORAGE__BACKEND": settings.storage.backend,
        "DATASHARE_STORAGE__BUCKET_PREFIX": SESSION_PREFIX,
        "DATASHARE_INGEST__POLL_SECONDS": "0.2",
        "DATASHARE_INGEST__MAX_ERROR_RATIO": "0.5",  # ENERGY_CSV plants 2 bad rows in 5
        "DATASHARE_LOG__LEVEL": "INFO",
        **extra,
    }
    storage = settings.storage
    if storage.endpoint_url is not None:
        env["DATASHARE_STORAGE__ENDPOINT_URL"] = str(storage.endpoint_url)
        env["DATASHARE_STORAGE__ACCESS_KEY"] = storage.access_key.get_secret_value()
        env["DATASHARE_STORAGE__SECRET_KEY"] = storage.secret_key.get_secret_value()
    return env


class WorkerProcess:
    def __init__(self, platform: Any, log: Path, *args: str, **env: str) -> None:
        self.log = log
        self.process = subprocess.Popen(
            [*DATASHARE, "worker", *args],
            env=env_for(platform, **env),
            stdout=subprocess.DEVNULL,
            stderr=log.open("ab"),
        )

    @property
    def name(self) -> str:
        import socket

        return f"{socket.gethostname()}:{self.process.pid}"

    def wait_ready(self, timeout: float = 90) -> WorkerProcess:
        deadline = time.monotonic() + timeout
        while "ingest worker started" not in self.log.read_text(errors="replace"):
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the worker did not start"
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        worker.stop()


def dataset_of(platform: Any) -> Any:
    return platform.registry.create_dataset(
        org=make_org(platform),
        name=f"energy_{suffix()}",
        title="",
        description="",
        classification="internal",
        licence="",
        contract=ENERGY_CONTRACT,
    )


def energy_csv(rows: int, seed: int = 0) -> bytes:
    lines = ["设备编号,时间,用电量(度),时段"]
    lines += [
        f"DG-P{i % 9}-MCC-{i % 97:02d},2025-07-11 {i % 24:02d}:{i % 60:02d},"
        f"{(i + seed) % 4000}.5,峰"
        for i in range(rows)
    ]
    return ("\n".join(lines) + "\n").encode()


def submit(platform: Any, dataset: Any, content: bytes) -> str:
    received = platform.ingest.receive([content], encoding="utf-8")
    job = platform.ingest.submit(
        dataset, received, filename="meters.csv", encoding="utf-8", actor="test"
    )
    return str(job.id)


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def done(platform: Any, job_id: str) -> bool:
    return platform.jobs.get(job_id).status in ("succeeded", "failed", "duplicate")


def test_two_worker_processes_share_one_queue_and_run_each_job_once(
    gateway, workers, tmp_path
) -> None:
    for i in range(2):
        workers.append(WorkerProcess(gateway, tmp_path / f"worker-{i}.log", "--slots", "2"))
    for worker in workers:
        worker.wait_ready()
    dataset = dataset_of(gateway)
    job_ids = [submit(gateway, dataset, energy_csv(3000, seed=i)) for i in range(10)]
    for job_id in job_ids:
        wait_until(lambda job_id=job_id: done(gateway, job_id), 120, f"job {job_id}")

    jobs = [gateway.jobs.get(job_id) for job_id in job_ids]
    assert [(j.status, j.attempts, j.rows_valid) for j in jobs] == [("succeeded", 1, 3000)] * 10
    assert {j.worker for j in jobs} == {w.name for w in workers}  # both took part
    versions = gateway.registry.versions(dataset.id)
    assert sorted(v.job_id for v in versions) == sorted(job_ids)  # one version per job
    commits = [
        e
        for e in gateway.audit.recent(limit=1000)
        if e.action == "ingest.commit" and e.resource == f"dataset:{dataset.id}"
    ]
    assert len(commits) == 10


def test_sigterm_lets_the_running_job_finish_and_claims_nothing_more(
    gateway, workers, tmp_path
) -> None:
    worker = WorkerProcess(
        gateway, tmp_path / "worker.log", DATASHARE_INGEST__SHUTDOWN_GRACE_SECONDS="120"
    )
    workers.append(worker.wait_ready())
    dataset = dataset_of(gateway)
    running = submit(gateway, dataset, energy_csv(300_000))
    wait_until(lambda: gateway.jobs.get(running).rows_read > 0, 60, "the job to be reading")
    worker.process.send_signal(signal.SIGTERM)
    waiting = submit(gateway, dataset, ENERGY_CSV)
    assert worker.process.wait(120) == 0
    first, second = gateway.jobs.get(running), gateway.jobs.get(waiting)
    assert (first.status, first.attempts, first.rows_valid) == ("succeeded", 1, 300_000)
    assert (second.status, second.attempts) == ("queued", 0)  # left for the next worker


def test_sigterm_past_the_grace_period_hands_the_job_to_another_worker(
    gateway, workers, tmp_path
) -> None:
    first = WorkerProcess(
        gateway, tmp_path / "first.log", DATASHARE_INGEST__SHUTDOWN_GRACE_SECONDS="0"
    )
    workers.append(first.wait_ready())
    dataset = dataset_of(gateway)
    job_id = submit(gateway, dataset, energy_csv(600_000))
    wait_until(lambda: gateway.jobs.get(job_id).rows_read > 0, 60, "the job to be reading")
    first.process.send_signal(signal.SIGTERM)
    assert first.process.wait(30) == 0
    released = gateway.jobs.get(job_id)
    assert (released.status, released.worker, released.attempts) == ("queued", None, 0)
    assert gateway.registry.versions(dataset.id) == []

    second = WorkerProcess(gateway, tmp_path / "second.log")
    workers.append(second)
    wait_until(lambda: done(gateway, job_id), 180, "the second worker")
    finished = gateway.jobs.get(job_id)
    assert (finished.status, finished.worker, finished.attempts, finished.rows_valid) == (
        "succeeded",
        second.name,
        1,
        600_000,
    )


def test_serve_workers_pick_up_uploads_at_once_and_die_with_the_gateway(gateway, tmp_path) -> None:
    port = free_ports(1)[0]
    log = tmp_path / "serve.log"
    serve = subprocess.Popen(
        [*DATASHARE, "serve", "--port", str(port)],
        env=env_for(gateway, DATASHARE_INGEST__POLL_SECONDS="30"),  # so only a wake-up is fast
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: "ingest worker started" in log.read_text(), 90, "the embedded worker")
        with httpx.Client(base_url=url, timeout=30) as http:
            wait_until(lambda: _ready(http), 60, "the gateway")
            provider = make_caller(gateway, http)
            dataset = http.post(
                "/v1/datasets",
                headers=provider.headers,
                json={"name": "meters", "contract": ENERGY_CONTRACT},
            ).json()
            pickups = []
            for i in range(5):
                content = ENERGY_CSV.replace(b"12.5", f"{i}.5".encode())
                job = http.post(
                    f"/v1/datasets/{dataset['id']}/uploads",
                    headers=provider.headers,
                    content=content,
                ).json()
                wait_until(lambda job=job: done(gateway, job["id"]), 30, "the job")
                state = gateway.jobs.get(job["id"])
                assert state.status == "succeeded", state.error
                pickups.append((state.started_at - state.created_at).total_seconds())
        worker_pid = int(state.worker.rsplit(":", 1)[1])
        assert _parent_of(worker_pid) == serve.pid
        assert max(pickups) < 1.0, pickups  # woken by SIGUSR1, not by its 30 s poll

        serve.send_signal(signal.SIGKILL)
        serve.wait(10)
        wait_until(lambda: not Path(f"/proc/{worker_pid}").exists(), 30, "the worker to exit")
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()


def _ready(http: httpx.Client) -> bool:
    try:
        return http.get("/readyz").status_code == 200
    except httpx.HTTPError:
        return False


def _parent_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("PPid:"):
            return int(line.split()[1])
    raise AssertionError(f"no PPid for {pid}")


def test_a_wake_up_sent_while_an_embedded_worker_is_starting_does_not_kill_it(gateway) -> None:
    """The gateway wakes its workers (SIGUSR1) on every upload, even one that arrives while a
    worker is still importing, before it has a handler: that must not terminate it."""
    from gateway.server import EmbeddedWorkers

    dataset = dataset_of(gateway)
    job_id = submit(gateway, dataset, ENERGY_CSV)
    workers = EmbeddedWorkers(gateway, 1)
    workers.start()
    try:
        [first] = workers.pids
        deadline = time.monotonic() + 180
        while not done(gateway, job_id):  # uploads keep arriving while it starts
            assert time.monotonic() < deadline, f"the job was not run; workers: {workers.pids}"
            workers.wake()
            time.sleep(0.05)
        assert workers.pids == [first], "the worker was killed by a wake-up and restarted"
        assert gateway.jobs.get(job_id).worker.endswith(f":{first}")
    finally:
        workers.stop()


def test_the_server_takes_its_start_up_heap_out_of_the_garbage_collectors_reach() -> None:
    """``freeze_startup_heap`` (run by ``datashare serve`` before serving): the objects
    a full collection has to traverse are only those made after start-up."""
    import gc

    from gateway.server import freeze_startup_heap

    before = len(gc.get_objects(generation=2))
    try:
        frozen = freeze_startup_heap()
        assert frozen >= before // 2 and len(gc.get_objects(generation=2)) < before // 10
    finally:
        gc.unfreeze()
