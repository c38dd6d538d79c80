"""The README's curl tour, run verbatim (bar the port and paths) against `datashare demo`."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from catalog.storage.seaweed import free_ports

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[1]


def tour_script() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Five-minute tour (curl)", 1)[1]
    return section.split("```bash", 1)[1].split("```", 1)[0]


def test_readme_tour_runs_against_the_demo(tmp_path: Path) -> None:
    data_dir, port = tmp_path / "demo", free_ports(1)[0]
    env = {**os.environ, "DATASHARE_DATA_DIR": str(data_dir)}
    demo = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "demo", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        credentials = data_dir / "demo-credentials.json"
        deadline = time.monotonic() + 240
        while not credentials.exists():
            assert demo.poll() is None, demo.stdout.read().decode() if demo.stdout else ""
            assert time.monotonic() < deadline, "the demo did not finish loading"
            time.sleep(0.5)
        document = json.loads(credentials.read_text())
        assert document["gateway"] == f"http://127.0.0.1:{port}"
        clients = document["clients"]
        assert all(
            set(c) == {"name", "client_id", "client_secret", "role", "org", "region"}
            for c in clients
        )
        providers = {c["region"] for c in clients if c["role"] == "provider"}
        assert providers == {"GZ", "SZ", "DG", "HK", "MO"}
        assert {c["role"] for c in clients} == {"provider", "consumer", "steward"}
        script = (
            tour_script()
            .replace("GW=http://127.0.0.1:8000", f"GW=http://127.0.0.1:{port}")
            .replace("CREDS=.datashare/demo-credentials.json", f"CREDS={credentials}")
            .replace(".venv/bin/datashare", f"{sys.executable} -m gateway.cli")
            .replace("/tmp/press_line.csv", str(tmp_path / "press_line.csv"))
        )
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=180,
            check=False,
        )
        out = result.stdout
        assert result.returncode == 0, result.stderr + out
        assert '"roles":["provider"]' in out
        assert re.search(r'"status":"succeeded".*"rows_valid":39,"rows_rejected":1', out), out
        assert '"row": 40' in out and '"rule": "range"' in out
        assert (
            '"rows":[["PL-39","2025-07-11T08:15:00",39.5],["PL-38"' in out
        )  # the provider's own rows
        assert '"code":"access_denied"' in out  # the consumer before the grant
        assert (
            '"rows":[["PL-01",1.5],["PL-02",2.5],["PL-03",3.5]],"row_count":3' in out
        )  # after the grant
        assert re.search(r'"name":"tariff_period".*"rows":\[\["谷",[0-9.]+\]', out), (
            out
        )  # demo data
        assert '"code":"query_refused"' in out
        assert "top hits: ['dg_songhu_precision.dg_energy_metering'" in out  # catalog search
    finally:
        os.killpg(demo.pid, signal.SIGINT)
        try:
            demo.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, signal.SIGKILL)
