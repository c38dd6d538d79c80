"""Golden-file and behaviour tests for ``policies.rewrite.govern``.

Each ``tests/fixtures/policies/*.sql`` file holds a header describing the
granted sources, the client's input and the exact expected SQL. The golden test
checks the text, then runs the governed SQL on DuckDB (locked to the granted
files, which hold *all* columns) and compares the rows with the client's query
evaluated on tables built from the granted columns only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import sqlglot
from sqlglot import exp

from catalog.errors import StorageUnavailable
from policies.errors import AccessDenied, QueryRefused
from policies.masking import MaskKey, derive_mask_key
from policies.model import GovernedSource, Mask
from policies.rewrite import RULES, RewriteContext, apply_rules, govern
from policies.rewrite.allowed_constructs import FUNCTION_EXAMPLES, FUNCTIONS, spelling
from policies.rewrite.apply_row_filters import apply_row_filters
from policies.rewrite.check_allowlist import check_allowlist
from policies.rewrite.check_columns import check_columns
from policies.rewrite.check_complexity import check_complexity
from policies.rewrite.check_join_conditions import check_join_conditions
from policies.rewrite.context import source_of
from policies.rewrite.enforce_min_group_size import enforce_min_group_size
from policies.rewrite.limit_rows import limit_rows
from policies.rewrite.mask_columns import mask_columns
from policies.rewrite.render_sql import render_sql
from policies.rewrite.replace_with_governed_relations import replace_with_governed_relations
from policies.rewrite.resolve_datasets import resolve_datasets
from tests.policies import (
    FULL_DATA,
    TEST_MASK_SECRET,
    GrantCatalog,
    read_parquet_paths,
    run_governed,
    run_reference,
    standard_sources,
    write_catalog,
    write_source,
)

GOLDEN_DIR = Path(__file__).parents[1] / "fixtures" / "policies"
GOLDEN_FILES = sorted(GOLDEN_DIR.glob("*.sql"))
HEADER = re.compile(
    r"^-- (source|columns|files|version|mask|row_filter|aggregate_only|min_group_size|"
    r"subject_column|max_rows|ordered|mask_key|expect_rows): (.*)$"
)
SOURCE_KEYS = ("columns", "files", "version", "mask", "row_filter", "aggregate_only")
SOURCE_KEYS += ("min_group_size", "subject_column")


@dataclass(frozen=True)
class GoldenCase:
    sources: tuple[GovernedSource, ...]
    max_rows: int
    ordered: bool
    input_sql: str
    expected_sql: str
    mask_key: MaskKey | None = None
    expect_rows: int | None = None  # rows after suppression (aggregate-only cases)


def load_golden(path: Path) -> GoldenCase:
    header, rest = path.read_text(encoding="utf-8").split("-- input:\n", 1)
    input_sql, expected_sql = rest.split("-- expected:\n", 1)
    sources: list[dict[str, Any]] = []
    settings: dict[str, str] = {}
    for line in header.splitlines():
        match = HEADER.match(line)
        if match is None:
            continue  # free-text description
        key, value = match.groups()
        if key == "source":
            sources.append({"sql_name": value.strip(), "masks": []})
        elif key in ("columns", "files"):
            sources[-1][key] = tuple(re.split(r"[,\s]+", value.strip()))
        elif key == "mask":
            sources[-1]["masks"].append(Mask(**json.loads(value)))
        elif key in SOURCE_KEYS:
            sources[-1][key] = value.strip()
        else:
            settings[key] = value.strip()
    key_org = settings.get("mask_key")
    expect_rows = settings.get("expect_rows")
    return GoldenCase(
        sources=tuple(_golden_source(**source) for source in sources),
        max_rows=int(settings["max_rows"]),
        ordered=settings["ordered"] == "true",
        input_sql=input_sql.strip(),
        expected_sql=expected_sql.strip(),
        mask_key=derive_mask_key(TEST_MASK_SECRET, key_org) if key_org else None,
        expect_rows=int(expect_rows) if expect_rows is not None else None,
    )


def _golden_source(
    sql_name: str,
    columns: tuple[str, ...],
    files: tuple[str, ...],
    masks: list[Mask],
    version: str = "1",
    row_filter: str | None = None,
    aggregate_only: str = "false",
    min_group_size: str | None = None,
    subject_column: str | None = None,
) -> GovernedSource:
    org, name = sql_name.split(".")
    return GovernedSource(
        f"ds-{sql_name}",
        org,
        name,
        int(version),
        files,
        columns,
        masks=tuple(masks),
        row_filter=row_filter,
        aggregate_only=aggregate_only == "true",
        min_group_size=int(min_group_size) if min_group_size else None,
        subject_column=subject_column,
    )


def assert_rows_equal(
    actual: list[tuple[Any, ...]], expected: list[tuple[Any, ...]], *, ordered: bool
) -> None:
    if not ordered:
        actual, expected = sorted(actual, key=repr), sorted(expected, key=repr)
    assert actual == expected


def test_golden_files_exist() -> None:
    assert len(GOLDEN_FILES) >= 5


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=lambda path: path.stem)
def test_govern_matches_golden_file(path: Path) -> None:
    case = load_golden(path)
    catalog = GrantCatalog(case.sources)
    query = govern(case.input_sql, catalog, max_rows=case.max_rows, mask_key=case.mask_key)
    assert query.sql == case.expected_sql
    assert set(query.sources) == set(case.sources)
    assert query.max_rows == case.max_rows
    if case.mask_key is not None:
        padded = case.mask_key.secret.ljust(64, b"\0")
        assert bytes(b ^ 0x36 for b in padded).hex() in query.sql
        assert bytes(b ^ 0x36 for b in padded).hex() not in query.redacted_sql
        assert "<mask key redacted>" in query.redacted_sql
    else:
        assert query.redacted_sql == query.sql


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=lambda path: path.stem)
def test_govern_golden_rows_match_granted_only_reference(path: Path, tmp_path: Path) -> None:
    case = load_golden(path)
    local = tuple(write_source(source, tmp_path) for source in case.sources)
    query = govern(
        case.input_sql, GrantCatalog(local), max_rows=case.max_rows, mask_key=case.mask_key
    )
    expected_sql = case.expected_sql
    for golden, written in zip(case.sources, local, strict=True):
        for remote, path_on_disk in zip(golden.files, written.files, strict=True):
            expected_sql = expected_sql.replace(f"'{remote}'", f"'{path_on_disk}'")
    assert query.sql == expected_sql

    rows = run_governed(query.sql, query.allowed_paths)
    reference = run_reference(_without_time_travel(case.input_sql), case.sources, case.mask_key)
    assert rows, "a golden case should return rows"
    if case.expect_rows is None:
        assert_rows_equal(rows, reference, ordered=case.ordered)
    else:  # suppression: the governed rows are a strict subset of the unsuppressed reference
        assert len(rows) == case.expect_rows < len(reference)
        assert set(rows) <= set(reference)


def _without_time_travel(sql: str) -> str:
    """The reference tables hold the pinned version already; DuckDB has no AT clause for them."""
    return re.sub(r"\s+AT \(VERSION => \d+\)", "", sql)


EM, SITES = "dg_factory.energy_meter", "dg_factory.sites"
COMMON_SQL = [
    f"SELECT kwh * 2 AS double_kwh, double_kwh + 1 AS plus_one FROM {EM}",
    f"SELECT meter_id, kwh FROM {EM} "
    "QUALIFY row_number() OVER (PARTITION BY meter_id ORDER BY kwh DESC) = 1",
    f"SELECT DISTINCT ON (meter_id) meter_id, kwh FROM {EM} ORDER BY meter_id, kwh DESC",
    f"SELECT site, count(*) AS n FROM {EM} GROUP BY ALL ORDER BY ALL",
    f"SELECT site FROM {EM} UNION BY NAME SELECT site FROM {SITES}",
    f"SELECT meter_id, sum(kwh) OVER w AS running FROM {EM} "
    "WINDOW w AS (PARTITION BY meter_id ORDER BY ts)",
    f"SELECT m.meter_id FROM {EM} AS m "
    f"WHERE m.kwh > (SELECT avg(x.kwh) FROM {EM} AS x WHERE x.site = m.site)",
    f"SELECT s.site FROM {SITES} AS s WHERE EXISTS (SELECT 1 FROM {EM} AS m WHERE m.site = s.site)",
    f"WITH x(a, b) AS (SELECT meter_id, kwh FROM {EM}) SELECT a, b FROM x WHERE b > 10",
    "SELECT * FROM (VALUES (1, 'a'), (2, 'b')) AS v(k, s)",
    f"SELECT * FROM {EM} JOIN {SITES} USING (site)",
    f"FROM {EM} SELECT kwh",
    f"FROM {EM}",
    f"SELECT kwh FROM {EM} WHERE ts > DATE '2025-03-02'",
    f"SELECT ts + INTERVAL 1 DAY AS tomorrow FROM {EM}",
    f"SELECT CASE WHEN kwh > 10 THEN 'high' WHEN kwh > 5 THEN 'mid' ELSE 'low' END AS b FROM {EM}",
    f"SELECT kwh FROM {EM} WHERE site IN ('S1', 'S3') AND kwh BETWEEN 5 AND 20",
    f"SELECT district FROM {SITES} WHERE district LIKE 'S%' OR district ILIKE '%MEN'",
    f"SELECT coalesce(nullif(site, 'S1'), 'none') AS s FROM {EM}",
    f"SELECT m.* FROM {EM} AS m WHERE m.kwh > 20",
    f"SELECT DISTINCT site FROM {EM}",
    f"SELECT site, sum(kwh) AS total FROM {EM} GROUP BY site HAVING sum(kwh) > 20",
    f"SELECT site FROM {SITES} EXCEPT SELECT site FROM {EM}",
    f"SELECT site FROM {SITES} INTERSECT SELECT site FROM {EM}",
    f"WITH a AS (SELECT site, kwh FROM {EM}), "
    "b AS (SELECT site, sum(kwh) AS t FROM a GROUP BY site) SELECT * FROM b",
    f"SELECT t.site FROM (SELECT site FROM (SELECT site FROM {EM}) AS inner_q) AS t",
    "SELECT 1 AS one",
    f"SELECT m.site, s.district FROM {EM} AS m LEFT JOIN {SITES} AS s "
    "ON m.site = s.site AND s.district <> 'x'",
    f"SELECT s.site, m.kwh FROM {EM} AS m RIGHT JOIN {SITES} AS s ON m.site = s.site",
    f"SELECT s.site FROM {SITES} AS s FULL OUTER JOIN {EM} AS m ON m.site = s.site",
    f"SELECT s.site FROM {SITES} AS s SEMI JOIN {EM} AS m ON m.site = s.site",
    f"SELECT s.site FROM {SITES} AS s ANTI JOIN {EM} AS m ON m.site = s.site",
    f"SELECT CAST(kwh AS INTEGER) AS k, TRY_CAST(site AS INTEGER) AS n, kwh::TEXT AS v FROM {EM}",
    f"SELECT CAST(kwh AS DECIMAL(10, 2)) AS d FROM {EM}",
    f"SELECT lag(kwh IGNORE NULLS) OVER (ORDER BY ts) AS prev FROM {EM}",
    f"SELECT count(DISTINCT site) FROM {EM}",
    f"SELECT -kwh AS n, kwh % 2 AS m, kwh // 2 AS d, site || '-' || meter_id AS label FROM {EM}",
    f"SELECT sum(kwh) OVER (ORDER BY ts ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS r FROM {EM}",
    f"SELECT site IS NULL AS a, site IS NOT DISTINCT FROM 'S1' AS b FROM {EM}",
    f"SELECT energy_meter.kwh FROM {EM}",
    f'SELECT Kwh AS "Big Kwh" FROM {EM}',
    f"WITH WITHNAME AS (SELECT kwh FROM {EM}) SELECT * FROM withname",
    f"WITH energy_meter AS (SELECT 1.0 AS kwh) SELECT kwh FROM {EM}",  # the dataset, not the CTE
    f"SELECT kwh FROM {EM} WHERE kwh = (SELECT max(kwh) FROM {EM})",
    f"SELECT extract(hour FROM ts) AS h, date_diff('hour', ts, ts + INTERVAL 2 HOUR) FROM {EM}",
    f"(SELECT site FROM {EM}) UNION (SELECT site FROM {SITES})",
    f"SELECT sum(kwh) FILTER (WHERE kwh > 10) AS big, count(*) AS n FROM {EM}",
    f"SELECT m.meter_id, s.district FROM {EM} AS m JOIN {SITES} AS s "
    "ON m.site >= s.site AND m.site <= s.site",
    f"SELECT m.kwh, n.kwh FROM {EM} AS m, {EM} AS n WHERE m.kwh BETWEEN n.kwh AND n.kwh + 1",
    f"SELECT m.kwh FROM {EM} AS m, {SITES} AS s, {EM} AS n "
    "WHERE m.site = s.site AND s.site = n.site AND n.kwh > 20",
]


@pytest.mark.parametrize("sql", COMMON_SQL)
def test_govern_common_sql_matches_granted_only_reference(sql: str, tmp_path: Path) -> None:
    catalog = write_catalog(tmp_path)
    query = govern(sql, catalog, max_rows=1000)
    rows = run_governed(query.sql, query.allowed_paths)
    assert_rows_equal(rows, run_reference(sql, standard_sources()), ordered=False)


def test_govern_refuses_too_many_nodes_even_under_a_raised_byte_limit() -> None:
    values = ", ".join(str(n) for n in range(25_000))
    sql = f"SELECT kwh FROM {EM} WHERE kwh IN ({values})"
    with pytest.raises(QueryRefused) as raised:
        govern(sql, GrantCatalog(standard_sources()), max_rows=10, max_sql_bytes=1_000_000)
    assert raised.value.construct == "complexity"


def test_rules_run_in_documented_order() -> None:
    documented = (
        check_complexity,
        check_allowlist,
        resolve_datasets,
        check_columns,
        check_join_conditions,
        enforce_min_group_size,
        replace_with_governed_relations,
        apply_row_filters,
        mask_columns,
        limit_rows,
    )
    assert documented == RULES


def test_apply_rules_runs_a_sub_list_and_marks_sources() -> None:
    catalog = GrantCatalog(standard_sources())
    context = RewriteContext(resolve=catalog, max_rows=10)
    tree = sqlglot.parse_one("SELECT kwh FROM dg_factory.energy_meter", dialect="duckdb")
    assert isinstance(tree, exp.Select)
    result = apply_rules(tree, context, (check_allowlist, resolve_datasets))
    table = result.find(exp.Table)
    assert table is not None
    assert source_of(table) == catalog.sources["dg_factory.energy_meter"]
    assert context.sources == [catalog.sources["dg_factory.energy_meter"]]


def test_govern_caps_rows_at_max_rows_plus_one_even_with_client_limit(tmp_path: Path) -> None:
    catalog = write_catalog(tmp_path)
    query = govern(
        "SELECT kwh FROM dg_factory.energy_meter ORDER BY kwh LIMIT 1000", catalog, max_rows=3
    )
    assert query.max_rows == 3
    rows = run_governed(query.sql, query.allowed_paths)
    assert rows == [(1.5,), (5.5,), (7.25,), (9.0,)]  # order kept through the outer LIMIT


def test_govern_keeps_client_offset_inside_the_cap(tmp_path: Path) -> None:
    catalog = write_catalog(tmp_path)
    sql = "SELECT kwh FROM dg_factory.energy_meter ORDER BY kwh DESC LIMIT 2 OFFSET 1"
    query = govern(sql, catalog, max_rows=100)
    assert run_governed(query.sql, query.allowed_paths) == [(22.0,), (18.75,)]


def test_govern_resolver_access_denied_propagates_unchanged() -> None:
    denial = AccessDenied("query", "hk_logistics.payroll", "request access")

    def deny(org: str | None, name: str) -> GovernedSource:
        raise denial

    with pytest.raises(AccessDenied) as raised:
        govern("SELECT * FROM hk_logistics.payroll", deny, max_rows=10)
    assert raised.value is denial


def test_govern_resolver_platform_error_is_not_turned_into_a_refusal() -> None:
    outage = StorageUnavailable("catalog database unreachable")

    def unavailable(org: str | None, name: str) -> GovernedSource:
        raise outage

    with pytest.raises(StorageUnavailable) as raised:
        govern("SELECT * FROM dg_factory.energy_meter", unavailable, max_rows=10)
    assert raised.value is outage


def test_govern_passes_one_part_names_to_resolver_with_no_org(tmp_path: Path) -> None:
    sources = [write_source(source, tmp_path) for source in standard_sources()]
    catalog = GrantCatalog(sources, default_org="dg_factory")
    query = govern("SELECT energy_meter.kwh FROM energy_meter WHERE kwh > 20", catalog, max_rows=10)
    assert catalog.calls == [(None, "energy_meter")]
    assert ') AS "energy_meter"' in query.sql
    assert sorted(run_governed(query.sql, query.allowed_paths)) == [(22.0,), (30.0,)]


def test_govern_normalises_dataset_names_like_duckdb() -> None:
    catalog = GrantCatalog(standard_sources())
    govern('SELECT "KWH" FROM "DG_FACTORY"."Energy_Meter"', catalog, max_rows=10)
    assert catalog.calls == [("dg_factory", "energy_meter")]


def test_govern_keeps_client_column_alias_list(tmp_path: Path) -> None:
    catalog = write_catalog(tmp_path)
    sql = (
        "SELECT m.energy FROM dg_factory.energy_meter AS m(meter, place, at, energy) "
        "WHERE m.place = 'S3'"
    )
    query = govern(sql, catalog, max_rows=10)
    assert 'AS "m"("meter", "place", "at", "energy")' in query.sql
    assert sorted(run_governed(query.sql, query.allowed_paths)) == [(5.5,), (9.0,)]


def test_govern_escapes_quotes_in_paths_and_column_names(tmp_path: Path) -> None:
    odd_file = tmp_path / "it's here.parquet"
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({'we"ird': [1, 2], "secret": ["x", "y"]}), odd_file)
    source = GovernedSource("ds-odd", "dg_factory", "odd", 1, (str(odd_file),), ('we"ird',))
    query = govern("SELECT * FROM dg_factory.odd", GrantCatalog([source]), max_rows=10)
    assert read_parquet_paths(query.sql) == {str(odd_file)}
    assert '"we""ird"' in query.sql
    assert sorted(run_governed(query.sql, query.allowed_paths)) == [(1,), (2,)]


def test_govern_refuses_dataset_version_without_files() -> None:
    empty = replace(standard_sources()[0], files=())
    with pytest.raises(QueryRefused) as raised:
        govern("SELECT kwh FROM dg_factory.energy_meter", GrantCatalog([empty]), max_rows=10)
    assert raised.value.construct == "dataset"


def test_govern_unknown_column_message_is_the_same_for_ungranted_and_missing_columns() -> None:
    catalog = GrantCatalog(standard_sources())
    messages = []
    for column in ("operator_phone", "no_such_column"):
        with pytest.raises(QueryRefused) as raised:
            govern(f"SELECT {column} FROM dg_factory.energy_meter", catalog, max_rows=10)
        assert raised.value.construct == "column"
        messages.append(str(raised.value).replace(column, "<column>"))
    assert messages[0] == messages[1]
    assert "meter_id, site, ts, kwh" in messages[0]  # says what is allowed instead


def test_govern_reads_only_granted_files_and_columns(tmp_path: Path) -> None:
    catalog = write_catalog(tmp_path)
    query = govern("SELECT * FROM dg_factory.energy_meter", catalog, max_rows=100)
    rows = run_governed(query.sql, query.allowed_paths)
    assert len(rows) == FULL_DATA["dg_factory.energy_meter"].num_rows
    assert all(len(row) == 4 for row in rows)
    assert not any("+852" in str(value) for row in rows for value in row)


def test_render_sql_refuses_text_that_does_not_round_trip() -> None:
    # A tree the allowlist would refuse, built directly: sqlglot re-emits the
    # user-defined type name verbatim, which would smuggle a second statement.
    evil_type = exp.DataType(this=exp.DataType.Type.USERDEFINED, kind="INT); DROP TABLE t; --")
    tree = exp.select(exp.Cast(this=exp.Literal.number(1), to=evil_type))
    with pytest.raises(QueryRefused) as raised:
        render_sql(tree)
    assert raised.value.construct == "generated sql"


def test_allowed_function_examples_cover_every_allowed_function_class() -> None:
    seen: set[type[exp.Expr]] = set()
    for example in FUNCTION_EXAMPLES:
        projection = sqlglot.parse_one(f"SELECT {example}", dialect="duckdb").expressions[0]
        function = next(node for node in projection.walk() if type(node) in FUNCTIONS)
        seen.add(type(function))
        assert spelling(example).isidentifier()
    assert seen == set(FUNCTIONS)


@pytest.mark.parametrize("example", FUNCTION_EXAMPLES)
def test_allowed_function_is_governed_and_runs_on_duckdb(example: str, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = tmp_path / "numbers.parquet"
    moments = pa.array([1_700_000_000_000_000, 1_700_090_000_000_000], pa.timestamp("us"))
    columns = {"x": [1.5, 4.0], "y": [2.0, 3.0], "s": ["2024", "2025"], "t": moments}
    pq.write_table(pa.table(columns), data)
    source = GovernedSource("ds-num", "lab", "numbers", 1, (str(data),), ("x", "y", "s", "t"))
    sql = f"SELECT CAST({example} AS VARCHAR) AS v FROM lab.numbers"  # VARCHAR: no pytz needed
    query = govern(sql, GrantCatalog([source]), max_rows=10)
    assert run_governed(query.sql, query.allowed_paths)
