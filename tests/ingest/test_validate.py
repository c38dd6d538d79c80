"""The GX adapter: contract → suite, per-row failures, mergeable summaries."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from ingest.contracts import DataContract
from ingest.errors import ContractError
from ingest.validate import (
    ValidationSession,
    compile_suite,
    merge_results,
    to_frame,
    validate_batch,
)

CONTRACT = DataContract.model_validate(
    {
        "columns": [
            {"name": "device_id", "source": "设备编号", "pattern": "[A-Z]-[0-9]+"},
            {"name": "city", "source": "城市", "nullable": False, "allowed": ["广州市", "香港"]},
            {"name": "temp", "type": "double", "min": -40, "max": 100},
            {"name": "grade", "type": "integer", "allowed": ["1", "2", "3"]},
        ],
        "primary_key": ["device_id"],
    }
)


def batch(rows: list[tuple[str | None, str | None, float | None, int | None]]) -> pa.Table:
    names = ["device_id", "city", "temp", "grade"]
    types = [pa.string(), pa.string(), pa.float64(), pa.int64()]
    columns = list(zip(*rows, strict=True))
    return pa.table({n: pa.array(c, t) for n, c, t in zip(names, columns, types, strict=True)})


def rules(suite: object) -> list[tuple[str, str, str]]:
    document = suite.to_json_dict()  # type: ignore[attr-defined]
    return [(e["type"], e["meta"]["column"], e["meta"]["rule"]) for e in document["expectations"]]


def test_compile_suite_maps_each_contract_rule_to_an_expectation() -> None:
    assert rules(compile_suite(CONTRACT)) == [
        ("expect_column_values_to_be_of_type", "device_id", "type"),
        ("expect_column_values_to_not_be_null", "device_id", "not_null"),
        ("expect_column_values_to_match_regex", "device_id", "pattern"),
        ("expect_column_values_to_be_unique", "device_id", "unique"),
        ("expect_column_values_to_be_of_type", "city", "type"),
        ("expect_column_values_to_not_be_null", "city", "not_null"),
        ("expect_column_values_to_be_in_set", "city", "allowed"),
        ("expect_column_values_to_be_of_type", "temp", "type"),
        ("expect_column_values_to_be_between", "temp", "range"),
        ("expect_column_values_to_be_of_type", "grade", "type"),
        ("expect_column_values_to_be_in_set", "grade", "allowed"),
    ]
    grade = compile_suite(CONTRACT).to_json_dict()["expectations"][-1]
    assert grade["kwargs"]["value_set"] == [1, 2, 3]  # typed, not the strings as written


def test_compile_suite_rejects_allowed_values_of_the_wrong_type() -> None:
    contract = DataContract.model_validate(
        {"columns": [{"name": "n", "type": "integer", "allowed": ["1", "one"]}]}
    )
    with pytest.raises(ContractError) as caught:
        compile_suite(contract)
    assert caught.value.column == "n"


def test_validate_batch_reports_failing_rows_by_index_label() -> None:
    table = batch(
        [
            ("A-1", "广州市", 20.0, 1),
            ("A-1x", "香港", 20.0, 2),  # pattern must match the whole value
            ("A-3", "上海市", 20.0, 3),  # allowed
            ("A-4", None, 20.0, 1),  # not_null
            ("A-5", "香港", 140.0, 1),  # range
            ("A-6", "香港", None, 9),  # allowed (integer)
            ("A-1", "香港", -40.0, 2),  # duplicates row 100 within the batch
        ]
    )
    labels = [100, 101, 102, 103, 104, 105, 106]
    result = validate_batch(to_frame(table, index=labels), compile_suite(CONTRACT))
    found = {
        label: sorted((f.column, f.rule, f.actual) for f in failures)
        for label, failures in result.failures.items()
    }
    assert found == {
        100: [("device_id", "unique", "A-1")],
        101: [("device_id", "pattern", "A-1x")],
        102: [("city", "allowed", "上海市")],
        103: [("city", "not_null", None)],
        104: [("temp", "range", "140.0")],
        105: [("grade", "allowed", "9")],
        106: [("device_id", "unique", "A-1")],
    }
    expected = {f.rule: f.expected for fs in result.failures.values() for f in fs}
    assert expected["range"] == "between -40 and 100"
    assert json.dumps(result.result.to_json_dict(), ensure_ascii=False)


def test_validation_session_is_reused_across_batches() -> None:
    session = ValidationSession(compile_suite(CONTRACT))
    first = session.validate(batch([("A-1", "香港", 1.0, 1)]))
    second = session.validate(batch([("B-2", "香港", 500.0, 1), ("B-3", "香港", 1.0, 1)]))
    assert first.failures == {}
    assert list(second.failures) == [0]
    assert session.setup_seconds >= 0 and second.seconds >= 0


def test_merge_results_sums_counts_and_is_associative() -> None:
    session = ValidationSession(compile_suite(CONTRACT))
    parts = [
        session.validate(batch([("A-1", "香港", 1.0, 1), ("A-2", "上海", 1.0, 1)])),
        session.validate(batch([("A-3", "澳门", 1.0, 1), ("A-4", "香港", None, 1)])),
        session.validate(batch([("A-5", "香港", 1.0, 1)])),
    ]
    merged = merge_results(parts)
    assert merged == merge_results([merge_results(parts[:2]), parts[2]])
    city = next(r for r in merged["results"] if r["key"] == "city:allowed")
    assert (city["element_count"], city["unexpected_count"]) == (5, 2)
    assert city["unexpected_percent"] == pytest.approx(40.0)
    assert city["partial_unexpected_list"] == ["上海", "澳门"]
    temp = next(r for r in merged["results"] if r["key"] == "temp:range")
    assert (temp["missing_count"], temp["success"]) == (1, True)
    assert merged["batches"] == 3 and merged["success"] is False
    assert merged["statistics"]["unsuccessful_expectations"] == 1
    json.dumps(merged, ensure_ascii=False)
