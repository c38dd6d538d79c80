"""Crashes mid-ingest leave the last good version intact, and the job finishes afterwards.

Real processes, killed for real: the gateway (`datashare serve`, whose embedded worker
dies with it and hands its job back), and a separate `datashare worker` SIGKILLed in the
commit phase, after its Parquet parts are uploaded and before the version row exists.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest
from sqlalchemy import create_engine, text

from catalog.storage.seaweed import free_ports
from tests.conftest import SESSION_PREFIX
from tests.factories import ENERGY_CONTRACT, REGISTRATION, suffix

pytestmark = [pytest.mark.integration, pytest.mark.slow]
DATASHARE = [sys.executable, "-m", "gateway.cli"]


class Stack:
    """A data dir with one provider, and the processes started on it."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root, self.env = root, env
        self.data_dir = root / "data"
        self.port = free_ports(1)[0]
        self.url = f"http://127.0.0.1:{self.port}"
        self.processes: list[subprocess.Popen[bytes]] = []
        cli_env = {**env, "DATASHARE_DATA_DIR": str(self.data_dir)}
        slug = "crash_" + suffix()
        admin = [*DATASHARE, "admin"]
        org = [*admin, "create-org", "Crash Test Factory", slug, "provider", "DG"]
        subprocess.run([*org, REGISTRATION["DG"]], env=cli_env, capture_output=True, check=True)
        made = subprocess.run(
            [*admin, "create-client", slug, "c", "--role", "provider"],
            env=cli_env,
            capture_output=True,
            text=True,
            check=True,
        )
        self.creds = json.loads(made.stdout)

    def start(self, name: str, *args: str, **env: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [*DATASHARE, *args, "--data-dir", str(self.data_dir)],
            env={**self.env, **env},
            stdout=subprocess.DEVNULL,
            stderr=(self.root / f"{name}.log").open("ab"),
        )
        self.processes.append(process)
        return process

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")[-4000:]

    def serve(self, **env: str) -> subprocess.Popen[bytes]:
        process = self.start("serve", "serve", "--port", str(self.port), **env)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return process
            except httpx.HTTPError:
                time.sleep(0.2)
        raise AssertionError(self.log("serve"))

    def worker(self, name: str, **env: str) -> subprocess.Popen[bytes]:
        return self.start(name, "worker", **env)

    def http(self) -> httpx.Client:
        token = httpx.post(
            f"{self.url}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(self.creds["client_id"], self.creds["client_secret"]),
        ).json()["access_token"]
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=120
        )

    def job_row(self, job_id: str) -> dict[str, Any]:
        """Read straight from the catalog (the gateway may be dead)."""
        engine = create_engine(f"sqlite:///{self.data_dir / 'catalog.db'}")
        try:
            with engine.connect() as connection:
                row = connection.execute(
                    text("SELECT status, phase, attempts, worker FROM jobs WHERE id = :id"),
                    {"id": job_id},
                ).one()
        finally:
            engine.dispose()
        return dict(row._mapping)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
def stack(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Stack]:
    env = {
        **os.environ,
        "DATASHARE_ENVIRONMENT": "test",
        "DATASHARE_INGEST__LEASE_SECONDS": "3",
        "DATASHARE_INGEST__BATCH_ROWS": "5000",
        "DATASHARE_INGEST__POLL_SECONDS": "0.2",
        "DATASHARE_LOG__LEVEL": "INFO",
    }
    if "s3" in os.environ.get("ACTIVE_BACKENDS", "local,s3"):
        weed = request.getfixturevalue("seaweed")
        env.update(
            {
                "DATASHARE_STORAGE__BACKEND": "s3",
                "DATASHARE_STORAGE__ENDPOINT_URL": weed.endpoint_url,
                "DATASHARE_STORAGE__ACCESS_KEY": weed.credentials.access_key,
                "DATASHARE_STORAGE__SECRET_KEY": weed.credentials.secret_key,
                "DATASHARE_STORAGE__BUCKET_PREFIX": SESSION_PREFIX,
            }
        )
    else:
        env["DATASHARE_STORAGE__BACKEND"] = "local"
    built = Stack(tmp_path, env)
    yield built
    built.stop()


def big_csv(rows: int) -> bytes:
    lines = ["设备编号,时间,用电量(度),时段"]
    lines += [
        f"DG-P{i % 9}-MCC-{i % 97:02d},2025-07-11 {i % 24:02d}:{i % 60:02d},{i % 4000}.5,峰"
        for i in range(rows)
    ]
    return ("\n".join(lines) + "\n").encode()


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def finished(http: httpx.Client, job_id: str) -> dict[str, Any]:
    state: dict[str, Any] = {}

    def done() -> bool:
        state.update(http.get(f"/v1/jobs/{job_id}").json())
        return state["status"] not in ("queued", "running")

    wait_until(done, 180, f"job {job_id}")
    return state


def test_killing_the_gateway_stops_its_worker_which_hands_back_the_job(stack) -> None:
    serve = stack.serve(DATASHARE_INGEST__SHUTDOWN_GRACE_SECONDS="0")
    with stack.http() as http:
        dataset = http.post("/v1/datasets", json={"name": "meters", "contract": ENERGY_CONTRACT})
        dataset_id = dataset.json()["id"]
        job = http.post(f"/v1/datasets/{dataset_id}/uploads", content=big_csv(400_000)).json()
        state: dict[str, Any] = {}

        def reading() -> bool:
            state.update(http.get(f"/v1/jobs/{job['id']}").json())
            assert state["status"] in ("queued", "running"), state
            return state["status"] == "running" and state["rows_read"] > 0

        wait_until(reading, 90, "the job to be reading")
    worker_pid = int(state["worker"].rsplit(":", 1)[1])
    serve.send_signal(signal.SIGKILL)
    serve.wait(10)
    wait_until(lambda: not Path(f"/proc/{worker_pid}").exists(), 30, "the worker to die with it")
    handed_back = stack.job_row(job["id"])
    assert (handed_back["status"], handed_back["attempts"], handed_back["worker"]) == (
        "queued",
        0,
        None,
    )

    stack.serve()
    with stack.http() as http:
        assert http.get(f"/v1/datasets/{dataset_id}/versions").json() == []
        done = finished(http, job["id"])
        assert (done["status"], done["rows_valid"], done["attempts"]) == ("succeeded", 400_000, 1)
        versions = http.get(f"/v1/datasets/{dataset_id}/versions").json()
        assert [(v["version"], v["row_count"]) for v in versions] == [(1, 400_000)]


def query_all(http: httpx.Client, sql_name: str) -> pa.Table:
    sql = f"SELECT meter_id, ts, kwh, tariff FROM {sql_name} ORDER BY ts, meter_id, kwh"
    response = http.post("/v1/query", json={"sql": sql, "format": "arrow"})
    assert response.status_code == 200, response.text
    return pa.ipc.open_stream(response.content).read_all()


def test_a_worker_killed_while_committing_leaves_the_last_version_and_the_job_resumes(
    stack,
) -> None:
    stack.serve(DATASHARE_INGEST__EMBEDDED_WORKERS="0")
    first = stack.worker("first")
    content = big_csv(60_000)
    with stack.http() as http:
        spec = {"name": "meters", "contract": ENERGY_CONTRACT}
        dataset = http.post("/v1/datasets", json=spec).json()
        uploads = f"/v1/datasets/{dataset['id']}/uploads"
        v1 = finished(http, http.post(uploads, content=big_csv(1000)).json()["id"])
        assert (v1["status"], v1["version"]) == ("succeeded", 1), stack.log("first")
        first.send_signal(signal.SIGTERM)
        assert first.wait(30) == 0

        doomed = stack.worker("doomed", DATASHARE_TEST_KILL_AT="before_commit")
        job = http.post(uploads, content=content).json()
        assert doomed.wait(120) == -signal.SIGKILL, stack.log("doomed")
        crashed = http.get(f"/v1/jobs/{job['id']}").json()
        assert (crashed["status"], crashed["phase"], crashed["attempts"]) == (
            "running",
            "committing",
            1,
        )
        versions = http.get(f"/v1/datasets/{dataset['id']}/versions").json()
        assert [(v["version"], v["row_count"]) for v in versions] == [(1, 1000)]
        assert query_all(http, dataset["sql_name"]).num_rows == 1000  # v1 still served

        stack.worker("second")  # takes the job over once the dead worker's lease runs out
        resumed = finished(http, job["id"])
        assert (resumed["status"], resumed["version"], resumed["attempts"]) == (
            "succeeded",
            2,
            2,
        ), stack.log("second")
        clean_spec = {"name": "meters_clean", "contract": ENERGY_CONTRACT}
        clean = http.post("/v1/datasets", json=clean_spec).json()
        clean_job = http.post(f"/v1/datasets/{clean['id']}/uploads", content=content).json()
        assert finished(http, clean_job["id"])["status"] == "succeeded"

        def version_of(dataset_id: str) -> dict[str, Any]:
            return dict(http.get(f"/v1/datasets/{dataset_id}/versions").json()[-1])

        recovered, reference = version_of(dataset["id"]), version_of(clean["id"])
        for field in ("row_count", "rejected_count", "files", "stats", "schema"):
            assert recovered[field] == reference[field], field
        assert query_all(http, dataset["sql_name"]).equals(query_all(http, clean["sql_name"]))
