"""Vectorised fast paths for identifier validators.

A validator's ``check`` is Python per value, a few microseconds each: fine for a
sample, too slow for ten million rows. A fast path looks at a whole Arrow string
array at once and answers one narrow question per value: *would ``check`` return
this value unchanged, with no finding at all (not even a warning)?* It may answer
"no" when unsure (the value then goes to ``check``), never "yes" wrongly; a property
test holds every fast path to that against its validator.

Fixed-width identifiers become an ``(n, width)`` byte matrix, so check digits are a
few numpy operations per batch instead of a Python loop per value.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from ingest.fixed_width import byte_columns
from ingest.validators import hkid, resident_id, uscc
from ingest.validators.base import GB2260_PROVINCES

FastPath = Callable[[pa.Array], npt.NDArray[np.bool_]]
"""String array → which values ``check`` would accept unchanged and without findings."""


def _table(mapping: Mapping[str, int]) -> npt.NDArray[np.int8]:
    """A 256-entry byte → value table; -1 for bytes outside ``mapping``."""
    table = np.full(256, -1, dtype=np.int8)
    for char, value in mapping.items():
        table[ord(char)] = value
    return table


# The checks below work on ``byte_columns``: row ``i`` holds byte ``i`` of every value.


def _within(rows: npt.NDArray[np.uint8], low: str, high: str) -> npt.NDArray[np.bool_]:
    """Which values hold only bytes from ``low`` to ``high`` in ``rows`` (one compare per
    byte: below ``low`` wraps around past ``high``)."""
    return np.asarray(((rows - np.uint8(ord(low))) <= ord(high) - ord(low)).all(axis=0), bool)


def _digits(rows: npt.NDArray[np.uint8]) -> npt.NDArray[np.bool_]:
    return _within(rows, "0", "9")


def _upper(rows: npt.NDArray[np.uint8]) -> npt.NDArray[np.bool_]:
    return _within(rows, "A", "Z")


def _digit_or(row: npt.NDArray[np.uint8], char: str) -> npt.NDArray[np.bool_]:
    """Which bytes of ``row`` are an ASCII digit or ``char``."""
    return np.asarray(((row - np.uint8(ord("0"))) <= 9) | (row == ord(char)), dtype=bool)


def _weighted(rows: npt.NDArray[np.int8], weights: Sequence[int]) -> npt.NDArray[np.int64]:
    """Each value's sum of ``rows[i] * weights[i]`` (in int32: every sum here is < 2^31)."""
    total = np.zeros(rows.shape[1], dtype=np.int32)
    for row, weight in zip(rows, weights, strict=True):
        total += row * np.int32(weight)
    return total.astype(np.int64)


def _present(values: pa.Array) -> npt.NDArray[np.bool_]:
    return np.asarray(values.is_valid().to_numpy(zero_copy_only=False), dtype=bool)


_DIGITS = {str(d): d for d in range(10)}
_BASE36 = {**_DIGITS, **{chr(ord("A") + i): 10 + i for i in range(26)}}
_PROVINCE = np.zeros(100, dtype=bool)
_PROVINCE[[int(code) for code in GB2260_PROVINCES]] = True


def _province_ok(columns: npt.NDArray[np.uint8], start: int) -> npt.NDArray[np.bool_]:
    """The two digits at ``start`` are a GB/T 2260 province (81-83 permits go the slow way)."""
    two = (columns[start].astype(np.int64) - 48) * 10 + (columns[start + 1] - 48)
    return np.asarray(_PROVINCE[np.clip(two, 0, 99)], dtype=bool)


# -- USCC --------------------------------------------------------------------------------

_USCC_VALUE = _table({ch: i for i, ch in enumerate(uscc.ALPHABET)})
_USCC_SYMBOLS = np.frombuffer(uscc.ALPHABET.encode(), dtype=np.uint8)
_ORG_VALUE = _table(_BASE36)
_ORG_SYMBOLS = np.frombuffer(b"0123456789X0", dtype=np.uint8)  # index = 11 - total % 11


def uscc_fast(values: pa.Array) -> npt.NDArray[np.bool_]:
    """Canonical USCCs passing the check character, organisation-code check and region."""
    out = np.zeros(len(values), dtype=bool)
    positions, columns = byte_columns(values, uscc.LENGTH, _present(values))
    if len(positions) == 0:
        return out
    symbols = np.take(_USCC_VALUE, columns)  # -1 outside the alphabet
    # ^[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}$ on values of 18 bytes:
    ok = (symbols.min(axis=0) >= 0) & _digits(columns[2:8])
    check = _USCC_SYMBOLS[(31 - _weighted(symbols[:17], uscc.WEIGHTS) % 31) % 31]
    org_total = _weighted(np.take(_ORG_VALUE, columns[8:16]), uscc.ORG_CODE_WEIGHTS)
    org = _ORG_SYMBOLS[11 - org_total % 11]
    ok &= (check == columns[17]) & (org == columns[16]) & _province_ok(columns, 2)
    out[positions[ok]] = True
    return out


# -- mainland resident ID ----------------------------------------------------------------

_RIC_SYMBOLS = np.frombuffer(b"0123456789X", dtype=np.uint8)


def resident_id_fast(
    values: pa.Array, *, today: Callable[[], dt.date] = dt.date.today
) -> npt.NDArray[np.bool_]:
    """18-character resident IDs with a real birth date, the right check and a province."""
    out = np.zeros(len(values), dtype=bool)
    positions, columns = byte_columns(values, 18, _present(values))
    # ^[1-8][0-9]{16}[0-9X]$ on values of 18 bytes (a leading 9, foreigners, goes slow):
    shaped = _within(columns[:1], "1", "8") & _digits(columns[1:17])
    shaped &= _digit_or(columns[17], "X")
    positions, columns = positions[shaped], columns[:, shaped]
    if len(positions) == 0:
        return out
    digits = (columns[:17] - np.uint8(ord("0"))).astype(np.int8)
    check = _RIC_SYMBOLS[(12 - _weighted(digits, resident_id.WEIGHTS) % 11) % 11]
    ok = (check == columns[17]) & _province_ok(columns, 0)
    birth = _weighted(digits[6:14], [10**power for power in range(7, -1, -1)])
    ok &= _real_dates(birth, dt.date(1900, 1, 1), today())
    out[positions[ok]] = True
    return out


def _real_dates(
    yyyymmdd: npt.NDArray[np.int64], earliest: dt.date, latest: dt.date
) -> npt.NDArray[np.bool_]:
    """Which ``YYYYMMDD`` integers are real calendar days within [earliest, latest]."""
    year, month, day = yyyymmdd // 10000, yyyymmdd // 100 % 100, yyyymmdd % 100
    valid = (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1)
    months = np.where(valid, year * 12 + month - 1, 0)  # months since year 0
    first = (months - (1970 * 12)).astype("datetime64[M]")
    following = (months - (1970 * 12) + 1).astype("datetime64[M]")
    days_in_month = (following.astype("datetime64[D]") - first.astype("datetime64[D]")).astype(
        np.int64
    )
    valid &= day <= days_in_month
    low = int(earliest.strftime("%Y%m%d"))
    high = int(latest.strftime("%Y%m%d"))
    return np.asarray(valid & (yyyymmdd >= low) & (yyyymmdd <= high), dtype=bool)


# -- HKID --------------------------------------------------------------------------------

_HKID_VALUE = _table({**_DIGITS, **{chr(ord("A") + i): 10 + i for i in range(26)}, " ": 36})
_HKID_SYMBOLS = np.frombuffer(b"0123456789A", dtype=np.uint8)


def hkid_fast(values: pa.Array) -> npt.NDArray[np.bool_]:
    """HKIDs already in the printed form ``A123456(3)`` / ``AB123456(7)`` with the right check."""
    out = np.zeros(len(values), dtype=bool)
    present = _present(values)
    for width, letters in ((10, 1), (11, 2)):
        positions, columns = byte_columns(values, width, present)
        # ^[A-Z]{1,2}[0-9]{6}\([0-9A]\)$ on values of 10 or 11 bytes:
        shaped = _upper(columns[:letters]) & _digits(columns[letters : letters + 6])
        shaped &= (columns[letters + 6] == ord("(")) & (columns[letters + 8] == ord(")"))
        shaped &= _digit_or(columns[letters + 7], "A")
        positions, columns = positions[shaped], columns[:, shaped]
        if len(positions) == 0:
            continue
        body = np.full((8, len(positions)), _HKID_VALUE[ord(" ")], dtype=np.int8)
        body[2 - letters :] = np.take(_HKID_VALUE, columns[: 6 + letters])
        check = _HKID_SYMBOLS[(11 - _weighted(body, hkid.WEIGHTS) % 11) % 11]
        out[positions[check == columns[width - 2]]] = True
    return out


# -- ISO 6346 container number -----------------------------------------------------------


def _container_letter_values() -> dict[str, int]:
    # ISO 6346: A=10, then skip multiples of 11 (11, 22, 33).
    values, value = {}, 10
    for i in range(26):
        if value % 11 == 0:
            value += 1
        values[chr(ord("A") + i)] = value
        value += 1
    return values


_CONTAINER_VALUE = _table({**_DIGITS, **_container_letter_values()})
_CONTAINER_WEIGHTS = [2**power for power in range(10)]


def container_fast(values: pa.Array) -> npt.NDArray[np.bool_]:
    """Canonical container numbers (``CSQU3054383``) whose check digit is right."""
    out = np.zeros(len(values), dtype=bool)
    positions, columns = byte_columns(values, 11, _present(values))
    if len(positions) == 0:
        return out
    # ^[A-Z]{3}[UJZ][0-9]{7}$ on values of 11 bytes:
    kind = columns[3]
    ok = _upper(columns[:3]) & _digits(columns[4:])
    ok &= (kind == ord("U")) | (kind == ord("J")) | (kind == ord("Z"))
    total = _weighted(np.take(_CONTAINER_VALUE, columns[:10]), _CONTAINER_WEIGHTS)
    ok &= total % 11 % 10 == columns[10].astype(np.int64) - 48
    out[positions[ok]] = True
    return out


FAST_PATHS: Mapping[str, FastPath] = MappingProxyType(
    {
        "uscc": uscc_fast,
        "cn_resident_id": resident_id_fast,
        "hkid": hkid_fast,
        "container_no": container_fast,
    }
)
"""Validator name → fast path. Validators without one are checked per distinct value."""
