"""Strict, vectorised parsing of text cells into numbers, dates and timestamps.

Both public parsers take a string array (nulls for missing cells) and the column's
contract, and return a typed array of the same length. A value that does not match the
contract completely becomes null: nothing is trimmed, rounded or guessed.

The whole array goes through ``pyarrow.compute`` (RE2 regular expressions, casts, numpy
arithmetic). Python looks at single values only when the fast path cannot decide them:
values with full-width characters (``１，２３４``, ``２０２５／７／１１``), Chinese-numeral
dates (``二〇二五年七月十一日``), integers of 19 or more characters (int64 overflow) and
date formats with directives the compiler below does not handle.

Dates are not read with ``pyarrow.compute.strptime``: it accepts 2024-02-30 (as March 1),
second 60, leading spaces and year 0. A format whose every field has a fixed width
(``%d/%m/%Y %H:%M``) is read first off an ``(n, width)`` matrix of the values' bytes
(``ingest.fixed_width``): values whose every field is zero-padded to its full width
(``01/07/2025 08:05``, not ``1/7/2025 8:05``) are decided there, digit by digit. The rest,
and every other format, go through the format compiled to an anchored regular expression,
its fields extracted with ``extract_regex``. Either way the calendar is checked with numpy,
so the fast paths are exact and nothing needs a second opinion.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from ingest.contracts import ColumnContract
from ingest.fixed_width import byte_matrix, utf8_bytes

__all__ = [
    "DEFAULT_FORMATS",
    "check_format",
    "chinese_numerals_to_digits",
    "describe_expected",
    "fold_width",
    "parse_number",
    "parse_temporal",
]

DEFAULT_FORMATS: dict[str, tuple[str, ...]] = {
    "date": ("%Y-%m-%d",),
    "timestamp": ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"),
}
"""Formats used when a date or timestamp column declares none."""

INT64_SAFE_CHARS = 18
"""Canonical integers longer than this may overflow int64 and are decided in Python."""

_MS_PER_DAY = 86_400_000
_EPOCH = dt.datetime(1970, 1, 1)

# -- character folding ---------------------------------------------------------------------

_WIDTH_TABLE: dict[int, str] = {
    cp: unicodedata.normalize("NFKC", chr(cp))
    for cp in (*range(0xFF01, 0xFF5F), *range(0xFFE0, 0xFFE7))
}
_WIDTH_TABLE[0x3000] = " "  # IDEOGRAPHIC SPACE
_WIDTH_TABLE[0x2212] = "-"  # MINUS SIGN, which NFKC leaves alone (DOMAIN.md §3.6)


def fold_width(text: str) -> str:
    """Full-width ASCII forms (U+FF01–U+FF5E, ￥ and friends, U+3000) to their NFKC
    equivalents and U+2212 to ``-``. Other compatibility characters (``²``, ``①``) are
    left alone: folding them would turn ``1²`` into ``12``."""
    return text.translate(_WIDTH_TABLE)


def _literal(text: str) -> str:
    """*text* as an RE2 pattern matching exactly it."""
    out = []
    for ch in text:
        if ch.isalnum() or not ch.isascii():
            out.append(ch)
        elif ch.isprintable() and ch != " ":
            out.append("\\" + ch)
        else:
            out.append(f"\\x{{{ord(ch):02x}}}")
    return "".join(out)


# -- numbers -------------------------------------------------------------------------------

_SIGN = "[+\u2212-]"
_CURRENCY_SPACE = "[ \u00a0\u202f]"  # "MOP 1.234,50", "1200\u00a0MOP"


@dataclass(frozen=True)
class _NumberSyntax:
    integer: bool
    thousands: str | None
    decimal: str
    currency: str | None

    @property
    def pattern(self) -> str:
        if self.thousands is None:
            whole = "[0-9]+"
        else:
            sep = _literal(self.thousands)
            whole = f"(?:[1-9][0-9]{{0,2}}(?:{sep}[0-9]{{3}})+|[0-9]+)"
        if self.integer:
            number = whole
        else:
            point = _literal(self.decimal)
            if self.thousands is None:  # the old plain syntax: 5. and .5 and 1e-3
                number = f"(?:{whole}(?:{point}[0-9]*)?|{point}[0-9]+)(?:[eE][+-]?[0-9]+)?"
            else:
                number = f"(?:{whole}(?:{point}[0-9]+)?|{point}[0-9]+)"
        if self.currency is None:
            return f"^{_SIGN}?{number}$"
        cur = _literal(self.currency)
        prefix = f"(?:{_SIGN}?(?:{cur}{_CURRENCY_SPACE}?)?|{cur}{_CURRENCY_SPACE}?{_SIGN})"
        return f"^(?:{prefix}{number}|{_SIGN}?{number}{_CURRENCY_SPACE}?{cur})$"

    @property
    def currency_pattern(self) -> str:
        cur = _literal(self.currency or "")
        return f"^({_SIGN}?){cur}{_CURRENCY_SPACE}?|{_CURRENCY_SPACE}?{cur}$"


@lru_cache(maxsize=256)
def _number_syntax(
    integer: bool, thousands: str | None, decimal: str, currency: str | None
) -> _NumberSyntax:
    return _NumberSyntax(integer, thousands, decimal, fold_width(currency) if currency else None)


def parse_number(values: pa.Array, column: ColumnContract) -> pa.Array:
    """Parse text to int64 (integer columns) or float64 (double columns).

    Accepted: an optional ``+``/``-``/U+2212 sign; digits grouped by the contract's
    ``thousands`` separator in threes (or not grouped at all); the contract's ``decimal``
    separator (doubles only); the contract's ``currency`` before the sign, between sign
    and digits or after the amount, optionally separated by one space (U+0020, U+00A0
    or U+202F); full-width forms. Doubles accept exponents only when no thousands
    separator is declared, and never inf or nan. Integers outside int64 become null.
    """
    if column.type not in ("integer", "double"):
        raise ValueError(
            f"parse_number needs an integer or double column; {column.name} is {column.type}"
        )
    values = _as_text(values)
    syntax = _number_syntax(
        column.type == "integer", column.thousands, column.decimal, column.currency
    )
    typed = _parse_number_text(values, syntax)
    retry = _unparsed_non_ascii(values, pc.is_valid(typed))
    if retry is None:
        return typed
    folded = [fold_width(text) for text in values.filter(retry).to_pylist()]
    return pc.replace_with_mask(typed, retry, _parse_number_text(pa.array(folded), syntax))


def _parse_number_text(values: pa.Array, syntax: _NumberSyntax) -> pa.Array:
    target = pa.int64() if syntax.integer else pa.float64()
    ok = pc.match_substring_regex(values, syntax.pattern)
    text = pc.if_else(ok, values, pa.scalar(None, values.type))
    if syntax.currency is not None:
        text = pc.replace_substring_regex(text, syntax.currency_pattern, r"\1")
    if syntax.thousands is not None:
        text = pc.replace_substring(text, syntax.thousands, "")
    if syntax.decimal != ".":
        text = pc.replace_substring(text, syntax.decimal, ".")
    if (utf8_bytes(text) >= 0x80).any():  # U+2212 is not ASCII: no such byte, no U+2212
        text = pc.replace_substring(text, "\u2212", "-")
    if not syntax.integer:
        parsed = text.cast(pa.float64())
        return pc.if_else(pc.is_finite(parsed), parsed, pa.scalar(None, pa.float64()))
    if (utf8_bytes(text) == ord("+")).any():
        text = pc.replace_substring_regex(text, r"^\+", "")
    long = pc.fill_null(pc.greater(pc.utf8_length(text), INT64_SAFE_CHARS), False)
    parsed = pc.if_else(long, pa.scalar(None, text.type), text).cast(target)
    if not pc.any(long).as_py():
        return parsed
    exact = [_int64_or_none(v) for v in text.filter(long).to_pylist()]
    return pc.replace_with_mask(parsed, long, pa.array(exact, target))


def _int64_or_none(text: str) -> int | None:
    value = int(text)
    return value if -(2**63) <= value < 2**63 else None


# -- dates and timestamps ------------------------------------------------------------------

# English names whatever the process locale (Python's %b/%B follow LC_TIME).
_MONTH_NAME = ("January", "February", "March", "April", "May", "June", "July", "August",
               "September", "October", "November", "December")  # fmt: skip
_MONTH_ABBR = tuple(name[:3] for name in _MONTH_NAME)
_MONTH_WORDS = pa.array([m.lower() for m in _MONTH_ABBR + _MONTH_NAME])


def _alternatives(words: Sequence[str]) -> str:
    return "(?i:" + "|".join(sorted(words, key=len, reverse=True)) + ")"


# directive → (field, pattern, fixed-width pattern used when a numeric directive follows)
_DIRECTIVES: dict[str, tuple[str, str, str]] = {
    "Y": ("Y", "[0-9]{4}", "[0-9]{4}"),
    "y": ("y", "[0-9]{2}", "[0-9]{2}"),
    "m": ("m", "[0-9]{1,2}", "[0-9]{2}"),
    "d": ("d", "[0-9]{1,2}", "[0-9]{2}"),
    "H": ("H", "[0-9]{1,2}", "[0-9]{2}"),
    "M": ("M", "[0-9]{1,2}", "[0-9]{2}"),
    "S": ("S", "[0-9]{1,2}", "[0-9]{2}"),
    "f": ("f", "[0-9]{1,6}", "[0-9]{6}"),
    "z": ("z", "Z|[+-][0-9]{2}:?[0-9]{2}", "Z|[+-][0-9]{2}:?[0-9]{2}"),
    "b": ("b", _alternatives(_MONTH_ABBR), _alternatives(_MONTH_ABBR)),
    "B": ("b", _alternatives(_MONTH_NAME), _alternatives(_MONTH_NAME)),
}
_NUMERIC = frozenset("YymdHMSf")  # directives whose text starts with a digit
_SAME_FIELD = {"y": "Y", "b": "m"}  # %y and %Y both set the year, %b/%B and %m the month


@dataclass(frozen=True)
class _Layout:
    """A format's values when every field has its full width (``01/07/2025 08:05`` for
    ``%d/%m/%Y %H:%M``): each byte's place is known, so a value of ``width`` bytes with
    ASCII digits at ``digits`` and the literal bytes at ``literal_at`` is exactly a value
    the format's pattern matches, with ``fields`` (name, first byte, width) as its groups.
    """

    width: int
    digits: tuple[int, ...]
    literal_at: tuple[int, ...]
    literal: bytes
    fields: tuple[tuple[str, int, int], ...]


_FIXED_WIDTH = {"Y": 4, "y": 2, "m": 2, "d": 2, "H": 2, "M": 2, "S": 2}
"""Directives a ``_Layout`` can hold, and their full width in digits."""


@dataclass(frozen=True)
class _Format:
    """One strptime format compiled to an anchored RE2 pattern with named fields.

    ``pattern`` is None when the format uses a directive outside ``_DIRECTIVES``; such
    formats are read value by value with ``datetime.strptime``. ``layout`` is the fast
    path for values written at full width (None when the format has other directives,
    or a digit among its literal text, so a full-width value could split differently).
    """

    text: str
    pattern: str | None
    fields: frozenset[str]
    layout: _Layout | None = None


@lru_cache(maxsize=256)
def _compile(fmt: str) -> _Format:
    parts: list[tuple[bool, str]] = []  # (is_directive, directive letter or literal text)
    i = 0
    while i < len(fmt):
        if fmt[i] != "%":
            parts.append((False, fmt[i]))
            i += 1
            continue
        if i + 1 == len(fmt):
            raise ValueError(f"date format {fmt!r} ends with a lone %")
        letter = fmt[i + 1]
        parts.append((False, "%") if letter == "%" else (True, letter))
        i += 2
    letters = [text for is_directive, text in parts if is_directive]
    if any(letter not in _DIRECTIVES for letter in letters):
        _check_python_format(fmt)
        return _Format(fmt, None, frozenset())
    fields = [_DIRECTIVES[letter][0] for letter in letters]
    for letter, field in zip(letters, fields, strict=True):
        if fields.count(field) > 1 or _SAME_FIELD.get(field) in fields:
            raise ValueError(f"date format {fmt!r} sets the same field twice (%{letter})")
    pattern = []
    for k, (is_directive, text) in enumerate(parts):
        if not is_directive:
            pattern.append(_literal(text))
            continue
        field, flexible, fixed = _DIRECTIVES[text]
        before_digits = k + 1 < len(parts) and parts[k + 1][0] and parts[k + 1][1] in _NUMERIC
        pattern.append(f"(?P<{field}>{fixed if before_digits else flexible})")
    return _Format(fmt, "^" + "".join(pattern) + "$", frozenset(fields), _layout(parts))


def _layout(parts: Sequence[tuple[bool, str]]) -> _Layout | None:
    letters = [text for is_directive, text in parts if is_directive]
    literal_text = "".join(text for is_directive, text in parts if not is_directive)
    if not letters or any(letter not in _FIXED_WIDTH for letter in letters):
        return None
    if any("0" <= ch <= "9" for ch in literal_text):
        return None
    at = 0
    digits: list[int] = []
    literal_at: list[int] = []
    literal = bytearray()
    fields = []
    for is_directive, text in parts:
        if is_directive:
            width = _FIXED_WIDTH[text]
            fields.append((text, at, width))
            digits += range(at, at + width)
            at += width
        else:
            encoded = text.encode("utf-8")
            literal_at += range(at, at + len(encoded))
            literal += encoded
            at += len(encoded)
    return _Layout(at, tuple(digits), tuple(literal_at), bytes(literal), tuple(fields))


def check_format(fmt: str) -> None:
    """Raise ``ValueError`` when ``parse_temporal`` cannot use *fmt* (a lone ``%``, a field
    set twice such as ``%Y … %y``); for contract validation before any data arrives."""
    _compile(fmt)


def _check_python_format(fmt: str) -> None:
    try:
        dt.datetime.strptime("", fmt)
    except ValueError:
        return  # the format is fine; "" just does not match it
    except re.error as exc:
        raise ValueError(f"date format {fmt!r} is not usable by strptime: {exc}") from exc


def parse_temporal(values: pa.Array, column: ColumnContract) -> pa.Array:
    """Parse text to date32 (date columns) or timestamp[ms] (timestamp columns).

    The contract's formats (default ``DEFAULT_FORMATS``) are tried in order; the first
    that matches the whole value wins. Month, day, hour, minute and second may be
    written without a leading zero unless a numeric directive follows directly (in
    ``%Y%m%d`` every field is fixed width). Values must be real calendar dates and
    times: no 2024-02-30, no second 60, no year 0, no surrounding spaces. ``%z`` values
    are converted to UTC (naive values are stored as written). ``%f`` is truncated to
    milliseconds. Full-width digits and Chinese numerals (``二〇二五年七月十一日``) are
    read as digits. A date column whose format has a time keeps the UTC date.
    """
    if column.type not in ("date", "timestamp"):
        raise ValueError(
            f"parse_temporal needs a date or timestamp column; {column.name} is {column.type}"
        )
    values = _as_text(values)
    formats = [_compile(f) for f in column.formats or DEFAULT_FORMATS[column.type]]
    ms, done = _parse_temporal_text(values, formats)
    retry = _unparsed_non_ascii(values, pa.array(done))
    if retry is not None:
        positions = np.flatnonzero(retry.to_numpy(zero_copy_only=False))
        folded = [fold_date(text) for text in values.take(positions).to_pylist()]
        retry_ms, retry_done = _parse_temporal_text(pa.array(folded, pa.string()), formats)
        ms[positions] = retry_ms
        done[positions] = retry_done
    if column.type == "date":
        days = np.floor_divide(ms, _MS_PER_DAY).astype(np.int32)
        return pa.array(days, pa.int32(), mask=~done).cast(pa.date32())
    return pa.array(ms, pa.int64(), mask=~done).cast(pa.timestamp("ms"))


def _parse_temporal_text(
    values: pa.Array, formats: Sequence[_Format]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Milliseconds since the epoch and which values matched one of ``formats``."""
    ms = np.zeros(len(values), dtype=np.int64)
    done = np.zeros(len(values), dtype=bool)
    pending = pc.is_valid(values).to_numpy(zero_copy_only=False)
    for fmt in formats:
        positions = np.flatnonzero(pending)
        if len(positions) == 0:
            break
        subset = values if len(positions) == len(values) else values.take(positions)
        if fmt.pattern is None:
            sub_ms, sub_ok = _python_strptime(subset, fmt.text)
        else:
            sub_ms, sub_ok = _regex_strptime(subset, fmt)
        ms[positions[sub_ok]] = sub_ms[sub_ok]
        done[positions[sub_ok]] = True
        pending[positions[sub_ok]] = False
    return ms, done


def _regex_strptime(
    values: pa.Array, fmt: _Format
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Milliseconds since the epoch of the values ``fmt.pattern`` matches, and which
    values it matched and are real calendar dates and times."""
    if fmt.layout is None:
        fields, ok = _extracted_fields(values, fmt)
    else:
        fields, ok = _laid_out_fields(values, fmt, fmt.layout)
    year, month, day = fields["Y"], fields["m"], fields["d"]
    hour, minute, second = fields["H"], fields["M"], fields["S"]
    ok &= (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1)
    ok &= day <= _days_in_month(year, np.clip(month, 1, 12))
    ok &= (hour <= 23) & (minute <= 59) & (second <= 59)
    seconds = _days_from_civil(year, np.clip(month, 1, 12), day) * 86_400
    seconds += hour * 3600 + minute * 60 + second
    return seconds * 1000 + fields["ms"], ok


_Fields = dict[str, npt.NDArray[np.int64]]
"""Y, m, d, H, M, S and ``ms`` (the fraction, minus the UTC offset) of each value."""


def _extracted_fields(values: pa.Array, fmt: _Format) -> tuple[_Fields, npt.NDArray[np.bool_]]:
    """The fields of each value by ``extract_regex``, and which values matched."""
    assert fmt.pattern is not None
    found = pc.extract_regex(values, fmt.pattern)
    ok = found.is_valid().to_numpy(zero_copy_only=False)

    def number(field: str, default: int) -> npt.NDArray[np.int64]:
        if field not in fmt.fields:
            return np.full(len(values), default, dtype=np.int64)
        text = pc.struct_field(found, field)
        return np.asarray(pc.fill_null(text.cast(pa.int64()), default).to_numpy(), np.int64)

    fields = {f: number(f, default) for f, default in _DEFAULTS.items()}
    if "y" in fmt.fields:
        fields["Y"] = _pivot(number("y", 0))
    if "b" in fmt.fields:
        index = pc.index_in(pc.utf8_lower(pc.struct_field(found, "b")), value_set=_MONTH_WORDS)
        fields["m"] = np.asarray(pc.fill_null(index, 0).to_numpy(), np.int64) % 12 + 1
    ms = np.zeros(len(values), dtype=np.int64)
    if "f" in fmt.fields:
        fraction = pc.utf8_rpad(pc.struct_field(found, "f"), width=6, padding="0")
        ms += np.asarray(pc.fill_null(fraction.cast(pa.int64()), 0).to_numpy(), np.int64) // 1000
    if "z" in fmt.fields:
        offset, offset_ok = _utc_offset_minutes(pc.struct_field(found, "z"))
        ok &= offset_ok
        ms -= offset * 60_000
    fields["ms"] = ms
    return fields, ok


def _pivot(short: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Two-digit years as Python reads them: 69–99 → 1900s, 00–68 → 2000s."""
    return np.asarray(np.where(short < 69, 2000 + short, 1900 + short), np.int64)


_DEFAULTS = {"Y": 1900, "m": 1, "d": 1, "H": 0, "M": 0, "S": 0}
"""A field's value when the format does not set it."""


def _laid_out_fields(
    values: pa.Array, fmt: _Format, layout: _Layout
) -> tuple[_Fields, npt.NDArray[np.bool_]]:
    """``_extracted_fields``, read off a byte matrix for the values written in ``layout``
    (the common case: a few numpy operations per batch); the others, if any, go through
    ``extract_regex``."""
    valid = pc.is_valid(values).to_numpy(zero_copy_only=False)
    positions, matrix = byte_matrix(values, layout.width, valid)
    digits = matrix[:, list(layout.digits)] - np.uint8(ord("0"))  # wraps: non-digits > 9
    shaped = (digits <= 9).all(axis=1)
    if layout.literal:
        literal = np.frombuffer(layout.literal, dtype=np.uint8)
        shaped &= (matrix[:, list(layout.literal_at)] == literal).all(axis=1)
    fast = positions[shaped]
    pending = valid.copy()
    pending[fast] = False
    rest = np.flatnonzero(pending)
    fields = {f: np.full(len(values), default, dtype=np.int64) for f, default in _DEFAULTS.items()}
    fields["ms"] = np.zeros(len(values), dtype=np.int64)
    ok = np.zeros(len(values), dtype=bool)
    ok[fast] = True
    if len(fast) < len(positions):
        matrix = matrix[shaped]
    for letter, start, width in layout.fields:
        number = np.zeros(len(fast), dtype=np.int64)
        for offset in range(start, start + width):
            number = number * 10 + matrix[:, offset] - ord("0")
        if letter == "y":
            letter, number = "Y", _pivot(number)
        fields[letter][fast] = number
    if len(rest):
        subset = values if len(rest) == len(values) else values.take(rest)
        slow, slow_ok = _extracted_fields(subset, fmt)
        for name, column in slow.items():
            fields[name][rest] = column
        ok[rest] = slow_ok
    return fields, ok


def _utc_offset_minutes(
    text: pa.Array,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """``Z``, ``+08:00`` or ``-0530`` → signed minutes east of UTC, and which are valid."""
    digits = pc.fill_null(pc.replace_substring(text, ":", ""), "+0000")
    digits = pc.if_else(pc.equal(digits, "Z"), "+0000", digits)
    sign = np.where(pc.starts_with(digits, "-").to_numpy(zero_copy_only=False), -1, 1)
    hours = pc.utf8_slice_codeunits(digits, 1, 3).cast(pa.int64()).to_numpy()
    minutes = pc.utf8_slice_codeunits(digits, 3, 5).cast(pa.int64()).to_numpy()
    return sign * (hours * 60 + minutes), (hours <= 23) & (minutes <= 59)


def _days_in_month(
    year: npt.NDArray[np.int64], month: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    lengths = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    return np.asarray(lengths[month] + ((month == 2) & leap), np.int64)


def _days_from_civil(
    year: npt.NDArray[np.int64], month: npt.NDArray[np.int64], day: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Days since 1970-01-01 of proleptic Gregorian dates (Howard Hinnant's algorithm)."""
    y = year - (month <= 2)
    era = np.floor_divide(y, 400)
    year_of_era = y - era * 400
    day_of_year = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return np.asarray(era * 146_097 + day_of_era - 719_468, np.int64)


def _python_strptime(
    values: pa.Array, fmt: str
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """``datetime.strptime`` value by value, for formats the compiler does not handle."""
    ms = np.zeros(len(values), dtype=np.int64)
    ok = np.zeros(len(values), dtype=bool)
    for position, text in enumerate(values.to_pylist()):
        try:
            parsed = dt.datetime.strptime(text, fmt)
        except ValueError:
            continue
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
        ms[position] = (parsed - _EPOCH) // dt.timedelta(milliseconds=1)
        ok[position] = True
    return ms, ok


# -- Chinese numerals ----------------------------------------------------------------------

_CN_DIGITS = {"〇": 0, "○": 0, "零": 0, "一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6}
_CN_DIGITS |= {"七": 7, "八": 8, "九": 9}
_CN_TENS = {"十": 1, "廿": 2, "卅": 3}
_CN_RUN = re.compile("[" + "".join(_CN_DIGITS) + "".join(_CN_TENS) + "]+")
_CN_YEAR_DIGITS = 4


def chinese_numerals_to_digits(text: str) -> str | None:
    """Write each run of Chinese numerals in a date as decimal digits.

    A run is a digit-by-digit year of four characters (``二〇二五``, ``二零二五``), a single
    digit (``七``) or a number up to 99 with ``十`` (``十``, ``十一``, ``二十``, ``三十一``;
    ``廿``/``卅`` for 20/30). Anything else (``一一``, ``十十``) gives None.
    ``"二〇二五年七月十一日"`` becomes ``"2025年7月11日"``.
    """
    failed = False

    def digits(match: re.Match[str]) -> str:
        nonlocal failed
        run = match.group()
        value = _cn_number(run)
        if value is None:
            failed = True
            return run
        return value

    converted = _CN_RUN.sub(digits, text)
    return None if failed else converted


def _cn_number(run: str) -> str | None:
    tens_at = [i for i, ch in enumerate(run) if ch in _CN_TENS]
    if not tens_at:
        if len(run) in (1, _CN_YEAR_DIGITS):
            return "".join(str(_CN_DIGITS[ch]) for ch in run)
        return None
    if len(tens_at) > 1 or len(run) > 3:
        return None
    at = tens_at[0]
    head, tens_char, tail = run[:at], run[at], run[at + 1 :]
    tens = _CN_TENS[tens_char]
    if head:
        if tens_char != "十" or len(head) != 1 or _CN_DIGITS[head] < 2:
            return None
        tens = _CN_DIGITS[head]
    if len(tail) > 1 or (tail and _CN_DIGITS[tail] == 0):
        return None
    return str(tens * 10 + (_CN_DIGITS[tail] if tail else 0))


def fold_date(text: str) -> str | None:
    """Full-width forms and Chinese numerals to ASCII digits; None when a numeral run is
    not a well-formed date number."""
    return chinese_numerals_to_digits(fold_width(text))


# -- shared ----------------------------------------------------------------------------------


def _as_text(values: pa.Array) -> pa.Array:
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        return values
    if pa.types.is_null(values.type):
        return values.cast(pa.string())
    raise TypeError(f"expected a string array of raw cells, got {values.type}")


def _unparsed_non_ascii(values: pa.Array, parsed: pa.Array) -> pa.Array | None:
    """Non-null, non-ASCII values the fast path did not parse (candidates for folding)."""
    if not (utf8_bytes(values) >= 0x80).any():
        return None
    retry = pc.and_not(pc.invert(pc.string_is_ascii(values)), parsed)
    retry = pc.fill_null(retry, False)
    return retry if pc.any(retry).as_py() else None


def describe_expected(column: ColumnContract) -> str:
    """What a cell of *column* must look like, for error messages.

    ``"double (thousands ',', decimal '.', currency MOP)"``, ``"date (%d/%m/%Y)"``.
    """
    if column.type in ("date", "timestamp"):
        formats = column.formats or DEFAULT_FORMATS[column.type]
        return f"{column.type} ({' or '.join(formats)})"
    if column.type not in ("integer", "double"):
        return column.type
    rules = []
    if column.thousands is not None:
        rules.append(f"thousands {column.thousands!r}")
    if column.type == "double":
        rules.append(f"decimal {column.decimal!r}")
    if column.currency:
        rules.append(f"currency {column.currency}")
    return f"{column.type} ({', '.join(rules)})" if rules else column.type
