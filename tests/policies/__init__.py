"""Shared test data for the policy tests: a small grant catalog on real Parquet files.

``FULL_DATA`` holds every column of each dataset, including columns that are
never granted (``operator_phone``, ``manager_email``) and a dataset nobody is
granted (``hk_logistics.payroll``), so a leak shows up as data, not as a guess.
``GrantCatalog`` is a real resolver over granted sources (a fake, not a mock).
DuckDB runs in-process: ``run_governed`` uses a locked-down connection that may
read only the granted files, ``run_reference`` evaluates the client's SQL on
tables holding only the granted columns (an independent oracle).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb  # noqa: TID251 - tests drive the real engine directly (STYLE T2)
import pyarrow as pa
import pyarrow.parquet as pq
from sqlglot import exp

from policies.errors import AccessDenied, UnknownDataset
from policies.masking import MaskKey
from policies.model import GovernedSource, Mask

FULL_DATA: dict[str, pa.Table] = {
    "dg_factory.energy_meter": pa.table(
        {
            "meter_id": ["M1", "M1", "M2", "M2", "M3", "M3", "M4", "M4"],
            "site": ["S1", "S1", "S1", "S1", "S2", "S2", "S3", "S3"],
            "ts": [datetime(2025, 3, day, hour) for day in (1, 2) for hour in (8, 9, 10, 11)],
            "kwh": [12.5, 7.25, 30.0, 1.5, 18.75, 22.0, 5.5, 9.0],
            "operator_phone": [f"+852 5555 000{n}" for n in range(8)],
        }
    ),
    "dg_factory.sites": pa.table(
        {
            "site": ["S1", "S2", "S3", "S4"],
            "district": ["Songshan Lake", "Chang'an", "Humen", "Houjie"],
            "manager_email": [f"manager{n}@dg-factory.example" for n in range(4)],
        }
    ),
    "hk_logistics.payroll": pa.table({"employee": ["E1", "E2"], "salary": [41000.0, 52000.0]}),
    # Personal data: one row per badge scan; the privacy unit is the worker (badge_id).
    # S1 has 3 workers (B1 with 5 scans), S2 has 2 workers with 2 scans each, S3 one worker.
    "dg_factory.badge_scans": pa.table(
        {
            "badge_id": ["B1", "B1", "B1", "B1", "B1", "B2", "B3", "B4", "B4", "B5", "B5", "B1"],
            "worker_name": [
                "Chan Tai Man",
                "Chan Tai Man",
                "Chan Tai Man",
                "Chan Tai Man",
                "Chan Tai Man",
                "李小龙",
                "Wong Siu Ming",
                "Ho Ka Yan",
                "Ho Ka Yan",
                "Lam Wing",
                "Lam Wing",
                "Chan Tai Man",
            ],
            "phone": [
                "+852 9123 4567",
                "+852 9123 4567",
                "+852 9123 4567",
                "+852 9123 4567",
                "+852 9123 4567",
                "+86 138 0013 8000",
                "+852 6000 0001",
                None,
                None,
                "+853 6612 3456",
                "+853 6612 3456",
                "+852 9123 4567",
            ],
            "site": ["S1", "S1", "S1", "S1", "S1", "S1", "S1", "S2", "S2", "S2", "S2", "S3"],
            "shift_date": [date(2025, 3, day) for day in (1, 2, 3, 4, 5, 1, 2, 8, 9, 20, 21, 28)],
            "minutes": [480, 470, 500, 480, 460, 480, 450, 300, 320, 510, 490, 480],
            "hourly_rate": [62.5, 62.5, 62.5, 62.5, 62.5, 80.0, 71.0, 55.0, 55.0, 90.0, 90.0, 62.5],
        }
    ),
}

TEST_MASK_SECRET = b"test-platform-mask-secret-0123456789"

STANDARD_GRANTS: dict[str, tuple[str, ...]] = {
    "dg_factory.energy_meter": ("meter_id", "site", "ts", "kwh"),
    "dg_factory.sites": ("site", "district"),
}


def storage_paths(sql_name: str, parts: int) -> tuple[str, ...]:
    org, name = sql_name.split(".")
    return tuple(f"s3://gba-data/{org}/{name}/v1/part-{n}.parquet" for n in range(parts))


def standard_sources() -> tuple[GovernedSource, ...]:
    return tuple(
        GovernedSource(
            dataset_id=f"ds-{sql_name}",
            org=sql_name.split(".")[0],
            name=sql_name.split(".")[1],
            version=1,
            files=storage_paths(sql_name, 2),
            columns=columns,
        )
        for sql_name, columns in STANDARD_GRANTS.items()
    )


class GrantCatalog:
    """Resolver over granted sources; other known datasets are denied, the rest unknown."""

    def __init__(self, sources: Iterable[GovernedSource], *, default_org: str | None = None):
        self.sources = {source.sql_name: source for source in sources}
        self.default_org = default_org
        self.calls: list[tuple[str | None, str]] = []

    def __call__(self, org: str | None, name: str, *, version: int | None = None) -> GovernedSource:
        self.calls.append((org, name))
        sql_name = f"{org or self.default_org}.{name}"
        if sql_name in self.sources:
            source = self.sources[sql_name]
            if version is not None and version != source.version:
                raise UnknownDataset(sql_name, f"has no version {version}")
            return source
        if sql_name in FULL_DATA and org is not None:
            raise AccessDenied("query", sql_name, "request access via POST /v1/access-requests")
        raise UnknownDataset(sql_name if org else name)


def write_source(source: GovernedSource, directory: Path) -> GovernedSource:
    """Write the *full* data of ``source`` (all columns) over local copies of its files."""
    table = FULL_DATA[source.sql_name]
    local: list[str] = []
    for n, _path in enumerate(source.files):
        target = directory / f"{source.org}__{source.name}__{n}.parquet"
        rows = list(range(n, table.num_rows, len(source.files)))
        pq.write_table(table.take(rows), target)
        local.append(str(target))
    return replace(source, files=tuple(local))


def write_catalog(directory: Path, sources: Sequence[GovernedSource] | None = None) -> GrantCatalog:
    chosen = standard_sources() if sources is None else sources
    return GrantCatalog(write_source(source, directory) for source in chosen)


def run_governed(sql: str, allowed_paths: Sequence[str]) -> list[tuple[Any, ...]]:
    """Run generated SQL on a connection that can read only ``allowed_paths``."""
    con = duckdb.connect(
        config={
            "python_enable_replacements": False,
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
        }
    )
    try:
        con.execute("SET allowed_paths = ?", [list(allowed_paths)])
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        return con.execute(sql).fetchall()
    finally:
        con.close()


def run_reference(
    sql: str, sources: Iterable[GovernedSource], key: MaskKey | None = None
) -> list[tuple[Any, ...]]:
    """Run the client's SQL on tables that hold only what the grant shows (no rewrite).

    Row filters are applied by DuckDB to the full data, masks by Python
    (``reference_masked``): an oracle independent of the SQL rewrite.
    """
    con = duckdb.connect(config={"python_enable_replacements": False})
    try:
        for source in sources:
            granted = reference_masked(source, key)
            con.register("granted_rows", granted)
            org = exp.to_identifier(source.org, quoted=True).sql(dialect="duckdb")
            table = exp.table_(source.name, db=source.org, quoted=True).sql(dialect="duckdb")
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {org}")
            con.execute(f"CREATE TABLE {table} AS SELECT * FROM granted_rows")
            con.unregister("granted_rows")
        return con.execute(sql).fetchall()
    finally:
        con.close()


def reference_masked(source: GovernedSource, key: MaskKey | None = None) -> pa.Table:
    """The rows and columns ``source`` grants, filtered and masked without SQL rewriting."""
    full = FULL_DATA[source.sql_name]
    if source.row_filter is not None:
        con = duckdb.connect(config={"python_enable_replacements": False})
        try:
            con.register("full_rows", full)
            full = con.execute(
                f"SELECT * FROM full_rows WHERE {source.row_filter}"
            ).to_arrow_table()
        finally:
            con.close()
    table = full.select(list(source.columns))
    for mask in source.masks:
        if mask.column not in source.columns:
            continue
        index = table.schema.get_field_index(mask.column)
        values = [_mask_value(mask, value, key) for value in table.column(index).to_pylist()]
        original = table.schema.field(index).type
        kind = {"null": original, "generalise": None}.get(mask.kind, pa.string())
        table = table.set_column(index, mask.column, pa.array(values, type=kind))
    return table


def _mask_value(mask: Mask, value: Any, key: MaskKey | None) -> Any:
    if value is None or mask.kind == "null":
        return None
    if mask.kind == "hmac":
        assert key is not None
        return hmac.new(key.secret, str(value).encode(), hashlib.sha256).hexdigest()
    if mask.kind == "redact":
        return mask.params.get("text", "***")
    if mask.kind == "partial":
        text, head, tail = (
            str(value),
            mask.params.get("keep_prefix", 0),
            mask.params.get("keep_suffix", 0),
        )
        if len(text) <= head + tail:
            return "***"
        return text[:head] + "***" + (text[-tail:] if tail else "")
    if "bucket" in mask.params:
        return math.floor(value / mask.params["bucket"]) * mask.params["bucket"]
    unit, start = mask.params["to"], datetime(value.year, value.month, value.day)
    if unit == "month":
        return start.replace(day=1)  # DuckDB's DATE_TRUNC returns a TIMESTAMP for a DATE
    assert unit == "year", unit
    return start.replace(month=1, day=1)


def read_parquet_paths(sql: str) -> set[str]:
    """Every path literal inside READ_PARQUET(...) calls of generated SQL."""
    import sqlglot

    tree = sqlglot.parse_one(sql, dialect="duckdb")
    return {
        literal.this
        for call in tree.find_all(exp.ReadParquet)
        for literal in call.find_all(exp.Literal)
        if literal.is_string
    }


def assert_duckdb_reads_only(sql: str, granted_paths: Iterable[str]) -> None:
    """DuckDB's *own* parser (``json_serialize_sql``) agrees: one SELECT whose only table
    functions are ``read_parquet`` over granted literal paths and whose named tables are CTEs.

    An independent check of what sqlglot regenerated (SECURITY.md §3.13): a disagreement
    between the two parsers would show up as a base table or a function sqlglot never saw.
    """
    con = duckdb.connect()
    try:
        text = con.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()
    finally:
        con.close()
    assert text is not None
    tree = json.loads(text[0])
    assert tree["error"] is False and len(tree["statements"]) == 1, tree
    ctes: set[str] = set()
    tables: list[str] = []
    functions: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("cte_map"), dict):
                ctes.update(entry["key"].lower() for entry in node["cte_map"].get("map", []))
            if node.get("type") == "BASE_TABLE":
                tables.append(str(node.get("table_name")).lower())
            if node.get("type") == "TABLE_FUNCTION":
                functions.append(node["function"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(tree["statements"][0])
    assert set(tables) <= ctes, f"DuckDB sees base tables {set(tables) - ctes}"
    allowed = set(granted_paths)
    for function in functions:
        assert function["function_name"].lower() == "read_parquet", function["function_name"]
        (paths,) = function["children"]
        assert paths.get("function_name") == "list_value", paths
        literals = [child["value"]["value"] for child in paths["children"]]
        assert all(child.get("class") == "CONSTANT" for child in paths["children"])
        assert literals and set(literals) <= allowed, literals
