"""Unified Social Credit Code, GB 32100-2015 (DOMAIN.md §1.1).

Rules: V-10 length and character set (reject), V-11 the mod-31 check character (reject;
a manual override with evidence is the caller's business), V-12 the embedded GB 11714
organisation-code check (warn: some legally issued codes fail it), V-13 region code
plausibility (warn; province level only). V-14, "registered in a GBA city", is not a
finding but a fact: :func:`gba_city`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

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

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
"""The 31 symbols; a symbol's value is its index. I, O, S, V and Z never occur."""
WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
ORG_CODE_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
LENGTH = 18

GBA_CITIES: Mapping[str, str] = {
    "4401": "Guangzhou",
    "4403": "Shenzhen",
    "4404": "Zhuhai",
    "4406": "Foshan",
    "4407": "Jiangmen",
    "4412": "Zhaoqing",
    "4413": "Huizhou",
    "4419": "Dongguan",
    "4420": "Zhongshan",
}
"""The nine mainland GBA cities by GB/T 2260 prefix (V-14)."""

_VALUE = {symbol: value for value, symbol in enumerate(ALPHABET)}
_FORMAT = re.compile(r"[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}")


def check_character(first17: str) -> str:
    """The GB 32100 check character for the first 17 symbols."""
    total = sum(_VALUE[symbol] * weight for symbol, weight in zip(first17, WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def org_code_check(body: str) -> str:
    """The GB 11714 check character for an 8-character organisation-code body.

    This table gives every letter A=10 … Z=35 (unlike GB 32100); 10 is ``X``, 11 is ``0``.
    """
    total = sum(int(ch, 36) * w for ch, w in zip(body, ORG_CODE_WEIGHTS, strict=True))
    check = 11 - total % 11
    return {10: "X", 11: "0"}.get(check, str(check))


def is_valid(value: str) -> bool:
    """Length, character set and main check (the V-10 and V-11 rejects) on a normalised code."""
    return bool(_FORMAT.fullmatch(value)) and check_character(value[:17]) == value[17]


def gba_city(value: str) -> str | None:
    """V-14: the mainland GBA city where the entity registered, from characters 3-6."""
    return GBA_CITIES.get(value[2:6]) if len(value) == LENGTH else None


def _format_findings(value: str) -> tuple[Finding, ...]:
    if len(value) != LENGTH:
        return (reject("USCC_LENGTH", f"a USCC has 18 characters, this one has {len(value)}"),)
    if _FORMAT.fullmatch(value):
        return ()
    bad = "".join(sorted({ch for ch in value if ch not in _VALUE}))
    message = (
        f"characters outside the 31-symbol set (no I, O, S, V, Z): {bad!r}"
        if bad
        else "characters 3-8 (the region code) must be digits"
    )
    suggestion = suggest_lookalikes(value, is_valid)
    if suggestion:
        message += f"; did you mean {suggestion}? (not applied)"
    return (reject("USCC_CHARSET", message, suggestion),)


def _content_findings(value: str) -> tuple[Finding, ...]:
    findings: list[Finding] = []
    check = check_character(value[:17])
    if value[17] != check:
        findings.append(reject("USCC_CHECK", f"check character should be {check}", check))
    org_check = org_code_check(value[8:16])
    if value[16] != org_check:
        message = f"embedded organisation-code check should be {org_check}"
        findings.append(warn("USCC_ORG_CODE_CHECK", message, org_check))
    region = region_problem(value[2:8])
    if region:
        findings.append(warn("USCC_REGION", region))
    return tuple(findings)


class UsccValidator(Validator):
    """Mainland company ID. The canonical value is the normalised 18-character code."""

    name = "uscc"

    @override
    def check(self, raw: str, *, region: str | None = None) -> Checked:
        value = normalise_identifier(raw)
        findings = _format_findings(value) or _content_findings(value)
        return conclude(value, findings, raw)
