"""Property tests for the identifier validators.

Valid identifiers are built with check characters computed *here*, independently of
``ingest.validators``: python-stdnum where it is authoritative (USCC main check, GB 11643
check digit, ISO 6346) and small test-side implementations written differently from the
production code elsewhere (GB 11714, HKID, AWB). The same oracles decide whether a mutated
value is still valid, so the rare checksum collisions are computed, not excused.
"""

from __future__ import annotations

import re
import string
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st
from stdnum import iso6346
from stdnum.cn import ric, uscc

from ingest.validators import VALIDATORS, Checked, get_validator, normalise_identifier

EXCEL = "EXCEL_NUMERIC_COERCION"
FAST = settings(
    max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

USCC_SYMBOLS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
ANY_SYMBOL = string.digits + string.ascii_uppercase
REGIONS = ["440101", "440106", "440115", "440300", "440305", "441900", "442000", "110105"]
RIC_REGIONS = [*REGIONS, "810000", "820000", "830000"]


# --- Independent oracles -----------------------------------------------------------------


def gb11714_check(body: str) -> str:
    """Organisation-code check: letters by alphabet position + 9 (A=10 … Z=35)."""
    values = [ord(c) - ord("A") + 10 if c.isalpha() else int(c) for c in body]
    remainder = sum(v * w for v, w in zip(values, [3, 7, 9, 10, 5, 8, 4, 2], strict=True)) % 11
    return "0123456789X0"[11 - remainder] if remainder else "0"


def uscc_valid(code: str) -> bool:
    shape = re.fullmatch(r"[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}", code)
    return bool(shape) and uscc.calc_check_digit(code[:17]) == code[17]


def ric_valid(number: str) -> bool:
    if not re.fullmatch(r"[0-9]{17}[0-9X]", number):
        return False
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    return date(1900, 1, 1) <= born <= date.today() and ric.calc_check_digit(number) == number[17]


def hkid_valid(compact: str) -> bool:
    """Whole-number form: with the check worth 0-10 and weight 1, the total is ≡ 0 mod 11."""
    match = re.fullmatch(r"([A-Z]{1,2})([0-9]{6})([0-9A])", compact)
    if match is None:
        return False
    prefix, digits, check = match.groups()
    letters = [36] * (2 - len(prefix)) + [string.ascii_uppercase.index(c) + 10 for c in prefix]
    values = [*letters, *map(int, digits), 10 if check == "A" else int(check)]
    return sum(v * w for v, w in zip(values, range(9, 0, -1), strict=True)) % 11 == 0


def hkid_single_letter_check(letter: str, digits: str) -> str:
    """DOMAIN.md's alternative form for one letter: A=1 … Z=26 with weight 8, no space term."""
    total = (string.ascii_uppercase.index(letter) + 1) * 8
    total += sum(int(d) * w for d, w in zip(digits, range(7, 1, -1), strict=True))
    return "0A987654321"[total % 11]


def container_valid(number: str) -> bool:
    shape = re.fullmatch(r"[A-Z]{3}[UJZ][0-9]{7}", number)
    return bool(shape) and iso6346.calc_check_digit(number[:10]) == number[10]


def awb_valid(number: str) -> bool:
    shape = re.fullmatch(r"[0-9]{11}", number)
    return bool(shape) and (int(number[3:10]) - int(number[10])) % 7 == 0 and number[10] < "7"


def excel_shape(value: str) -> bool:
    return value.isdigit() and len(value) == 18 and value.endswith("000")


# --- Strategies ------------------------------------------------------------------------------


@st.composite
def uscc_codes(draw: st.DrawFn, symbols: str = USCC_SYMBOLS) -> str:
    head = draw(st.sampled_from(["91", "92", "93", "11", "12", "51", "52", "Y1"]))
    body = draw(st.text(symbols, min_size=8, max_size=8))
    first17 = head + draw(st.sampled_from(REGIONS)) + body + gb11714_check(body)
    return first17 + uscc.calc_check_digit(first17)


@st.composite
def resident_ids(draw: st.DrawFn) -> str:
    born = draw(st.dates(date(1900, 1, 1), date(2024, 12, 31)))
    first17 = draw(st.sampled_from(RIC_REGIONS)) + born.strftime("%Y%m%d")
    first17 += draw(st.text(string.digits, min_size=3, max_size=3))
    return first17 + ric.calc_check_digit(first17 + "0")


@st.composite
def hkids(draw: st.DrawFn) -> str:
    """Compact form (no parentheses): letters, 6 digits, check."""
    prefix = draw(st.text(string.ascii_uppercase, min_size=1, max_size=2))
    digits = draw(st.text(string.digits, min_size=6, max_size=6))
    (check,) = [c for c in "0123456789A" if hkid_valid(prefix + digits + c)]
    return prefix + digits + check


@st.composite
def containers(draw: st.DrawFn) -> str:
    owner = draw(st.text(string.ascii_uppercase, min_size=3, max_size=3))
    first10 = (
        owner + draw(st.sampled_from("UJZ")) + draw(st.text(string.digits, min_size=6, max_size=6))
    )
    return first10 + iso6346.calc_check_digit(first10)


@st.composite
def awbs(draw: st.DrawFn) -> str:
    first10 = draw(st.text(string.digits, min_size=10, max_size=10))
    (check,) = [d for d in "0123456" if awb_valid(first10 + d)]
    return first10 + check


FAMILIES = {
    "uscc": (uscc_codes(), uscc_valid),
    "cn_resident_id": (resident_ids(), ric_valid),
    "hkid": (hkids(), hkid_valid),
    "container_no": (containers(), container_valid),
    "awb": (awbs(), awb_valid),
}


def canonical(name: str, compact: str) -> str:
    if name == "hkid":
        return f"{compact[:-1]}({compact[-1]})"
    if name == "awb":
        return f"{compact[:3]}-{compact[3:]}"
    return compact


def full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def assert_blocked_by(result: Checked, allowed: set[str]) -> None:
    assert not result.ok, result
    assert result.value is None, result
    assert {f.rule for f in result.findings if f.severity != "warn"} <= allowed, result


# --- Properties ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FAMILIES))
@FAST
@given(data=st.data())
def test_check_generated_valid_identifier_passes(name: str, data: st.DataObject) -> None:
    strategy, oracle = FAMILIES[name]
    value = data.draw(strategy)
    assert oracle(value)
    result = get_validator(name).check(value)
    assert result == Checked(canonical(name, value)), result


@pytest.mark.parametrize("name", sorted(FAMILIES))
@FAST
@given(data=st.data())
def test_check_single_substitution_matches_independent_oracle(
    name: str, data: st.DataObject
) -> None:
    strategy, oracle = FAMILIES[name]
    value = data.draw(strategy)
    position = data.draw(st.integers(0, len(value) - 1))
    replacement = data.draw(st.sampled_from(ANY_SYMBOL).filter(lambda c: c != value[position]))
    mutated = value[:position] + replacement + value[position + 1 :]
    result = get_validator(name).check(mutated)
    event("still valid per oracle" if oracle(mutated) else "invalid per oracle")
    if oracle(mutated):
        assert result == Checked(canonical(name, mutated)), (mutated, result)
    elif excel_shape(mutated):
        assert result.rules == (EXCEL,), (mutated, result)
    else:
        assert not result.ok and result.value is None, (mutated, result)


@FAST
@given(code=uscc_codes(), position=st.integers(0, 17), data=st.data())
def test_uscc_single_substitution_always_detected(
    code: str, position: int, data: st.DataObject
) -> None:
    # 31 is prime and every weight is non-zero mod 31, so the oracle can never be fooled.
    replacement = data.draw(st.sampled_from(ANY_SYMBOL).filter(lambda c: c != code[position]))
    mutated = code[:position] + replacement + code[position + 1 :]
    assert not uscc_valid(mutated)
    result = get_validator("uscc").check(mutated)
    assert_blocked_by(result, {"USCC_CHARSET", "USCC_CHECK", EXCEL})


@FAST
@given(number=resident_ids(), position=st.integers(0, 17), data=st.data())
def test_resident_id_single_substitution_always_detected(
    number: str, position: int, data: st.DataObject
) -> None:
    # 11 is prime and no weight 2^k is 0 mod 11: a changed digit always breaks the check.
    replacement = data.draw(
        st.sampled_from(string.digits + "X").filter(lambda c: c != number[position])
    )
    mutated = number[:position] + replacement + number[position + 1 :]
    assert not ric_valid(mutated)
    result = get_validator("cn_resident_id").check(mutated)
    if excel_shape(mutated):
        assert result.rules == (EXCEL,), result
    else:
        assert_blocked_by(result, {"RIC_FORMAT", "RIC_CHECK", "RIC_DATE"})
        assert {"RIC_FORMAT", "RIC_CHECK"} & set(result.rules), result


@FAST
@given(compact=hkids(), data=st.data())
def test_hkid_letter_shifted_by_eleven_is_an_undetectable_substitution(
    compact: str, data: st.DataObject
) -> None:
    # Letter values A=10 … Z=35 differ by 11 or 22 (A/L/W, B/M/X, …): the mod-11 check cannot
    # see such a substitution, and the validator must accept what the oracle accepts.
    letters = len(compact) - 7
    position = data.draw(st.integers(0, letters - 1))
    index = string.ascii_uppercase.index(compact[position])
    shifted = [i for i in (index - 22, index - 11, index + 11, index + 22) if 0 <= i < 26]
    letter = string.ascii_uppercase[data.draw(st.sampled_from(shifted))]
    mutated = compact[:position] + letter + compact[position + 1 :]
    assert hkid_valid(mutated)
    assert get_validator("hkid").check(mutated) == Checked(canonical("hkid", mutated))


ISO6346_VALUES = {c: v for v, c in enumerate("0123456789A BCDEFGHIJK LMNOPQRSTU VWXYZ") if c != " "}


@FAST
@given(number=containers(), data=st.data())
def test_container_owner_letter_shifted_by_eleven_is_an_undetectable_substitution(
    number: str, data: st.DataObject
) -> None:
    # ISO 6346 letter values (A=10, K=21, U=32, …) can differ by 11 or 22, which the mod-11
    # check cannot see; the oracle (python-stdnum) and the validator must agree it is valid.
    position = data.draw(st.integers(0, 2))
    value = ISO6346_VALUES[number[position]]
    shifted = [c for c in string.ascii_uppercase if abs(ISO6346_VALUES[c] - value) in (11, 22)]
    assume(shifted)
    letter = data.draw(st.sampled_from(shifted))
    mutated = number[:position] + letter + number[position + 1 :]
    assert container_valid(mutated)
    assert get_validator("container_no").check(mutated) == Checked(mutated)


@FAST
@given(
    letter=st.sampled_from(string.ascii_uppercase),
    digits=st.text(string.digits, min_size=6, max_size=6),
)
def test_hkid_single_letter_agrees_with_alternative_formula(letter: str, digits: str) -> None:
    check = hkid_single_letter_check(letter, digits)
    result = get_validator("hkid").check(f"{letter}{digits}({check})")
    assert result == Checked(f"{letter}{digits}({check})"), result


@pytest.mark.parametrize("name", sorted(FAMILIES))
@FAST
@given(data=st.data())
def test_check_full_width_variant_normalises_and_passes(name: str, data: st.DataObject) -> None:
    strategy, _ = FAMILIES[name]
    value = canonical(name, data.draw(strategy))
    cut = data.draw(st.integers(1, len(value) - 1))
    separator = data.draw(st.sampled_from(["\u3000", "－", "\u2212", " ", "．"]))
    variant = full_width(value[:cut]) + separator + full_width(value[cut:])
    if data.draw(st.booleans()):
        variant = variant.lower()
    assert normalise_identifier(variant) == normalise_identifier(value)
    assert get_validator(name).check(variant) == Checked(value)


@FAST
@given(number=resident_ids(), digits=st.integers(0, 9))
def test_resident_id_in_scientific_notation_is_excel_damage(number: str, digits: int) -> None:
    assume(number[-1] != "X")  # Excel keeps a value with X as text
    damaged = f"{Decimal(number):.{digits}E}"
    assert get_validator("cn_resident_id").check(damaged).rules == (EXCEL,)


@FAST
@given(number=resident_ids())
def test_resident_id_rounded_to_15_digits_is_excel_damage_unless_still_valid(number: str) -> None:
    assume(number[-1] != "X")
    damaged = str(int(Decimal(f"{Decimal(number):.14E}")))
    result = get_validator("cn_resident_id").check(damaged)
    if ric_valid(damaged):  # zero-filled digits that happen to satisfy the check: undetectable
        assert result == Checked(damaged), result
    else:
        assert result.rules == (EXCEL,), (damaged, result)


@FAST
@given(mobile=st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True), digits=st.integers(0, 5))
def test_phone_in_scientific_notation_is_excel_damage(mobile: str, digits: int) -> None:
    damaged = f"{Decimal(mobile):.{digits}E}"
    assert get_validator("phone").check(damaged, region="SZ").rules == (EXCEL,)


@pytest.mark.parametrize("name", sorted(VALIDATORS))
@FAST
@given(raw=st.text(max_size=30))
def test_check_arbitrary_text_never_raises_and_value_iff_ok(name: str, raw: str) -> None:
    result = get_validator(name).check(raw, region="HK")
    assert (result.value is not None) is result.ok
    assert all(f.severity in {"reject", "quarantine", "warn"} for f in result.findings)


@FAST
@given(raw=st.text(max_size=30))
@example(raw="A\u00b4")  # NFKC makes "A ́"; dropping the space leaves a composable pair
@example(raw="\u0390")  # upper-casing decomposes
def test_normalise_identifier_is_idempotent(raw: str) -> None:
    once = normalise_identifier(raw)
    assert normalise_identifier(once) == once
