"""The JSON Lines source: strict UTF-8, one object per line, values as written, caps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from ingest.contracts import DataContract
from ingest.errors import (
    EmptyFileError,
    EncodingError,
    HeaderMismatchError,
    MalformedFileError,
    UnsupportedEncodingError,
)
from ingest.pipeline import process_file
from ingest.sources import SourceOptions
from ingest.sources.jsonl import JsonLinesSource
from ingest.writers import read_quarantine


def read(
    path: Path, source: JsonLinesSource | None = None, **options: Any
) -> tuple[list[str], list[dict[str, str | None]]]:
    with (source or JsonLinesSource()).open(path, SourceOptions(**options)) as opened:
        rows = [row for batch in opened for row in batch.to_pylist()]
        assert opened.bytes_read == opened.total_bytes == path.stat().st_size
        return opened.headers, rows


def write(tmp_path: Path, data: bytes, name: str = "upload.jsonl") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def lines(*objects: Any) -> bytes:
    return "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objects).encode()


def malformed(path: Path, source: JsonLinesSource | None = None, **options: Any) -> Any:
    with pytest.raises(MalformedFileError) as caught:
        read(path, source, **options)
    assert "malformed JSON Lines" in str(caught.value)
    return caught.value


def test_jsonl_source_reads_values_as_written(tmp_path: Path) -> None:
    data = (
        '{"设备编号": "A-1", "温度": 21.50, "数量": 3, "合格": true, "备注": null}\n'
        '{"设备编号": "A-2", "温度": -1e3, "数量": 12345678901234567890, "合格": false}\n'
        '{"设备编号": "A-3", "温度": -0, "数量": "7", "合格": "是", "备注": ""}\n'
    )
    headers, rows = read(write(tmp_path, data.encode()))
    assert headers == ["设备编号", "温度", "数量", "合格", "备注"]
    assert rows == [
        {"设备编号": "A-1", "温度": "21.50", "数量": "3", "合格": "true", "备注": None},
        {
            "设备编号": "A-2",
            "温度": "-1e3",
            "数量": "12345678901234567890",
            "合格": "false",
            "备注": None,
        },
        {"设备编号": "A-3", "温度": "-0", "数量": "7", "合格": "是", "备注": ""},
    ]


def test_jsonl_source_headers_are_the_union_of_first_batch_keys(tmp_path: Path) -> None:
    path = write(tmp_path, lines({"a": 1}, {"b": 2, "a": 3}, {"c": None}))
    headers, rows = read(path)
    assert headers == ["a", "b", "c"]
    assert rows == [
        {"a": "1", "b": None, "c": None},
        {"a": "3", "b": "2", "c": None},
        {"a": None, "b": None, "c": None},
    ]


def test_jsonl_source_strips_bom_and_skips_blank_lines(tmp_path: Path) -> None:
    data = b"\xef\xbb\xbf" + '{"城市": "广州市"}\r\n\r\n   \n{"城市": "東莞"}'.encode()
    headers, rows = read(write(tmp_path, data))
    assert headers == ["城市"]
    assert rows == [{"城市": "广州市"}, {"城市": "東莞"}]


def test_jsonl_source_huge_line_raises_before_parsing(tmp_path: Path) -> None:
    huge = b'{"a": "' + b"x" * (600 << 10) + b'"}\n'
    error = malformed(write(tmp_path, lines({"a": 1}) + huge + lines({"a": 2})))
    assert error.reason == "record_too_large"
    assert error.line == 2
    assert "longer than 524288 bytes" in str(error)


def test_jsonl_source_huge_last_line_without_newline_raises(tmp_path: Path) -> None:
    path = write(tmp_path, lines({"a": 1}) + b"[" * 5000, "tail.jsonl")
    error = malformed(path, max_record_bytes=4096, chunk_bytes=1024)
    assert (error.reason, error.line) == ("record_too_large", 2)


def test_jsonl_source_bad_utf8_raises_encoding_error_with_line_and_offset(tmp_path: Path) -> None:
    good = lines({"城市": "广州市"})
    bad = '{"城市": "'.encode() + b"\xb9\xe3\xd6\xdd" + b'"}\n'  # 广州 in GBK
    with pytest.raises(EncodingError) as caught:
        read(write(tmp_path, good + bad))
    error = caught.value
    assert error.line == 2
    assert error.offset == len(good) + len('{"城市": "'.encode())
    assert error.attrs()["bad_bytes"] == "b9 e3 d6 dd"


@pytest.mark.parametrize(
    ("value", "kind"), [({"x": 1}, "an object"), ([1, 2], "an array"), ([], "an array")]
)
def test_jsonl_source_nested_value_names_line_and_key(
    tmp_path: Path, value: Any, kind: str
) -> None:
    path = write(tmp_path, lines({"id": 1, "tags": None}, {"id": 2, "tags": value}))
    error = malformed(path)
    assert (error.reason, error.line) == ("nested_value", 2)
    assert error.attrs()["column"] == "tags"
    assert f"the value of key 'tags' is {kind}" in str(error)


def test_jsonl_source_deep_nesting_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n")
    error = malformed(path)
    assert (error.reason, error.line) == ("nested_value", 1)


def test_jsonl_source_unknown_key_after_first_batch_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, lines({"a": 1}, {"b": 2}, {"a": 3}, {"a": 4, "c": 5}))
    error = malformed(path, JsonLinesSource(batch_rows=2))
    assert (error.reason, error.line) == ("unknown_key", 4)
    assert error.attrs()["column"] == "c"
    assert "key 'c' does not appear in the first batch of records (up to 2)" in str(error)


@pytest.mark.parametrize(
    ("line", "reason", "fragment"),
    [
        (b'{"a": 1,}', "parse_error", "not valid JSON: Expecting property name"),
        (b'{"a": NaN}', "parse_error", "NaN is not a JSON value"),
        (b'{"a": -Infinity}', "parse_error", "-Infinity is not a JSON value"),
        (b'{"a": 1, "a": 2}', "duplicate_key", "key 'a' appears twice"),
        (b"[1, 2]", "not_an_object", "expected a JSON object, found an array"),
        (b'"text"', "not_an_object", "expected a JSON object, found a single value"),
        (b'{"a": "\\ud800"}', "invalid_text", "unpaired surrogate"),
    ],
)
def test_jsonl_source_bad_line_raises_malformed_naming_the_line(
    tmp_path: Path, line: bytes, reason: str, fragment: str
) -> None:
    error = malformed(write(tmp_path, lines({"a": 0}) + line + b"\n"))
    assert (error.reason, error.line) == (reason, 2)
    assert fragment in str(error)


def test_jsonl_source_too_many_keys_raises(tmp_path: Path) -> None:
    path = write(tmp_path, lines({"a": 1, "b": 2}, {"c": 3, "d": 4}))
    error = malformed(path, max_columns=3)
    assert (error.reason, error.line) == ("too_many_columns", 2)


def test_jsonl_source_value_over_cell_cap_raises(tmp_path: Path) -> None:
    path = write(tmp_path, lines({"a": "短"}, {"a": "长" * 400}))
    error = malformed(path, max_cell_bytes=1000)
    assert (error.reason, error.line) == ("cell_too_large", 2)
    assert "is 1200 bytes, over the limit of 1000" in str(error)


def test_jsonl_source_duplicate_keys_after_nfkc_raise_header_mismatch(tmp_path: Path) -> None:
    path = write(tmp_path, lines({"ＩＤ": 1, "ID": 2}))
    with pytest.raises(HeaderMismatchError) as caught:
        read(path)
    assert caught.value.duplicated == ["ID"]


def test_jsonl_source_empty_file_raises_empty_file(tmp_path: Path) -> None:
    with pytest.raises(EmptyFileError):
        read(write(tmp_path, b"\n  \n"))


def test_jsonl_source_refuses_a_declared_non_utf8_encoding(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedEncodingError) as caught:
        read(write(tmp_path, lines({"a": 1})), encoding="gbk")
    assert caught.value.attrs()["supported"] == ["utf-8", "utf-8-sig"]


def test_jsonl_source_streams_in_chunks(tmp_path: Path) -> None:
    path = write(tmp_path, lines(*({"n": i} for i in range(10_000))))
    source = JsonLinesSource(batch_rows=1000)
    with source.open(path, SourceOptions(chunk_bytes=4096)) as opened:
        first = next(opened)
        assert first.num_rows == 1000
        assert opened.bytes_read < opened.total_bytes // 5
        rest = sum(batch.num_rows for batch in opened)
    assert rest == 9000


CONTRACT = DataContract.model_validate(
    {
        "columns": [
            {"name": "device_id", "source": "设备编号", "pattern": "[A-Z]-[0-9]+"},
            {"name": "temp", "source": "温度", "type": "double", "min": -40, "max": 100},
            {"name": "count", "source": "数量", "type": "integer"},
            {"name": "ok", "source": "合格", "type": "boolean"},
            {"name": "day", "source": "日期", "type": "date"},
        ],
        "primary_key": ["device_id"],
    }
)


def test_process_file_reads_jsonl_through_the_contract(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        lines(
            {"设备编号": "A-1", "温度": 21.5, "数量": 3, "合格": True, "日期": "2024-01-31"},
            {"设备编号": "A-2", "温度": "21.5", "数量": 3.0, "合格": False, "日期": "2024-02-01"},
            {"设备编号": "A-3", "温度": 120, "数量": 4, "合格": None, "日期": "2024-02-02"},
            {"设备编号": "A-4", "数量": 5, "合格": "否", "日期": "2024-02-30"},
            {"设备编号": "A-5", "温度": -3, "数量": 6, "日期": "2024-02-03"},
        ),
    )
    outcome = process_file(
        path,
        CONTRACT,
        encoding="utf-8",
        staging_dir=tmp_path / "staging",
        max_error_ratio=0.6,
        source=JsonLinesSource(),
    )
    assert (outcome.rows_read, outcome.rows_valid, outcome.rows_rejected) == (5, 2, 3)
    table = pq.read_table([p.path for p in outcome.parts])
    assert table.column("device_id").to_pylist() == ["A-1", "A-5"]
    assert table.column("temp").to_pylist() == [21.5, -3.0]
    assert table.column("ok").to_pylist() == [True, None]
    assert outcome.quarantine_path is not None
    reasons = read_quarantine(outcome.quarantine_path)
    assert [r["row"] for r in reasons] == [2, 3, 4]
