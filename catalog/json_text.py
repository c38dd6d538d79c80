"""JSON text of small Arrow batches, byte for byte as DuckDB's ``json_array``/``json_object``.

``catalog.duckdb_session.JsonRenderer`` renders results inside DuckDB, which costs ~3 ms a
batch whatever its size (registering the batch and planning the statement). A governed
query's answer is often a handful of rows, so batches of at most ``SMALL_CELLS`` values
whose columns are all of the types below are written here instead, with the same bytes:

* integers, booleans, nulls: as DuckDB prints them;
* strings: ``"`` and ``\\`` escaped, control characters as ``\\b \\f \\n \\r \\t`` or
  ``\\u00XX`` (upper-case hex), everything else as UTF-8 (nothing else is escaped);
* floating point: the shortest text that reads back as the same double (``repr``), laid out
  as DuckDB does: plain decimals when the decimal exponent is between -6 and 20 (integral
  values end in ``.0``), otherwise ``1.5e-7`` / ``1e21``; NaN and infinities are ``null``;
  single-precision values as the double they widen to;
* decimals: a string of the exact value in plain notation with the column's scale (no
  ``0`` before the point when the scale is the precision: DuckDB writes ``.5``);
* dates: ``"YYYY-MM-DD"`` (years 1–9999; any other year goes to DuckDB).

Anything else (timestamps, times, binary, nested types, …) returns None and the caller
renders the batch in DuckDB. ``tests/gateway/test_json_text.py`` compares both on generated
batches.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Literal

import pyarrow as pa

SMALL_CELLS = 512
"""Values in a batch rendered here (~1 ms at most); DuckDB takes ~2–3 ms for any batch."""

_ESCAPES = {i: f"\\u{i:04X}" for i in range(0x20)}
_ESCAPES.update({0x08: "\\b", 0x0C: "\\f", 0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"})
_ESCAPES.update({ord('"'): '\\"', ord("\\"): "\\\\"})
_ESCAPE_TABLE = str.maketrans(_ESCAPES)

Cell = Callable[[Any], str]


def json_string(text: str) -> str:
    """A JSON string literal of ``text``, escaped as DuckDB escapes it."""
    return '"' + text.translate(_ESCAPE_TABLE) + '"'


def json_double(value: float) -> str:
    """``value`` (finite) as DuckDB's JSON writes a double."""
    shortest = repr(value)
    if "e" not in shortest:  # 1e-4 <= |value| < 1e16 or zero: repr's layout is DuckDB's
        return shortest
    sign, digits, exponent = Decimal(shortest).as_tuple()
    assert isinstance(exponent, int)
    while len(digits) > 1 and digits[-1] == 0:  # repr's "100.0" is the digit 1, exponent 2
        digits, exponent = digits[:-1], exponent + 1
    magnitude = exponent + len(digits) - 1  # the decimal exponent of the leading digit
    text = "".join(map(str, digits))
    if -6 <= magnitude <= 20:
        if exponent >= 0:
            text = text + "0" * exponent + ".0"
        elif magnitude >= 0:
            text = text[: magnitude + 1] + "." + text[magnitude + 1 :]
        else:
            text = "0." + "0" * (-magnitude - 1) + text
    else:
        text = (text[0] + "." + text[1:] if len(text) > 1 else text) + f"e{magnitude}"
    return "-" + text if sign else text


def _float_cell(value: Any) -> str:
    return json_double(value) if math.isfinite(value) else "null"


def _decimal_cell(value: Any) -> str:
    return '"' + format(value, "f") + '"'


def _fraction_cell(value: Any) -> str:
    """DECIMAL(p, p): DuckDB writes no digit before the point (``.5``, ``-.05``)."""
    text = format(value, "f")
    return '"' + ("-" + text[2:] if text.startswith("-") else text[1:]) + '"'


def _date_cell(value: Any) -> str:
    return '"' + str(value.isoformat()) + '"'


def _int_cell(value: Any) -> str:
    return str(int(value))


def _bool_cell(value: Any) -> str:
    return "true" if value else "false"


def _cell_writer(data_type: pa.DataType) -> Cell | None:
    if pa.types.is_integer(data_type):
        return _int_cell
    if pa.types.is_boolean(data_type):
        return _bool_cell
    if pa.types.is_string(data_type) or pa.types.is_large_string(data_type):
        return json_string
    if pa.types.is_floating(data_type) and not pa.types.is_float16(data_type):
        return _float_cell
    if pa.types.is_decimal(data_type):
        return _fraction_cell if data_type.scale == data_type.precision else _decimal_cell
    if pa.types.is_date32(data_type):
        return _date_cell
    if pa.types.is_null(data_type):
        return _bool_cell  # never called: every value is null
    return None


def small_json_rows(
    batch: pa.RecordBatch,
    *,
    shape: Literal["array", "object"],
    prefix: str = "",
    suffix: str = "",
) -> bytes | None:
    """Each row of ``batch`` as ``prefix + row + suffix`` (see ``JsonRenderer``), or None
    when the batch is too big or has a column type this module does not write."""
    if batch.num_columns == 0 or batch.num_rows * batch.num_columns > SMALL_CELLS:
        return None
    writers = [_cell_writer(field.type) for field in batch.schema]
    if any(writer is None for writer in writers):
        return None
    try:
        columns = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
    except (ValueError, OverflowError):  # a date outside Python's years 1-9999
        return None
    cells = [
        ["null" if value is None else writer(value) for value in values]  # type: ignore[misc]
        for writer, values in zip(writers, columns, strict=True)
    ]
    if shape == "array":
        rows = ["[" + ",".join(row) + "]" for row in zip(*cells, strict=True)]
    else:
        keys = [json_string(name) + ":" for name in batch.schema.names]
        rows = [
            "{" + ",".join(k + v for k, v in zip(keys, row, strict=True)) + "}"
            for row in zip(*cells, strict=True)
        ]
    return "".join(prefix + row + suffix for row in rows).encode()
