"""Read one page of a job's quarantine report without loading the whole file.

Reports are Parquet (``row``, ``values``, ``reasons``; see ``ingest.writers``) written in
row groups: a page reads only the row groups it overlaps, found from the footer's
row counts. Reports of jobs that ran before the Parquet format are JSON Lines; they are
read line by line, skipping to the offset.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

PARQUET_MEDIA_TYPE = "application/vnd.apache.parquet"
JSONL_MEDIA_TYPE = "application/x-ndjson"
MAX_PAGE = 1000


@dataclass(frozen=True)
class QuarantinePage:
    rows: list[dict[str, Any]]
    total: int
    offset: int
    limit: int


def media_type(key: str) -> str:
    """The content type of a stored report, from its key's suffix."""
    return PARQUET_MEDIA_TYPE if key.endswith(".parquet") else JSONL_MEDIA_TYPE


def read_page(path: Path, *, offset: int, limit: int) -> QuarantinePage:
    """Rows ``offset`` … ``offset + limit - 1`` (0-based positions in the report)."""
    if path.suffix == ".parquet":
        return _parquet_page(path, offset, limit)
    return _jsonl_page(path, offset, limit)


def _parquet_page(path: Path, offset: int, limit: int) -> QuarantinePage:
    with pq.ParquetFile(path) as report:
        metadata = report.metadata
        total = metadata.num_rows
        wanted: list[int] = []
        skip = 0  # rows of the first wanted group that lie before ``offset``
        start = 0
        for index in range(metadata.num_row_groups):
            rows = metadata.row_group(index).num_rows
            end = start + rows
            if end > offset and start < offset + limit:
                if not wanted:
                    skip = offset - start
                wanted.append(index)
            start = end
        if not wanted or limit == 0:
            return QuarantinePage([], total, offset, limit)
        table = report.read_row_groups(wanted).slice(skip, limit)
    return QuarantinePage(_records(table), total, offset, limit)


def _records(table: pa.Table) -> list[dict[str, Any]]:
    return [
        {"row": r["row"], "values": r["values"] or {}, "reasons": r["reasons"] or []}
        for r in table.to_pylist()
    ]


def _jsonl_page(path: Path, offset: int, limit: int) -> QuarantinePage:
    rows: list[dict[str, Any]] = []
    total = 0
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if not line.strip():
                continue
            if offset <= total < offset + limit:
                record = json.loads(line)
                rows.append(
                    {
                        "row": record.get("row"),
                        "values": record.get("values", {}),
                        "reasons": record.get("reasons", []),
                    }
                )
            total += 1
    return QuarantinePage(rows, total, offset, limit)
