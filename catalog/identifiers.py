"""Organisation registration identifiers (DOMAIN.md §1).

Mainland organisations carry a USCC (GB 32100, checked with python-stdnum);
Hong Kong ones a Business Registration Number (8 digits, no public check
algorithm); Macao ones a commercial registration number (format unverified:
kept as short text). Values are NFKC-normalised first, so full-width input from
Chinese input methods is accepted.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from stdnum.cn import uscc
from stdnum.exceptions import ValidationError

from catalog.errors import InvalidInput
from catalog.regions import MAINLAND, Region

HK_BRN = re.compile(r"^\d{8}$")
MO_REGISTRATION = re.compile(r"^[0-9A-Z][0-9A-Z()/\-]{0,31}$")


@dataclass(frozen=True)
class Registration:
    scheme: str  # uscc | hk_brn | mo_reg
    value: str


def validate_registration(region: Region, value: str) -> Registration:
    """Validate ``value`` as the registration id an organisation of ``region`` carries."""
    if region in MAINLAND:
        return Registration("uscc", _uscc(value))
    if region is Region.HK:
        brn = re.sub(r"[\s\-]", "", unicodedata.normalize("NFKC", value))
        if HK_BRN.match(brn):
            return Registration("hk_brn", brn)
        hint = " (7 digits is an old Companies Registry number, not a BRN)" if len(brn) == 7 else ""
        raise InvalidInput(
            f"{value!r} is not a Hong Kong Business Registration Number: expected 8 digits{hint}",
            field="registration_id",
        )
    text = unicodedata.normalize("NFKC", value).strip().upper().replace(" ", "")
    if MO_REGISTRATION.match(text):
        return Registration("mo_reg", text)
    raise InvalidInput(
        f"{value!r} is not a Macao commercial registration number: expected up to 32 letters, "
        "digits, '(', ')', '/' or '-'",
        field="registration_id",
    )


def _uscc(value: str) -> str:
    compact = re.sub(r"[\s\-]", "", unicodedata.normalize("NFKC", value)).upper()
    try:
        return str(uscc.validate(compact))
    except ValidationError as exc:
        raise InvalidInput(
            f"{value!r} is not a valid Unified Social Credit Code: {exc}; "
            "check the 18 characters against the business licence",
            field="registration_id",
        ) from exc
