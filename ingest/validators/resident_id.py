"""Mainland Resident Identity Card number, GB 11643-1999 (DOMAIN.md §1.2).

Rules: V-20 format (reject), V-21 birth date is a real date from 1900-01-01 to today
(reject), V-22 the mod-11 check (reject), V-23 region code plausibility (warn only; never
compared with the birth year), V-24 a legacy 15-digit number is converted to 18 digits
(warn ``LEGACY_15``; the canonical value is the converted number).

The same format serves the Residence Permits for HK/Macao/Taiwan residents (810000,
820000, 830000) and, reportedly, the 2023 Foreigners' Permanent Residence ID card (leading
``9``; region rules are not applied to it). python-stdnum is deliberately not used: its
``validate()`` rejects region codes that postdate the birth year, and 810000/820000.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

from typing_extensions import override

from ingest.validators.base import (
    Checked,
    Finding,
    Validator,
    conclude,
    normalise_identifier,
    region_problem,
    reject,
    suggest_lookalikes,
    warn,
)

WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
EARLIEST_BIRTH = date(1900, 1, 1)
FOREIGN_PERMANENT_RESIDENT_PREFIX = "9"

_FORMAT = re.compile(r"[0-9]{17}[0-9X]")
_LEGACY = re.compile(r"[0-9]{15}")


def check_character(first17: str) -> str:
    """The GB 11643 check character (``0``-``9`` or ``X``) for the first 17 digits."""
    remainder = sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True)) % 11
    check = (12 - remainder) % 11
    return "X" if check == 10 else str(check)


def birth_date(yyyymmdd: str) -> date | None:
    """The date written as ``YYYYMMDD``, or None if there is no such day."""
    try:
        return date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError:
        return None


def convert_legacy(value: str) -> str:
    """A 15-digit first-generation number as 18 digits: ``19`` before the year, plus check."""
    body = value[:6] + "19" + value[6:]
    return body + check_character(body)


def _date_findings(value: str, today: date) -> tuple[Finding, ...]:
    born = birth_date(value[6:14])
    if born is None:
        return (reject("RIC_DATE", f"characters 7-14 ({value[6:14]}) are not a real date"),)
    if not EARLIEST_BIRTH <= born <= today:
        message = f"birth date {born.isoformat()} is outside 1900-01-01 … {today.isoformat()}"
        return (reject("RIC_DATE", message),)
    return ()


def _region_findings(value: str) -> tuple[Finding, ...]:
    if value.startswith(FOREIGN_PERMANENT_RESIDENT_PREFIX):
        return ()
    problem = region_problem(value[:6])
    return (warn("RIC_REGION", problem),) if problem else ()


class ResidentIdValidator(Validator):
    """Mainland person ID. ``today`` bounds the birth date (inject a clock in tests)."""

    name = "cn_resident_id"

    def __init__(self, today: Callable[[], date] = date.today) -> None:
        self._today = today

    def is_valid(self, value: str) -> bool:
        """Format, date and check (the rejects) on a normalised 18-character number."""
        return (
            bool(_FORMAT.fullmatch(value))
            and check_character(value[:17]) == value[17]
            and not _date_findings(value, self._today())
        )

    @override
    def check(self, raw: str, *, region: str | None = None) -> Checked:
        value = normalise_identifier(raw)
        if _LEGACY.fullmatch(value):
            return self._check_legacy(value, raw)
        if not _FORMAT.fullmatch(value):
            return conclude(value, (self._format_finding(value),), raw)
        findings = _date_findings(value, self._today())
        check = check_character(value[:17])
        if value[17] != check:
            findings += (reject("RIC_CHECK", f"check character should be {check}", check),)
        return conclude(value, findings + _region_findings(value), raw)

    def _check_legacy(self, value: str, raw: str) -> Checked:
        converted = convert_legacy(value)
        legacy = warn(
            "LEGACY_15",
            f"legacy 15-digit number converted to {converted}; keep the original in *_raw",
            converted,
        )
        findings = (legacy, *_date_findings(converted, self._today()))
        return conclude(converted, findings + _region_findings(converted), raw)

    def _format_finding(self, value: str) -> Finding:
        message = (
            "a resident ID is 17 digits plus a digit or X (legacy: 15 digits); "
            f"got {len(value)} characters {value[:24]!r}"
        )
        suggestion = suggest_lookalikes(value, self.is_valid)
        if suggestion:
            message += f"; did you mean {suggestion}? (not applied)"
        return reject("RIC_FORMAT", message, suggestion)
