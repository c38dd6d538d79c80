"""Parquet uploads, read as all-string record batches through pyarrow.

An uploaded Parquet file is hostile input (SECURITY.md §5). Before pyarrow parses
anything the file's envelope is checked: ``PAR1`` magic at both ends (``PARE``, an
encrypted footer, is refused) and a footer no longer than ``max_footer_bytes``. The
footer is then parsed with Thrift string/container limits, a schema depth limit and
Arrow extension types disabled, and the metadata is checked: leaf columns against
``max_columns``, row groups against ``max_row_groups``, the declared uncompressed size
against ``max_ratio`` × the file size, no nested, extension or unsupported types.

Nothing in the file is trusted to describe the values. Statistics (min/max, null
counts) are never read, and no filter is pushed down, so forged statistics cannot
hide rows. The footer's key/value metadata is ignored: the batches carry a fresh
schema without it, headers come from the Parquet schema, and types restored from the
``ARROW:schema`` entry are normalised away (dictionaries decoded, time zones dropped
to the stored UTC instant, durations read as their integer count). Every column is
cast to text and the contract's typing step decides validity, exactly as for CSV:
integers and decimals as stored (``12.50``), floats in their shortest round-trip form
(``12.5``, ``1``), booleans ``true``/``false``, dates ``2024-01-31``, timestamps
``2024-01-31 10:00:00`` (fractions only when present). Binary columns must be UTF-8.

Memory is bounded by one row group's pages and one batch: pages are read through a
buffered stream (no pre-buffering of whole column chunks) and batches are at most
``batch_rows`` rows. A file whose text output grows past ``max_text_ratio`` × its size
(a run-length bomb) is stopped while streaming.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ingest.errors import MalformedFileError
from ingest.sources.base import ReaderBase, SourceOptions, check_unique_headers

MAGIC = b"PAR1"
ENCRYPTED_MAGIC = b"PARE"
SCHEMA_DEPTH_LIMIT = 8
"""Thrift schema depth pyarrow may parse: a flat file needs 2; deeper nesting than this is
refused by the parser itself, shallower nesting by ``_check_types`` naming the column."""
_TYPE_TEXT = 120


@dataclass(frozen=True)
class ParquetSource:
    """``Source`` for Apache Parquet; the limits below add to ``SourceOptions``."""

    batch_rows: int = 65536
    max_footer_bytes: int = 16 << 20
    max_row_groups: int = 4096
    max_ratio: float = 100.0
    """Largest declared uncompressed/file size ratio (below ``ratio_floor_bytes``: any)."""
    max_text_ratio: float = 1000.0
    """Largest text output/file size ratio while streaming (below the floor: any)."""
    ratio_floor_bytes: int = 64 << 20

    def open(self, path: Path, options: SourceOptions) -> ParquetReader:
        return ParquetReader(path, options, self)


class ParquetReader(ReaderBase):
    """One opened Parquet file; iterate it for ``pyarrow.RecordBatch`` of strings."""

    def __init__(self, path: Path, options: SourceOptions, source: ParquetSource) -> None:
        self._label = path.name
        self._options = options
        self._source = source
        self.total_bytes = path.stat().st_size
        self._check_size(self._label, self.total_bytes, options)
        self._check_envelope(path)
        self._file = self._open(path)
        try:
            self._metadata = self._file.metadata
            self._check_metadata()
            self._check_types()
            self.headers = [
                self._file.schema.column(i).name for i in range(self._metadata.num_columns)
            ]
            self._check_headers()
        except BaseException:
            self.close()
            raise
        self.bytes_read = 0
        self._text_bytes = 0
        self._rows = 0
        self._batches = self._read_batches()

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        return self

    def __next__(self) -> pa.RecordBatch:
        return next(self._batches)

    def close(self) -> None:
        self._file.close()

    # -- opening -------------------------------------------------------------------------

    def _check_envelope(self, path: Path) -> None:
        """Magic numbers and footer length, read from the raw bytes before pyarrow runs."""
        with path.open("rb") as raw:
            head = raw.read(4)
            raw.seek(max(self.total_bytes - 8, 0))
            tail = raw.read(8)
        if self.total_bytes < 12 or head != MAGIC or tail[4:] not in (MAGIC, ENCRYPTED_MAGIC):
            raise self._malformed("not_parquet", "the file is not Parquet (no PAR1 magic number)")
        if tail[4:] == ENCRYPTED_MAGIC:
            raise self._malformed(
                "encrypted", "the file is encrypted; upload it without Parquet encryption"
            )
        footer = int.from_bytes(tail[:4], "little")
        if footer > self._source.max_footer_bytes:
            raise self._malformed(
                "footer_too_large",
                f"the metadata footer is {footer} bytes, over the limit of "
                f"{self._source.max_footer_bytes}",
            )
        if footer > self.total_bytes - 12:
            raise self._malformed("not_parquet", "the metadata footer is truncated")

    def _open(self, path: Path) -> pq.ParquetFile:
        source, options = self._source, self._options
        try:
            return pq.ParquetFile(
                str(path),
                memory_map=False,
                buffer_size=1 << 20,
                pre_buffer=False,
                thrift_string_size_limit=source.max_footer_bytes,
                thrift_container_size_limit=max(source.max_row_groups, 4 * options.max_columns),
                schema_depth_limit=SCHEMA_DEPTH_LIMIT,
                arrow_extensions_enabled=False,
            )
        except (OSError, pa.ArrowException, ValueError) as exc:
            message = str(exc)
            if "too deeply nested" in message:
                raise self._malformed(
                    "nested_column", "the schema nests columns too deeply; upload flat columns"
                ) from None
            if "Exceeded size limit" in message:
                raise self._malformed(
                    "metadata_too_large",
                    "the metadata lists more columns, row groups or entries than allowed "
                    f"({options.max_columns} columns, {source.max_row_groups} row groups)",
                ) from None
            raise self._malformed(
                "not_parquet", f"the Parquet metadata cannot be read: {message}"
            ) from None

    def _check_metadata(self) -> None:
        metadata, source = self._metadata, self._source
        if metadata.num_columns > self._options.max_columns:
            raise self._malformed(
                "too_many_columns",
                f"{metadata.num_columns} columns, over the limit of {self._options.max_columns}",
            )
        if metadata.num_row_groups > source.max_row_groups:
            raise self._malformed(
                "too_many_row_groups",
                f"{metadata.num_row_groups} row groups, over the limit of {source.max_row_groups}",
            )
        declared = sum(
            metadata.row_group(i).column(j).total_uncompressed_size
            for i in range(metadata.num_row_groups)
            for j in range(metadata.num_columns)
        )
        if declared > max(source.max_ratio * self.total_bytes, source.ratio_floor_bytes):
            raise self._malformed(
                "too_compressed",
                f"the columns declare {declared} bytes uncompressed from a "
                f"{self.total_bytes}-byte file, over the {source.max_ratio:g}:1 limit",
            )

    def _check_types(self) -> None:
        for field in self._file.schema_arrow:
            problem = _type_problem(field)
            if problem is not None:
                type_text = str(field.type)[:_TYPE_TEXT]
                raise self._malformed(
                    problem,
                    f"column {field.name!r} has type {type_text}, which is not accepted: "
                    + _TYPE_ADVICE[problem],
                    column=field.name,
                )

    def _check_headers(self) -> None:
        check_unique_headers(self._label, self.headers)

    # -- streaming -----------------------------------------------------------------------

    def _read_batches(self) -> Iterator[pa.RecordBatch]:
        for index in range(self._metadata.num_row_groups):
            group = self._metadata.row_group(index)
            batches = self._file.iter_batches(
                batch_size=self._source.batch_rows, row_groups=[index], use_threads=False
            )
            while True:
                try:
                    batch = next(batches)
                except StopIteration:
                    break
                except (OSError, pa.ArrowException) as exc:
                    raise self._malformed(
                        "parse_error",
                        f"row group {index} cannot be read: {exc}",
                        row=self._rows + 1,
                    ) from None
                yield self._as_text(batch)
            compressed = sum(
                group.column(j).total_compressed_size for j in range(group.num_columns)
            )
            self.bytes_read = min(self.bytes_read + compressed, self.total_bytes)
        self.bytes_read = self.total_bytes

    def _as_text(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        columns = []
        for name, column in zip(self.headers, batch.columns, strict=True):
            text = self._column_text(name, column)
            lengths = pc.binary_length(text)
            self._check_cell_size(name, lengths)
            self._text_bytes += pc.sum(lengths).as_py() or 0
            columns.append(text)
        self._check_expansion()
        self._rows += batch.num_rows
        return pa.RecordBatch.from_arrays(columns, names=self.headers)

    def _column_text(self, name: str, column: pa.Array) -> pa.Array:
        try:
            return _to_text(column)
        except pa.ArrowInvalid as exc:
            raise self._malformed(
                "invalid_text",
                f"column {name!r} holds bytes that are not UTF-8 text ({exc})",
                row=self._rows + 1,
                column=name,
            ) from None

    def _check_cell_size(self, name: str, lengths: pa.Array) -> None:
        limit = self._options.max_cell_bytes
        longest = pc.max(lengths).as_py()
        if longest is not None and longest > limit:
            position = pc.index(pc.greater(lengths, limit), True).as_py()
            raise self._malformed(
                "cell_too_large",
                f"a value in column {name!r} is {longest} bytes, over the limit of {limit}",
                row=self._rows + position + 1,
                column=name,
            )

    def _check_expansion(self) -> None:
        source = self._source
        limit = max(source.max_text_ratio * self.total_bytes, source.ratio_floor_bytes)
        if self._text_bytes > limit:
            raise self._malformed(
                "too_compressed",
                f"the values expand to more than {int(limit)} bytes of text from a "
                f"{self.total_bytes}-byte file (over {source.max_text_ratio:g}:1)",
            )

    # -- errors --------------------------------------------------------------------------

    def _malformed(self, reason: str, detail: str, **extra: Any) -> MalformedFileError:
        """``MalformedFileError`` whose message names Parquet (its class text says CSV)."""
        error = MalformedFileError(
            file=self._label, reason=reason, detail=detail, format="parquet", **extra
        )
        error.message = error.message.replace("malformed CSV", "malformed Parquet", 1)
        error.args = (error.message,)
        return error


_TYPE_ADVICE = {
    "nested_column": "lists, structs and maps cannot be mapped to contract columns; "
    "flatten them into one column per value",
    "extension_type": "extension types are not read from uploads; store the plain values",
    "unsupported_type": "use integer, floating point, decimal, boolean, date, timestamp "
    "or string columns",
}

_BYTES_CHECKS = (
    pa.types.is_string,
    pa.types.is_large_string,
    pa.types.is_string_view,
    pa.types.is_binary,
    pa.types.is_large_binary,
    pa.types.is_binary_view,
    pa.types.is_fixed_size_binary,
)
_SCALAR_CHECKS = (
    pa.types.is_integer,
    pa.types.is_floating,
    pa.types.is_decimal,
    pa.types.is_boolean,
    pa.types.is_date,
    pa.types.is_timestamp,
    pa.types.is_time,
    pa.types.is_duration,
    *_BYTES_CHECKS,
    pa.types.is_null,
)


def _type_problem(field: pa.Field) -> str | None:
    """Why a column cannot be read as text, or None."""
    data_type = field.type
    metadata = field.metadata or {}
    if isinstance(data_type, pa.BaseExtensionType) or b"ARROW:extension:name" in metadata:
        return "extension_type"
    if pa.types.is_nested(data_type):
        return "nested_column"
    if pa.types.is_dictionary(data_type):
        data_type = data_type.value_type
    if any(check(data_type) for check in _SCALAR_CHECKS):
        return None
    return "unsupported_type"


def _to_text(column: pa.Array) -> pa.Array:
    """The column's values as ``pyarrow.string()`` (see the module docstring for the forms)."""
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    data_type = column.type
    if pa.types.is_timestamp(data_type):
        return _timestamp_text(column.cast(pa.timestamp(data_type.unit)))
    if pa.types.is_date64(data_type):
        column = column.cast(pa.date32())
    text = column.cast(pa.string())
    if any(check(data_type) for check in _BYTES_CHECKS):
        text.validate(full=True)  # casting binary checks UTF-8; string→string does not
    return text


def _timestamp_text(column: pa.Array) -> pa.Array:
    """``YYYY-MM-DD HH:MM:SS``, with the fraction only for values that have one."""
    whole = column.cast(pa.timestamp("s"), safe=False)
    exact = pc.equal(whole.cast(column.type), column)
    return pc.if_else(exact, whole.cast(pa.string()), column.cast(pa.string()))
