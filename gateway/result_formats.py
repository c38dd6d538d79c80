"""Encode a stream of Arrow record batches as JSON, NDJSON, CSV, Arrow IPC or Parquet.

Each encoder consumes batches one at a time, so memory does not grow with the
result. JSON and NDJSON rows are rendered by DuckDB from each Arrow batch
(``catalog.duckdb_session.JsonRenderer``), never as per-row Python objects, except
batches of a few plain values, which ``catalog.json_text`` writes with the same bytes.
Columns are read by position, so a result with two columns of one name
(``SELECT a AS x, b AS x``) keeps both.

CSV cells that a spreadsheet would run as a formula are neutralised (OWASP ASVS
1.2.10, CWE-1236; SECURITY.md §5): a text cell whose first character, or first
character after leading whitespace, is ``= + - @ \\t \\r \\0`` gets a ``'`` prefix.
Only text cells (string, binary, nested and other non-numeric Arrow types, and the
header row) are touched: a number, boolean, date or time column is written as is,
so ``-12.5`` from a double or decimal column stays ``-12.5``. Quoting follows
RFC 4180 (the ``csv`` module's minimal quoting).
"""

from __future__ import annotations

import base64
import contextlib
import csv
import io
import json
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from catalog.duckdb_session import JsonRenderer

MEDIA_TYPES = {
    "json": "application/json",
    "ndjson": "application/x-ndjson",
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


def json_head(schema: pa.Schema) -> bytes:
    """``{"columns":[…],"rows":[``: everything of a JSON result before its first row."""
    columns = [{"name": f.name, "type": str(f.type)} for f in schema]
    return (
        b'{"columns":'
        + json.dumps(columns, ensure_ascii=False, separators=COMPACT).encode()
        + b',"rows":['
    )


def json_tail(footer: dict[str, Any]) -> bytes:
    """``],<footer>}``: closes the rows array and the object of a JSON result."""
    tail = json.dumps(footer, default=_json_value, separators=COMPACT)
    return b"]," + tail[1:-1].encode() + b"}"


_POOL_LOCK = threading.Lock()
_POOL: list[ThreadPoolExecutor] = []  # the process's render threads, made on first use


def _render_pool(threads: int) -> ThreadPoolExecutor:
    """Render threads that live as long as the process, so each keeps its DuckDB rendering
    connection from one query to the next (a query worker serves many)."""
    with _POOL_LOCK:
        if not _POOL:
            _POOL.append(ThreadPoolExecutor(threads, thread_name_prefix="render"))
        return _POOL[0]


def warm_renderers(threads: int) -> None:
    """Open the rendering connection of each render thread now (a query worker does this
    while idle, so no query waits for DuckDB to start a renderer)."""
    pool = _render_pool(threads)
    schema = pa.schema([("x", pa.int64())])
    batch = pa.record_batch([pa.array([1])], schema=schema)
    renderer = JsonRenderer(schema, shape="array")
    barrier = threading.Barrier(threads)

    def ready() -> None:
        renderer.render(batch)
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=5)  # hold this thread so the next task gets another one

    for future in [pool.submit(ready) for _ in range(threads)]:
        future.result()


RowsDone = Callable[[int], None]  # told how many rows the bytes about to be yielded complete


def _no_count(_rows: int) -> None:
    return None


def _rendered(
    renderer: JsonRenderer, batches: Iterable[pa.RecordBatch], threads: int, done: RowsDone
) -> Iterator[bytes]:
    """``renderer.render`` of each batch, in order. ``threads`` 0: in the calling thread;
    otherwise on the process's render threads, up to ``threads`` batches at once (DuckDB
    releases the GIL; each thread has its own connection) while the next batch is read, so
    at most ``threads + 1`` batches are held."""
    if threads <= 0:
        for batch in batches:
            text = renderer.render(batch)
            done(batch.num_rows)
            yield text
        return
    pool = _render_pool(threads)
    pending: deque[tuple[Future[bytes], int]] = deque()
    try:
        for batch in batches:
            pending.append((pool.submit(renderer.render, batch), batch.num_rows))
            if len(pending) > threads:
                future, rows = pending.popleft()
                text = future.result()
                done(rows)
                yield text
        while pending:
            future, rows = pending.popleft()
            text = future.result()
            done(rows)
            yield text
    finally:
        for future, _ in pending:
            future.cancel()
        for future, _ in pending:
            with contextlib.suppress(BaseException):
                future.result()  # no render of this result outlives it


def encode_json_rows(
    schema: pa.Schema,
    batches: Iterable[pa.RecordBatch],
    threads: int = 0,
    done: RowsDone = _no_count,
) -> Iterator[bytes]:
    """A JSON result without its tail: the head, then rows rendered by DuckDB a batch at a
    time (``threads`` batches at once)."""
    yield json_head(schema)
    renderer = JsonRenderer(schema, shape="array", prefix=",")
    try:
        first = True
        for text in _rendered(renderer, batches, threads, done):
            if text:
                yield text[1:] if first else text  # no comma before the first row
                first = False
    finally:
        renderer.close()


def encode_json(
    schema: pa.Schema, batches: Iterable[pa.RecordBatch], footer: Callable[[], dict[str, Any]]
) -> Iterator[bytes]:
    """``{"columns":[…],"rows":[[…],…],<footer>}``; rows rendered by DuckDB, a batch at a time."""
    yield from encode_json_rows(schema, batches)
    yield json_tail(footer())


def encode_ndjson(
    schema: pa.Schema,
    batches: Iterable[pa.RecordBatch],
    threads: int = 0,
    done: RowsDone = _no_count,
) -> Iterator[bytes]:
    """One JSON object per line (``{"column": value, …}``), rendered by DuckDB (``threads``
    batches at once)."""
    renderer = JsonRenderer(schema, shape="object", suffix="\n")
    try:
        for text in _rendered(renderer, batches, threads, done):
            if text:
                yield text
    finally:
        renderer.close()


def neutralise_formula(text: str) -> str:
    """``text`` with a ``'`` prefix if a spreadsheet would read it as a formula."""
    if text.startswith(FORMULA_START) or text.lstrip().startswith(FORMULA_START):
        return "'" + text
    return text


def is_text_type(data_type: pa.DataType) -> bool:
    """Does a CSV cell of this Arrow type need formula neutralisation? Numbers, booleans,
    dates, times, durations and intervals cannot hold a formula; anything else can."""
    if pa.types.is_dictionary(data_type):
        return is_text_type(data_type.value_type)
    return not (
        pa.types.is_integer(data_type)
        or pa.types.is_floating(data_type)
        or pa.types.is_decimal(data_type)
        or pa.types.is_boolean(data_type)
        or pa.types.is_temporal(data_type)
        or pa.types.is_null(data_type)
    )


def _plain_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, int | float | bool):
        return value
    return _json_value(value)


def _text_cell(value: Any) -> Any:
    if value is None:
        return ""
    return neutralise_formula(value if isinstance(value, str) else _json_value(value))


def encode_csv(schema: pa.Schema, batches: Iterable[pa.RecordBatch]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([neutralise_formula(name) for name in schema.names])
    cells = [_text_cell if is_text_type(f.type) else _plain_cell for f in schema]
    for batch in batches:
        columns = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
        for row in zip(*columns, strict=True):
            writer.writerow([cell(value) for cell, value in zip(cells, row, strict=True)])
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


RENDERED_IN_WORKER = ("json", "ndjson", "csv", "arrow")


def _counted(batches: Iterable[pa.RecordBatch], done: RowsDone) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        done(batch.num_rows)  # CSV and Arrow yield a batch's bytes before taking the next
        yield batch


def encode_body(
    fmt: str,
    schema: pa.Schema,
    batches: Iterable[pa.RecordBatch],
    threads: int = 0,
    done: RowsDone = _no_count,
) -> Iterator[bytes]:
    """The bytes of a result in ``fmt`` (one of ``RENDERED_IN_WORKER``), a batch at a time; a
    JSON result lacks its tail (``json_tail``), which needs the final row count. JSON and
    NDJSON render ``threads`` batches at once on render threads (0: in the calling thread).
    ``done(rows)`` is called before each chunk with the rows that chunk completes."""
    if fmt == "json":
        return encode_json_rows(schema, batches, threads, done)
    if fmt == "ndjson":
        return encode_ndjson(schema, batches, threads, done)
    if fmt == "csv":
        return encode_csv(schema, _counted(batches, done))
    if fmt == "arrow":
        return encode_arrow(schema, _counted(batches, done))
    raise ValueError(f"no streaming encoder for format {fmt!r}")


def encode_parquet(schema: pa.Schema, batches: Iterable[pa.RecordBatch]) -> Iterator[bytes]:
    with tempfile.TemporaryFile() as spool:
        with pq.ParquetWriter(spool, schema, compression="zstd") as writer:
            for batch in batches:
                writer.write_batch(batch)
        spool.seek(0)
        while chunk := spool.read(1 << 20):
            yield chunk
