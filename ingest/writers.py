"""Local output of an ingest job: typed Parquet parts and the quarantine report.

Both writers only write inside the staging directory they are given; uploading
the parts and committing the version is the caller's job (``ingest.run``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

QUARANTINE_VALUE_CHARS = 200
MERGE_ROWS = 8192


@dataclass(frozen=True)
class PartFile:
    path: Path
    rows: int
    bytes: int


class ParquetPartWriter:
    """Writes zstd-compressed Parquet parts (statistics on), rolling past ``rows_per_part``.

    Parts are named ``part-00000.parquet``, ``part-00001.parquet``... Each ``write`` call
    becomes one or more row groups. A writer that received no rows writes no part.
    """

    def __init__(
        self,
        staging_dir: Path,
        schema: pa.Schema,
        rows_per_part: int = 1_000_000,
        *,
        compression_level: int | None = None,
    ) -> None:
        if rows_per_part < 1:
            raise ValueError("rows_per_part must be positive")
        self._dir = staging_dir
        self._schema = schema
        self._rows_per_part = rows_per_part
        self._level = compression_level
        self._writer: pq.ParquetWriter | None = None
        self._current: Path | None = None
        self._current_rows = 0
        self.parts: list[PartFile] = []

    def write(self, table: pa.Table) -> None:
        offset = 0
        while offset < table.num_rows:
            if self._writer is None:
                self._open_part()
            room = self._rows_per_part - self._current_rows
            piece = table.slice(offset, room)
            assert self._writer is not None
            self._writer.write_table(piece, row_group_size=piece.num_rows)
            self._current_rows += piece.num_rows
            offset += piece.num_rows
            if self._current_rows >= self._rows_per_part:
                self._close_part()

    def close(self) -> list[PartFile]:
        """Finish the last part; returns every part written."""
        self._close_part()
        return list(self.parts)

    def discard(self) -> None:
        """Close and delete every part (the job failed)."""
        self._close_part()
        for part in self.parts:
            part.path.unlink(missing_ok=True)
        self.parts.clear()

    def _open_part(self) -> None:
        self._current = self._dir / f"part-{len(self.parts):05d}.parquet"
        self._writer = pq.ParquetWriter(
            self._current,
            self._schema,
            compression="zstd",
            compression_level=self._level,
            write_statistics=True,
        )
        self._current_rows = 0

    def _close_part(self) -> None:
        if self._writer is None or self._current is None:
            return
        self._writer.close()
        self.parts.append(PartFile(self._current, self._current_rows, self._current.stat().st_size))
        self._writer = None
        self._current = None

    def __enter__(self) -> ParquetPartWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()


REASON_TYPE = pa.struct(
    [
        pa.field("column", pa.string()),
        pa.field("rule", pa.string()),
        pa.field("expected", pa.string()),
        pa.field("actual", pa.string()),
    ]
)


def quarantine_schema(headers: Iterable[str]) -> pa.Schema:
    """``row`` (1-based data row), ``values`` (the row as uploaded, one string field per
    source header) and ``reasons`` (one entry per broken rule)."""
    return pa.schema(
        [
            pa.field("row", pa.int64(), nullable=False),
            pa.field("values", pa.struct([pa.field(h, pa.string()) for h in headers])),
            pa.field("reasons", pa.list_(REASON_TYPE), nullable=False),
        ]
    )


class QuarantineWriter:
    """Rejected rows as a zstd Parquet file (schema: :func:`quarantine_schema`)::

        row=17, values={"设备编号": "A-17", ...},
        reasons=[{"column": "温度", "rule": "range", "expected": "between 0 and 100",
                  "actual": "140"}]

    ``row`` is the 1-based data-row number in the uploaded file (the header is row 0).
    ``actual`` values are cut to 200 characters; ``values`` are kept whole. Rows are
    buffered and written in row groups of ``rows_per_group``; the file is created on the
    first flush, so a job without rejected rows writes no file.
    """

    def __init__(self, path: Path, *, rows_per_group: int = 10_000) -> None:
        self.path = path
        self._rows_per_group = rows_per_group
        self._writer: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None
        self._pending: dict[str, list[Any]] = {"row": [], "values": [], "reasons": []}
        self.rows = 0

    def write(
        self,
        row: int,
        values: Mapping[str, Any],
        reasons: Iterable[Mapping[str, Any]],
    ) -> None:
        if self._schema is None:
            self._schema = quarantine_schema(values)
        self._pending["row"].append(row)
        self._pending["values"].append({k: _text(v) for k, v in values.items()})
        self._pending["reasons"].append(
            [
                {
                    "column": r["column"],
                    "rule": r["rule"],
                    "expected": _text(r["expected"]),
                    "actual": _cut(r.get("actual")),
                }
                for r in reasons
            ]
        )
        self.rows += 1
        if len(self._pending["row"]) >= self._rows_per_group:
            self._flush()

    def write_batch(
        self,
        rows: list[int],
        values: pa.RecordBatch,
        reasons: list[list[Mapping[str, Any]]],
    ) -> None:
        """Rejected rows of one batch at once: ``values`` holds them as uploaded (one
        string column per source header), row ``i`` failed ``reasons[i]``."""
        if not rows:
            return
        self._flush()
        if self._schema is None:
            self._schema = quarantine_schema(values.schema.names)
        struct = pa.StructArray.from_arrays(
            [c.cast(pa.string()) for c in values.columns],
            fields=list(self._schema.field("values").type),
        )
        table = pa.table(
            {
                "row": pa.array(rows, pa.int64()),
                "values": struct,
                "reasons": pa.array(
                    [
                        [
                            {
                                "column": r["column"],
                                "rule": r["rule"],
                                "expected": _text(r["expected"]),
                                "actual": _cut(r.get("actual")),
                            }
                            for r in row_reasons
                        ]
                        for row_reasons in reasons
                    ],
                    pa.list_(REASON_TYPE),
                ),
            },
            schema=self._schema,
        )
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, self._schema, compression="zstd")
        self._writer.write_table(table)
        self.rows += len(rows)

    def _flush(self) -> None:
        if not self._pending["row"] or self._schema is None:
            return
        table = pa.Table.from_pydict(self._pending, schema=self._schema)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, self._schema, compression="zstd")
        self._writer.write_table(table)
        self._pending = {"row": [], "values": [], "reasons": []}

    @property
    def written(self) -> Path | None:
        """The report's path, or ``None`` if no row was quarantined."""
        return self.path if self.rows else None

    def close(self) -> None:
        self._flush()
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def absorb(self, late: QuarantineWriter) -> None:
        """Merge the rows of ``late`` (closed, rows ascending like ours) into this closed
        report, so that it stays in row order; a few thousand rows are held at a time."""
        if not late.rows or late.written is None:
            return
        if not self.rows:
            late.path.replace(self.path)
            self.rows, late.rows = late.rows, 0
            return
        merged = self.path.with_name(self.path.name + ".merging")
        with (
            pq.ParquetFile(self.path) as mine,
            pq.ParquetFile(late.path) as theirs,
            pq.ParquetWriter(merged, mine.schema_arrow, compression="zstd") as out,
        ):
            others = (pa.Table.from_batches([b]) for b in theirs.iter_batches(MERGE_ROWS))
            waiting = next(others, None)
            for batch in mine.iter_batches(MERGE_ROWS):
                pieces = [pa.Table.from_batches([batch])]
                limit = batch.column("row")[-1].as_py()
                while waiting is not None:
                    cut = int(np.searchsorted(waiting.column("row").to_numpy(), limit, "right"))
                    pieces.append(waiting.slice(0, cut))
                    if cut < waiting.num_rows:
                        waiting = waiting.slice(cut)
                        break
                    waiting = next(others, None)
                out.write_table(pa.concat_tables(pieces).sort_by("row"))
            while waiting is not None:
                out.write_table(waiting)
                waiting = next(others, None)
        merged.replace(self.path)
        self.rows += late.rows
        late.discard()

    def discard(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._pending = {"row": [], "values": [], "reasons": []}
        self.path.unlink(missing_ok=True)
        self.rows = 0

    def __enter__(self) -> QuarantineWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def read_quarantine(path: Path) -> list[dict[str, Any]]:
    """Every row of a quarantine file as plain dicts (for tests and small files)."""
    return [dict(r) for r in pq.read_table(path).to_pylist()]


def _text(value: object) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _cut(value: object) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= QUARANTINE_VALUE_CHARS else text[:QUARANTINE_VALUE_CHARS]
