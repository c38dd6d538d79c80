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
from collections.abc import Callable, Mapping
from types import MappingProxyType

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from ingest.fixed_width import byte_matrix
from ingest.validators import hkid, resident_id, uscc
from ingest.validators.base import GB2260_PROVINCES

FastPath = Callable[[pa.Array], npt.NDArray[np.bool_]]
"""String array → which values ``check`` would accept unchanged and without findings."""


def _table(mapping: Mapping[str, int]) -> npt.NDArray[np.int64]:
    """A 256-entry byte → value table; -1 for bytes outside ``mapping``."""
    table = np.full(256, -1, dtype=np.int64)
    for char, value in mapping.items():
        table[ord(char)] = value
    return table


def _regex(values: pa.Array, pattern: str) -> npt.NDArray[np.bool_]:
    matched = pc.match_substring_regex(values, pattern)
    return np.asarray(pc.fill_null(matched, False).to_numpy(zero_copy_only=False), dtype=bool)


_DIGITS = {str(d): d for d in range(10)}
_BASE36 = {**_DIGITS, **{chr(ord("A") + i): 10 + i for i in range(26)}}
_PROVINCE = np.zeros(100, dtype=bool)
_PROVINCE[[int(code) for code in GB2260_PROVINCES]] = True


def _province_ok(matrix: npt.NDArray[np.uint8], start: int) -> npt.NDArray[np.bool_]:
    """The two digits at ``start`` are a GB/T 2260 province (81-83 permits go the slow way)."""
    two = (matrix[:, start].astype(np.int64) - 48) * 10 + (matrix[:, start + 1] - 48)
    return np.asarray(_PROVINCE[np.clip(two, 0, 99)], dtype=bool)


# -- USCC --------------------------------------------------------------------------------

_USCC_VALUE = _table({ch: i for i, ch in enumerate(uscc.ALPHABET)})
_USCC_WEIGHTS = np.array(uscc.WEIGHTS, dtype=np.int64)
_USCC_SYMBOLS = np.frombuffer(uscc.ALPHABET.encode(), dtype=np.uint8)
_ORG_VALUE = _table(_BASE36)
_ORG_WEIGHTS = np.array(uscc.ORG_CODE_WEIGHTS, dtype=np.int64)
_ORG_SYMBOLS = np.frombuffer(b"0123456789X0", dtype=np.uint8)  # index = 11 - total % 11


def uscc_fast(values: pa.Array) -> npt.NDArray[np.bool_]:
    """Canonical USCCs passing the check character, organisation-code check and region."""
    out = np.zeros(len(values), dtype=bool)
    shaped = _regex(values, r"^[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}$")
    positions, matrix = byte_matrix(values, uscc.LENGTH, shaped)
    if len(positions) == 0:
        return out
    symbols = _USCC_VALUE[matrix]
    check = _USCC_SYMBOLS[(31 - (symbols[:, :17] @ _USCC_WEIGHTS) % 31) % 31]
    org = _ORG_SYMBOLS[11 - (_ORG_VALUE[matrix[:, 8:16]] @ _ORG_WEIGHTS) % 11]
    ok = (check == matrix[:, 17]) & (org == matrix[:, 16]) & _province_ok(matrix, 2)
    out[positions[ok]] = True
    return out


# -- mainland resident ID ----------------------------------------------------------------

_RIC_WEIGHTS = np.array(resident_id.WEIGHTS, dtype=np.int64)
_RIC_SYMBOLS = np.frombuffer(b"0123456789X", dtype=np.uint8)


def resident_id_fast(
    values: pa.Array, *, today: Callable[[], dt.date] = dt.date.today
) -> npt.NDArray[np.bool_]:
    """18-character resident IDs with a real birth date, the right check and a province."""
    out = np.zeros(len(values), dtype=bool)
    shaped = _regex(values, r"^[1-8][0-9]{16}[0-9X]$")  # a leading 9 (foreigners) goes slow
    positions, matrix = byte_matrix(values, 18, shaped)
    if len(positions) == 0:
        return out
    digits = matrix[:, :17].astype(np.int64) - 48
    check = _RIC_SYMBOLS[(12 - (digits @ _RIC_WEIGHTS) % 11) % 11]
    ok = (check == matrix[:, 17]) & _province_ok(matrix, 0)
    birth = digits[:, 6:14] @ (10 ** np.arange(7, -1, -1, dtype=np.int64))
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
_HKID_WEIGHTS = np.array(hkid.WEIGHTS, dtype=np.int64)
_HKID_SYMBOLS = np.frombuffer(b"0123456789A", dtype=np.uint8)


def hkid_fast(values: pa.Array) -> npt.NDArray[np.bool_]:
    """HKIDs already in the printed form ``A123456(3)`` / ``AB123456(7)`` with the right check."""
    out = np.zeros(len(values), dtype=bool)
    shaped = _regex(values, r"^[A-Z]{1,2}[0-9]{6}\([0-9A]\)$")
    for width, letters in ((10, 1), (11, 2)):
        positions, matrix = byte_matrix(values, width, shaped)
        if len(positions) == 0:
            continue
        body = np.full((len(positions), 8), ord(" "), dtype=np.uint8)
        body[:, 2 - letters :] = matrix[:, : 6 + letters]
        check = _HKID_SYMBOLS[(11 - (_HKID_VALUE[body] @ _HKID_WEIGHTS) % 11) % 11]
        out[positions[check == matrix[:, width - 2]]] = True
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
_CONTAINER_WEIGHTS = 2 ** np.arange(10, dtype=np.int64)


def container_fast(values: pa.Array) -> npt.NDArray[np.bool_]:
    """Canonical container numbers (``CSQU3054383``) whose check digit is right."""
    out = np.zeros(len(values), dtype=bool)
    shaped = _regex(values, r"^[A-Z]{3}[UJZ][0-9]{7}$")
    positions, matrix = byte_matrix(values, 11, shaped)
    if len(positions) == 0:
        return out
    check = (_CONTAINER_VALUE[matrix[:, :10]] @ _CONTAINER_WEIGHTS) % 11 % 10
    out[positions[check == matrix[:, 10].astype(np.int64) - 48]] = True
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
