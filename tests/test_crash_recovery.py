"""Killing the gateway process mid-ingest leaves no partial version; the job is retried."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from catalog.storage.seaweed import free_ports
from tests.conftest import SESSION_PREFIX
from tests.factories import ENERGY_CONTRACT, REGISTRATION, suffix

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def serve(data_dir: Path, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "serve",
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(data_dir.parent / f"serve-{port}.log", "ab"),  # noqa: SIM115
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError((data_dir.parent / f"serve-{port}.log").read_text()[-3000:])


def big_csv(rows: int) -> bytes:
    lines = ["设备编号,时间,用电量(度),时段"]
    lines += [
        f"DG-P{i % 9}-MCC-{i % 97:02d},2025-07-11 {i % 24:02d}:{i % 60:02d},{i % 4000}.5,峰"
        for i in range(rows)
    ]
    return ("\n".join(lines) + "\n").encode()


def test_kill_during_ingest_leaves_no_partial_version_and_job_is_retried(
    tmp_path: Path, request
) -> None:
    data_dir = tmp_path / "data"
    env = {
        **os.environ,
        "DATASHARE_ENVIRONMENT": "test",
        "DATASHARE_INGEST__LEASE_SECONDS": "3",
        "DATASHARE_INGEST__BATCH_ROWS": "5000",
        "DATASHARE_LOG__LEVEL": "WARNING",
    }
    if "s3" in os.environ.get("ACTIVE_BACKENDS", "local,s3"):
        c = request.getfixturevalue("seaweed").credentials
        env.update(
            {
                "DATASHARE_STORAGE__BACKEND": "s3",
                "DATASHARE_STORAGE__ENDPOINT_URL": request.getfixturevalue("seaweed").endpoint_url,
                "DATASHARE_STORAGE__ACCESS_KEY": c.access_key,
                "DATASHARE_STORAGE__SECRET_KEY": c.secret_key,
                "DATASHARE_STORAGE__BUCKET_PREFIX": SESSION_PREFIX,
            }
        )
    else:
        env["DATASHARE_STORAGE__BACKEND"] = "local"
    cli_env = {**env, "DATASHARE_DATA_DIR": str(data_dir)}
    slug = "crash_" + suffix()
    for args in (["create-org", "Crash Test Factory", slug, "provider", "DG", REGISTRATION["DG"]],):
        assert (
            subprocess.run(
                [sys.executable, "-m", "gateway.cli", "admin", *args],
                env=cli_env,
                capture_output=True,
                check=False,
            ).returncode
            == 0
        )
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "admin",
            "create-client",
            slug,
            "c",
            "--role",
            "provider",
        ],
        env=cli_env,
        capture_output=True,
        text=True,
        check=True,
    )
    import json

    creds = json.loads(made.stdout)
    port = free_ports(1)[0]
    process = serve(data_dir, port, env)
    url = f"http://127.0.0.1:{port}"
    try:
        tok = httpx.post(
            f"{url}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(creds["client_id"], creds["client_secret"]),
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {tok}"}
        dataset = httpx.post(
            f"{url}/v1/datasets",
            headers=headers,
            json={"name": "meters", "contract": ENERGY_CONTRACT},
        ).json()
        job = httpx.post(
            f"{url}/v1/datasets/{dataset['id']}/uploads",
            headers=headers,
            content=big_csv(400_000),
            timeout=120,
        ).json()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = httpx.get(f"{url}/v1/jobs/{job['id']}", headers=headers).json()
            if state["status"] == "running" and state["rows_read"] > 0:
                break
            assert state["status"] in ("queued", "running"), state
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        assert state["status"] == "running"

        process = serve(data_dir, port, env)
        versions = httpx.get(f"{url}/v1/datasets/{dataset['id']}/versions", headers=headers).json()
        assert versions == [], "a partial version became visible after the crash"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            state = httpx.get(f"{url}/v1/jobs/{job['id']}", headers=headers).json()
            if state["status"] not in ("queued", "running"):
                break
            time.sleep(0.3)
        assert (state["status"], state["rows_valid"], state["attempts"]) == (
            "succeeded",
            400_000,
            2,
        ), state
        versions = httpx.get(f"{url}/v1/datasets/{dataset['id']}/versions", headers=headers).json()
        assert [(v["version"], v["row_count"]) for v in versions] == [(1, 400_000)]
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
