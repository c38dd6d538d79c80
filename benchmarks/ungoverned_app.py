"""The ungoverned baseline for ``benchmarks/query.py``: one FastAPI endpoint streaming a
DuckDB result over the benchmark's Parquet files as Arrow IPC, with no auth, no policy,
no worker process. Configured by ``BENCH_FILES`` (JSON list) and ``BENCH_THREADS``."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import duckdb
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from benchmarks.query import STREAM_COLUMNS, stream_sql
from catalog.duckdb_session import sql_string
from gateway.result_formats import encode_arrow

app = FastAPI()
FILES: list[str] = json.loads(os.environ.get("BENCH_FILES", "[]"))
THREADS = int(os.environ.get("BENCH_THREADS", "2"))


@app.get("/ping")
def ping() -> dict[str, str]:
    return {"columns": STREAM_COLUMNS}


@app.get("/arrow")
def arrow() -> StreamingResponse:
    con = duckdb.connect(":memory:", config={"threads": THREADS})
    listed = ", ".join(sql_string(f) for f in FILES)
    con.execute(f"CREATE VIEW lineitem AS SELECT * FROM read_parquet([{listed}])")
    reader = con.execute(stream_sql("")).to_arrow_reader(65_536)

    def body() -> Iterator[bytes]:
        try:
            yield from encode_arrow(reader.schema, reader)
        finally:
            con.close()

    return StreamingResponse(body(), media_type="application/vnd.apache.arrow.stream")
