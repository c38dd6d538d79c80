"""Hong Kong Identity Card number (DOMAIN.md §1.3).

Rules: V-30 format ``^[A-Z]{1,2}[0-9]{6}\\(?[0-9A]\\)?$`` (reject) and V-31 the mod-11 check
(reject). The canonical value is the printed form with parentheses, ``A123456(3)``.
HKIDs are personal data: mask and tokenise them downstream, never join on them.
"""

from __future__ import annotations

import re

from typing_extensions import override

from ingest.validators.base import (
    Checked,
    Finding,
    Validator,
    conclude,
    normalise_identifier,
    reject,
)

WEIGHTS = (9, 8, 7, 6, 5, 4, 3, 2)
SPACE_VALUE = 36

_FORMAT = re.compile(r"([A-Z]{1,2})([0-9]{6})\(?([0-9A])\)?")


def check_character(prefix: str, digits: str) -> str:
    """The check character for a 1-2 letter prefix and 6 digits (``0``-``9`` or ``A``).

    A single letter is padded with a leading space worth 36; letters are A=10 … Z=35.
    """
    body = prefix.rjust(2) + digits
    values = (SPACE_VALUE if ch == " " else int(ch, 36) for ch in body)
    total = sum(v * w for v, w in zip(values, WEIGHTS, strict=True))
    check = (11 - total % 11) % 11
    return "A" if check == 10 else str(check)


def _findings(prefix: str, digits: str, given: str) -> tuple[Finding, ...]:
    check = check_character(prefix, digits)
    if given != check:
        return (reject("HKID_CHECK", f"check character should be {check}", check),)
    return ()


class HkidValidator(Validator):
    """Hong Kong person ID."""

    name = "hkid"

    @override
    def check(self, raw: str, *, region: str | None = None) -> Checked:
        value = normalise_identifier(raw)
        match = _FORMAT.fullmatch(value)
        if match is None:
            message = (
                "an HKID is 1-2 letters, 6 digits and a check character 0-9 or A, "
                f"e.g. A123456(3); got {value[:24]!r}"
            )
            return conclude(value, (reject("HKID_FORMAT", message),), raw)
        prefix, digits, given = match.groups()
        return conclude(f"{prefix}{digits}({given})", _findings(prefix, digits, given), raw)
