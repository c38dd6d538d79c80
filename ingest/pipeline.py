"""Process one uploaded file into local Parquet parts, a quarantine report and metadata.

``process_file`` streams the file through a ``Source`` (decode, parse, all strings),
``ingest.transform.STEPS`` (type, key, GX) and the writers, batch by batch, so memory
does not grow with the file: the primary-key and unique checks keep their keys on disk
(``ingest.keys``), and the few rows they cannot decide at once wait there too until the
end of the file. It writes only inside ``staging_dir``: ``part-NNNNN.parquet`` and
``quarantine.parquet`` (and, while it runs, the key check's ``.keys/``). Uploading the
parts and committing the version atomically is the caller's job (``ingest.run``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import shutil
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from catalog.errors import InvalidInput
from ingest.contracts import DataContract
from ingest.errors import EmptyFileError, TooManyRejectedRowsError
from ingest.keys import Deferred, resolve
from ingest.pii import PiFinding, scan_table
from ingest.sources.base import OpenSource, Source, SourceOptions
from ingest.sources.csv import CsvSource
from ingest.stats import ColumnStats, update_stats
from ingest.transform import (
    BatchState,
    TransformContext,
    arrow_schema,
    bind_columns,
    finish_batch,
    seed_keys,
    start_batch,
    unique_reason,
)
from ingest.validate import Tally, result_document
from ingest.writers import ParquetPartWriter, PartFile, QuarantineWriter

QUARANTINE_NAME = "quarantine.parquet"
KEYS_DIR = ".keys"
ROW_THREADS = 2
IN_FLIGHT = 2
"""Batches submitted ahead of the one being finished (bounds memory at ~3 batches)."""
PII_SAMPLE_ROWS = 1000
"""Rows of the first batch the PII scan looks at (a constant cost per job, ~0.3 s)."""
DEFAULT_SCAN_REGION = "GZ"
"""Origin assumed by the PII scan when the caller names none (phone numbers: mainland)."""


@dataclass(frozen=True)
class Progress:
    bytes_read: int
    total_bytes: int
    rows_read: int
    rows_rejected: int


@dataclass
class ProcessOutcome:
    parts: list[PartFile]
    rows_read: int
    rows_valid: int
    rows_rejected: int
    quarantine_path: Path | None
    schema: list[dict[str, Any]]
    stats: dict[str, dict[str, Any]]
    gx_result: dict[str, Any]


def process_file(
    path: Path,
    contract: DataContract,
    *,
    encoding: str,
    delimiter: str = ",",
    staging_dir: Path,
    max_error_ratio: float,
    batch_rows: int = 65536,
    on_progress: Callable[[Progress], None] | None = None,
    rows_per_part: int = 1_000_000,
    limits: SourceOptions | None = None,
    source: Source | None = None,
    region: str | None = None,
    existing_keys: Iterable[pa.Table] | None = None,
) -> ProcessOutcome:
    """Validate ``path`` against ``contract`` and write the valid rows as typed Parquet.

    Raises ``TooManyRejectedRowsError`` (after the whole file, leaving the quarantine
    report in place) when ``rows_rejected / rows_read > max_error_ratio``, and
    ``EmptyFileError`` when there is no data row. Source errors (encoding, header,
    malformed CSV) propagate; on any error the parts written so far are deleted.
    ``limits`` overrides the source's caps (its encoding and delimiter are ignored).
    The contract's ``max_invalid_ratio``, when set, replaces ``max_error_ratio``.
    ``region`` is the dataset's origin (default region for identifiers and the PII scan).
    ``existing_keys``: typed tables of the unique columns of rows already in the dataset
    (append mode); a new row repeating one of them is rejected as a duplicate.
    """
    if contract.max_invalid_ratio is not None:
        max_error_ratio = contract.max_invalid_ratio
    _prefer_jemalloc()
    if not 0.0 <= max_error_ratio <= 1.0:
        raise InvalidInput("max_error_ratio must be between 0 and 1", field="max_error_ratio")
    if batch_rows < 1:
        raise InvalidInput("batch_rows must be positive", field="batch_rows")
    options = dataclasses.replace(limits or SourceOptions(), encoding=encoding, delimiter=delimiter)
    staging_dir.mkdir(parents=True, exist_ok=True)
    schema = arrow_schema(contract)
    stats = {c.name: ColumnStats(c) for c in contract.columns}
    quarantine = QuarantineWriter(staging_dir / QUARANTINE_NAME)
    parts = ParquetPartWriter(staging_dir, schema, rows_per_part)
    key_dir = staging_dir / KEYS_DIR
    shutil.rmtree(key_dir, ignore_errors=True)
    key_dir.mkdir()
    ctx: TransformContext | None = None
    try:
        with (source or CsvSource()).open(path, options) as opened:
            ctx = TransformContext(
                contract=contract,
                bindings=bind_columns(opened.headers, contract, path.name),
                region=region,
                key_dir=key_dir,
            )
            for table in existing_keys or ():
                seed_keys(ctx, table)
            rows_read, rows_rejected = _run(
                opened, ctx, batch_rows, parts, quarantine, stats, on_progress
            )
        written = parts.close()
        quarantine.close()
    except BaseException:
        parts.discard()
        quarantine.discard()
        raise
    finally:
        for tracker in ctx.unique_keys.values() if ctx is not None else ():
            tracker.close()
        shutil.rmtree(key_dir, ignore_errors=True)
    if rows_read == 0:
        raise EmptyFileError(file=path.name, has_header=True)
    if rows_rejected / rows_read > max_error_ratio:
        parts.discard()
        raise TooManyRejectedRowsError(
            file=path.name,
            rows_read=rows_read,
            rows_rejected=rows_rejected,
            limit=max_error_ratio,
            quarantine_path=str(quarantine.written) if quarantine.written else None,
        )
    return ProcessOutcome(
        parts=written,
        rows_read=rows_read,
        rows_valid=rows_read - rows_rejected,
        rows_rejected=rows_rejected,
        quarantine_path=quarantine.written,
        schema=describe_schema(contract, schema, ctx.pii),
        stats={name: s.result() for name, s in stats.items()},
        gx_result=_gx_document(ctx, rows_read, rows_rejected),
    )


@functools.cache
def _prefer_jemalloc() -> None:
    """Use Arrow's jemalloc pool when the wheel has it: with batches allocated on one
    thread and freed on another, mimalloc (Arrow's default) held ~50% more memory here
    at the same speed. An explicit ``ARROW_DEFAULT_MEMORY_POOL`` wins."""
    if "ARROW_DEFAULT_MEMORY_POOL" in os.environ:
        return
    with contextlib.suppress(NotImplementedError, pa.ArrowNotImplementedError):
        pa.set_memory_pool(pa.jemalloc_memory_pool())


def _run(
    opened: OpenSource,
    ctx: TransformContext,
    batch_rows: int,
    parts: ParquetPartWriter,
    quarantine: QuarantineWriter,
    stats: dict[str, ColumnStats],
    on_progress: Callable[[Progress], None] | None,
) -> tuple[int, int]:
    with _Stages(opened, ctx, parts, quarantine, stats, on_progress) as stages:
        for batch in rebatch(opened, batch_rows):
            if stages.rows_read == 0:
                ctx.pii = _scan_pii(batch, ctx)
            stages.submit(batch)
        stages.drain()
        stages.rows_rejected += stages.deferred.finish(stages.write_valid)
        stages.drain()
    return stages.rows_read, stages.rows_rejected


class _Stages:
    """Three stages, all mostly in pyarrow/numpy code that releases the GIL.

    The calling thread reads batches and finishes them in file order (unique keys,
    quarantine); ``ROW_THREADS`` run the per-batch steps of the next batches; one writer
    thread compresses Parquet and keeps the statistics, in order. At most ``IN_FLIGHT``
    batches wait at each stage, so memory stays a few batches whatever the file size.
    """

    def __init__(
        self,
        opened: OpenSource,
        ctx: TransformContext,
        parts: ParquetPartWriter,
        quarantine: QuarantineWriter,
        stats: dict[str, ColumnStats],
        on_progress: Callable[[Progress], None] | None,
    ) -> None:
        self.opened, self.ctx, self.parts, self.quarantine = opened, ctx, parts, quarantine
        self.stats, self.on_progress = stats, on_progress
        self.schema = arrow_schema(ctx.contract)
        self.rows_read = self.rows_rejected = 0
        self.rows_pool = ThreadPoolExecutor(ROW_THREADS, thread_name_prefix="ingest-rows")
        self.write_pool = ThreadPoolExecutor(1, thread_name_prefix="ingest-write")
        self.in_flight: deque[Future[BatchState]] = deque()
        self.writing: deque[Future[None]] = deque()
        assert ctx.key_dir is not None or not ctx.unique_keys
        self.deferred = _DeferredRows(ctx, self.schema, quarantine)

    def submit(self, batch: pa.RecordBatch) -> None:
        self.in_flight.append(
            self.rows_pool.submit(start_batch, batch, self.rows_read + 1, self.ctx)
        )
        self.rows_read += batch.num_rows
        while len(self.in_flight) >= IN_FLIGHT:
            self._finish(self.in_flight.popleft())

    def drain(self) -> None:
        while self.in_flight:
            self._finish(self.in_flight.popleft())
        while self.writing:
            self.writing.popleft().result()

    def _finish(self, future: Future[BatchState]) -> None:
        state = finish_batch(future.result(), self.ctx)
        self.rows_rejected += len(state.reasons)
        rows, values, reasons = state.rejected()
        self.quarantine.write_batch(rows, values, [[r.as_dict() for r in why] for why in reasons])
        self.deferred.add(state)
        self.write_valid(state.valid_table(self.schema))
        if self.on_progress is not None:
            done = state.first_row + state.num_rows - 1
            progress = Progress(
                self.opened.bytes_read, self.opened.total_bytes, done, self.rows_rejected
            )
            self.on_progress(progress)

    def write_valid(self, valid: pa.Table) -> None:
        """Queue valid rows for the writer thread (in order, at most ``IN_FLIGHT`` ahead)."""
        if valid.num_rows:
            self.writing.append(self.write_pool.submit(self._write, valid))
            while len(self.writing) >= IN_FLIGHT:
                self.writing.popleft().result()

    def _write(self, valid: pa.Table) -> None:
        self.parts.write(valid)
        update_stats(self.stats, valid)

    def __enter__(self) -> _Stages:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for rows in self.in_flight:
            rows.cancel()
        for write in self.writing:
            write.cancel()
        self.rows_pool.shutdown(wait=True, cancel_futures=True)
        self.write_pool.shutdown(wait=True, cancel_futures=True)
        self.deferred.close()


class _DeferredRows:
    """Rows the key check decides after the file (``ingest.keys``): spilled to an Arrow
    file in the key directory as they come (row number, typed values, the row as
    uploaded), their keys in memory (~25 bytes a row); ``finish`` decides them, writes
    the accepted ones after the other valid rows and merges the repeats into the
    quarantine report in row order."""

    def __init__(self, ctx: TransformContext, schema: pa.Schema, quarantine: QuarantineWriter):
        self.ctx, self.schema, self.quarantine = ctx, schema, quarantine
        self.keys = Deferred()
        self.path = (ctx.key_dir or Path(".")) / "deferred.arrow"
        self.headers: list[str] = []
        self._writer: pa.ipc.RecordBatchFileWriter | None = None

    def add(self, state: BatchState) -> None:
        if len(state.deferred) == 0:
            return
        take = pa.array(state.deferred, pa.int64())
        source = state.source.take(take)
        columns = [pa.array(state.first_row + state.deferred, pa.int64())]
        columns += [state.typed[f.name].take(take) for f in self.schema]
        columns += [c.cast(pa.string()) for c in source.columns]
        names = ["row", *(f"t{i}" for i in range(len(self.schema)))]
        names += [f"s{i}" for i in range(source.num_columns)]
        batch = pa.RecordBatch.from_arrays(columns, names=names)
        if self._writer is None:
            self.headers = list(source.schema.names)
            self._writer = pa.ipc.new_file(str(self.path), batch.schema)
        self._writer.write_batch(batch)
        self.keys.add(batch.column(0).to_numpy(), *state.deferred_keys)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def finish(self, write_valid: Callable[[pa.Table], None]) -> int:
        """Decide the deferred rows; returns how many were rejected."""
        if self._writer is None:
            return 0
        self.close()
        constraints = list(self.ctx.unique_keys)
        resolution = resolve(self.keys, list(self.ctx.unique_keys.values()))
        for key, checked in zip(constraints, resolution.checked, strict=True):
            repeats = int((resolution.duplicate_of == constraints.index(key)).sum())
            self._tally(key).add(elements=checked, missing=0, unexpected=repeats)
        late = QuarantineWriter(self.path.with_name("late-quarantine.parquet"))
        offset = 0
        with pa.OSFile(str(self.path)) as file:
            reader = pa.ipc.open_file(file)
            for index in range(reader.num_record_batches):
                batch = reader.get_batch(index)
                verdict = resolution.duplicate_of[offset : offset + batch.num_rows]
                offset += batch.num_rows
                self._reject(batch, verdict, constraints, late)
                keep = pa.array(verdict < 0)
                typed = [batch.column(f"t{i}").filter(keep) for i in range(len(self.schema))]
                write_valid(pa.Table.from_arrays(typed, schema=self.schema))
        late.close()
        self.quarantine.close()
        self.quarantine.absorb(late)
        rejected = int((resolution.duplicate_of >= 0).sum())
        self.ctx.rejections["unique"] += rejected
        return rejected

    def _reject(
        self,
        batch: pa.RecordBatch,
        verdict: Any,
        constraints: list[tuple[str, ...]],
        late: QuarantineWriter,
    ) -> None:
        at = [int(i) for i in (verdict >= 0).nonzero()[0]]
        if not at:
            return
        source = [batch.column(f"s{i}") for i in range(len(self.headers))]
        rows = batch.column("row").to_numpy()
        reasons: list[list[Mapping[str, Any]]] = []
        for position in at:
            key = constraints[int(verdict[position])]
            raw = [source[self.ctx.binding(name).position][position].as_py() for name in key]
            reasons.append([unique_reason(self.ctx, key, raw).as_dict()])
            self._tally(key).add(elements=0, missing=0, unexpected=0, examples=raw[:1])
        take = pa.array(at, pa.int64())
        values = pa.RecordBatch.from_arrays([c.take(take) for c in source], names=self.headers)
        late.write_batch([int(rows[p]) for p in at], values, reasons)

    def _tally(self, key: tuple[str, ...]) -> Tally:
        return self.ctx.tallies.setdefault(f"{'+'.join(key)}:unique", Tally())


def rebatch(batches: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    """Group a stream of record batches into batches of about ``rows`` rows: small source
    batches are concatenated (once) until there are at least ``rows``; a source batch of
    at least ``rows // 2`` passes through uncopied. A batch is never longer than ``rows``
    plus one source batch."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        if not pending and batch.num_rows >= rows // 2:
            yield batch  # big enough: copying it would cost more than a smaller batch
            continue
        pending.append(batch)
        count += batch.num_rows
        if count >= rows:
            yield _concat(pending)
            pending, count = [], 0
    if count:
        yield _concat(pending)


def _concat(batches: list[pa.RecordBatch]) -> pa.RecordBatch:
    if len(batches) == 1:
        return batches[0]
    return pa.Table.from_batches(batches).combine_chunks().to_batches()[0]


def _scan_pii(batch: pa.RecordBatch, ctx: TransformContext) -> dict[str, PiFinding]:
    """The PII scan of the first batch's raw values, for columns the contract leaves open."""
    if all(c.pi is not None for c in ctx.contract.columns):
        return {}
    head = batch.slice(0, PII_SAMPLE_ROWS)
    sample = pa.table({b.name: head.column(b.position) for b in ctx.bindings})
    return scan_table(sample, ctx.contract, region=ctx.region or DEFAULT_SCAN_REGION)


def describe_schema(
    contract: DataContract, schema: pa.Schema, pii: Mapping[str, PiFinding] | None = None
) -> list[dict[str, Any]]:
    """Each column's contract facts; ``pi`` is the contract's class or, for a column the
    contract leaves open, the scan's suggestion (``pi_source: "scan"``, with its reason)
    until the provider confirms it in a new contract version."""
    out = []
    for c in contract.columns:
        finding = (pii or {}).get(c.name)
        entry: dict[str, Any] = {
            "name": c.name,
            "type": c.type,
            "arrow_type": str(schema.field(c.name).type),
            "nullable": schema.field(c.name).nullable,
            "unit": c.unit,
            "pi": c.pi if c.pi is not None else (finding.pi if finding else "pi_other"),
            "pi_source": "contract" if c.pi is not None else "scan",
            "description": c.description,
            "source": c.header,
        }
        if c.validator:
            entry["validator"] = c.validator
        if c.pi is None and finding is not None:
            entry["pi_scan"] = finding.as_dict()
        out.append(entry)
    return out


def _gx_document(ctx: TransformContext, rows_read: int, rows_rejected: int) -> dict[str, Any]:
    """GX's validation result for the whole file, plus the per-row view of the same run."""
    document = result_document(ctx.suite, ctx.tallies, batches=ctx.batches)
    document["row_checks"] = {
        "rows_read": rows_read,
        "rows_rejected": rows_rejected,
        "failures_by_rule": dict(sorted(ctx.rejections.items())),
        "warnings_by_rule": dict(sorted(ctx.warnings.items())),
    }
    return document
