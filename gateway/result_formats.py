"""Encode a stream of Arrow record batches as JSON, CSV, Arrow IPC or Parquet.

Each encoder consumes batches one at a time, so memory does not grow with the
result. CSV cells that a spreadsheet would run as a formula are neutralised
(OWASP / CWE-1236): a leading ``= + - @ \\t \\r`` gets a ``'`` prefix.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import tempfile
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

MEDIA_TYPES = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "arrow": "application/vnd.apache.arrow.stream",
    "parquet": "application/vnd.apache.parquet",
}
COMPACT = (",", ":")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\0")


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return str(value)


def encode_json(
    schema: pa.Schema, batches: Iterable[pa.RecordBatch], footer: Callable[[], dict[str, Any]]
) -> Iterator[bytes]:
    columns = [{"name": f.name, "type": str(f.type)} for f in schema]
    yield (
        b'{"columns":'
        + json.dumps(columns, ensure_ascii=False, separators=COMPACT).encode()
        + b',"rows":['
    )
    first = True
    for batch in batches:
        names = batch.schema.names
        for row in batch.to_pylist():
            line = json.dumps(
                [row[n] for n in names], default=_json_value, ensure_ascii=False, separators=COMPACT
            )
            yield (b"" if first else b",") + line.encode()
            first = False
    tail = json.dumps(footer(), default=_json_value, separators=COMPACT)
    yield b"]," + tail[1:-1].encode() + b"}"


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    text = _json_value(value) if not isinstance(value, int | float | bool) else value
    if isinstance(text, str) and text.startswith(FORMULA_START):
        return "'" + text
    return text


def encode_csv(schema: pa.Schema, batches: Iterable[pa.RecordBatch]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([_csv_cell(n) for n in schema.names])
    for batch in batches:
        for row in batch.to_pylist():
            writer.writerow([_csv_cell(row[n]) for n in schema.names])
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue().encode()


class _ChunkSink(io.RawIOBase):
    """A write-only file that hands out what was written since the last ``drain``."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._chunks.append(chunk)
        return len(chunk)

    def drain(self) -> bytes:
        out, self._chunks = b"".join(self._chunks), []
        return out


def encode_arrow(schema: pa.Schema, batches: Iterable[pa.RecordBatch]) -> Iterator[bytes]:
    sink = _ChunkSink()
    with pa.ipc.new_stream(pa.PythonFile(sink, mode="w"), schema) as writer:
        yield sink.drain()
        for batch in batches:
            writer.write_batch(batch)
            yield sink.drain()
    yield sink.drain()


def encode_parquet(schema: pa.Schema, batches: Iterable[pa.RecordBatch]) -> Iterator[bytes]:
    with tempfile.TemporaryFile() as spool:
        with pq.ParquetWriter(spool, schema, compression="zstd") as writer:
            for batch in batches:
                writer.write_batch(batch)
        spool.seek(0)
        while chunk := spool.read(1 << 20):
            yield chunk
