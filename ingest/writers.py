"""Local output of an ingest job: typed Parquet parts and the quarantine report.

Both writers only write inside the staging directory they are given; uploading
the parts and committing the version is the caller's job (``ingest.run``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

QUARANTINE_VALUE_CHARS = 200


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


class QuarantineWriter:
    """Rejected rows as JSON Lines, one object per row::

        {"row": 17, "values": {"设备编号": "A-17", ...},
         "reasons": [{"column": "温度", "rule": "range", "expected": "between 0 and 100",
                      "actual": "140"}]}

    ``row`` is the 1-based data-row number in the uploaded file (the header is row 0).
    ``actual`` values are cut to 200 characters. The file is created on the first row.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None
        self.rows = 0

    def write(
        self,
        row: int,
        values: Mapping[str, Any],
        reasons: Iterable[Mapping[str, Any]],
    ) -> None:
        if self._file is None:
            self._file = self.path.open("w", encoding="utf-8", newline="\n")
        record = {
            "row": row,
            "values": dict(values),
            "reasons": [
                {
                    "column": r["column"],
                    "rule": r["rule"],
                    "expected": r["expected"],
                    "actual": _cut(r.get("actual")),
                }
                for r in reasons
            ],
        }
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.rows += 1

    @property
    def written(self) -> Path | None:
        """The report's path, or ``None`` if no row was quarantined."""
        return self.path if self.rows else None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def discard(self) -> None:
        self.close()
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


def _cut(value: object) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= QUARANTINE_VALUE_CHARS else text[:QUARANTINE_VALUE_CHARS]
