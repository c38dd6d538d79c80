"""Macao identifiers (DOMAIN.md §1.5). Neither check algorithm is public: format only.

Rules, ``mo_bir``: V-40 ``1234567(8)`` or the old-card ``1/234567/8``, first digit 1, 5 or
7 (reject ``MO_BIR_FORMAT``). There is deliberately no check-digit test. The canonical
value is ``1234567(8)``.

Rules, ``mo_tin``: V-55 8 digits starting ``0`` (individuals in commerce) or ``8``
(entities), a secondary-source rule (warn ``MO_TIN_FORMAT``). A 7-digit, all-numeric raw
value is a TIN whose leading zero Excel dropped (quarantine ``EXCEL_NUMERIC_COERCION``).
"""

from __future__ import annotations

import re

from typing_extensions import override

from ingest.validators.base import (
    Checked,
    Validator,
    conclude,
    excel_finding,
    fold,
    normalise_identifier,
    reject,
    warn,
)

_BIR = re.compile(r"([157][0-9]{6})\(?([0-9])\)?|([157])/([0-9]{6})/([0-9])")
_TIN = re.compile(r"[08][0-9]{7}")
_TIN_WITHOUT_ZERO = re.compile(r"[0-9]{7}")


class MoBirValidator(Validator):
    """Macao resident ID (BIR), format only."""

    name = "mo_bir"

    @override
    def check(self, raw: str, *, region: str | None = None) -> Checked:
        value = normalise_identifier(raw)
        if _BIR.fullmatch(value):
            digits = "".join(ch for ch in value if ch.isdigit())
            return Checked(f"{digits[:7]}({digits[7]})")
        message = (
            "a Macao BIR is 8 digits starting 1, 5 or 7, printed 1234567(8) or 1/234567/8; "
            f"got {value[:24]!r}"
        )
        return conclude(value, (reject("MO_BIR_FORMAT", message),), raw)


class MoTinValidator(Validator):
    """Macao taxpayer number (DSF), format only. Salaried people use their BIR instead."""

    name = "mo_tin"

    @override
    def check(self, raw: str, *, region: str | None = None) -> Checked:
        value = normalise_identifier(raw)
        if _TIN.fullmatch(value):
            return Checked(value)
        if _TIN_WITHOUT_ZERO.fullmatch(fold(raw)):
            return Checked(None, (excel_finding("0" + value),))
        message = (
            "a Macao taxpayer number is 8 digits starting 8 (entities) or 0 (individuals); "
            f"got {value[:24]!r}"
        )
        return Checked(value, (warn("MO_TIN_FORMAT", message),))
