"""Logistics identifiers in cross-boundary shipments (DOMAIN.md §1.7).

Rules, ``container_no``: V-70 ISO 6346 format, owner code + ``U``/``J``/``Z`` + 6-digit
serial + check digit (reject ``CONTAINER_FORMAT``) and its check digit (reject
``CONTAINER_CHECK``). Canonical value: the 11 characters, e.g. ``CSQU3054383``.

Rules, ``awb``: V-71 IATA air waybill, 3-digit airline prefix + 8-digit serial (reject
``AWB_FORMAT``) whose 8th digit is the first seven mod 7 (reject ``AWB_CHECK``). Canonical
value: ``160-12345675``. An all-numeric 9- or 10-digit raw value that is valid once its
prefix gets back the leading zero(s) Excel dropped is quarantined as
``EXCEL_NUMERIC_COERCION``.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping

from typing_extensions import override

from ingest.validators.base import (
    Checked,
    Finding,
    Validator,
    conclude,
    excel_finding,
    fold,
    normalise_identifier,
    reject,
)


def _container_letter_values() -> dict[str, int]:
    """A=10 upwards, skipping multiples of 11: A10 B12 … K21 L23 … U32 V34 … Z38."""
    values: dict[str, int] = {}
    value = 10
    for letter in string.ascii_uppercase:
        if value % 11 == 0:
            value += 1
        values[letter] = value
        value += 1
    return values


CONTAINER_LETTER_VALUES: Mapping[str, int] = _container_letter_values()
AWB_LENGTH = 11

_CONTAINER = re.compile(r"[A-Z]{3}[UJZ][0-9]{7}")
_AWB = re.compile(r"[0-9]{11}")


def container_check_digit(first10: str) -> str:
    """ISO 6346 check digit: Σ value × 2^i, mod 11, mod 10."""
    values = (CONTAINER_LETTER_VALUES.get(ch) or int(ch) for ch in first10)
    total = sum(v << i for i, v in enumerate(values))
    return str(total % 11 % 10)


def awb_check_digit(serial7: str) -> str:
    """IATA AWB check digit: the first seven serial digits as a number, mod 7."""
    return str(int(serial7) % 7)


class ContainerValidator(Validator):
    """ISO 6346 freight container number."""

    name = "container_no"

    @override
    def check(self, raw: str, *, region: str | None = None) -> Checked:
        value = normalise_identifier(raw)
        if not _CONTAINER.fullmatch(value):
            message = (
                "a container number is 3 letters, U/J/Z, 6 digits and a check digit, "
                f"e.g. CSQU3054383; got {value[:24]!r}"
            )
            return conclude(value, (reject("CONTAINER_FORMAT", message),), raw)
        check = container_check_digit(value[:10])
        if value[10] != check:
            finding = reject("CONTAINER_CHECK", f"check digit should be {check}", check)
            return conclude(value, (finding,), raw)
        return Checked(value)


def _awb_findings(value: str) -> tuple[Finding, ...]:
    if not _AWB.fullmatch(value):
        message = (
            "an air waybill is a 3-digit prefix and 8 digits, e.g. 160-12345675; "
            f"got {value[:24]!r}"
        )
        return (reject("AWB_FORMAT", message),)
    check = awb_check_digit(value[3:10])
    if value[10] != check:
        return (reject("AWB_CHECK", f"check digit should be {check}", check),)
    return ()


def _lost_prefix_zeros(raw: str) -> Finding | None:
    digits = fold(raw)
    if not (digits.isascii() and digits.isdigit() and 9 <= len(digits) < AWB_LENGTH):
        return None
    padded = digits.zfill(AWB_LENGTH)
    return None if _awb_findings(padded) else excel_finding(f"{padded[:3]}-{padded[3:]}")


class AwbValidator(Validator):
    """IATA air waybill number (the airline-prefix mapping is unverified and not checked)."""

    name = "awb"

    @override
    def check(self, raw: str, *, region: str | None = None) -> Checked:
        value = normalise_identifier(raw)
        findings = _awb_findings(value)
        if findings:
            lost = _lost_prefix_zeros(raw)
            return Checked(None, (lost,)) if lost else conclude(value, findings, raw)
        return Checked(f"{value[:3]}-{value[3:]}")
