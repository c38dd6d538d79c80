"""All 22 TPC-H queries pass the allowlist and the rewrite, unchanged in meaning.

TPC-H SF 0.01 is generated with DuckDB's ``tpch`` extension (loaded from the
``duckdb_extension_tpch`` wheel, nothing downloaded) and written as Parquet;
each table is granted in full. Every query from ``tpch_queries()`` is governed
(its one-part table names resolved as ``tpch.<table>``), run on a DuckDB
connection that may read only the granted files, and compared with the raw
query over views on the same Parquet. The HTTP path is tested by the engine
side (``tests/test_tpch*.py``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import duckdb  # noqa: TID251 - tests drive the real engine directly (STYLE T2)
import pytest

from catalog.duckdb_session import extension_path
from policies.model import GovernedSource
from policies.rewrite import govern
from tests.policies import GrantCatalog, assert_duckdb_reads_only, run_governed

SCALE_FACTOR = 0.01


@pytest.fixture(scope="module")
def tpch(tmp_path_factory: pytest.TempPathFactory) -> tuple[GrantCatalog, dict[int, str], Path]:
    directory = tmp_path_factory.mktemp("tpch")
    con = duckdb.connect()
    try:
        con.execute(f"LOAD '{extension_path('tpch')}'")
        con.execute(f"CALL dbgen(sf = {SCALE_FACTOR})")
        queries = dict(con.execute("SELECT query_nr, query FROM tpch_queries()").fetchall())
        sources = []
        for (table,) in con.execute("SHOW TABLES").fetchall():
            path = directory / f"{table}.parquet"
            con.execute(f"COPY {table} TO '{path}' (FORMAT parquet)")
            columns = tuple(row[0] for row in con.execute(f"DESCRIBE {table}").fetchall())
            sources.append(GovernedSource(f"ds-{table}", "tpch", table, 1, (str(path),), columns))
    finally:
        con.close()
    return GrantCatalog(sources, default_org="tpch"), queries, directory


def _raw(sql: str, directory: Path) -> list[tuple[Any, ...]]:
    con = duckdb.connect()
    try:
        for path in sorted(directory.glob("*.parquet")):
            con.execute(f"CREATE VIEW {path.stem} AS SELECT * FROM read_parquet('{path}')")
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _same(left: Any, right: Any) -> bool:
    if isinstance(left, float) and isinstance(right, float):
        return math.isclose(left, right, rel_tol=1e-9, abs_tol=1e-9)
    return bool(left == right)


def test_tpch_has_22_queries(tpch: tuple[GrantCatalog, dict[int, str], Path]) -> None:
    assert sorted(tpch[1]) == list(range(1, 23))


@pytest.mark.parametrize("number", range(1, 23))
def test_tpch_query_governed_returns_the_raw_result(
    number: int, tpch: tuple[GrantCatalog, dict[int, str], Path]
) -> None:
    catalog, queries, directory = tpch
    query = govern(queries[number], catalog, max_rows=1_000_000)
    assert "READ_PARQUET" in query.sql and query.sources
    assert_duckdb_reads_only(query.sql, query.allowed_paths)
    governed = run_governed(query.sql, query.allowed_paths)
    raw = _raw(queries[number], directory)
    assert len(governed) == len(raw) and raw, f"Q{number}: {len(governed)} vs {len(raw)} rows"
    ordered = "ORDER BY" in queries[number].upper()
    if not ordered:
        governed, raw = sorted(governed, key=repr), sorted(raw, key=repr)
    for got, want in zip(governed, raw, strict=True):
        assert len(got) == len(want)
        assert all(_same(a, b) for a, b in zip(got, want, strict=True)), f"Q{number}: {got} {want}"
