"""Ingest jobs end to end: receive an upload, validate it, commit a version.

``receive`` streams the request body to a scratch file (size cap, sha256,
strict decoding check), stores the raw object in the dataset's region bucket
and queues a job. ``run`` claims the job's lease, processes the file
(``ingest.pipeline``), uploads the Parquet parts under a job-specific prefix and
only then commits the version row: a crash at any point leaves the last good
version current and the job claimable again once its lease runs out.
"""

from __future__ import annotations

import codecs
import hashlib
import importlib
import logging
import shutil
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catalog.audit import AuditLog
from catalog.errors import PlatformError, Transient
from catalog.jobs import JobStore
from catalog.lake import Lake
from catalog.models import Dataset, Job, new_id
from catalog.registry import Registry
from ingest.contracts import DataContract
from ingest.errors import EmptyFile, EncodingError, FileTooLarge, IngestError, TooManyErrors
from ingest.pipeline import ProcessOutcome, Progress, process_file
from ingest.settings import IngestSettings
from ingest.sources import TEXT_FORMATS, source_for
from ingest.sources.csv import resolve_encoding

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Received:
    path: Path
    sha256: str
    size: int


class IngestService:
    def __init__(
        self,
        *,
        registry: Registry,
        jobs: JobStore,
        lake: Lake,
        audit: AuditLog,
        settings: IngestSettings,
        scratch: Path,
    ) -> None:
        self.registry = registry
        self.jobs = jobs
        self.lake = lake
        self.audit = audit
        self.settings = settings
        self.scratch = scratch
        self.scratch.mkdir(parents=True, exist_ok=True)
        self._executor = ThreadPoolExecutor(settings.workers, thread_name_prefix="ingest")
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._scheduled: set[str] = set()
        # Great Expectations takes seconds to import: do it now, not in the first upload's job
        self._executor.submit(importlib.import_module, "ingest.validate")

    def close(self) -> None:
        self._closed.set()
        self._executor.shutdown(wait=True, cancel_futures=True)

    def start_polling(self, interval: float = 15.0) -> None:
        """Pick up jobs queued by other processes or orphaned by a crash, every ``interval`` s."""

        def loop() -> None:
            while not self._closed.wait(interval):
                try:
                    self.resume_pending()
                except Exception:
                    log.exception("polling for ingest jobs failed; will try again")

        threading.Thread(target=loop, name="ingest-poller", daemon=True).start()

    # receiving ---------------------------------------------------------------------
    def receive(self, chunks: Iterable[bytes], *, encoding: str, fmt: str = "csv") -> Received:
        """Stream an upload to scratch: cap its size, hash it, and for text formats check it
        decodes strictly in the declared encoding (binary formats are checked by their reader)."""
        codec = resolve_encoding(encoding)  # UnsupportedEncodingError lists the choices
        limit = self.settings.max_upload_mb * 1024 * 1024
        path = self.scratch / f"upload-{new_id()}"
        digest, size = hashlib.sha256(), 0
        text = fmt in TEXT_FORMATS
        decoder = codecs.getincrementaldecoder(codec)("strict") if text else None
        try:
            with path.open("wb") as out:
                for chunk in chunks:
                    _decode_or_raise(decoder, chunk, size, encoding)
                    size += len(chunk)
                    if size > limit:
                        raise FileTooLarge(size=size, limit=limit)
                    digest.update(chunk)
                    out.write(chunk)
            _decode_or_raise(decoder, b"", size, encoding, final=True)
            if size == 0:
                raise EmptyFile()
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return Received(path, digest.hexdigest(), size)

    def submit(
        self,
        dataset: Dataset,
        received: Received,
        *,
        filename: str,
        encoding: str,
        actor: str,
        fmt: str = "csv",
        options: dict[str, Any] | None = None,
    ) -> Job:
        """Store the raw object and queue a job (or record a duplicate of a committed version)."""
        try:
            duplicate = self.registry.find_version_by_hash(dataset.id, received.sha256)
            job_id = new_id()
            bucket = self.lake.bucket(dataset.region)
            key = f"raw/{dataset.id}/{job_id}/source"
            fields: dict[str, Any] = {
                "id": job_id,
                "dataset_id": dataset.id,
                "created_by": actor,
                "filename": filename[:255],
                "encoding": encoding,
                "format": fmt,
                "options": options or {},
                "source_bucket": bucket,
                "source_key": key,
                "source_sha256": received.sha256,
                "source_bytes": received.size,
            }
            if duplicate is not None:
                return self.jobs.create(
                    **fields,
                    status="duplicate",
                    version=duplicate.version,
                    progress=1.0,
                    rows_read=duplicate.row_count + duplicate.rejected_count,
                    rows_valid=duplicate.row_count,
                    rows_rejected=duplicate.rejected_count,
                )
            self.lake.store(dataset.region).put_file(bucket, key, received.path)
            job = self.jobs.create(**fields)
        finally:
            received.path.unlink(missing_ok=True)
        self.audit.append(
            actor=actor,
            action="ingest.submit",
            resource=f"dataset:{dataset.id}",
            outcome="accepted",
            detail={"job": job.id, "sha256": received.sha256, "bytes": received.size},
        )
        self.schedule(job.id)
        return job

    def schedule(self, job_id: str) -> None:
        if self._closed.is_set():
            return
        with self._lock:
            self._scheduled.add(job_id)
        self._executor.submit(self._run_scheduled, job_id)

    def _run_scheduled(self, job_id: str) -> None:
        try:
            self.run(job_id)
        finally:
            with self._lock:
                self._scheduled.discard(job_id)

    def resume_pending(self) -> list[str]:
        """Queue every job that is waiting or whose runner died (lease expired)."""
        self.jobs.exhaust_stale()
        pending = [j for j in self.jobs.claimable() if j not in self._scheduled]
        for job_id in pending:
            self.schedule(job_id)
        return pending

    # running -----------------------------------------------------------------------
    def run(self, job_id: str) -> None:
        if not self.jobs.claim(job_id):
            return  # another worker holds it, or it is finished
        job = self.jobs.get(job_id)
        workdir = self.scratch / f"job-{job_id}"
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        try:
            self._run(job, workdir)
        except TooManyErrors as exc:
            self._fail(job, exc, quarantine=exc.attrs().get("quarantine_key"))
        except PlatformError as exc:
            if isinstance(exc, Transient):
                log.warning("ingest job will be retried", extra={"job": job_id, **exc.attrs()})
                self.jobs.finish(job_id, status="queued", error=_error(exc))
                return
            self._fail(job, exc)
        except Exception as exc:
            log.exception("ingest job crashed", extra={"job": job_id})
            self._fail(job, IngestError(f"internal error while ingesting: {type(exc).__name__}"))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _run(self, job: Job, workdir: Path) -> None:
        dataset = self.registry.get_dataset(job.dataset_id)
        store = self.lake.store(dataset.region)
        source = workdir / "source"
        store.get_to_file(job.source_bucket, job.source_key, source)
        contract = DataContract.model_validate(dataset.contract)
        try:
            outcome = process_file(
                source,
                contract,
                source=source_for(job.format, **job.options),
                delimiter="\t" if job.format == "tsv" else ",",
                encoding=job.encoding,
                staging_dir=workdir / "staging",
                max_error_ratio=self.settings.max_error_ratio,
                batch_rows=self.settings.batch_rows,
                on_progress=_Throttled(self.jobs, job.id),
            )
        except TooManyErrors as exc:
            quarantine = workdir / "staging" / "quarantine.jsonl"
            if quarantine.is_file():
                key = f"quarantine/{dataset.id}/{job.id}.jsonl"
                store.put_file(job.source_bucket, key, quarantine, "application/x-ndjson")
                exc.add_attrs(quarantine_key=key)
            raise
        self._commit(job, dataset, outcome)

    def _commit(self, job: Job, dataset: Dataset, outcome: ProcessOutcome) -> None:
        store, bucket = self.lake.store(dataset.region), self.lake.bucket(dataset.region)
        files: list[dict[str, Any]] = []
        for index, part in enumerate(outcome.parts):
            key = f"lake/{dataset.id}/{job.id}/part-{index:05d}.parquet"
            store.put_file(bucket, key, part.path, "application/vnd.apache.parquet")
            files.append({"bucket": bucket, "key": key, "rows": part.rows, "bytes": part.bytes})
        quarantine_key = None
        if outcome.rows_rejected and outcome.quarantine_path is not None:
            quarantine_key = f"quarantine/{dataset.id}/{job.id}.jsonl"
            store.put_file(bucket, quarantine_key, outcome.quarantine_path, "application/x-ndjson")
        version = self.registry.commit_version(
            dataset.id,
            job_id=job.id,
            source_sha256=job.source_sha256,
            row_count=outcome.rows_valid,
            rejected_count=outcome.rows_rejected,
            bytes=sum(int(f["bytes"]) for f in files),
            schema=outcome.schema,
            stats=outcome.stats,
            gx_result=outcome.gx_result,
            files=files,
        )
        self.jobs.finish(
            job.id,
            status="succeeded",
            version=version.version,
            progress=1.0,
            rows_read=outcome.rows_read,
            rows_valid=outcome.rows_valid,
            rows_rejected=outcome.rows_rejected,
            quarantine_key=quarantine_key,
            error=None,
        )
        self.audit.append(
            actor=job.created_by,
            action="ingest.commit",
            resource=f"dataset:{dataset.id}",
            outcome="committed",
            detail={
                "job": job.id,
                "version": version.version,
                "rows": outcome.rows_valid,
                "rejected": outcome.rows_rejected,
            },
        )

    def _fail(self, job: Job, exc: PlatformError, quarantine: Any = None) -> None:
        attrs = exc.attrs()
        self.jobs.finish(
            job.id,
            status="failed",
            error=_error(exc),
            quarantine_key=quarantine,
            rows_read=int(attrs.get("rows_read", 0) or 0),
            rows_rejected=int(attrs.get("rows_rejected", 0) or 0),
        )
        self.audit.append(
            actor=job.created_by,
            action="ingest.commit",
            resource=f"dataset:{job.dataset_id}",
            outcome="failed",
            detail={"job": job.id, "code": exc.code},
        )


def _error(exc: PlatformError) -> dict[str, Any]:
    return {"code": exc.code, "message": exc.message, "detail": exc.attrs()}


def _decode_or_raise(
    decoder: codecs.IncrementalDecoder | None,
    chunk: bytes,
    offset: int,
    encoding: str,
    final: bool = False,
) -> None:
    if decoder is None:  # binary formats: their reader validates the bytes
        return
    try:
        decoder.decode(chunk, final)
    except UnicodeDecodeError as exc:
        raise EncodingError(encoding=encoding, offset=offset + exc.start) from None


class _Throttled:
    """Progress callback: writes to the job row at most twice a second (also renews the lease)."""

    def __init__(self, jobs: JobStore, job_id: str) -> None:
        self.jobs, self.job_id, self._last = jobs, job_id, 0.0

    def __call__(self, progress: Progress) -> None:
        now = time.monotonic()
        if now - self._last < 0.5:
            return
        self._last = now
        share = progress.bytes_read / progress.total_bytes if progress.total_bytes else 0.0
        self.jobs.progress(
            self.job_id,
            progress=min(share, 0.99),
            rows_read=progress.rows_read,
            rows_rejected=progress.rows_rejected,
        )
