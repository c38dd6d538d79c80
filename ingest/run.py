"""Ingest jobs end to end: receive an upload and queue it; a worker runs it to a version.

Gateway side: ``receive`` streams the request body (size cap, sha256, strict decoding
check) straight into the raw object in the dataset's region bucket, as a multipart
upload that is aborted if a check fails; ``submit`` queues the job (or, for a duplicate
of a committed version, deletes the object again) and tells the listeners (the embedded
worker processes) that there is work.

Worker side (``ingest.worker.Worker`` claims the job and calls ``run``): download the
raw file and process it (phase ``reading``), upload the Parquet parts under a prefix of
this job and attempt (``uploading``), then commit the version row (``committing``). A
crash at any point leaves the last good version current; the job runs again once its
lease runs out. A stopping worker releases the job (back to ``queued``) instead.
"""

from __future__ import annotations

import codecs
import hashlib
import logging
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

from catalog.audit import AuditLog
from catalog.errors import Conflict, InvalidInput, PlatformError, StorageError, Transient
from catalog.jobs import MAX_ATTEMPTS, JobStore
from catalog.lake import Lake
from catalog.models import Dataset, DatasetVersion, Job, new_id
from catalog.registry import Registry, StaleParent
from catalog.storage.base import ObjectStore
from ingest.contracts import DataContract
from ingest.errors import EmptyFile, EncodingError, FileTooLarge, IngestError, TooManyErrors
from ingest.quarantine import PARQUET_MEDIA_TYPE, QuarantinePage, media_type, read_page
from ingest.settings import IngestSettings
from ingest.sources import TEXT_FORMATS, source_for
from ingest.sources.csv import resolve_encoding
from ingest.worker import Worker

if TYPE_CHECKING:
    from ingest.pipeline import ProcessOutcome, Progress

log = logging.getLogger(__name__)

MODES = ("replace", "append")
KILL_AT_ENV = "DATASHARE_TEST_KILL_AT"
"""Test hook: a worker SIGKILLs itself at the named point (``before_commit``); crash tests."""


@dataclass(frozen=True)
class Received:
    """An upload that passed the checks: in a scratch file (``path``), or already stored
    as the raw object of the job ``job_id`` (``bucket``/``key``) when ``receive`` was
    given the dataset."""

    path: Path | None
    sha256: str
    size: int
    job_id: str | None = None
    bucket: str | None = None
    key: str | None = None

    def discard(self, lake: Lake) -> None:
        """Delete what ``receive`` kept (the upload was not queued)."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)
        if self.bucket is not None and self.key is not None:
            prefix = self.key.rsplit("/", 1)[0] + "/"
            try:
                lake.store_for_bucket(self.bucket).delete_prefix(self.bucket, prefix)
            except PlatformError:
                log.warning("could not delete an unqueued upload", extra={"key": self.key})


class JobReleased(Exception):
    """The worker lets go of a job it holds: it is stopping, or its lease went elsewhere."""


class JobNotRetryableError(Conflict):
    code = "job_not_retryable"

    def __init__(self, job_id: str, status: str) -> None:
        super().__init__(
            f"job {job_id} is {status}; only a failed job can be retried "
            "(upload the file again to replace or append data)",
            job=job_id,
            status=status,
        )


@dataclass
class _Attempt:
    """One run of a job by one worker; ``cancel`` is set when the worker lets go of it."""

    job: Job
    worker: str
    cancel: threading.Event

    def check(self) -> None:
        if self.cancel.is_set():
            raise JobReleased(self.job.id)


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
        self._listeners: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self._delegated = False
        self._local: Worker | None = None

    # where jobs run --------------------------------------------------------------------
    def on_queued(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` whenever a job is queued here (wakes workers before their poll)."""
        self._listeners.append(listener)

    def notify_queued(self) -> None:
        for listener in list(self._listeners):
            try:
                listener()
            except Exception:
                log.warning("could not wake an ingest worker; it will poll", exc_info=True)

    def delegate_to_workers(self) -> None:
        """Jobs run in worker processes (``datashare worker``), never on this process."""
        self._delegated = True

    def start_polling(self, interval: float | None = None) -> None:
        """Run queued jobs on a worker thread of this process, unless they are delegated to
        worker processes. ``datashare serve`` delegates; tests and a gateway app built without
        a platform run jobs in-process with the same worker code."""
        with self._lock:
            if self._delegated or self._local is not None:
                return
            poll = self.settings.poll_seconds
            self._local = Worker(
                self,
                slots=self.settings.workers,
                poll_seconds=min(poll, interval) if interval else poll,
                grace_seconds=0.0,
            )
        self.on_queued(self._local.wake)
        self._local.start()

    def resume_pending(self) -> list[str]:
        """The jobs waiting for a worker (queued, or their worker died); wakes the workers."""
        pending = self.jobs.claimable()
        if pending:
            self.notify_queued()
        return pending

    def close(self) -> None:
        with self._lock:
            local, self._local = self._local, None
        if local is not None:
            local.stop()

    # receiving ---------------------------------------------------------------------
    def receive(
        self,
        chunks: Iterable[bytes],
        *,
        encoding: str,
        fmt: str = "csv",
        dataset: Dataset | None = None,
    ) -> Received:
        """Take in an upload: cap its size, hash it, and for text formats check it decodes
        strictly in the declared encoding (binary formats are checked by their reader).

        With ``dataset`` the bytes stream straight to the raw object of a new job id while
        they are checked (a multipart upload, aborted if a check fails), so the upload and
        the store overlap and nothing touches the local disk. Without, they go to a
        scratch file that ``submit`` stores."""
        codec = resolve_encoding(encoding)  # UnsupportedEncodingError lists the choices
        checked = _Checked(
            chunks,
            limit=self.settings.max_upload_mb * 1024 * 1024,
            decoder=codecs.getincrementaldecoder(codec)("strict") if fmt in TEXT_FORMATS else None,
            encoding=encoding,
        )
        if dataset is not None:
            job_id = new_id()
            bucket = self.lake.bucket(dataset.region)
            key = raw_key(dataset.id, job_id)
            self.lake.store(dataset.region).put_stream(bucket, key, compressed(checked))
            return Received(None, checked.sha256, checked.size, job_id, bucket, key)
        path = self.scratch / f"upload-{new_id()}"
        try:
            with path.open("wb") as out:
                for chunk in compressed(checked):
                    out.write(chunk)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return Received(path, checked.sha256, checked.size)

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
        mode: str = "replace",
    ) -> Job:
        """Store the raw object and queue a job (or record a duplicate of a committed version)."""
        if mode not in MODES:
            received.discard(self.lake)
            raise InvalidInput(f"mode {mode!r}; use replace or append", field="mode")
        stored = received.key is not None
        queued = False
        try:
            duplicate = self.registry.find_version_by_hash(dataset.id, received.sha256)
            job_id = received.job_id or new_id()
            bucket = received.bucket or self.lake.bucket(dataset.region)
            key = received.key or raw_key(dataset.id, job_id)
            fields: dict[str, Any] = {
                "id": job_id,
                "dataset_id": dataset.id,
                "created_by": actor,
                "filename": filename[:255],
                "encoding": encoding,
                "format": fmt,
                "options": options or {},
                "mode": mode,
                "source_bucket": bucket,
                "source_key": key,
                "source_sha256": received.sha256,
                "source_bytes": received.size,
            }
            if duplicate is not None:
                return self.jobs.create(
                    **fields,
                    status="duplicate",
                    phase="done",
                    version=duplicate.version,
                    progress=1.0,
                    rows_read=duplicate.rows_read or duplicate.row_count + duplicate.rejected_count,
                    rows_valid=duplicate.row_count,
                    rows_rejected=duplicate.rejected_count,
                )
            if received.path is not None:  # received without the dataset: store it now
                self.lake.store(dataset.region).put_file(bucket, key, received.path)
            job = self.jobs.create(**fields)
            queued = True
        finally:
            if received.path is not None:
                received.path.unlink(missing_ok=True)
            if stored and not queued:  # a duplicate, or the job could not be created
                received.discard(self.lake)
        self.audit.append(
            actor=actor,
            action="ingest.submit",
            resource=f"dataset:{dataset.id}",
            outcome="accepted",
            detail={"job": job.id, "sha256": received.sha256, "bytes": received.size, "mode": mode},
        )
        self.notify_queued()
        return job

    def retry(self, job_id: str, *, actor: str) -> Job:
        """Queue a failed job again (attempts reset): after fixing the contract, or when its
        worker kept dying. The raw upload is still stored, so nothing is uploaded again."""
        job = self.jobs.get(job_id)
        if not self.jobs.retry(job_id):
            raise JobNotRetryableError(job_id, self.jobs.get(job_id).status)
        queued = self.jobs.get(job_id)
        self.audit.append(
            actor=actor,
            action="ingest.retry",
            resource=f"dataset:{job.dataset_id}",
            outcome="queued",
            detail={"job": job_id, "previous_error": (job.error or {}).get("code")},
        )
        self.notify_queued()
        return queued

    # quarantine ----------------------------------------------------------------------
    def quarantine_page(self, job: Job, *, offset: int, limit: int) -> QuarantinePage:
        """One page of the job's rejected rows (the report is read row group by row group)."""
        if not job.quarantine_key:
            return QuarantinePage([], 0, offset, limit)
        store = self.lake.store_for_bucket(job.source_bucket)
        with tempfile.TemporaryDirectory(prefix="quarantine-", dir=self.scratch) as folder:
            path = Path(folder) / f"report{Path(job.quarantine_key).suffix}"
            store.get_to_file(job.source_bucket, job.quarantine_key, path)
            return read_page(path, offset=offset, limit=limit)

    def quarantine_file(self, job: Job) -> tuple[Iterator[bytes], str] | None:
        """The stored report as a byte stream and its content type (None: nothing rejected)."""
        if not job.quarantine_key:
            return None
        store = self.lake.store_for_bucket(job.source_bucket)
        stream = store.open_stream(job.source_bucket, job.quarantine_key)
        return stream, media_type(job.quarantine_key)

    # running -----------------------------------------------------------------------
    def run(self, job_id: str, *, worker: str, cancel: threading.Event | None = None) -> None:
        """Run a job ``worker`` has claimed (``JobStore.claim``) to its end, or release it."""
        job = self.jobs.get(job_id)
        attempt = _Attempt(job, worker, cancel or threading.Event())
        workdir = self.scratch / f"job-{job_id}-{os.getpid()}-{threading.get_ident()}"
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        try:
            self._run(attempt, workdir)
        except JobReleased:
            released = self.jobs.release(job_id, worker=worker)
            log.info("ingest job released", extra={"job": job_id, "requeued": released})
        except TooManyErrors as exc:
            self._fail(attempt, exc, quarantine=exc.attrs().get("quarantine_key"))
        except StaleParent as exc:
            log.info("append raced another version; queued again", extra=exc.attrs())
            self.jobs.release(job_id, worker=worker)
            self.notify_queued()
        except PlatformError as exc:
            if isinstance(exc, Transient) and job.attempts < MAX_ATTEMPTS:
                log.warning("ingest job will be retried", extra={"job": job_id, **exc.attrs()})
                self.jobs.finish(job_id, status="queued", error=_error(exc), worker=worker)
            else:
                self._fail(attempt, exc)
        except Exception as exc:
            log.exception("ingest job crashed", extra={"job": job_id})
            self._fail(
                attempt,
                IngestError(
                    f"internal error while ingesting: {type(exc).__name__}; the logs have the "
                    f"details; retry with POST /v1/jobs/{job_id}/retry"
                ),
            )
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _run(self, attempt: _Attempt, workdir: Path) -> None:
        job = attempt.job
        committed = self._committed_version(job)
        if committed is not None:  # an earlier attempt committed, then its worker died
            self._succeed(attempt, committed, committed.rows_read, quarantine=job.quarantine_key)
            return
        dataset = self.registry.get_dataset(job.dataset_id)
        contract_version, parent = dataset.contract_version, dataset.current_version
        contract = DataContract.model_validate(
            self.registry.contract(dataset.id, contract_version).contract
        )
        store = self.lake.store(dataset.region)
        source = workdir / "upload" / local_name(job.filename)  # errors name the partner's file
        source.parent.mkdir()
        self._phase(attempt, "downloading")
        fetch_raw(store, job.source_bucket, job.source_key, source, size=job.source_bytes)
        self._phase(attempt, "reading")
        # here, not at import: the pipeline brings Great Expectations (seconds to import),
        # which a gateway process that only queues jobs never needs
        from ingest.pipeline import process_file

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
                on_progress=_Throttled(self.jobs, attempt),
                **self._pipeline_options(dataset, contract, parent, job.mode, workdir),
            )
        except TooManyErrors as exc:
            written = exc.attrs().get("quarantine_path")
            if written and Path(written).is_file():
                key = self._store_quarantine(dataset, job, Path(written))
                exc.add_attrs(quarantine_key=key)
            raise
        self._publish(attempt, dataset, outcome, parent=parent, contract_version=contract_version)

    def _pipeline_options(
        self,
        dataset: Dataset,
        contract: DataContract,
        parent: int | None,
        mode: str,
        workdir: Path,
    ) -> dict[str, Any]:
        """The dataset's region (identifier validators, PII scan) and, when appending, the
        key and unique columns of the rows already in the parent version (streamed from its
        files) so that a new row repeating one of them is rejected."""
        options: dict[str, Any] = {"region": dataset.region}
        keys = list(
            dict.fromkeys([*contract.primary_key, *(c.name for c in contract.columns if c.unique)])
        )
        if mode == "append" and parent is not None and keys:
            options["existing_keys"] = self._existing_keys(
                dataset.id, parent, keys, workdir / "existing"
            )
        return options

    def _existing_keys(
        self, dataset_id: str, parent: int, columns: list[str], folder: Path
    ) -> Iterator[pa.Table]:
        """The ``columns`` of the parent version, one record batch at a time: each file is
        downloaded to the job's workdir, read batch by batch, and deleted."""
        folder.mkdir(parents=True, exist_ok=True)
        for index, entry in enumerate(self.registry.version(dataset_id, parent).files):
            path = folder / f"part-{index:05d}.parquet"
            bucket, key = str(entry["bucket"]), str(entry["key"])
            self.lake.store_for_bucket(bucket).get_to_file(bucket, key, path)
            try:
                with pq.ParquetFile(path) as part:
                    present = [c for c in columns if c in part.schema_arrow.names]
                    if not present:
                        continue  # written under a contract without these columns
                    for batch in part.iter_batches(columns=present, batch_size=65_536):
                        yield pa.Table.from_batches([batch])
            finally:
                path.unlink(missing_ok=True)

    def _publish(
        self,
        attempt: _Attempt,
        dataset: Dataset,
        outcome: ProcessOutcome,
        *,
        parent: int | None,
        contract_version: int,
    ) -> None:
        """Upload the parts (and the quarantine report), then commit the version."""
        job = attempt.job
        store, bucket = self.lake.store(dataset.region), self.lake.bucket(dataset.region)
        self._phase(attempt, "uploading")
        files: list[dict[str, Any]] = []
        for index, part in enumerate(outcome.parts):
            attempt.check()
            key = f"lake/{dataset.id}/{job.id}/{job.attempts}/part-{index:05d}.parquet"
            store.put_file(bucket, key, part.path, PARQUET_MEDIA_TYPE)
            files.append({"bucket": bucket, "key": key, "rows": part.rows, "bytes": part.bytes})
        quarantine = None
        if outcome.rows_rejected and outcome.quarantine_path is not None:
            quarantine = self._store_quarantine(dataset, job, outcome.quarantine_path)
        stats = outcome.stats
        if job.mode == "append" and parent is not None:
            # the parent is immutable; if another version lands first the commit raises
            # StaleParent and the job runs again against the new one
            before = self.registry.version(dataset.id, parent)
            integers = frozenset(c["name"] for c in outcome.schema if c.get("type") == "integer")
            from ingest.stats import merge_stats  # with the pipeline: it imports the GX adapter

            stats = merge_stats(
                before.stats, outcome.stats, parent_rows=before.row_count, integer_columns=integers
            )
        self._phase(attempt, "committing")
        _test_kill_point("before_commit")
        version = self.registry.commit_version(
            dataset.id,
            mode=job.mode,
            parent_version=parent,
            job_id=job.id,
            source_sha256=job.source_sha256,
            source_name=job.filename,
            source_bytes=job.source_bytes,
            contract_version=contract_version,
            rows_read=outcome.rows_read,
            row_count=outcome.rows_valid,
            rejected_count=outcome.rows_rejected,
            bytes=sum(int(f["bytes"]) for f in files),
            schema=outcome.schema,
            stats=stats,
            gx_result=outcome.gx_result,
            files=files,
        )
        self._succeed(attempt, version, outcome.rows_read, quarantine=quarantine)

    def _store_quarantine(self, dataset: Dataset, job: Job, path: Path) -> str:
        key = f"quarantine/{dataset.id}/{job.id}{path.suffix}"
        self.lake.store(dataset.region).put_file(job.source_bucket, key, path, media_type(key))
        return key

    def _phase(self, attempt: _Attempt, phase: str) -> None:
        attempt.check()
        if not self.jobs.progress(attempt.job.id, worker=attempt.worker, phase=phase):
            raise JobReleased(attempt.job.id)  # the lease went to another worker

    def _committed_version(self, job: Job) -> DatasetVersion | None:
        if job.attempts <= 1:
            return None
        return next((v for v in self.registry.versions(job.dataset_id) if v.job_id == job.id), None)

    def _succeed(
        self, attempt: _Attempt, version: DatasetVersion, rows_read: int, *, quarantine: Any
    ) -> None:
        job = attempt.job
        rows_valid = rows_read - version.rejected_count
        self.jobs.finish(
            job.id,
            status="succeeded",
            version=version.version,
            progress=1.0,
            rows_read=rows_read,
            rows_valid=rows_valid,
            rows_rejected=version.rejected_count,
            quarantine_key=quarantine,
            error=None,
        )
        self.audit.append(
            actor=job.created_by,
            action="ingest.commit",
            resource=f"dataset:{job.dataset_id}",
            outcome="committed",
            detail={
                "job": job.id,
                "version": version.version,
                "mode": version.mode,
                "rows": rows_valid,
                "rejected": version.rejected_count,
            },
        )

    def _fail(self, attempt: _Attempt, exc: PlatformError, quarantine: Any = None) -> None:
        job, attrs = attempt.job, exc.attrs()
        self.jobs.finish(
            job.id,
            status="failed",
            worker=attempt.worker,
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
    detail = {k: v for k, v in exc.attrs().items() if k != "quarantine_path"}  # a server path
    return {"code": exc.code, "message": exc.message, "detail": detail}


def _test_kill_point(point: str) -> None:
    if os.environ.get(KILL_AT_ENV) == point:
        log.warning("test hook: killing this worker", extra={"point": point})
        os.kill(os.getpid(), signal.SIGKILL)


def raw_key(dataset_id: str, job_id: str) -> str:
    """Where a job's uploaded file is kept: one zstd frame of the uploaded bytes."""
    return f"raw/{dataset_id}/{job_id}/source{RAW_SUFFIX}"


RAW_SUFFIX = ".zst"
RAW_LEVEL = 1
"""zstd level of raw objects. Partner files are text that shrinks to a third at level 1
(~220 MB/s on one core here, decompressed at ~780 MB/s). Stored as they came, SeaweedFS
gzipped every text chunk itself at its best-compression level: ~30 ms of its CPU per MiB
uploaded and ~10 ms per MiB read back, which made it the slowest part of an ingest."""
RAW_READ_BYTES = 1 << 20
RAW_THREADS = 1
"""zstd compresses on a thread of its own while the upload thread decodes and hashes the
next chunk (decode + hash + compress: 113 → 216 MB/s here; a 1 GiB upload 12.6 → 9.8 s)."""


def compressed(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """``chunks`` as one zstd frame, streamed (the compressor holds a window, not the file).
    The frame records no content size, so the reader is bounded by the upload cap only."""
    compressor = zstandard.ZstdCompressor(
        level=RAW_LEVEL, threads=RAW_THREADS, write_checksum=True
    ).compressobj()
    for chunk in chunks:
        if out := compressor.compress(chunk):
            yield out
    yield compressor.flush()


def fetch_raw(
    store: ObjectStore, bucket: str, key: str, path: Path, *, size: int | None = None
) -> None:
    """Download a job's raw object to ``path``, decompressed; ``path`` appears only once
    complete. The frame comes down with ``get_to_file`` (ranges in parallel: SeaweedFS
    holds one range per request, not the object) next to ``path``, then decompresses from
    the local copy ``RAW_READ_BYTES`` at a time: a frame of zeros shrinks ~30,000-fold, so
    output is read in bounded pieces, never a block at once. ``size``: the upload's size;
    a frame that decompresses to another size (cut short) is refused, and the frame's own
    checksum catches changed bytes. Objects stored before raw compression (no ``.zst``)
    are downloaded as they are, so their jobs stay retryable."""
    if not key.endswith(RAW_SUFFIX):
        store.get_to_file(bucket, key, path)
        return
    frame = path.with_name(f".{path.name}{RAW_SUFFIX}")
    partial = path.with_name(f".{path.name}.partial")
    try:
        store.get_to_file(bucket, key, frame)
        written = 0
        with frame.open("rb") as source, partial.open("wb") as out:
            decompressor = zstandard.ZstdDecompressor()
            with decompressor.stream_reader(source, read_size=RAW_READ_BYTES) as reader:
                while chunk := reader.read(RAW_READ_BYTES):
                    out.write(chunk)
                    written += len(chunk)
        if size is not None and written != size:
            raise StorageError(
                f"the raw object {bucket}/{key} decompresses to {written} bytes; "
                f"the upload had {size}"
            )
        os.replace(partial, path)
    except zstandard.ZstdError as exc:
        raise StorageError(f"the raw object {bucket}/{key} is not a zstd frame: {exc}") from exc
    finally:
        frame.unlink(missing_ok=True)
        partial.unlink(missing_ok=True)


class _Checked:
    """The chunks of an upload, passed through while counting (``FileTooLargeError`` past
    ``limit``), hashing and decoding them strictly (``decoder``; None for binary formats).
    Exhausting it raises ``EncodingError`` for a truncated character at the end and
    ``EmptyFileError`` for no bytes at all, so a consumer never completes on a bad file."""

    def __init__(
        self,
        chunks: Iterable[bytes],
        *,
        limit: int,
        decoder: codecs.IncrementalDecoder | None,
        encoding: str,
    ) -> None:
        self._chunks, self._limit, self._decoder = chunks, limit, decoder
        self._encoding = encoding
        self._digest = hashlib.sha256()
        self.size = 0

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            _decode_or_raise(self._decoder, chunk, self.size, self._encoding)
            self.size += len(chunk)
            if self.size > self._limit:
                raise FileTooLarge(size=self.size, limit=self._limit)
            self._digest.update(chunk)
            yield chunk
        _decode_or_raise(self._decoder, b"", self.size, self._encoding, final=True)
        if self.size == 0:
            raise EmptyFile()


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
    """Progress callback: stops the job when its worker lets go of it, and writes progress to
    the job row at most twice a second (which renews the lease)."""

    def __init__(self, jobs: JobStore, attempt: _Attempt) -> None:
        self.jobs, self.attempt, self._last = jobs, attempt, 0.0

    def __call__(self, progress: Progress) -> None:
        self.attempt.check()
        now = time.monotonic()
        if now - self._last < 0.5:
            return
        self._last = now
        share = progress.bytes_read / progress.total_bytes if progress.total_bytes else 0.0
        held = self.jobs.progress(
            self.attempt.job.id,
            worker=self.attempt.worker,
            progress=min(share, 0.99),
            rows_read=progress.rows_read,
            rows_rejected=progress.rows_rejected,
        )
        if not held:
            raise JobReleased(self.attempt.job.id)


def local_name(filename: str) -> str:
    """A safe local file name that keeps the upload's name for error messages: only the
    last path component, no leading dots, at most 120 characters; ``source`` otherwise."""
    name = PurePath(filename.replace("\\", "/")).name.lstrip(".")[:120]
    return name or "source"
