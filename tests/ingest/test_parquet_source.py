"""The Parquet source: hostile files refused before or while reading, values read as text."""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingest.contracts import DataContract
from ingest.errors import FileTooLargeError, HeaderMismatchError, MalformedFileError
from ingest.pipeline import process_file
from ingest.sources import SourceOptions
from ingest.sources.parquet import ParquetSource


def read(
    path: Path, source: ParquetSource | None = None, **options: Any
) -> tuple[list[str], list[dict[str, str | None]]]:
    with (source or ParquetSource()).open(path, SourceOptions(**options)) as opened:
        batches = list(opened)
        assert all(b.schema.metadata is None for b in batches)
        assert all(t == pa.string() for b in batches for t in b.schema.types)
        assert opened.bytes_read == opened.total_bytes == path.stat().st_size
        return opened.headers, [row for b in batches for row in b.to_pylist()]


def write(tmp_path: Path, table: pa.Table, name: str = "upload.parquet", **kw: Any) -> Path:
    path = tmp_path / name
    pq.write_table(table, path, **kw)
    return path


def malformed(path: Path, source: ParquetSource | None = None, **options: Any) -> Any:
    with pytest.raises(MalformedFileError) as caught:
        read(path, source, **options)
    assert "malformed Parquet" in str(caught.value)
    return caught.value


def test_parquet_source_reads_every_scalar_type_as_text(tmp_path: Path) -> None:
    table = pa.table(
        {
            "设备编号": ["A-1", "A-2"],
            "数量": pa.array([3, None], pa.int64()),
            "温度": [21.5, 1.0],
            "比例": pa.array([0.1, 2.0], pa.float32()),
            "合格": [True, False],
            "日期": [dt.date(2024, 1, 31), dt.date(2024, 2, 1)],
            "时间": pa.array(
                [dt.datetime(2024, 1, 31, 10), dt.datetime(2024, 1, 31, 10, 0, 0, 500_000)],
                pa.timestamp("ms"),
            ),
            "金额": pa.array([decimal.Decimal("12.50"), None], pa.decimal128(6, 2)),
            "城市": pa.array(["广州市", "広州"]).dictionary_encode(),
            "备注": pa.array([b"ok", b"\xe5\xa5\xbd"], pa.binary()),
            "长文本": pa.array(["x", ""], pa.large_string()),
        }
    )
    headers, rows = read(write(tmp_path, table))
    assert headers == table.column_names
    assert rows == [
        {
            "设备编号": "A-1", "数量": "3", "温度": "21.5", "比例": "0.1", "合格": "true",
            "日期": "2024-01-31", "时间": "2024-01-31 10:00:00", "金额": "12.50",
            "城市": "广州市", "备注": "ok", "长文本": "x",
        },
        {
            "设备编号": "A-2", "数量": None, "温度": "1", "比例": "2", "合格": "false",
            "日期": "2024-02-01", "时间": "2024-01-31 10:00:00.500", "金额": None,
            "城市": "広州", "备注": "好", "长文本": "",
        },
    ]  # fmt: skip


def test_parquet_source_ignores_key_value_metadata(tmp_path: Path) -> None:
    """The ARROW:schema entry restores a time zone; the values read are the stored UTC."""
    instant = pa.array([dt.datetime(2024, 1, 31, 2, 0)], pa.timestamp("s", tz="Asia/Shanghai"))
    table = pa.table({"ts": instant, "n": pa.array([90], pa.duration("s"))})
    table = table.replace_schema_metadata({"pandas": "{not json", "x" * 1000: "y" * 100_000})
    path = write(tmp_path, table)
    assert b"ARROW:schema" in pq.read_metadata(path).metadata
    headers, rows = read(path)
    assert headers == ["ts", "n"]
    assert rows == [{"ts": "2024-01-31 02:00:00", "n": "90"}]


def test_parquet_source_reads_values_not_forged_statistics(tmp_path: Path) -> None:
    path = write(
        tmp_path, pa.table({"region": ["US"] * 1000}), store_schema=False, use_dictionary=False
    )
    data = bytearray(path.read_bytes())
    footer_length = int.from_bytes(data[-8:-4], "little")
    start = len(data) - 8 - footer_length
    data[start:-8] = bytes(data[start:-8]).replace(b"US", b"EU")
    path.write_bytes(bytes(data))
    stats = pq.read_metadata(path).row_group(0).column(0).statistics
    assert (stats.min, stats.max) == ("EU", "EU")  # the footer now lies

    _, rows = read(path)
    assert [r["region"] for r in rows] == ["US"] * 1000

    contract = DataContract.model_validate(
        {"columns": [{"name": "region", "allowed": ["US"], "nullable": False}]}
    )
    outcome = run_pipeline(tmp_path, path, contract)
    assert (outcome.rows_read, outcome.rows_valid, outcome.rows_rejected) == (1000, 1000, 0)


def test_parquet_source_too_many_columns_raises(tmp_path: Path) -> None:
    path = write(tmp_path, pa.table({f"c{i}": [i] for i in range(2000)}))
    error = malformed(path)
    assert error.reason == "too_many_columns"
    assert "2000 columns, over the limit of 1000" in str(error)


def test_parquet_source_nested_list_of_struct_column_raises_naming_it(tmp_path: Path) -> None:
    items = pa.array(
        [[{"sku": "X", "qty": 1}]], pa.list_(pa.struct([("sku", pa.string()), ("qty", pa.int64())]))
    )
    path = write(tmp_path, pa.table({"id": [1], "items": items}))
    error = malformed(path)
    assert error.reason == "nested_column"
    assert error.attrs()["column"] == "items"
    assert "column 'items' has type list<element: struct<sku: string, qty: int64>>" in str(error)


def test_parquet_source_deeply_nested_schema_is_refused_by_the_parser(tmp_path: Path) -> None:
    deep: pa.DataType = pa.int64()
    for _ in range(5):
        deep = pa.list_(deep)
    path = write(tmp_path, pa.table({"d": pa.array([[[[[[1]]]]]], deep)}))
    error = malformed(path)
    assert error.reason == "nested_column"
    assert "nests columns too deeply" in str(error)


def test_parquet_source_extension_types_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, pa.table({"u": pa.array([b"0123456789abcdef"], pa.uuid())}))
    error = malformed(path)
    assert error.reason == "extension_type"
    assert "column 'u' has type extension<arrow.uuid>" in str(error)


def test_parquet_source_unregistered_extension_metadata_is_refused(tmp_path: Path) -> None:
    field = pa.field("l", pa.string(), metadata={"ARROW:extension:name": "evil.pickle"})
    path = write(tmp_path, pa.Table.from_arrays([pa.array(["x"])], schema=pa.schema([field])))
    assert malformed(path).reason == "extension_type"


@pytest.mark.parametrize(
    ("data", "reason", "fragment"),
    [
        (b"id,name\n1,Alice\n", "not_parquet", "not Parquet (no PAR1 magic number)"),
        (b"PAR1" + b"\0" * 16 + (1 << 10).to_bytes(4, "little") + b"PAR1", "not_parquet",
         "footer is truncated"),
        (b"PAR1" + b"\0" * 16 + (8).to_bytes(4, "little") + b"PARE", "encrypted",
         "upload it without Parquet encryption"),
        (b"PAR1" + b"\xff" * 16 + (16).to_bytes(4, "little") + b"PAR1", "not_parquet",
         "metadata cannot be read"),
        (b"PAR1" + b"\0" * 16 + (200 << 20).to_bytes(4, "little") + b"PAR1", "footer_too_large",
         "over the limit of 16777216"),
    ],
)  # fmt: skip
def test_parquet_source_refuses_files_that_are_not_plain_parquet(
    tmp_path: Path, data: bytes, reason: str, fragment: str
) -> None:
    path = tmp_path / "upload.parquet"
    path.write_bytes(data)
    error = malformed(path)
    assert error.reason == reason
    assert fragment in str(error)


def test_parquet_source_too_many_row_groups_raises(tmp_path: Path) -> None:
    path = write(tmp_path, pa.table({"a": list(range(10))}), row_group_size=1)
    error = malformed(path, ParquetSource(max_row_groups=5))
    assert error.reason == "too_many_row_groups"
    assert "10 row groups, over the limit of 5" in str(error)


def test_parquet_source_invalid_utf8_in_binary_column_raises(tmp_path: Path) -> None:
    path = write(tmp_path, pa.table({"name": pa.array([b"ok", b"\xb9\xe3"], pa.binary())}))
    error = malformed(path)
    assert error.reason == "invalid_text"
    assert "column 'name' holds bytes that are not UTF-8" in str(error)


def test_parquet_source_value_over_cell_cap_names_the_row(tmp_path: Path) -> None:
    path = write(tmp_path, pa.table({"note": ["a", "b", "x" * 2000]}))
    error = malformed(path, max_cell_bytes=1000)
    assert (error.reason, error.row) == ("cell_too_large", 3)


def test_parquet_source_run_length_bomb_is_stopped_while_streaming(tmp_path: Path) -> None:
    path = write(tmp_path, pa.table({"s": ["工厂" * 50] * 200_000}), compression="zstd")
    assert path.stat().st_size < 10_000
    source = ParquetSource(batch_rows=10_000, ratio_floor_bytes=1 << 20, max_text_ratio=100)
    error = malformed(path, source)
    assert error.reason == "too_compressed"


def test_parquet_source_file_over_size_cap_raises(tmp_path: Path) -> None:
    path = write(tmp_path, pa.table({"a": [1]}))
    with pytest.raises(FileTooLargeError):
        read(path, max_file_bytes=10)


def test_parquet_source_streams_row_groups_with_progress(tmp_path: Path) -> None:
    path = write(tmp_path, pa.table({"a": list(range(30_000))}), row_group_size=10_000)
    with ParquetSource(batch_rows=4096).open(path, SourceOptions()) as opened:
        sizes, progress = [], []
        for batch in opened:
            sizes.append(batch.num_rows)
            progress.append(opened.bytes_read)
    assert sizes == [4096, 4096, 1808] * 3
    assert progress == sorted(progress)
    assert 0 < progress[3] < progress[6] < opened.total_bytes == opened.bytes_read


# -- end to end ----------------------------------------------------------------------------

CONTRACT = DataContract.model_validate(
    {
        "columns": [
            {"name": "device_id", "source": "设备编号"},
            {"name": "count", "source": "数量", "type": "integer"},
            {"name": "temp", "source": "温度", "type": "double", "max": 100},
            {"name": "ok", "source": "合格", "type": "boolean"},
            {"name": "day", "source": "日期", "type": "date"},
            {"name": "ts", "source": "时间", "type": "timestamp"},
        ],
        "primary_key": ["device_id"],
    }
)


def run_pipeline(tmp_path: Path, path: Path, contract: DataContract) -> Any:
    return process_file(
        path,
        contract,
        encoding="utf-8",
        staging_dir=tmp_path / "staging",
        max_error_ratio=0.5,
        source=ParquetSource(),
    )


def test_process_file_reads_parquet_through_the_contract(tmp_path: Path) -> None:
    table = pa.table(
        {
            "设备编号": ["A-1", "A-2", "A-3", "A-4"],
            "数量": [3.0, 2.5, 4.0, 5.0],
            "温度": [21.5, 20.0, 120.0, -3.0],
            "合格": [True, False, None, True],
            "日期": [dt.date(2024, 1, d) for d in (1, 2, 3, 4)],
            "时间": pa.array(
                [dt.datetime(2024, 1, 31, h) for h in (1, 2, 3, 4)], pa.timestamp("us")
            ),
        }
    )
    outcome = run_pipeline(tmp_path, write(tmp_path, table), CONTRACT)
    assert (outcome.rows_read, outcome.rows_valid, outcome.rows_rejected) == (4, 2, 2)
    written = pq.read_table([p.path for p in outcome.parts])
    assert written.column("device_id").to_pylist() == ["A-1", "A-4"]
    assert written.column("count").to_pylist() == [3, 5]
    assert written.column("day").to_pylist() == [dt.date(2024, 1, 1), dt.date(2024, 1, 4)]
    assert written.column("ts").to_pylist() == [
        dt.datetime(2024, 1, 31, 1),
        dt.datetime(2024, 1, 31, 4),
    ]


def test_process_file_parquet_column_names_must_match_the_contract(tmp_path: Path) -> None:
    table = pa.table({"设备编号": ["A-1"], "qty": [1]})
    with pytest.raises(HeaderMismatchError) as caught:
        run_pipeline(tmp_path, write(tmp_path, table), CONTRACT)
    assert caught.value.unexpected == ["qty"]
    assert caught.value.missing == ["数量", "温度", "合格", "日期", "时间"]
