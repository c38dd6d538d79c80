"""TPC-H through the platform: generate with DuckDB's tpch extension, load as datasets
through the ingest path (Parquet uploads with contracts), and qualify the 22 queries.

Shared by ``tests/test_tpch.py`` (SF 0.1) and ``benchmarks/query.py`` (SF 1).
DECIMAL columns become ``double`` datasets (contracts have no decimal type); every column
is declared ``non_pi`` (synthetic business data: no masks from the cross-boundary rules,
which would rightly change results such as Q16's ``s_comment LIKE``); the raw
DuckDB baseline reads the platform's own curated Parquet, so both sides see the same
types and the same files.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import sqlglot
from sqlglot import exp

from catalog.duckdb_session import extension_path, sql_string
from gateway.client import Client

TABLES = ("region", "nation", "supplier", "customer", "part", "partsupp", "orders", "lineitem")
_TYPES = {"int32": "integer", "int64": "integer", "double": "double", "string": "string"}


def generate(directory: Path, scale_factor: float) -> dict[str, Path]:
    """``<table>.parquet`` for the eight TPC-H tables (reused when already there)."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {table: directory / f"{table}.parquet" for table in TABLES}
    if all(path.is_file() for path in files.values()):
        return files
    with duckdb.connect(":memory:") as con:
        con.execute(f"LOAD {sql_string(str(extension_path('tpch')))}")
        con.execute(f"CALL dbgen(sf={float(scale_factor)})")
        for table, path in files.items():
            con.execute(f"COPY {table} TO {sql_string(str(path))} (FORMAT parquet)")
    return files


@functools.cache
def queries() -> tuple[str, ...]:
    """The 22 TPC-H queries as the tpch extension ships them (no trailing semicolon)."""
    with duckdb.connect(":memory:") as con:
        con.execute(f"LOAD {sql_string(str(extension_path('tpch')))}")
        rows = con.execute("SELECT query FROM tpch_queries() ORDER BY query_nr").fetchall()
    return tuple(str(row[0]).strip().rstrip(";") for row in rows)


def contract(path: Path) -> dict[str, Any]:
    columns = []
    for field in pq.read_schema(path):
        kind = str(field.type)
        if kind.startswith("decimal"):
            kind = "double"
        elif kind.startswith("date"):
            kind = "date"
        columns.append(
            {"name": field.name, "type": _TYPES.get(kind, kind), "nullable": False, "pi": "non_pi"}
        )
    return {"columns": columns}


def load(client: Client, files: Mapping[str, Path], *, timeout: float = 1800.0) -> dict[str, str]:
    """Create one dataset per table and upload its Parquet; returns table → dataset id."""
    ids: dict[str, str] = {}
    jobs: dict[str, str] = {}
    for table, path in files.items():
        spec = {"name": table, "title": f"TPC-H {table}", "contract": contract(path)}
        ids[table] = client.create_dataset(spec)["id"]
        jobs[table] = client.upload(ids[table], path, fmt="parquet")["id"]
    deadline = time.monotonic() + timeout
    for table, job_id in jobs.items():
        job = client.wait_job(job_id, timeout=max(deadline - time.monotonic(), 1.0))
        if job["status"] != "succeeded" or job["rows_rejected"]:
            raise RuntimeError(f"TPC-H {table} did not load: {job}")
    return ids


def qualified(sql: str, org: str) -> str:
    """``sql`` with every TPC-H table reference prefixed by ``org`` (CTE names untouched)."""
    tree = sqlglot.parse_one(sql, dialect="duckdb")
    for table in tree.find_all(exp.Table):
        if table.name in TABLES and not table.db:
            table.set("db", exp.to_identifier(org))
    return tree.sql(dialect="duckdb")


def raw_connection(files: Mapping[str, list[str]], threads: int) -> duckdb.DuckDBPyConnection:
    """Plain DuckDB with one view per table over the given Parquet files (the baseline)."""
    con = duckdb.connect(":memory:", config={"threads": threads})
    for table, paths in files.items():
        listed = ", ".join(sql_string(p) for p in paths)
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet([{listed}])")
    return con
