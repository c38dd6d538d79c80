"""The first rows of a query result for the console's table, read from the API's Arrow IPC
stream with a byte budget: the rest of a large result is never read (download it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa


@dataclass
class Preview:
    columns: list[dict[str, str]] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    complete: bool = True  # False: the result has more rows than shown


async def read_preview(body: AsyncIterator[bytes], *, max_rows: int, max_bytes: int) -> Preview:
    buffer = bytearray()
    complete = True
    async for chunk in body:
        buffer.extend(chunk)
        if len(buffer) >= max_bytes:
            complete = False
            break
    if not complete:
        await body.aclose()  # type: ignore[attr-defined]  # async generators have aclose
    return _decode(bytes(buffer), max_rows=max_rows, complete=complete)


def _decode(data: bytes, *, max_rows: int, complete: bool) -> Preview:
    if not data:
        return Preview()
    reader = pa.ipc.open_stream(pa.BufferReader(data))
    preview = Preview(columns=[{"name": f.name, "type": str(f.type)} for f in reader.schema])
    while len(preview.rows) < max_rows:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            break
        except (pa.ArrowInvalid, OSError):  # the budget cut a batch in half
            complete = False
            break
        columns = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
        preview.rows.extend([list(row) for row in zip(*columns, strict=True)])
    if len(preview.rows) > max_rows:
        preview.rows = preview.rows[:max_rows]
        complete = False
    elif len(preview.rows) == max_rows:
        try:
            reader.read_next_batch()
            complete = False
        except (StopIteration, pa.ArrowInvalid, OSError):
            pass
    preview.complete = complete
    return preview
