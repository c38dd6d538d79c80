"""The identifier-validator plug-in interface and the pieces every validator shares.

A validator turns one raw cell into a :class:`Checked`: the canonical value (or ``None``
when the value is not acceptable) plus zero or more :class:`Finding` objects, each naming
the rule that fired, its severity and the expected value. Findings are data (STYLE E6):
the caller adds file, row and column and decides how strict to be.

Every validator first applies :func:`normalise_identifier` (DOMAIN.md §1.0, rule V-01).
Look-alike characters (O/0, I/1, S/5, Z/2) are never corrected silently; a validator may
*suggest* a correction in ``Finding.expected``. A value that failed because Excel turned it
into a number is reported as ``EXCEL_NUMERIC_COERCION`` (V-02, quarantine) instead of as a
format or check-digit failure (see :func:`excel_damage` and :func:`blame_excel`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

Severity = Literal["reject", "quarantine", "warn"]
"""Reject: refused at ingest. Quarantine: held for human review. Warn: accepted, flagged."""

BLOCKING: frozenset[Severity] = frozenset({"reject", "quarantine"})

EXCEL_NUMERIC_COERCION = "EXCEL_NUMERIC_COERCION"

ORIGIN_COUNTRY: Mapping[str, str] = {
    "GZ": "CN",
    "SZ": "CN",
    "DG": "CN",
    "CN": "CN",
    "HK": "HK",
    "MO": "MO",
}
"""Dataset origin (partner region) → ISO 3166 region used e.g. as the phone default region."""

# Hyphen look-alikes that NFKC leaves alone (U+2212 MINUS SIGN is named in DOMAIN.md §3.6).
_DASHES = str.maketrans(dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212", "-"))
_SEPARATORS = frozenset("-.")

_SCIENTIFIC = re.compile(r"[0-9]+(?:\.[0-9]+)?E[+-][0-9]+", re.IGNORECASE)
_FLOAT_SUFFIX = re.compile(r"[0-9]{6,}\.0+")
_EXCEL_DIGITS = 15  # Excel keeps 15 significant digits and zero-fills the rest

LOOKALIKE_DIGITS = str.maketrans({"O": "0", "I": "1", "S": "5", "Z": "2"})
"""Letters commonly typed or OCR'd for digits (DOMAIN.md §1.0 step 3). Suggest only."""


def fold(raw: str) -> str:
    """NFKC, hyphen look-alikes to ``-``, and no whitespace or invisible format characters."""
    text = unicodedata.normalize("NFKC", raw).translate(_DASHES)
    return "".join(ch for ch in text if not ch.isspace() and unicodedata.category(ch) != "Cf")


def normalise_identifier(raw: str) -> str:
    """V-01: NFKC, drop spaces, ``-`` and ``.`` (U+2212 and other dashes count as ``-``),
    upper-case. ``"ｋ２５４１７６（９）"`` becomes ``"K254176(9)"``."""
    text = raw
    # Removing a space can leave a base letter next to a combining mark that NFKC then
    # composes ("A´" → "A ́" → "Á"), and upper-casing can decompose ("ΐ"), so fold until
    # nothing changes; two rounds settle every input seen, four bound the loop.
    for _ in range(4):
        folded = "".join(ch for ch in fold(text) if ch not in _SEPARATORS).upper()
        if folded == text:
            break
        text = folded
    return text


def excel_damage(raw: str) -> bool:
    """V-02: does *raw* look like a number that went through Excel (or a float column)?

    True for scientific notation (``4.40305E+17``), a float rendering (``13123456789.0``) and
    a digit string longer than 15 digits whose tail past digit 15 is all zeros
    (``440305199003071000``). The last form is only damage if the value also fails its own
    check, so validators ask this question only about values that already failed.
    """
    text = fold(raw)
    if _SCIENTIFIC.fullmatch(text) or _FLOAT_SUFFIX.fullmatch(text):
        return True
    return (
        text.isascii()
        and text.isdigit()
        and len(text) > _EXCEL_DIGITS
        and set(text[_EXCEL_DIGITS:]) == {"0"}
    )


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule that fired on one value. ``expected`` is the value or character the rule
    wanted (a check character, a converted number, a suggested correction) when known."""

    severity: Severity
    rule: str
    message: str
    expected: str | None = None


@dataclass(frozen=True, slots=True)
class Checked:
    """The outcome of checking one value.

    ``value`` is the canonical form (E.164 for phones, the 18-digit number for a converted
    legacy RIC, ...) and is ``None`` exactly when the value must not be loaded as is.
    """

    value: str | None
    findings: tuple[Finding, ...] = ()

    @property
    def ok(self) -> bool:
        """No reject or quarantine finding (warnings allowed)."""
        return not any(f.severity in BLOCKING for f in self.findings)

    @property
    def rules(self) -> tuple[str, ...]:
        """The rule names that fired, in order."""
        return tuple(f.rule for f in self.findings)


class Validator(Protocol):
    """One identifier family. ``region`` is the dataset's origin (GZ/SZ/DG/HK/MO)."""

    name: str

    def check(self, raw: str, *, region: str | None = None) -> Checked:
        """Normalise and validate *raw*; never raises for bad data."""
        ...


def reject(rule: str, message: str, expected: str | None = None) -> Finding:
    return Finding("reject", rule, message, expected)


def quarantine(rule: str, message: str, expected: str | None = None) -> Finding:
    return Finding("quarantine", rule, message, expected)


def warn(rule: str, message: str, expected: str | None = None) -> Finding:
    return Finding("warn", rule, message, expected)


def excel_finding(expected: str | None = None) -> Finding:
    return quarantine(
        EXCEL_NUMERIC_COERCION,
        "the value looks like a number damaged by Excel (scientific notation, lost digits "
        "or a lost leading zero); ask the partner to re-export the column as text",
        expected,
    )


def blame_excel(raw: str, findings: tuple[Finding, ...]) -> tuple[Finding, ...]:
    """Replace blocking findings by one ``EXCEL_NUMERIC_COERCION`` when *raw* shows Excel
    damage: a rebuilt value would be a guess, so the row goes to a human instead."""
    if any(f.severity in BLOCKING for f in findings) and excel_damage(raw):
        return (excel_finding(),)
    return findings


def conclude(value: str, findings: tuple[Finding, ...], raw: str) -> Checked:
    """The common ending of ``check``: blame Excel where it fits, drop the value if blocked."""
    findings = blame_excel(raw, findings)
    blocked = any(f.severity in BLOCKING for f in findings)
    return Checked(None if blocked else value, findings)


def suggest_lookalikes(value: str, accept: Callable[[str], bool]) -> str | None:
    """The value with look-alike letters read as digits, if that makes it valid; else None."""
    candidate = value.translate(LOOKALIKE_DIGITS)
    return candidate if candidate != value and accept(candidate) else None


def default_country(region: str | None) -> str | None:
    """ISO region for a dataset origin; ``None`` stays ``None``; unknown origins raise."""
    if region is None:
        return None
    try:
        return ORIGIN_COUNTRY[region.upper()]
    except KeyError:
        known = ", ".join(sorted(ORIGIN_COUNTRY))
        raise ValueError(f"unknown dataset origin {region!r}; use one of: {known}") from None


# GB/T 2260 province-level prefixes (first two digits of a region code), shared by the USCC
# (V-13) and RIC (V-23) region warnings. Only the province level is checked: county codes
# change every year, and a full table would need its own update process.
GB2260_PROVINCES: Mapping[str, str] = {
    "11": "Beijing", "12": "Tianjin", "13": "Hebei", "14": "Shanxi", "15": "Inner Mongolia",
    "21": "Liaoning", "22": "Jilin", "23": "Heilongjiang",
    "31": "Shanghai", "32": "Jiangsu", "33": "Zhejiang", "34": "Anhui", "35": "Fujian",
    "36": "Jiangxi", "37": "Shandong",
    "41": "Henan", "42": "Hubei", "43": "Hunan", "44": "Guangdong", "45": "Guangxi",
    "46": "Hainan",
    "50": "Chongqing", "51": "Sichuan", "52": "Guizhou", "53": "Yunnan", "54": "Tibet",
    "61": "Shaanxi", "62": "Gansu", "63": "Qinghai", "64": "Ningxia", "65": "Xinjiang",
    "71": "Taiwan",
}  # fmt: skip
RESIDENCE_PERMIT_REGIONS: Mapping[str, str] = {
    "810000": "Hong Kong",
    "820000": "Macao",
    "830000": "Taiwan",
}
"""Region codes of the Residence Permits for HK, Macao and Taiwan residents (§1.2)."""


def region_problem(code: str) -> str | None:
    """Why a 6-digit GB/T 2260 region code looks wrong, or None if it looks plausible."""
    if code in RESIDENCE_PERMIT_REGIONS:
        return None
    if code[:2] in ("81", "82", "83"):
        return f"region code {code} is not one of 810000, 820000, 830000"
    if code[:2] not in GB2260_PROVINCES:
        return f"region code {code} does not start with a GB/T 2260 province code"
    return None
