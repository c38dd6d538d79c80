"""``catalog.json_text`` writes the bytes DuckDB's renderer writes, for every value it takes."""

from __future__ import annotations

import json
import math
from datetime import date
from decimal import Decimal

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog.duckdb_session import JsonRenderer
from catalog.json_text import SMALL_CELLS, json_double, small_json_rows

INT_TYPES = [pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.uint32(), pa.uint64()]


def _ints(data_type: pa.DataType) -> st.SearchStrategy[int]:
    bits = data_type.bit_width
    if pa.types.is_signed_integer(data_type):
        return st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    return st.integers(0, 2**bits - 1)


def _decimals(precision: int, scale: int) -> st.SearchStrategy[Decimal]:
    """Exact values of DECIMAL(precision, scale) (from the unscaled integer: no rounding)."""
    unscaled = st.integers(-(10**precision) + 1, 10**precision - 1)
    return unscaled.map(lambda n: Decimal(f"{n}e-{scale}"))


@st.composite
def columns(draw: st.DrawFn, rows: int) -> pa.Array:
    kind = draw(st.sampled_from(["int", "bool", "str", "f64", "f32", "dec", "date", "null"]))
    if kind == "int":
        data_type = draw(st.sampled_from(INT_TYPES))
        values: st.SearchStrategy[object] = _ints(data_type)
    elif kind == "bool":
        data_type, values = pa.bool_(), st.booleans()
    elif kind == "str":
        data_type, values = pa.string(), st.text(st.characters(codec="utf-8"), max_size=12)
    elif kind == "f64":
        data_type, values = pa.float64(), st.floats(allow_nan=True, allow_infinity=True)
    elif kind == "f32":
        data_type, values = pa.float32(), st.floats(width=32)
    elif kind == "dec":
        precision = draw(st.integers(1, 38))
        scale = draw(st.integers(0, precision))
        data_type, values = pa.decimal128(precision, scale), _decimals(precision, scale)
    elif kind == "date":
        data_type, values = pa.date32(), st.dates()
    else:
        return pa.nulls(rows)
    cells = draw(st.lists(st.one_of(st.none(), values), min_size=rows, max_size=rows))
    return pa.array(cells, data_type)


@st.composite
def batches(draw: st.DrawFn) -> pa.RecordBatch:
    rows = draw(st.integers(1, 6))
    width = draw(st.integers(1, 5))
    names = draw(st.lists(st.text(min_size=1, max_size=6), min_size=width, max_size=width))
    arrays = [draw(columns(rows)) for _ in range(width)]
    return pa.RecordBatch.from_arrays(arrays, names=names)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=batches(), shape=st.sampled_from(["array", "object"]))
def test_small_batches_render_to_duckdbs_bytes(batch: pa.RecordBatch, shape: str) -> None:
    renderer = JsonRenderer(batch.schema, shape=shape, prefix=",", suffix="\n")  # type: ignore[arg-type]
    ours = small_json_rows(batch, shape=shape, prefix=",", suffix="\n")  # type: ignore[arg-type]
    assert ours is not None
    assert ours == renderer.render_in_duckdb(batch)


@pytest.mark.parametrize(
    "value",
    [0.1, 1.0, 100.0, 1e20, 9.999999999999999e20, 1e21, 1e-6, 1e-7, 1.5e-7, 0.000012345,
     5e-324, 1.7976931348623157e308, -0.0, 0.0, -2.5e-300, 123456789.123, 2.0**53],
)  # fmt: skip
def test_doubles_at_the_edges_of_duckdbs_layout(value: float) -> None:
    schema = pa.schema([("x", pa.float64())])
    batch = pa.record_batch([pa.array([value])], schema=schema)
    expected = JsonRenderer(schema, shape="array").render_in_duckdb(batch).decode()
    assert f"[{json_double(value)}]" == expected
    assert float(json_double(value)) == value and math.copysign(1, float(expected[1:-1])) == (
        math.copysign(1, value)
    )


def test_escapes_match_duckdb_for_every_control_character() -> None:
    text = "".join(chr(i) for i in range(0x20)) + '"\\/\x7f\u2028é中😀'
    batch = pa.record_batch([pa.array([text])], names=["k\n\x01"])
    for shape in ("array", "object"):
        renderer = JsonRenderer(batch.schema, shape=shape)
        ours = small_json_rows(batch, shape=shape)
        assert ours == renderer.render_in_duckdb(batch)
        assert json.loads(ours) == ([text] if shape == "array" else {"k\n\x01": text})


def test_what_it_does_not_write_goes_to_duckdb() -> None:
    wide = pa.record_batch([pa.array(range(SMALL_CELLS + 1))], names=["i"])
    stamps = pa.record_batch([pa.array([0], pa.timestamp("us"))], names=["t"])
    far = pa.record_batch([pa.array([3_000_000], pa.date32())], names=["d"])  # year 10183
    nested = pa.record_batch([pa.array([[1, 2]])], names=["l"])
    for batch in (wide, stamps, far, nested):
        assert small_json_rows(batch, shape="array") is None
        renderer = JsonRenderer(batch.schema, shape="array", suffix="\n")
        rendered = renderer.render(batch)
        assert rendered == renderer.render_in_duckdb(batch)
        assert len([json.loads(line) for line in rendered.splitlines()]) == batch.num_rows


def test_a_small_result_renders_without_duckdb() -> None:
    batch = pa.record_batch(
        [pa.array(["GERMANY"]), pa.array([3]), pa.array([date(2024, 2, 29)])],
        names=["n_name", "n_regionkey", "d"],
    )
    renderer = JsonRenderer(batch.schema, shape="array")
    renderer._sql = "SELECT this is not SQL"  # DuckDB would fail: the batch must not get there
    assert renderer.render(batch) == b'["GERMANY",3,"2024-02-29"]'
