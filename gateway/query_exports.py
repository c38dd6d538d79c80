"""Exports: a governed query result materialised as Parquet in the consumer's export bucket.

``start_export`` governs the SQL exactly like ``POST /v1/query`` (same rewrite, same
audit, same per-client limits), records the export with its lineage (each governed
source: dataset id, committed version, grant) and starts the worker; the result is then
written by a background thread, batch by batch, into Parquet parts of at most
``part_bytes`` in ``<region bucket>-exports`` of the consumer organisation's own region,
under ``exports/<export id>/part-NNNN.parquet``.

While it runs, the grants behind it are re-read at least every ``GRANT_CHECK_S``
seconds: a revoked or expired grant stops the worker, deletes what was written and
marks the export ``revoked``. ``export_view`` hands out presigned URLs (short expiry)
for the export's own objects only, after checking the grants again; dataset files are
never presigned.

Files do not outlive their purpose: ``sweep_exports`` (every ``export_sweep_seconds`` on a
thread of each gateway, and ``datashare admin sweep-exports``) deletes the objects of
exports past their retention (→ ``expired``), of exports whose grant was revoked or expired
since (→ ``revoked``), and of ``running`` exports whose gateway died (→ ``failed``). Each
sweep is audited; deleting is idempotent, so several gateways may sweep at once.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from catalog.errors import NotFound, PlatformError, QueryError
from catalog.exports import Export, ExportStatus, ExportStore, SourceRef
from catalog.grants import GrantStore
from catalog.models import aware, utcnow
from catalog.storage.base import ObjectStore
from gateway.query_runner import QueryStream
from gateway.query_service import Governed, govern_for, open_stream
from policies.ledger import record_delivery
from policies.model import Principal

if TYPE_CHECKING:
    from gateway.services import Platform

log = logging.getLogger("datashare.exports")
GRANT_CHECK_S = 1.0


class ExportRevoked(QueryError):
    code = "export_revoked"


class ExportTooLarge(QueryError):
    code = "export_too_large"


class ExportService:
    """Background writers for running exports; one per platform."""

    def __init__(
        self,
        store: ExportStore,
        *,
        scratch_root: Path,
        workers: int = 2,
        part_bytes: int = 256 << 20,
        url_seconds: int = 300,
        retention_hours: int = 24,
        max_rows: int = 100_000_000,
        stale_seconds: float = 3600.0,
    ) -> None:
        self.store = store
        self.stale = timedelta(seconds=stale_seconds)  # a running export this old has no writer
        self.scratch_root = scratch_root
        self.part_bytes, self.url_seconds = part_bytes, url_seconds
        self.retention = timedelta(hours=retention_hours)
        self.max_rows = max_rows
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="export")
        self._buckets_ready: set[str] = set()
        self._lock = threading.Lock()
        self._running: dict[str, threading.Event] = {}
        self._sweeping = threading.Event()
        self._sweeper: threading.Thread | None = None

    def close(self) -> None:
        self.stop_sweeper()
        with self._lock:
            for stop in self._running.values():
                stop.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def start_sweeper(self, platform: Platform, interval: float) -> None:
        """Sweep every ``interval`` seconds on a daemon thread until ``close``."""
        if interval <= 0 or self._sweeper is not None:
            return

        def loop() -> None:
            while not self._sweeping.wait(interval):
                try:
                    sweep_exports(platform)
                except Exception:  # the next round retries; never kill the thread
                    log.exception("export sweep failed")

        self._sweeping.clear()
        self._sweeper = threading.Thread(target=loop, name="export-sweeper", daemon=True)
        self._sweeper.start()

    def stop_sweeper(self) -> None:
        self._sweeping.set()
        if self._sweeper is not None:
            self._sweeper.join(timeout=30)
            self._sweeper = None

    def ensure_bucket(self, store: ObjectStore, bucket: str) -> None:
        with self._lock:
            if bucket in self._buckets_ready:
                return
        store.ensure_bucket(bucket)
        with self._lock:
            self._buckets_ready.add(bucket)

    def wait(self, export_id: str, timeout: float) -> None:
        """Tests and the CLI: block until the export's writer finished (or ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if export_id not in self._running:
                    return
            time.sleep(0.05)


def start_export(platform: Platform, principal: Principal, sql: str) -> Export:
    service: ExportService = platform.exports
    governed = govern_for(
        platform, principal, sql, action="export.create", max_rows=service.max_rows
    )
    region = principal.region
    bucket = platform.lake.export_bucket(region)
    store = platform.lake.store(region)
    service.ensure_bucket(store, bucket)
    export = service.store.create(
        consumer_org_id=principal.org_id,
        client_id=principal.client_id,
        query_sha256=governed.sql_sha256,
        region=region,
        bucket=bucket,
        expires_at=utcnow() + service.retention,
        sources=[
            SourceRef(s.dataset_id, s.version, governed.grants.get(s.dataset_id))
            for s in governed.query.sources
        ],
    )
    try:
        stream = open_stream(platform, governed.query, principal)
    except PlatformError as exc:
        service.store.finish(export.id, "failed", error={"code": exc.code, "message": exc.message})
        raise
    stop = threading.Event()
    with service._lock:
        service._running[export.id] = stop
    service._pool.submit(_write, platform, export, governed, stream, store, stop, principal)
    return export


def _write(
    platform: Platform,
    export: Export,
    governed: Governed,
    stream: QueryStream,
    store: ObjectStore,
    stop: threading.Event,
    principal: Principal | None = None,
) -> None:
    service: ExportService = platform.exports
    scratch = service.scratch_root / export.id
    writer = _PartWriter(store, export, scratch, service)
    outcome: tuple[ExportStatus, dict[str, Any] | None] = ("failed", None)
    try:
        with stream:
            outcome = _copy(platform, governed, stream, writer, stop)
    except PlatformError as exc:
        outcome = ("failed", {"code": exc.code, "message": exc.message})
    except Exception:
        log.exception("export %s failed", export.id)
        outcome = ("failed", {"code": "export_failed", "message": "the export failed; retry"})
    finally:
        writer.close()
        shutil.rmtree(scratch, ignore_errors=True)
        status, error = outcome
        if status != "succeeded":
            store.delete_prefix(export.bucket, f"exports/{export.id}/")
        service.store.finish(export.id, status, rows=writer.rows, size=writer.bytes, error=error)
        platform.audit.append(
            actor=export.client_id,
            action="export.finish",
            resource=f"export:{export.id}",
            outcome=status,
            detail={"rows": writer.rows, "bytes": writer.bytes, **(error or {})},
        )
        with service._lock:
            service._running.pop(export.id, None)
        if status == "succeeded" and principal is not None:
            _ledger(platform, principal, governed, writer.rows)


def _ledger(platform: Platform, principal: Principal, governed: Governed, rows: int) -> None:
    """The delivery ledger (DOMAIN.md rule 13): an export that wrote rows is a delivery."""
    try:
        record_delivery(
            platform.query_policy,
            principal,
            governed.query.sources,
            rows=rows,
            action="export",
            audit=platform.audit,
        )
    except Exception:
        log.exception("delivery ledger write failed", extra={"rows": rows})


def _copy(
    platform: Platform,
    governed: Governed,
    stream: QueryStream,
    writer: _PartWriter,
    stop: threading.Event,
) -> tuple[ExportStatus, dict[str, Any] | None]:
    checked = time.monotonic()
    for batch in stream:
        if stop.is_set():
            return "failed", {"code": "export_cancelled", "message": "the gateway shut down"}
        if time.monotonic() - checked >= GRANT_CHECK_S:
            if (revoked := revoked_grant(platform.grants, governed.grants)) is not None:
                return "revoked", _revoked_error(revoked)
            checked = time.monotonic()
        writer.write(stream.schema, batch)
    if stream.truncated:
        return "failed", {
            "code": ExportTooLarge.code,
            "message": f"the result has more than {platform.exports.max_rows} rows; export "
            "fewer rows (WHERE) or ask an operator to raise query.export_max_rows",
        }
    if (revoked := revoked_grant(platform.grants, governed.grants)) is not None:
        return "revoked", _revoked_error(revoked)
    writer.finish(stream.schema)
    return "succeeded", None


def _revoked_error(grant_id: str) -> dict[str, Any]:
    return {
        "code": ExportRevoked.code,
        "message": f"grant {grant_id} was revoked or expired while the export ran; its files "
        "were deleted. Request access again before exporting",
        "grant": grant_id,
    }


def revoked_grant(
    grants: GrantStore, used: dict[str, str | None], now: datetime | None = None
) -> str | None:
    """The first grant in ``used`` that is revoked or expired ``now`` (None: all live)."""
    now = now or datetime.now(UTC)
    for grant_id in used.values():
        if grant_id is None:
            continue
        try:
            grant = grants.get(grant_id)
        except NotFound:
            return grant_id
        expires = grant.expires_at
        if expires is not None and expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        if grant.revoked_at is not None or (expires is not None and expires <= now):
            return grant_id
    return None


class _PartWriter:
    """Parquet parts of at most ``part_bytes``, each uploaded as soon as it is complete."""

    def __init__(
        self, store: ObjectStore, export: Export, scratch: Path, service: ExportService
    ) -> None:
        self.store, self.export, self.scratch, self.service = store, export, scratch, service
        self.rows = self.bytes = 0
        self._index = 0
        self._writer: pq.ParquetWriter | None = None
        self._path: Path | None = None
        self._part_rows = 0

    def write(self, schema: pa.Schema, batch: pa.RecordBatch) -> None:
        if self._writer is None:
            self.scratch.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._path = self.scratch / f"part-{self._index:04d}.parquet"
            self._writer = pq.ParquetWriter(self._path, schema, compression="zstd")
        self._writer.write_batch(batch)
        self._part_rows += batch.num_rows
        assert self._path is not None
        if self._path.stat().st_size >= self.service.part_bytes:
            self.flush()

    def finish(self, schema: pa.Schema) -> None:
        """Upload the last part; an empty result still gets one (empty) part with its schema."""
        if self._writer is None and self._index == 0:
            self.scratch.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._path = self.scratch / "part-0000.parquet"
            self._writer = pq.ParquetWriter(self._path, schema, compression="zstd")
        self.flush()

    def flush(self) -> None:
        """Close and upload the current part."""
        if self._writer is None:
            return
        self._writer.close()
        self._writer = None
        assert self._path is not None
        key = f"exports/{self.export.id}/part-{self._index:04d}.parquet"
        info = self.store.put_file(
            self.export.bucket, key, self._path, "application/vnd.apache.parquet"
        )
        self.service.store.add_object(self.export.id, key, info.size, self._part_rows)
        self.rows += self._part_rows
        self.bytes += info.size
        self._path.unlink()
        self._index += 1
        self._part_rows = 0

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def sweep_exports(platform: Platform, *, now: datetime | None = None) -> dict[str, int]:
    """Delete the files of every export that must not keep them (see the module docstring);
    how many exports ended in each status."""
    service: ExportService = platform.exports
    now = now or datetime.now(UTC)
    swept: dict[str, int] = {"expired": 0, "revoked": 0, "failed": 0}
    while due := service.store.due_for_sweep(now=now, stale_before=now - service.stale):
        for export in due:
            with service._lock:
                if export.id in service._running:  # this gateway is still writing it
                    continue
            status, error = _sweep_outcome(platform, export, now)
            platform.lake.store(export.region).delete_prefix(export.bucket, f"exports/{export.id}/")
            service.store.close_swept(export.id, status, error)
            platform.audit.append(
                actor="system:export-sweeper",
                action="export.sweep",
                resource=f"export:{export.id}",
                outcome=status,
                detail={"org": export.consumer_org_id, **(error or {})},
            )
            swept[status] += 1
        if all(e.id in service._running for e in due):
            break
    if any(swept.values()):
        log.info("export sweep", extra=swept)
    return swept


def _sweep_outcome(
    platform: Platform, export: Export, now: datetime
) -> tuple[ExportStatus, dict[str, Any] | None]:
    if export.status == "running":
        return "failed", {
            "code": "export_abandoned",
            "message": "the gateway writing this export stopped before it finished; export again",
        }
    used = {s.dataset_id: s.grant_id for s in platform.exports.store.sources(export.id)}
    if (revoked := revoked_grant(platform.grants, used, now)) is not None:
        return "revoked", _revoked_error(revoked)
    return "expired", None


def list_exports(platform: Platform, principal: Principal, *, limit: int) -> list[dict[str, Any]]:
    """The caller organisation's exports, newest first: status and lineage, no URLs (those
    come from ``export_view``, which re-checks the grants before presigning)."""
    store = platform.exports.store
    now = datetime.now(UTC)
    exports = store.for_org(principal.org_id, limit=limit)
    sources = store.sources_of([e.id for e in exports])
    out = []
    for export in exports:
        expires = aware(export.expires_at)
        status = "expired" if export.status == "succeeded" and expires <= now else export.status
        out.append(
            {
                "id": export.id,
                "status": status,
                "region": export.region,
                "row_count": export.row_count,
                "byte_count": export.byte_count,
                "created_at": export.created_at,
                "finished_at": export.finished_at,
                "expires_at": expires,
                "sources": [
                    {"dataset_id": s.dataset_id, "version": s.version, "grant_id": s.grant_id}
                    for s in sources[export.id]
                ],
            }
        )
    return out


def export_view(platform: Platform, principal: Principal, export_id: str) -> dict[str, Any]:
    """The export's record, lineage and, when it succeeded and is still allowed, its URLs."""
    service: ExportService = platform.exports
    export = service.store.get(export_id)
    if export.consumer_org_id != principal.org_id:
        raise NotFound("export", export_id)  # another organisation's export does not exist
    sources = service.store.sources(export_id)
    status = export.status
    expires = aware(export.expires_at)
    files: list[dict[str, Any]] = []
    error = export.error
    if status == "succeeded":
        used = {s.dataset_id: s.grant_id for s in sources}
        revoked = revoked_grant(platform.grants, used)
        if revoked is not None:
            status, error = "revoked", _revoked_error(revoked)
            platform.lake.store(export.region).delete_prefix(export.bucket, f"exports/{export_id}/")
            service.store.finish(
                export_id, "revoked", rows=export.row_count, size=export.byte_count, error=error
            )
        elif expires <= datetime.now(UTC):
            status = "expired"
        else:
            store = platform.lake.store(export.region)
            files = [
                {
                    "key": obj.key,
                    "size": obj.size,
                    "rows": obj.rows,
                    "url": store.presigned_get(export.bucket, obj.key, service.url_seconds),
                }
                for obj in service.store.objects(export_id)
            ]
    return {
        "id": export.id,
        "status": status,
        "region": export.region,
        "row_count": export.row_count,
        "byte_count": export.byte_count,
        "created_at": export.created_at,
        "finished_at": export.finished_at,
        "expires_at": expires,
        "query_sha256": export.query_sha256,
        "sources": [
            {"dataset_id": s.dataset_id, "version": s.version, "grant_id": s.grant_id}
            for s in sources
        ],
        "files": files,
        "url_expires_in": service.url_seconds if files else None,
        "error": error,
    }
