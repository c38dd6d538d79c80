"""ingest.parsing: exact typed values or null for every accepted and rejected form.

The property tests format values *here* (Python formatting and ``datetime``, not the
parser's regular expressions) and check that parsing gives the value back; the
near-miss properties compare against independent oracles written differently from
the production code (string splitting for digit grouping, ``datetime.strptime`` for
dates).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ingest import parsing
from ingest.contracts import THOUSANDS_SEPARATORS, ColumnContract
from ingest.parsing import (
    DEFAULT_FORMATS,
    _compile,
    _regex_strptime,
    check_format,
    chinese_numerals_to_digits,
    describe_expected,
    fold_width,
    parse_number,
    parse_temporal,
)

FAST = settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
CURRENCIES = ["MOP", "HK$", "¥", "RMB"]


def column(type_: str, **rules: Any) -> ColumnContract:
    return ColumnContract(name="x", type=type_, **rules)  # type: ignore[arg-type]


def number(raw: str | None, type_: str = "double", **rules: Any) -> Any:
    return parse_number(pa.array([raw], pa.string()), column(type_, **rules))[0].as_py()


def temporal(raw: str | None, type_: str = "date", **rules: Any) -> Any:
    return parse_temporal(pa.array([raw], pa.string()), column(type_, **rules))[0].as_py()


# --- numbers: table -----------------------------------------------------------------------

PLAIN: dict[str, Any] = {}
COMMA = {"thousands": ","}
MACAO = {"thousands": ".", "decimal": ",", "currency": "MOP"}

NUMBER_CASES: list[tuple[str, dict[str, Any], str, int | float | None]] = [
    # integers, no rules
    ("integer", PLAIN, "1234", 1234),
    ("integer", PLAIN, "+1234", 1234),
    ("integer", PLAIN, "-1234", -1234),
    ("integer", PLAIN, "\u22121234", -1234),
    ("integer", PLAIN, "0007", 7),
    ("integer", PLAIN, "１２３４", 1234),
    ("integer", PLAIN, "－１２", -12),
    ("integer", PLAIN, "12.0", None),
    ("integer", PLAIN, "1,234", None),
    ("integer", PLAIN, " 12", None),
    ("integer", PLAIN, "12 ", None),
    ("integer", PLAIN, "+-1", None),
    ("integer", PLAIN, "1e3", None),
    ("integer", PLAIN, "1²", None),
    ("integer", PLAIN, "①", None),
    ("integer", PLAIN, "٣", None),
    ("integer", PLAIN, "9223372036854775807", INT64_MAX),
    ("integer", PLAIN, "-9223372036854775808", INT64_MIN),
    ("integer", PLAIN, "9223372036854775808", None),
    ("integer", PLAIN, "-9223372036854775809", None),
    ("integer", PLAIN, "00000000000000000000042", 42),
    ("integer", PLAIN, "99999999999999999999999999", None),
    # integers with thousands separators
    ("integer", COMMA, "1,234", 1234),
    ("integer", COMMA, "1,234,567", 1234567),
    ("integer", COMMA, "1234567", 1234567),
    ("integer", COMMA, "-1,234", -1234),
    ("integer", COMMA, "１，２３４", 1234),
    ("integer", COMMA, "1,23,4", None),
    ("integer", COMMA, "1234,567", None),
    ("integer", COMMA, "12,34", None),
    ("integer", COMMA, ",123", None),
    ("integer", COMMA, "1,234,", None),
    ("integer", COMMA, "0,123", None),
    ("integer", COMMA, "1,,234", None),
    ("integer", COMMA, "1,234.00", None),
    ("integer", COMMA, "9,223,372,036,854,775,807", INT64_MAX),
    ("integer", COMMA, "9,223,372,036,854,775,808", None),
    ("integer", {"thousands": ".", "decimal": ","}, "1.234", 1234),
    ("integer", {"thousands": ".", "decimal": ","}, "1.234,00", None),
    ("integer", {"thousands": " "}, "1 234 567", 1234567),
    ("integer", {"thousands": "'"}, "1'234'567", 1234567),
    ("integer", {"thousands": "\u00a0"}, "1\u00a0234", 1234),
    ("integer", {"thousands": "\u00a0"}, "1 234", None),
    ("integer", {"thousands": "\u202f"}, "1\u202f234", 1234),
    ("integer", {"currency": "HK$", "thousands": ","}, "HK$1,200", 1200),
    ("integer", {"currency": "MOP"}, "1200 MOP", 1200),
    ("integer", {"currency": "MOP"}, "1200.00 MOP", None),
    # doubles, no rules
    ("double", PLAIN, "1234.5", 1234.5),
    ("double", PLAIN, "-0.25", -0.25),
    ("double", PLAIN, "\u22120.25", -0.25),
    ("double", PLAIN, "+.5", 0.5),
    ("double", PLAIN, "5.", 5.0),
    ("double", PLAIN, "1e3", 1000.0),
    ("double", PLAIN, "1.5E-3", 0.0015),
    ("double", PLAIN, "１２３４．５", 1234.5),
    ("double", PLAIN, "1,234.5", None),
    ("double", PLAIN, ".", None),
    ("double", PLAIN, "e3", None),
    ("double", PLAIN, "inf", None),
    ("double", PLAIN, "-Infinity", None),
    ("double", PLAIN, "nan", None),
    ("double", PLAIN, "1e999", None),
    ("double", PLAIN, " 1.5", None),
    ("double", PLAIN, "1.5\t", None),
    ("double", {"decimal": ","}, "1234,5", 1234.5),
    ("double", {"decimal": ","}, "1234.5", None),
    # doubles with thousands separators: valid grouping only, no exponent
    ("double", COMMA, "1,234,567.50", 1234567.5),
    ("double", COMMA, "1234567.50", 1234567.5),
    ("double", COMMA, ".5", 0.5),
    ("double", COMMA, "1,23,4.5", None),
    ("double", COMMA, "1,234.", None),
    ("double", COMMA, "1e3", None),
    ("double", COMMA, "1,234.5e3", None),
    ("double", {"thousands": ".", "decimal": ","}, "1.234,50", 1234.5),
    ("double", {"thousands": ".", "decimal": ","}, "1.234.567,5", 1234567.5),
    ("double", {"thousands": ".", "decimal": ","}, "1,234.50", None),
    ("double", {"thousands": ".", "decimal": ","}, "1.23,5", None),
    ("double", {"thousands": " ", "decimal": ","}, "1 234,5", 1234.5),
    # currencies, prefix or suffix, with or without one space
    ("double", MACAO, "MOP 1.234,50", 1234.5),
    ("double", MACAO, "MOP1.234,50", 1234.5),
    ("double", MACAO, "1.234,50 MOP", 1234.5),
    ("double", MACAO, "1.234,50MOP", 1234.5),
    ("double", MACAO, "MOP\u00a01.234,50", 1234.5),
    ("double", MACAO, "1.234,50", 1234.5),
    ("double", MACAO, "-MOP 5,00", -5.0),
    ("double", MACAO, "MOP -5,00", -5.0),
    ("double", MACAO, "-5,00 MOP", -5.0),
    ("double", MACAO, "MOP  1.234,50", None),
    ("double", MACAO, "MOP 1.234,50 MOP", None),
    ("double", MACAO, "HK$ 1.234,50", None),
    ("double", MACAO, "mop 1.234,50", None),
    ("double", MACAO, "- MOP 5,00", None),
    ("double", MACAO, "-MOP -5,00", None),
    ("double", MACAO, " MOP 1.234,50", None),
    ("double", {"currency": "HK$", "thousands": ","}, "HK$1,200", 1200.0),
    ("double", {"currency": "HK$", "thousands": ","}, "HK$ 1,200.50", 1200.5),
    ("double", {"currency": "HK$", "thousands": ","}, "ＨＫ＄１，２００", 1200.0),
    ("double", {"currency": "HK$", "thousands": ","}, "$1,200", None),
    ("double", {"currency": "¥"}, "¥ 35.00", 35.0),
    ("double", {"currency": "¥"}, "￥35.00", 35.0),
    ("double", {"currency": "¥"}, "35.00¥", 35.0),
    ("double", {"currency": "￥"}, "¥35.00", 35.0),
    ("double", {"currency": "RMB", "thousands": ","}, "RMB 1,234.50", 1234.5),
    ("double", {"currency": "RMB", "thousands": ","}, "RMB 1,234.50 元", None),
    ("double", {"currency": "MOP"}, "MOP 1e3", 1000.0),
]


@pytest.mark.parametrize(("type_", "rules", "raw", "expected"), NUMBER_CASES)
def test_parse_number_table(
    type_: str, rules: dict[str, Any], raw: str, expected: int | float | None
) -> None:
    parsed = number(raw, type_, **rules)
    assert parsed == expected
    if expected is not None:
        assert type(parsed) is (int if type_ == "integer" else float)


@pytest.mark.parametrize("type_", ["integer", "double"])
def test_parse_number_keeps_nulls_and_types(type_: str) -> None:
    values = pa.array([None, "12", None, "x", "３"], pa.string())
    typed = parse_number(values, column(type_, thousands=","))
    assert typed.type == (pa.int64() if type_ == "integer" else pa.float64())
    assert typed.to_pylist() == [None, 12, None, None, 3]


def test_parse_number_accepts_empty_null_typed_and_large_string_arrays() -> None:
    assert parse_number(pa.array([], pa.string()), column("integer")).to_pylist() == []
    assert parse_number(pa.nulls(2), column("double")).to_pylist() == [None, None]
    large = pa.array(["1,234", "x"], pa.large_string())
    assert parse_number(large, column("integer", thousands=",")).to_pylist() == [1234, None]


def test_parse_number_mixes_fast_and_folded_values_in_order() -> None:
    raw = ["1", "２", "9223372036854775808", "−4", "５,０００", None, "6"]
    typed = parse_number(pa.array(raw), column("integer", thousands=","))
    assert typed.to_pylist() == [1, 2, None, -4, 5000, None, 6]


def test_parse_number_refuses_other_column_types() -> None:
    with pytest.raises(ValueError, match="integer or double column; x is date"):
        parse_number(pa.array(["1"]), column("date"))
    with pytest.raises(TypeError, match="string array"):
        parse_number(pa.array([1]), column("integer"))


# --- numbers: properties --------------------------------------------------------------------


def group(digits: str, separator: str | None) -> str:
    if separator is None:
        return digits
    head = len(digits) % 3 or 3
    return separator.join(
        [digits[:head]] + [digits[i : i + 3] for i in range(head, len(digits), 3)]
    )


def with_currency(text: str, currency: str | None, where: str, space: str) -> str:
    if currency is None:
        return text
    return f"{currency}{space}{text}" if where == "prefix" else f"{text}{space}{currency}"


number_layout = st.fixed_dictionaries(
    {
        "thousands": st.sampled_from([None, *THOUSANDS_SEPARATORS]),
        "currency": st.sampled_from([None, *CURRENCIES]),
        "where": st.sampled_from(["prefix", "suffix"]),
        "space": st.sampled_from(["", " ", "\u00a0"]),
        "minus": st.sampled_from(["-", "\u2212"]),
    }
)


@FAST
@given(value=st.integers(INT64_MIN, INT64_MAX), layout=number_layout, full_width=st.booleans())
@example(value=INT64_MIN, layout={"thousands": ",", "currency": "MOP", "where": "prefix",
                                  "space": " ", "minus": "-"}, full_width=False)  # fmt: skip
def test_formatted_integers_parse_back(
    value: int, layout: dict[str, Any], full_width: bool
) -> None:
    text = ("" if value >= 0 else layout["minus"]) + group(str(abs(value)), layout["thousands"])
    if full_width:
        text = text.translate({c: c + 0xFEE0 for c in range(ord("!"), ord("~") + 1)})
    text = with_currency(text, layout["currency"], layout["where"], layout["space"])
    rules = {"thousands": layout["thousands"], "currency": layout["currency"]}
    if layout["thousands"] == ".":
        rules["decimal"] = ","
    assert number(text, "integer", **rules) == value


@FAST
@given(
    value=st.decimals(
        min_value=Decimal("-1e15"), max_value=Decimal("1e15"), places=4, allow_nan=False
    ),
    layout=number_layout,
    decimal=st.sampled_from([".", ","]),
)
def test_formatted_decimals_parse_back(
    value: Decimal, layout: dict[str, Any], decimal: str
) -> None:
    thousands = layout["thousands"] if layout["thousands"] != decimal else None
    whole, _, fraction = f"{abs(value):f}".partition(".")
    text = group(whole, thousands) + (decimal + fraction if fraction else "")
    text = ("" if value >= 0 else layout["minus"]) + text
    text = with_currency(text, layout["currency"], layout["where"], layout["space"])
    rules = {"thousands": thousands, "decimal": decimal, "currency": layout["currency"]}
    assert number(text, "double", **rules) == float(value)


@FAST
@given(value=st.floats(allow_nan=False, allow_infinity=False))
def test_repr_of_any_finite_float_parses_back(value: float) -> None:
    assert number(repr(value), "double") == value


def grouping_oracle(text: str) -> int | None:
    """Independent rule for ``thousands=','`` integers: split, never a regex."""
    body = text[1:] if text[:1] in "+-" else text
    parts = body.split(",")
    if not all(part.isascii() and part.isdigit() for part in parts):
        return None
    if len(parts) > 1 and not (
        1 <= len(parts[0]) <= 3 and parts[0][0] != "0" and all(len(p) == 3 for p in parts[1:])
    ):
        return None
    value = int(text.replace(",", ""))
    return value if INT64_MIN <= value <= INT64_MAX else None


@FAST
@given(text=st.text(alphabet="0123456789,+- .", min_size=1, max_size=14))
@example(text="1,234")
@example(text="01,234")
@example(text="-1,234,567")
def test_grouping_matches_an_independent_oracle(text: str) -> None:
    assert number(text, "integer", thousands=",") == grouping_oracle(text)


# --- numbers: the byte checks that skip rewrites ---------------------------------------------

NUMBER_CHARS = "0123456789" + "+-\u2212" + ".,eE" + " \u00a0" + "０１＋－，．" + "MOP$¥٣x"
SYNTAXES = [
    {},
    {"thousands": ","},
    {"thousands": ".", "decimal": ",", "currency": "MOP"},
    {"thousands": "\u00a0", "currency": "HK$"},
    {"currency": "¥"},
]


def every_byte_present(_values: Any) -> Any:
    """``utf8_bytes`` as if every byte occurred: each rewrite runs, as before the check."""
    return np.arange(256, dtype=np.uint8)


@FAST
@given(
    texts=st.lists(st.none() | st.text(NUMBER_CHARS, max_size=12), max_size=30),
    rules=st.sampled_from(SYNTAXES),
    type_=st.sampled_from(["integer", "double"]),
)
@example(texts=["+1", "\u22121", "1", None], rules={}, type_="integer")
@example(texts=["１", "-1.5", "+2.5"], rules={}, type_="double")
def test_number_rewrites_skipped_by_byte_checks_change_nothing(
    texts: list[str | None], rules: dict[str, Any], type_: str
) -> None:
    """The U+2212, leading ``+`` and full-width rewrites run only when the batch holds a
    byte they could act on; the result is what running them always gives."""
    values = pa.array(["skip", *texts], pa.string()).slice(1)
    contract = column(type_, **rules)
    fast = parse_number(values, contract).to_pylist()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(parsing, "utf8_bytes", every_byte_present)
        exact = parse_number(values, contract).to_pylist()
    assert fast == exact


# --- dates and timestamps: table -----------------------------------------------------------

D = dt.date
T = dt.datetime
EPOCH = dt.datetime(1970, 1, 1)
CN = ["%Y年%m月%d日"]
DAY_FIRST = ["%d/%m/%Y"]
FRACTION = ["%Y-%m-%d %H:%M:%S.%f"]

TEMPORAL_CASES: list[tuple[str, list[str] | None, str, dt.date | dt.datetime | None]] = [
    # defaults
    ("date", None, "2025-07-11", D(2025, 7, 11)),
    ("date", None, "2025-7-1", D(2025, 7, 1)),
    ("date", None, "2024-02-29", D(2024, 2, 29)),
    ("date", None, "2000-02-29", D(2000, 2, 29)),
    ("date", None, "0001-01-01", D(1, 1, 1)),
    ("date", None, "9999-12-31", D(9999, 12, 31)),
    ("date", None, "1969-12-31", D(1969, 12, 31)),
    ("date", None, "２０２５－０７－１１", D(2025, 7, 11)),
    ("date", None, "2023-02-29", None),
    ("date", None, "1900-02-29", None),
    ("date", None, "2024-02-30", None),
    ("date", None, "2024-04-31", None),
    ("date", None, "2024-13-01", None),
    ("date", None, "2024-00-10", None),
    ("date", None, "2024-01-00", None),
    ("date", None, "0000-01-01", None),
    ("date", None, "25-07-11", None),
    ("date", None, "12025-07-11", None),
    ("date", None, "2025-007-11", None),
    ("date", None, " 2025-07-11", None),
    ("date", None, "2025-07-11 ", None),
    ("date", None, "2025-07-11\n", None),
    ("date", None, "2025/07/11", None),
    ("date", None, "2025-07-11 10:00:00", None),
    ("timestamp", None, "2025-07-11 10:00:00", T(2025, 7, 11, 10)),
    ("timestamp", None, "2025-07-11T23:59:59", T(2025, 7, 11, 23, 59, 59)),
    ("timestamp", None, "2025-07-11 9:05:07", T(2025, 7, 11, 9, 5, 7)),
    ("timestamp", None, "1960-01-01 00:00:01", T(1960, 1, 1, 0, 0, 1)),
    ("timestamp", None, "2025-07-11 23:59:60", None),
    ("timestamp", None, "2016-12-31 23:59:60", None),
    ("timestamp", None, "2025-07-11 24:00:00", None),
    ("timestamp", None, "2025-07-11 10:60:00", None),
    ("timestamp", None, "2025-07-11  10:00:00", None),
    ("timestamp", None, "2025-07-11t10:00:00", None),
    ("timestamp", None, "2025-07-11 10:00", None),
    ("timestamp", None, "2025-07-11", None),
    # day first (HK/MO)
    ("date", DAY_FIRST, "11/07/2025", D(2025, 7, 11)),
    ("date", DAY_FIRST, "11/7/2025", D(2025, 7, 11)),
    ("date", DAY_FIRST, "1/7/2025", D(2025, 7, 1)),
    ("date", DAY_FIRST, "07/11/2025", D(2025, 11, 7)),
    ("date", DAY_FIRST, "29/02/2023", None),
    ("date", DAY_FIRST, "11/13/2025", None),
    ("date", DAY_FIRST, "11/07/25", None),
    ("date", DAY_FIRST, "2025-07-11", None),
    # Chinese
    ("date", CN, "2025年7月11日", D(2025, 7, 11)),
    ("date", CN, "2025年07月01日", D(2025, 7, 1)),
    ("date", CN, "２０２５年７月１１日", D(2025, 7, 11)),
    ("date", CN, "二〇二五年七月十一日", D(2025, 7, 11)),
    ("date", CN, "二零二五年十二月三十一日", D(2025, 12, 31)),
    ("date", CN, "二○二四年二月二十九日", D(2024, 2, 29)),
    ("date", CN, "二〇二五年十月十日", D(2025, 10, 10)),
    ("date", CN, "二〇二五年七月廿一日", D(2025, 7, 21)),
    ("date", CN, "二〇二三年二月二十九日", None),
    ("date", CN, "二〇二五年七月一一日", None),
    ("date", CN, "二〇二五年七月十十日", None),
    ("date", CN, "二〇二五年七月一十一日", None),
    ("date", CN, "二五年七月十一日", None),
    ("date", CN, "二〇二五年七月三十二日", None),
    ("date", CN, "2025年7月11号", None),
    ("date", CN, "2025年7月11", None),
    # several formats, first match wins
    ("date", [*DAY_FIRST, "%Y-%m-%d", *CN], "2025-07-11", D(2025, 7, 11)),
    ("date", [*DAY_FIRST, "%Y-%m-%d", *CN], "11/07/2025", D(2025, 7, 11)),
    ("date", [*DAY_FIRST, "%Y-%m-%d", *CN], "二〇二五年七月十一日", D(2025, 7, 11)),
    ("date", ["%m/%d/%Y", *DAY_FIRST], "07/11/2025", D(2025, 7, 11)),
    ("date", ["%m/%d/%Y", *DAY_FIRST], "13/11/2025", D(2025, 11, 13)),
    ("date", ["%Y/%m/%d", "%Y.%m.%d"], "2025.7.11", D(2025, 7, 11)),
    # fixed width where directives touch
    ("date", ["%Y%m%d"], "20250711", D(2025, 7, 11)),
    ("date", ["%Y%m%d"], "2025711", None),
    ("timestamp", ["%Y%m%d%H%M%S"], "20250711093005", T(2025, 7, 11, 9, 30, 5)),
    ("timestamp", ["%Y%m%d%H%M%S"], "2025071193005", None),
    ("date", ["%d%b%Y"], "1Jul2025", D(2025, 7, 1)),
    ("date", ["%Y%m%d"], "202507111", None),
    ("date", ["%y%m%d"], "250711", D(2025, 7, 11)),
    ("date", ["%d/%m/%y"], "11/07/69", D(1969, 7, 11)),
    ("date", ["%d/%m/%y"], "11/07/68", D(2068, 7, 11)),
    # month names, time zones, fractions, other directives
    ("date", ["%d %b %Y"], "11 Jul 2025", D(2025, 7, 11)),
    ("date", ["%d %b %Y"], "11 JUL 2025", D(2025, 7, 11)),
    ("date", ["%d %b %Y"], "11 July 2025", None),
    ("date", ["%d %B %Y"], "11 July 2025", D(2025, 7, 11)),
    ("date", ["%d %B %Y"], "11 Julho 2025", None),
    ("timestamp", ["%Y-%m-%dT%H:%M:%S%z"], "2025-07-11T10:00:00+08:00", T(2025, 7, 11, 2)),
    ("timestamp", ["%Y-%m-%dT%H:%M:%S%z"], "2025-07-11T10:00:00+0800", T(2025, 7, 11, 2)),
    ("timestamp", ["%Y-%m-%dT%H:%M:%S%z"], "2025-07-11T01:00:00+08:00", T(2025, 7, 10, 17)),
    ("timestamp", ["%Y-%m-%dT%H:%M:%S%z"], "2025-07-11T10:00:00Z", T(2025, 7, 11, 10)),
    ("timestamp", ["%Y-%m-%dT%H:%M:%S%z"], "2025-07-11T10:00:00-05:30", T(2025, 7, 11, 15, 30)),
    ("timestamp", ["%Y-%m-%dT%H:%M:%S%z"], "2025-07-11T10:00:00+24:00", None),
    ("timestamp", ["%Y-%m-%dT%H:%M:%S%z"], "2025-07-11T10:00:00+08:60", None),
    ("timestamp", ["%Y-%m-%dT%H:%M:%S%z"], "2025-07-11T10:00:00", None),
    ("timestamp", ["%Y-%m-%dT%H:%M:%S%z"], "2025-07-11T10:00:00 +08:00", None),
    ("date", ["%Y-%m-%dT%H:%M:%S%z"], "2025-07-11T01:00:00+08:00", D(2025, 7, 10)),
    ("timestamp", FRACTION, "2025-07-11 10:00:00.5", T(2025, 7, 11, 10, 0, 0, 500000)),
    ("timestamp", FRACTION, "2025-07-11 10:00:00.123456", T(2025, 7, 11, 10, 0, 0, 123000)),
    ("timestamp", FRACTION, "2025-07-11 10:00:00.1234567", None),
    ("timestamp", ["%Y-%m-%d %H:%M"], "2025-07-11 10:00", T(2025, 7, 11, 10)),
    ("timestamp", ["%H:%M"], "10:30", T(1900, 1, 1, 10, 30)),
    ("timestamp", ["%Y-%m-%d %H%%"], "2025-07-11 10%", T(2025, 7, 11, 10)),
    ("timestamp", ["%d/%m/%Y %I:%M %p"], "11/07/2025 10:00 PM", T(2025, 7, 11, 22)),
    ("timestamp", ["%d/%m/%Y %I:%M %p"], "11/07/2025 13:00 PM", None),
    ("date", ["%j/%Y"], "192/2025", D(2025, 7, 11)),
]  # fmt: skip


@pytest.mark.parametrize(("type_", "formats", "raw", "expected"), TEMPORAL_CASES)
def test_parse_temporal_table(
    type_: str, formats: list[str] | None, raw: str, expected: dt.date | dt.datetime | None
) -> None:
    assert temporal(raw, type_, format=formats) == expected


def test_parse_temporal_types_and_nulls() -> None:
    values = pa.array(["2025-07-11", None, "x", "２０２５-07-12"], pa.string())
    dates = parse_temporal(values, column("date"))
    assert dates.type == pa.date32()
    assert dates.to_pylist() == [D(2025, 7, 11), None, None, D(2025, 7, 12)]
    stamps = parse_temporal(pa.array(["2025-07-11 10:00:00", None]), column("timestamp"))
    assert stamps.type == pa.timestamp("ms")
    assert stamps.to_pylist() == [T(2025, 7, 11, 10), None]
    assert parse_temporal(pa.array([], pa.string()), column("date")).to_pylist() == []
    assert parse_temporal(pa.nulls(1), column("timestamp")).to_pylist() == [None]


def test_parse_temporal_rejects_bad_formats_and_columns() -> None:
    with pytest.raises(ValueError, match="sets the same field twice"):
        temporal("2025 2025", format="%Y %Y")
    with pytest.raises(ValueError, match="sets the same field twice"):
        temporal("2025 25", format="%Y %y")
    with pytest.raises(ValueError, match="lone %"):
        temporal("2025", format="%Y%")
    with pytest.raises(ValueError, match="date or timestamp column; x is double"):
        parse_temporal(pa.array(["1"]), column("double"))
    with pytest.raises(ValueError, match=r"'%m %b' sets the same field twice"):
        check_format("%m %b")
    for fmt in ("%d/%m/%Y", "%Y年%m月%d日", "%d %b %Y %I:%M %p", "%Y-%m-%dT%H:%M:%S.%f%z"):
        check_format(fmt)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("二〇二五年七月十一日", "2025年7月11日"),
        ("二零二五年十二月三十一日", "2025年12月31日"),
        ("十时五十九分", "10时59分"),
        ("no numerals", "no numerals"),
        ("二〇二五年七月一一日", None),
        ("三十十", None),
        ("十〇", None),
    ],
)
def test_chinese_numerals_to_digits(text: str, expected: str | None) -> None:
    assert chinese_numerals_to_digits(text) == expected


def test_fold_width_is_narrow() -> None:
    assert fold_width("ＨＫ＄１，２３４．５０　￥－") == "HK$1,234.50 ¥-"
    assert fold_width("1²①\u2212") == "1²①-"


# --- dates and timestamps: properties -------------------------------------------------------

DATE_FORMATS = ["%Y-%m-%d", "%d/%m/%Y", "%Y/%m/%d", "%Y年%m月%d日", "%Y%m%d", "%d %b %Y"]
TIMESTAMP_FORMATS = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%d/%m/%Y %H:%M:%S"]
CN_DIGITS = "〇一二三四五六七八九"


def chinese(value: int) -> str:
    tens, units = divmod(value, 10)
    return (
        ("" if tens < 2 else CN_DIGITS[tens])
        + ("十" if tens else "")
        + (CN_DIGITS[units] if units or not tens else "")
    )


@FAST
@given(day=st.dates(min_value=D(1000, 1, 1)), fmt=st.sampled_from(DATE_FORMATS))
def test_formatted_dates_parse_back(day: dt.date, fmt: str) -> None:
    assert temporal(day.strftime(fmt), "date", format=fmt) == day


@FAST
@given(day=st.dates(min_value=D(1000, 1, 1)))
def test_unpadded_and_chinese_numeral_dates_parse_back(day: dt.date) -> None:
    unpadded = f"{day.year}年{day.month}月{day.day}日"
    numerals = "".join(CN_DIGITS[int(c)] for c in str(day.year))
    numerals += f"年{chinese(day.month)}月{chinese(day.day)}日"
    for text in (unpadded, numerals, f"{day.day}/{day.month}/{day.year}"):
        assert temporal(text, "date", format=[*CN, *DAY_FIRST]) == day


@FAST
@given(
    moment=st.datetimes(min_value=T(1000, 1, 1)).map(lambda t: t.replace(microsecond=0)),
    fmt=st.sampled_from(TIMESTAMP_FORMATS),
)
def test_formatted_timestamps_parse_back(moment: dt.datetime, fmt: str) -> None:
    assert temporal(moment.strftime(fmt), "timestamp", format=fmt) == moment


@FAST
@given(
    moment=st.datetimes(min_value=T(1000, 1, 2), max_value=T(9999, 12, 30)),
    offset=st.integers(-23 * 60 - 59, 23 * 60 + 59),
)
def test_offsets_convert_to_utc(moment: dt.datetime, offset: int) -> None:
    aware = moment.replace(tzinfo=dt.timezone(dt.timedelta(minutes=offset)))
    text = aware.isoformat(timespec="milliseconds")
    utc = aware.astimezone(dt.UTC).replace(tzinfo=None)
    expected = utc.replace(microsecond=utc.microsecond // 1000 * 1000)
    assert temporal(text, "timestamp", format="%Y-%m-%dT%H:%M:%S.%f%z") == expected


def strptime_oracle(text: str, fmt: str) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(text, fmt)
    except ValueError:
        return None


@FAST
@given(
    parts=st.tuples(
        st.integers(0, 10000), st.integers(0, 13), st.integers(0, 32),
        st.integers(0, 25), st.integers(0, 61), st.integers(0, 61),
    ),
    padded=st.booleans(),
)  # fmt: skip
@example(parts=(2024, 2, 30, 0, 0, 0), padded=True)
@example(parts=(2023, 12, 31, 23, 59, 60), padded=True)
@example(parts=(0, 1, 1, 0, 0, 0), padded=True)
def test_near_miss_timestamps_agree_with_python(
    parts: tuple[int, int, int, int, int, int], padded: bool
) -> None:
    width = 2 if padded else 1
    year, *rest = parts
    text = f"{year:04d}-" + "-".join(f"{v:0{width}d}" for v in rest[:2])
    text += " " + ":".join(f"{v:0{width}d}" for v in rest[2:])
    fmt = DEFAULT_FORMATS["timestamp"][0]
    assert temporal(text, "timestamp") == strptime_oracle(text, fmt)


# --- the laid-out fast path against extract_regex ---------------------------------------

LAYOUT_FORMATS = [
    "%d/%m/%Y %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d", "%Y%m%d",
    "%Y年%m月%d日", "%d/%m/%y", "%H%M", "%Y%m%d%H%M%S", "%d.%m.%Y %H%%",
]  # fmt: skip
EDGE_NUMBERS = [0, 1, 2, 9, 10, 12, 13, 23, 24, 28, 29, 30, 31, 32, 59, 60, 61, 68, 69, 99, 100]
EDGE_YEARS = [0, 1, 99, 999, 1000, 1899, 1900, 1969, 2000, 2023, 2024, 2025, 2100, 9999]
DIGIT_FORMS = ["０１２３４５６７８９", "٠١٢٣٤٥٦٧٨٩", "〇一二三四五六七八九"]
HOSTILE = "//::;@.-T t\t\n9\u3000\u00a0０٣年"
"""Bytes next to the digits ('/' and ':' border '0'-'9'), separators, spaces, other digits."""


@st.composite
def near_laid_out(draw: st.DrawFn, fmt: str) -> str:
    """A real moment written in ``fmt``, mostly at full width in ASCII digits, perhaps
    with one field an edge number (day 29-32, month 13, hour 24, year 0...), then
    perhaps edited: a character replaced (the length kept), inserted, dropped or
    swapped, spaces around it."""
    moment = draw(st.datetimes(min_value=T(1, 1, 1)))
    real = {"Y": moment.year, "y": moment.year % 100, "m": moment.month, "d": moment.day}
    real |= {"H": moment.hour, "M": moment.minute, "S": moment.second}
    full = draw(st.integers(0, 9)) < 8
    edge = draw(st.sampled_from([None, None, "Y", "m", "d", "H", "M", "S", "y"]))
    out = []
    pieces = fmt.replace("%%", "\0").split("%")
    out.append(pieces[0].replace("\0", "%"))
    for piece in pieces[1:]:
        letter, literal = piece[0], piece[1:].replace("\0", "%")
        value = real[letter]
        if letter == edge:
            edges = EDGE_YEARS if letter == "Y" else EDGE_NUMBERS
            value = draw(st.sampled_from(edges) | st.integers(0, edges[-1]))
        width = 4 if letter == "Y" else 2
        if not full:
            width += draw(st.sampled_from([0, -1, 1]))
        out.append(f"{value:0{width}d}" + literal)
    value = "".join(out)
    if draw(st.integers(0, 9)) == 0:
        value = value.translate(str.maketrans("0123456789", draw(st.sampled_from(DIGIT_FORMS))))
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2]))):
        at = draw(st.integers(0, len(value) - 1))
        char = draw(st.sampled_from(HOSTILE))
        edit = draw(st.sampled_from(["replace", "replace", "insert", "drop", "swap", "pad"]))
        if edit == "replace":
            value = value[:at] + char + value[at + 1 :]
        elif edit == "insert":
            value = value[:at] + char + value[at:]
        elif edit == "drop":
            value = value[:at] + value[at + 1 :]
        elif edit == "swap" and at + 1 < len(value):
            value = value[:at] + value[at + 1] + value[at] + value[at + 2 :]
        elif edit == "pad":
            value = draw(st.sampled_from([f" {value}", f"{value} ", f"{value}\n"]))
        if not value:
            break
    return value


@settings(FAST, max_examples=400)
@given(data=st.data(), fmt=st.sampled_from(LAYOUT_FORMATS))
def test_laid_out_dates_agree_with_extract_regex(data: st.DataObject, fmt: str) -> None:
    """The byte-matrix fast path gives exactly what the regular expression path gives
    (which values match and are real dates, and their milliseconds) on hostile values,
    whatever the mix of laid-out and other values in the array."""
    compiled = _compile(fmt)
    assert compiled.layout is not None
    texts = data.draw(st.lists(near_laid_out(fmt), min_size=1, max_size=40))
    texts += data.draw(st.lists(st.text(max_size=20), max_size=5))
    values = pa.array(["skip", *texts, None, ""], pa.string()).slice(1)
    laid_out = [len((t or "").encode()) == compiled.layout.width for t in values.to_pylist()]
    for subset in (values, values.filter(pa.array(laid_out))):
        fast_ms, fast_ok = _regex_strptime(subset, compiled)
        slow_ms, slow_ok = _regex_strptime(subset, dataclasses.replace(compiled, layout=None))
        assert fast_ok.tolist() == slow_ok.tolist(), subset.to_pylist()
        assert fast_ms[fast_ok].tolist() == slow_ms[slow_ok].tolist()
        for text, ok, ms in zip(subset.to_pylist(), fast_ok, fast_ms.tolist(), strict=True):
            if ok:  # what the contract accepts, Python reads the same way
                expected = strptime_oracle(text, fmt)
                assert expected is not None, text
                assert ms == (expected - EPOCH) // dt.timedelta(milliseconds=1), text


def test_laid_out_dates_cover_every_value_of_a_uniform_batch() -> None:
    """Not vacuous: a column written at full width never reaches ``extract_regex``."""
    fmt = _compile("%d/%m/%Y %H:%M")
    assert fmt.layout is not None and fmt.layout.width == 16
    values = pa.array(
        ["29/02/2024 23:59", "29/02/2025 00:00", "31/12/0000 10:10", "01/01/2025 24:00"]
    )
    ms, ok = _regex_strptime(values, fmt)
    assert ok.tolist() == [True, False, False, False]
    assert ms[0] == (T(2024, 2, 29, 23, 59) - EPOCH) // dt.timedelta(milliseconds=1)
    for fmt_text in ("%d %b %Y", "%Y-%m-%dT%H:%M:%S.%f%z", "%Y1%m", "%I:%M %p"):
        assert _compile(fmt_text).layout is None


# --- describe_expected, speed ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ({"type": "double", "thousands": ",", "currency": "MOP"},
         "double (thousands ',', decimal '.', currency MOP)"),
        ({"type": "double", "thousands": ".", "decimal": ","},
         "double (thousands '.', decimal ',')"),
        ({"type": "double"}, "double (decimal '.')"),
        ({"type": "integer"}, "integer"),
        ({"type": "integer", "thousands": "\u00a0", "currency": "HK$"},
         "integer (thousands '\\xa0', currency HK$)"),
        ({"type": "date"}, "date (%Y-%m-%d)"),
        ({"type": "date", "format": ["%d/%m/%Y", "%Y年%m月%d日"]},
         "date (%d/%m/%Y or %Y年%m月%d日)"),
        ({"type": "timestamp"}, "timestamp (%Y-%m-%d %H:%M:%S or %Y-%m-%dT%H:%M:%S)"),
        ({"type": "string"}, "string"),
        ({"type": "boolean"}, "boolean"),
    ],
)  # fmt: skip
def test_describe_expected(rules: dict[str, Any], expected: str) -> None:
    assert describe_expected(ColumnContract(name="x", **rules)) == expected


MILLION = 1_000_000


def test_a_million_values_parse_without_per_value_python() -> None:
    rng = np.random.default_rng(7)

    def digits(low: int, high: int, width: int = 0) -> pa.Array:
        text = pa.array(rng.integers(low, high, MILLION)).cast(pa.string())
        return pc.utf8_lpad(text, width=width, padding="0") if width else text

    amounts = pc.binary_join_element_wise(
        "MOP ", digits(1, 1000), ".", digits(0, 1000, 3), ",", digits(0, 100, 2), ""
    )
    days = pc.binary_join_element_wise(digits(1, 29), digits(1, 13), digits(1990, 2031), "/")
    number_column = column("double", thousands=".", decimal=",", currency="MOP")
    date_column = column("date", format=DAY_FIRST)
    started = time.perf_counter()
    typed_amounts = parse_number(amounts, number_column)
    typed_days = parse_temporal(days, date_column)
    elapsed = time.perf_counter() - started
    assert typed_amounts.null_count == 0 and typed_days.null_count == 0
    first = amounts[0].as_py().removeprefix("MOP ").replace(".", "").replace(",", ".")
    assert typed_amounts[0].as_py() == float(first)
    assert typed_days[0].as_py() == dt.datetime.strptime(days[0].as_py(), "%d/%m/%Y").date()
    assert elapsed < 5, f"parsing 2 x {MILLION:,} values took {elapsed:.1f} s"
