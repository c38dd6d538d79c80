"""Hostile SQL against obligations: masks, row filters, aggregate-only grants, time travel.

Complements ``test_hostile_sql.py`` (which covers files, statements, introspection and
syntax tricks). Each entry here either is refused with the construct named, or runs and
is *neutralised*: its result holds no clear value of a masked column and no row outside
the row filter. The grant under attack (``badge_scans``, personal data):

* row-level access: ``worker_name`` HMAC-masked, ``phone`` partially masked, row filter
  ``site = 'S1'`` (so Ho Ka Yan and Lam Wing at S2 must never appear);
* aggregate-only access: minimum group size 3 distinct workers (``badge_id``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from policies.errors import QueryRefused, UnknownDataset
from policies.masking import derive_mask_key
from policies.model import GovernedSource, Mask
from policies.rewrite import govern
from policies.rewrite.apply_row_filters import InvalidRowFilter
from tests.policies import (
    FULL_DATA,
    TEST_MASK_SECRET,
    GrantCatalog,
    assert_duckdb_reads_only,
    run_governed,
    write_source,
)

BS = "dg_factory.badge_scans"
EM = "dg_factory.energy_meter"
KEY = derive_mask_key(TEST_MASK_SECRET, "org-hk-ai-lab")
SCANS = FULL_DATA[BS].to_pydict()
CLEAR_VALUES = {value for value in SCANS["worker_name"] + SCANS["phone"] if value}
OUTSIDE_FILTER_BADGES = {"B4", "B5"}  # the workers at S2, outside the row filter

ROW_LEVEL = GovernedSource(
    "ds-bs",
    "dg_factory",
    "badge_scans",
    3,
    ("s3://gba-data/dg_factory/badge_scans/v3/part-0.parquet",),
    ("badge_id", "worker_name", "phone", "site", "shift_date", "minutes", "hourly_rate"),
    masks=(Mask("worker_name", "hmac"), Mask("phone", "partial", {"keep_prefix": 4})),
    row_filter="site = 'S1'",
)
AGGREGATE_ONLY = replace(
    ROW_LEVEL, row_filter=None, aggregate_only=True, min_group_size=3, subject_column="badge_id"
)
ENERGY = GovernedSource(
    "ds-em",
    "dg_factory",
    "energy_meter",
    1,
    ("s3://gba-data/dg_factory/energy_meter/v1/part-0.parquet",),
    ("meter_id", "site", "ts", "kwh"),
)


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, GovernedSource]:
    directory = tmp_path_factory.mktemp("hostile_governance")
    written = {"row": write_source(ROW_LEVEL, directory), "energy": write_source(ENERGY, directory)}
    written["aggregate"] = replace(AGGREGATE_ONLY, files=written["row"].files)
    return written


def refused(sql: str, construct: str, name: str) -> Any:
    return pytest.param(sql, construct, id=name)


AGGREGATE_ONLY_REFUSED = [
    refused(f"SELECT * FROM {BS}", "aggregate-only SELECT", "raw_rows_star"),
    refused(f"SELECT worker_name FROM {BS}", "aggregate-only raw row", "raw_rows_column"),
    refused(
        f"SELECT site, worker_name, count(*) FROM {BS} GROUP BY site",
        "aggregate-only raw row",
        "ungrouped_column_beside_aggregate",
    ),
    refused(f"SELECT site, min(minutes) FROM {BS} GROUP BY site", "aggregate-only MIN", "min"),
    refused(f"SELECT site, max(hourly_rate) FROM {BS} GROUP BY site", "aggregate-only MAX", "max"),
    refused(f"SELECT arg_max(worker_name, minutes) FROM {BS}", "ARG_MAX", "arg_max"),
    refused(f"SELECT list(phone) FROM {BS}", "ARRAY_AGG", "list"),
    refused(f"SELECT string_agg(worker_name, ',') FROM {BS}", "LISTAGG", "string_agg"),
    refused(f"SELECT first(worker_name) FROM {BS}", "FIRST", "first"),
    refused(f"SELECT any_value(worker_name) FROM {BS}", "ANY_VALUE", "any_value"),
    refused(f"SELECT median(minutes) FROM {BS}", "aggregate-only MEDIAN", "median"),
    refused(
        f"SELECT quantile_cont(minutes, 0.99) FROM {BS}", "aggregate-only QUANTILE_CONT", "quantile"
    ),
    refused(
        f"SELECT site, sum(minutes) FILTER (WHERE badge_id = 'B2') FROM {BS} GROUP BY site",
        "aggregate-only FILTER",
        "filter_clause_isolates_one_subject",
    ),
    refused(
        f"SELECT site, sum(CASE WHEN badge_id = 'B2' THEN hourly_rate END) FROM {BS} GROUP BY site",
        "aggregate-only aggregate argument",
        "case_inside_aggregate",
    ),
    refused(
        f"SELECT site, sum(hourly_rate * TRY_CAST(badge_id = 'B2' AS INT)) FROM {BS} GROUP BY site",
        "aggregate-only aggregate argument",
        "boolean_times_value_inside_aggregate",
    ),
    refused(
        f"SELECT site, count(DISTINCT CASE WHEN badge_id = 'B2' THEN minutes END) FROM {BS} "
        "GROUP BY site",
        "aggregate-only aggregate argument",
        "case_inside_count_distinct",
    ),
    refused(
        f"SELECT site, count(DISTINCT badge_id, minutes) FROM {BS} GROUP BY site",
        "aggregate-only aggregate argument",
        "count_distinct_of_several_columns",
    ),
    refused(
        f"SELECT site, count_if(badge_id = 'B2') FROM {BS} GROUP BY site",
        "aggregate-only COUNT_IF",
        "count_if",
    ),
    refused(
        f"SELECT site, sum(minutes) OVER (PARTITION BY badge_id) FROM {BS}",
        "aggregate-only window function",
        "window_over_subject",
    ),
    refused(
        f"SELECT site, count(*) FROM {BS} GROUP BY site QUALIFY rank() OVER (ORDER BY site) = 1",
        "aggregate-only QUALIFY",
        "qualify_window",
    ),
    refused(
        f"SELECT site, badge_id, sum(minutes) FROM {BS} GROUP BY ROLLUP (site, badge_id)",
        "rollup",
        "rollup_subtotals",
    ),
    refused(f"SELECT site, sum(minutes) FROM {BS} GROUP BY CUBE (site)", "cube", "cube"),
    refused(
        f"SELECT site, sum(minutes) FROM {BS} GROUP BY GROUPING SETS ((site), ())",
        "grouping sets",
        "grouping_sets",
    ),
    refused(
        f"SELECT (SELECT sum(minutes) FROM {BS} WHERE badge_id = 'B2') AS leak",
        "aggregate-only query shape",
        "scalar_subquery_differencing",
    ),
    refused(
        f"WITH x AS (SELECT * FROM {BS}) SELECT count(*) FROM x",
        "aggregate-only query shape",
        "cte_around_dataset",
    ),
    refused(
        f"SELECT count(*) FROM {BS} UNION ALL SELECT count(*) FROM {BS} WHERE badge_id <> 'B2'",
        "aggregate-only query shape",
        "union_differencing",
    ),
    refused(
        f"SELECT count(*) FROM {BS} AS a JOIN {EM} AS m ON a.site = m.site",
        "aggregate-only query shape",
        "join_with_other_dataset",
    ),
    refused(
        f"SELECT count(*) FROM {BS} AS a JOIN {BS} AS b ON a.badge_id = b.badge_id",
        "aggregate-only query shape",
        "self_join",
    ),
    refused(
        f"SELECT * FROM (SELECT site, count(*) AS n FROM {BS} GROUP BY site) AS t",
        "aggregate-only query shape",
        "derived_table",
    ),
    refused(
        f"SELECT DISTINCT site, count(*) FROM {BS} GROUP BY site",
        "aggregate-only DISTINCT",
        "distinct",
    ),
    refused(
        f"SELECT count(*) FROM {BS} WHERE CAST(worker_name AS INT) > 0",
        "aggregate-only CAST",
        "failing_cast_error_oracle",
    ),
    refused(
        f"SELECT count(*) FROM {BS} WHERE strptime(phone, '%Y') > DATE '2020-01-01'",
        "aggregate-only STRPTIME",
        "strptime_error_oracle",
    ),
    refused(
        f"SELECT count(*) FROM {BS} WHERE badge_id = 'B2' AND minutes * 100000000000000000 > 0",
        "aggregate-only large constant",
        "overflow_error_oracle",
    ),
    refused(
        f"SELECT count(*) FROM {BS} WHERE badge_id = 'B2' AND minutes + 2147483000 > 0",
        "aggregate-only large constant",
        "int32_overflow_error_oracle",
    ),
    refused(
        f"SELECT count(*) FROM {BS} WHERE minutes * 1000 * 1000 * 1000 > 0",
        "aggregate-only chained multiplication",
        "chained_multiplication_overflow",
    ),
    refused(
        f"SELECT count(*) FROM {BS} WHERE CASE WHEN badge_id = 'B2' "
        "THEN shift_date + INTERVAL 100000000 YEAR END IS NULL",
        "aggregate-only large constant",
        "date_overflow_error_oracle",
    ),
    refused(
        f"SELECT count(*) FROM {BS} WHERE chr(minutes) = 'x'",
        "aggregate-only CHR",
        "chr_error_oracle",
    ),
]


@pytest.mark.parametrize(("sql", "construct"), AGGREGATE_ONLY_REFUSED)
def test_aggregate_only_hostile_query_is_refused(
    sql: str, construct: str, sources: dict[str, GovernedSource]
) -> None:
    catalog = GrantCatalog([sources["aggregate"], sources["energy"]])
    with pytest.raises(QueryRefused) as raised:
        govern(sql, catalog, max_rows=100, mask_key=KEY)
    assert raised.value.construct == construct
    assert (
        construct.removeprefix("aggregate-only ").split(" ")[0].lower() in str(raised.value).lower()
    )


AGGREGATE_ONLY_NEUTRALISED = [
    pytest.param(
        f"SELECT badge_id, count(*) AS scans FROM {BS} GROUP BY badge_id", [], id="group_by_subject"
    ),
    pytest.param(
        f"SELECT site, count(*) FROM {BS} WHERE badge_id = 'B1' GROUP BY site",
        [],
        id="where_isolates_one_subject",
    ),
    pytest.param(
        f"SELECT site, count(*) AS n FROM {BS} GROUP BY site HAVING count(*) >= 1 OR TRUE",
        [("S1", 7)],
        id="client_having_cannot_lift_threshold",
    ),
    pytest.param(
        f"SELECT site, count(*) AS n FROM {BS} GROUP BY site",
        [("S1", 7)],
        id="many_rows_few_subjects_suppressed",
    ),
    pytest.param(
        f"SELECT count(*) AS n FROM {BS} WHERE site = 'S3'", [], id="global_aggregate_small"
    ),
    pytest.param(
        f"SELECT worker_name, count(*) FROM {BS} GROUP BY worker_name",
        [],
        id="group_by_masked_identity",
    ),
    pytest.param(
        f"SELECT site, CASE WHEN badge_id = 'B2' THEN 1 ELSE 0 END AS target, count(*) AS n "
        f"FROM {BS} GROUP BY ALL",
        [],
        id="case_group_key_isolates_one_subject",
    ),
]


@pytest.mark.parametrize(("sql", "expected"), AGGREGATE_ONLY_NEUTRALISED)
def test_aggregate_only_hostile_query_is_suppressed(
    sql: str, expected: list[tuple[Any, ...]], sources: dict[str, GovernedSource]
) -> None:
    query = govern(sql, GrantCatalog([sources["aggregate"]]), max_rows=100, mask_key=KEY)
    assert sorted(run_governed(query.sql, query.allowed_paths)) == expected


ROW_LEVEL_NEUTRALISED = [
    f"SELECT * FROM {BS} WHERE worker_name = 'Chan Tai Man'",
    f"SELECT * FROM {BS} WHERE worker_name LIKE 'Chan%' OR worker_name ILIKE '%man'",
    f"SELECT * FROM {BS} WHERE phone = '+852 9123 4567'",
    f"SELECT * FROM {BS} WHERE length(phone) = 14",
    f"SELECT * FROM {BS} WHERE strpos(phone, '9123') > 0",
    f"SELECT worker_name, phone FROM {BS} ORDER BY worker_name",
    f"SELECT b.* FROM {BS} AS b JOIN (VALUES ('Chan Tai Man')) AS v(n) ON v.n = b.worker_name",
    f"SELECT worker_name, count(*) FROM {BS} GROUP BY worker_name",
    f"SELECT max(worker_name), min(phone) FROM {BS}",
    f"SELECT lag(worker_name) OVER (ORDER BY minutes) AS prev FROM {BS}",
    f"SELECT first_value(phone) OVER (PARTITION BY site ORDER BY minutes) AS p FROM {BS}",
    f"SELECT * FROM {BS} WHERE site = 'S2' OR 1 = 1",
    f"SELECT * FROM {BS} WHERE NOT (site = 'S1')",
    f"SELECT * FROM {BS} WHERE badge_id IN ('B4', 'B5')",
    f"SELECT * FROM {BS} UNION ALL SELECT * FROM {BS}",
    f"WITH badge_scans AS (SELECT * FROM {BS}) SELECT * FROM badge_scans",
    f"SELECT (SELECT count(*) FROM {BS} WHERE site = 'S2') AS s2_rows",
    f"SELECT EXISTS (SELECT 1 FROM {BS} WHERE worker_name = 'Ho Ka Yan') AS present",
    f"SELECT substring(worker_name, 1, 4) AS head, left(phone, 8) AS p FROM {BS}",
    f"SELECT CASE WHEN worker_name = 'Chan Tai Man' THEN 'hit' ELSE 'miss' END AS probe FROM {BS}",
    'SELECT "WORKER_NAME", "Phone" FROM "DG_FACTORY"."BADGE_SCANS"',
    f"SELECT b.n, b.p FROM {BS} AS b(badge, n, p)",
    f"SELECT replace(worker_name, 'a', 'a') AS w, lower(phone) AS p FROM {BS}",
    f"SELECT * FROM {BS} AT (VERSION => 3) WHERE site <> 'S1' OR site IS NULL",
    f"SELECT s.* FROM {BS} AS s WHERE s.minutes > (SELECT avg(minutes) FROM {BS})",
    f"SELECT DISTINCT ON (site) site, worker_name FROM {BS} ORDER BY site, minutes",
    f"SELECT concat(worker_name, '|', phone) AS both_values FROM {BS}",
    f"SELECT * FROM {BS} WHERE worker_name IN (SELECT worker_name FROM {BS})",
]


@pytest.mark.parametrize("sql", ROW_LEVEL_NEUTRALISED)
def test_masked_filtered_dataset_never_leaks_clear_values_or_filtered_rows(
    sql: str, sources: dict[str, GovernedSource]
) -> None:
    query = govern(sql, GrantCatalog([sources["row"]]), max_rows=100, mask_key=KEY)
    assert_duckdb_reads_only(query.sql, query.allowed_paths)
    rows = run_governed(query.sql, query.allowed_paths)
    cells = [str(cell) for row in rows for cell in row]
    assert not CLEAR_VALUES & set(cells)
    assert not any(clear in cell for cell in cells for clear in CLEAR_VALUES if len(clear) > 4)
    assert not OUTSIDE_FILTER_BADGES & set(cells)
    assert "S2" not in cells and "S3" not in cells


@pytest.mark.parametrize(
    "sql",
    [
        f"SELECT count(*) FROM {BS} WHERE site <> 'S1'",
        f"SELECT (SELECT count(*) FROM {BS} WHERE badge_id IN ('B4', 'B5')) AS n",
        f"SELECT count(*) FROM {BS} WHERE worker_name = 'Ho Ka Yan' OR phone LIKE '+853%'",
    ],
    ids=["negated_filter", "scalar_subquery", "masked_oracle"],
)
def test_counts_over_filtered_out_or_masked_rows_are_zero(
    sql: str, sources: dict[str, GovernedSource]
) -> None:
    query = govern(sql, GrantCatalog([sources["row"]]), max_rows=100, mask_key=KEY)
    assert run_governed(query.sql, query.allowed_paths) == [(0,)]


RESOURCE_AND_SYNTAX_REFUSED = [
    refused(f"SELECT * FROM {EM} AS a, {EM} AS b", "cross join", "comma_join_without_predicate"),
    refused(
        f"SELECT * FROM {EM} AS a, {EM} AS b WHERE a.kwh = a.kwh",
        "cross join",
        "comma_join_self_predicate",
    ),
    refused(
        f"SELECT * FROM {EM} AS a, {EM} AS b, {EM} AS c WHERE a.site = b.site",
        "cross join",
        "three_way_one_link_missing",
    ),
    refused(
        f"SELECT * FROM {EM} AS a JOIN {EM} AS b ON a.kwh = a.kwh", "cross join", "on_self_equality"
    ),
    refused(
        f"SELECT * FROM {EM} AS a, {EM} AS b WHERE a.kwh > b.kwh",
        "cross join",
        "comma_join_inequality_only",
    ),
    refused(
        f"SELECT * FROM {EM} WHERE regexp_matches(meter_id, '(a+)+$')",
        "REGEXP_MATCHES",
        "regex_catastrophic_backtracking",
    ),
    refused(f"SELECT * FROM {EM} WHERE meter_id ~ '(a|aa)+$'", "REGEXP_MATCHES", "regex_operator"),
    refused(f"SELECT * FROM {EM} WHERE meter_id SIMILAR TO '(a+)+'", "similar to", "similar_to"),
    refused(
        f"SELECT regexp_replace(meter_id, '(.*)*', 'x') FROM {EM}",
        "REGEXP_REPLACE",
        "regexp_replace",
    ),
    refused(
        "SELECT * FROM generate_series(1, 1000000000000)", "GENERATE_SERIES", "generate_series"
    ),
    refused(f"SELECT lpad(meter_id, 2000000000, 'x') FROM {EM}", "LPAD", "lpad_memory"),
    refused(f"SELECT * FROM {EM} AT (TIMESTAMP => now())", "time travel", "time_travel_timestamp"),
    refused(f"SELECT * FROM {EM} AT (VERSION => 1 + 1)", "time travel", "time_travel_expression"),
    refused(
        f"SELECT * FROM {EM} AT (VERSION => (SELECT 1))", "time travel", "time_travel_subquery"
    ),
    refused(f"SELECT * FROM {EM} AT (VERSION => '1')", "time travel", "time_travel_string"),
    refused(f"SELECT * FROM {EM} BEFORE (VERSION => 2)", "time travel", "time_travel_before"),
    refused(f"SELECT * FROM {EM} AT (VERSION => 99999999999)", "time travel", "time_travel_huge"),
    refused(
        f"WITH x AS (SELECT * FROM {EM}) SELECT * FROM x AT (VERSION => 1)",
        "time travel",
        "time_travel_on_cte",
    ),
    refused(f"SELECT __gw_subject FROM {BS}", "column", "reserved_subject_column"),
    refused(
        f"SELECT a4, count(DISTINCT a8) FROM {BS} AS b(a1, a2, a3, a4, a5, a6, a7, a8) GROUP BY a4",
        "column alias list",
        "alias_list_reaches_hidden_subject_column",
    ),
    refused(
        f"SELECT m5 FROM {EM} AS m(m1, m2, m3, m4, m5)",
        "column alias list",
        "alias_list_longer_than_grant",
    ),
]


@pytest.mark.parametrize(("sql", "construct"), RESOURCE_AND_SYNTAX_REFUSED)
def test_resource_and_time_travel_hostile_query_is_refused(
    sql: str, construct: str, sources: dict[str, GovernedSource]
) -> None:
    with pytest.raises(QueryRefused) as raised:
        govern(
            sql, GrantCatalog([sources["aggregate"], sources["energy"]]), max_rows=100, mask_key=KEY
        )
    assert raised.value.construct == construct


def test_time_travel_to_a_version_the_resolver_does_not_grant_is_unknown(
    sources: dict[str, GovernedSource],
) -> None:
    with pytest.raises(UnknownDataset):
        govern(
            f"SELECT kwh FROM {EM} AT (VERSION => 2)",
            GrantCatalog([sources["energy"]]),
            max_rows=10,
        )


@pytest.mark.parametrize(
    "row_filter",
    [
        "site = 'S1'; DROP TABLE x",
        "site IN (SELECT site FROM dg_factory.sites)",
        "read_csv('/etc/passwd') IS NOT NULL",
        "x.site = 'S1'",
        "site = current_setting('threads')",
        "CAST(site AS INT) = 1",
        "",
        "site = 'S1' -- ' OR 1=1",
        "(" * 300 + "TRUE" + ")" * 300,
    ],
    ids=[
        "stacked",
        "subquery",
        "file_reader",
        "qualified",
        "function",
        "cast_column",
        "empty",
        "comment_only_tail",
        "deep_nesting",
    ],
)
def test_row_filter_from_policy_is_allowlisted_again_at_rewrite(
    row_filter: str, sources: dict[str, GovernedSource]
) -> None:
    source = replace(sources["row"], row_filter=row_filter)
    try:
        query = govern(f"SELECT site FROM {BS}", GrantCatalog([source]), max_rows=10, mask_key=KEY)
    except InvalidRowFilter as refusal:
        assert "steward" in str(refusal)
        return
    assert row_filter == "site = 'S1' -- ' OR 1=1"  # the comment is dropped, the filter kept
    assert set(run_governed(query.sql, query.allowed_paths)) == {("S1",)}


def test_hostile_governance_corpus_is_large_enough() -> None:
    total = (
        len(AGGREGATE_ONLY_REFUSED)
        + len(AGGREGATE_ONLY_NEUTRALISED)
        + len(ROW_LEVEL_NEUTRALISED)
        + len(RESOURCE_AND_SYNTAX_REFUSED)
    )
    assert total >= 80


@pytest.mark.parametrize(
    "row_filter",
    [
        "site = 'S1'",
        "site LIKE '%1'",
        "site IN ('S1') AND minutes IS NOT NULL",
        "(site = 'S1' OR badge_id = 'nobody')",
        "NOT (site <> 'S1')",
    ],
)
def test_client_predicate_that_fails_outside_the_filter_is_never_evaluated_there(
    row_filter: str, sources: dict[str, GovernedSource]
) -> None:
    """An error raised only by filtered-out rows would be a 1-bit oracle on them (and its
    message would carry their values): the row filter must run before the client's WHERE."""
    source = replace(sources["row"], row_filter=row_filter)
    sql = (
        f"SELECT count(*) FROM {BS} "
        "WHERE CAST(CASE WHEN site <> 'S1' THEN 'boom' ELSE '1' END AS INT) = 1"
    )
    query = govern(sql, GrantCatalog([source]), max_rows=10, mask_key=KEY)
    assert run_governed(query.sql, query.allowed_paths) == [(7,)]
