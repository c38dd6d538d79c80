"""Telephone numbers through libphonenumber (DOMAIN.md §1.6). Canonical value: E.164.

Rules: V-60 parse with the dataset origin as the default region and ``is_valid_number``
(quarantine ``PHONE_INVALID``); V-61 a Guangzhou (020), Shenzhen (0755) or Dongguan (0769)
landline has an 8-digit local number (quarantine ``PHONE_CN_LOCAL_LENGTH``). An extension
cannot be written in E.164, so it is reported (warn ``PHONE_EXTENSION``) rather than lost
silently. Excel damage (``1.31235E+10``) is quarantined as ``EXCEL_NUMERIC_COERCION``. A
mainland number whose trunk ``0`` Excel dropped (``75523456789``) needs no special case:
libphonenumber reads it as the same number.
"""

from __future__ import annotations

from collections.abc import Mapping

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumber, PhoneNumberFormat
from typing_extensions import override

from ingest.validators.base import (
    Checked,
    Finding,
    Validator,
    conclude,
    default_country,
    normalise_identifier,
    quarantine,
    warn,
)

CN_EIGHT_DIGIT_AREAS: Mapping[str, str] = {"20": "Guangzhou", "755": "Shenzhen", "769": "Dongguan"}
"""Area codes (without the trunk 0) whose local numbers have exactly 8 digits (V-61)."""
LOCAL_DIGITS = 8


def _parse(text: str, country: str | None) -> PhoneNumber | None:
    try:
        return phonenumbers.parse(text, country)
    except NumberParseException:
        return None


def e164(number: PhoneNumber) -> str:
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def _local_length_finding(number: PhoneNumber) -> Finding | None:
    if number.country_code != 86:
        return None
    nsn = phonenumbers.national_significant_number(number)
    for area, city in CN_EIGHT_DIGIT_AREAS.items():
        local = len(nsn) - len(area)
        if nsn.startswith(area) and local != LOCAL_DIGITS:
            message = f"{city} (0{area}) local numbers have 8 digits; this one has {local}"
            return quarantine("PHONE_CN_LOCAL_LENGTH", message)
    return None


def _extension_finding(number: PhoneNumber) -> tuple[Finding, ...]:
    if not number.extension:
        return ()
    message = f"extension {number.extension} is not part of E.164; it is kept only in *_raw"
    return (warn("PHONE_EXTENSION", message, number.extension),)


def _invalid(text: str, country: str | None) -> Finding:
    hint = f" for default region {country}" if country else " (no +country code, no origin)"
    return quarantine("PHONE_INVALID", f"not a valid phone number{hint}: {text[:32]!r}")


class PhoneValidator(Validator):
    """Phone numbers; ``region`` (GZ/SZ/DG/HK/MO) supplies the default country."""

    name = "phone"

    @override
    def check(self, raw: str, *, region: str | None = None) -> Checked:
        country = default_country(region)
        text = normalise_identifier(raw)
        number = _parse(text, country)
        if number is None:
            return conclude(text, (_invalid(text, country),), raw)
        value = e164(number)
        local = _local_length_finding(number)
        if local is not None:
            return conclude(value, (local,), raw)
        if phonenumbers.is_valid_number(number):
            return Checked(value, _extension_finding(number))
        return conclude(value, (_invalid(text, country),), raw)
