"""Hong Kong business identifiers (DOMAIN.md §1.4). No check algorithm is public.

Rules, ``hk_brn``: V-50 an 8-digit Business Registration Number (also the UBI since
27 Dec 2023; reject ``HK_BRN_FORMAT``); a 7-digit value is an old Companies Registry
number, not a BRN (reject ``HK_BRN_OLD_CR_NO``: move it to ``hk_cr_no``); a whole BR
certificate number is accepted with a warning and reduced to its BRN (``HK_BR_CERT_NO``).

Rules, ``hk_br_cert_no``: V-51 ``12345678-000-MM-YY-C`` (warn ``HK_BR_CERT_FORMAT``); its
first 8 digits are the BRN (:func:`brn_from_cert`). The canonical value is hyphenated.
"""

from __future__ import annotations

import re

from typing_extensions import override

from ingest.validators.base import (
    Checked,
    Validator,
    conclude,
    normalise_identifier,
    reject,
    warn,
)

_BRN = re.compile(r"[0-9]{8}")
_OLD_CR_NO = re.compile(r"[0-9]{7}")
# Hyphens are stripped by normalisation: 8 + 3 + 2 + 2 digits, then one check character.
_CERT = re.compile(r"([0-9]{8})([0-9]{3})([0-9]{2})([0-9]{2})([0-9A-Z])")


def brn_from_cert(value: str) -> str | None:
    """The BRN inside a BR certificate number (any spacing or hyphenation), if well-formed."""
    match = _CERT.fullmatch(normalise_identifier(value))
    return match.group(1) if match else None


def format_cert(value: str) -> str | None:
    """A BR certificate number in its printed form ``12345678-000-01-11-1``, if well-formed."""
    match = _CERT.fullmatch(normalise_identifier(value))
    return "-".join(match.groups()) if match else None


class HkBrnValidator(Validator):
    """Hong Kong company ID (BRN / UBI), format only."""

    name = "hk_brn"

    @override
    def check(self, raw: str, *, region: str | None = None) -> Checked:
        value = normalise_identifier(raw)
        if _BRN.fullmatch(value):
            return Checked(value)
        brn = brn_from_cert(value)
        if brn is not None:
            message = f"a BR certificate number was given; its BRN {brn} was kept"
            return Checked(brn, (warn("HK_BR_CERT_NO", message, brn),))
        if _OLD_CR_NO.fullmatch(value):
            message = (
                "7 digits is an old Companies Registry number (CR No.), not a BRN; "
                "move it to hk_cr_no and ask the partner for the 8-digit BRN"
            )
            return conclude(value, (reject("HK_BRN_OLD_CR_NO", message),), raw)
        message = f"a BRN is 8 digits; got {value[:24]!r}"
        return conclude(value, (reject("HK_BRN_FORMAT", message),), raw)


class HkBrCertValidator(Validator):
    """Hong Kong BR certificate number, format only (segment meanings are unverified)."""

    name = "hk_br_cert_no"

    @override
    def check(self, raw: str, *, region: str | None = None) -> Checked:
        printed = format_cert(raw)
        if printed is not None:
            return Checked(printed)
        value = normalise_identifier(raw)
        message = f"a BR certificate number looks like 12345678-000-01-11-1; got {value[:24]!r}"
        return Checked(value, (warn("HK_BR_CERT_FORMAT", message),))
