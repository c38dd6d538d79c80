"""Every verified sample of DOMAIN.md §4 as a test case, plus the registry and API contract.

Each ``Sample`` row names the validator, the raw value, the dataset origin, whether the value
is acceptable, the rules expected to fire (all of them, in order) and the canonical value.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pytest
from stdnum import iso6346
from stdnum.cn import ric, uscc

from ingest.errors import IngestError
from ingest.validators import (
    VALIDATORS,
    Checked,
    DuplicateValidatorError,
    UnknownValidatorError,
    excel_damage,
    get_validator,
    normalise_identifier,
    register,
)
from ingest.validators.hong_kong import brn_from_cert
from ingest.validators.resident_id import ResidentIdValidator
from ingest.validators.uscc import gba_city


@dataclass(frozen=True)
class Sample:
    validator: str
    raw: str
    ok: bool
    rules: tuple[str, ...] = ()
    value: str | None = None
    expected: str | None = None  # Finding.expected of the first finding, when it matters
    region: str | None = None

    def __str__(self) -> str:
        return f"{self.validator}:{self.raw}"


def assert_checked(
    result: Checked,
    *,
    ok: bool,
    rules: tuple[str, ...] = (),
    value: str | None = None,
    expected: str | None = None,
) -> None:
    """The result has exactly these rules; the value is canonical when ok and None otherwise."""
    assert result.ok is ok, result
    assert result.rules == rules, result
    assert result.value == (value if ok else None), result
    if expected is not None:
        assert result.findings[0].expected == expected, result


S = Sample
USCC_SAMPLES = [
    S("uscc", "91440300MA5G7K3P7P", True, value="91440300MA5G7K3P7P"),  # Shenzhen
    S("uscc", "91441900MA4W2R8N7U", True, value="91441900MA4W2R8N7U"),  # Dongguan
    S("uscc", "91440101MA9Y1T6H6L", True, value="91440101MA9Y1T6H6L"),  # Guangzhou
    S("uscc", "91440300MA5G7K3P7Q", False, ("USCC_CHECK",), expected="P"),
    S("uscc", "91440300MAOG7K3P7P", False, ("USCC_CHARSET",)),
    S("uscc", "91440300MA5G7K3P7", False, ("USCC_LENGTH",)),
    S(
        "uscc",
        "91440300MA5G7K3P02",
        True,
        ("USCC_ORG_CODE_CHECK",),
        value="91440300MA5G7K3P02",
        expected="7",
    ),
]
RIC_SAMPLES = [
    S("cn_resident_id", "440305199003071236", True, value="440305199003071236"),
    S("cn_resident_id", "441900199211200460", True, value="441900199211200460"),
    S("cn_resident_id", "44010620010815002X", True, value="44010620010815002X"),
    S("cn_resident_id", "440305199003071237", False, ("RIC_CHECK",), expected="6"),
    S("cn_resident_id", "440305199002301239", False, ("RIC_DATE",)),
    S("cn_resident_id", "44010620010815002x", True, value="44010620010815002X"),
    S("cn_resident_id", "４４０１０６２００１０８１５００２Ｘ", True, value="44010620010815002X"),
    S("cn_resident_id", "441900198511200468", True, value="441900198511200468"),
    S("cn_resident_id", "810000199205150312", True, value="810000199205150312"),
    S("cn_resident_id", "820000198802290425", True, value="820000198802290425"),
    S(
        "cn_resident_id",
        "440305900307123",
        True,
        ("LEGACY_15",),
        value="440305199003071236",
        expected="440305199003071236",
    ),
]
HKID_SAMPLES = [
    S("hkid", "A123456(3)", True, value="A123456(3)"),
    S("hkid", "K254176(9)", True, value="K254176(9)"),
    S("hkid", "XA123456(8)", True, value="XA123456(8)"),
    S("hkid", "C100007(A)", True, value="C100007(A)"),
    S("hkid", "Z683003(0)", True, value="Z683003(0)"),
    S("hkid", "K254176(0)", False, ("HKID_CHECK",), expected="9"),
    S("hkid", "K254176", False, ("HKID_FORMAT",)),
    S("hkid", "ｋ２５４１７６（９）", True, value="K254176(9)"),
]
BUSINESS_SAMPLES = [
    S("mo_bir", "1234567(8)", True, value="1234567(8)"),
    S("mo_bir", "5123456(7)", True, value="5123456(7)"),
    S("mo_bir", "3234567(8)", False, ("MO_BIR_FORMAT",)),
    S("hk_brn", "71234567", True, value="71234567"),
    S("hk_brn", "7123456", False, ("HK_BRN_OLD_CR_NO",)),
    S("hk_br_cert_no", "71234567-000-07-25-3", True, value="71234567-000-07-25-3"),
    S("mo_tin", "81234567", True, value="81234567"),
]
LOGISTICS_SAMPLES = [
    S("container_no", "CSQU3054383", True, value="CSQU3054383"),
    S("container_no", "GBAU1234566", True, value="GBAU1234566"),
    S("container_no", "GBAU1234567", False, ("CONTAINER_CHECK",), expected="6"),
    S("awb", "160-12345675", True, value="160-12345675"),
    S("awb", "160-12345676", False, ("AWB_CHECK",), expected="5"),
]
PHONE_SAMPLES = [
    S("phone", "+86 131 2345 6789", True, value="+8613123456789", region="SZ"),
    S("phone", "+86 20 8123 4567", True, value="+862081234567", region="GZ"),
    S("phone", "0755-2345 6789", True, value="+8675523456789", region="SZ"),
    S("phone", "+86 769 2234 5678", True, value="+8676922345678", region="DG"),
    S("phone", "+86 120 1234 5678", False, ("PHONE_INVALID",), region="SZ"),
    S("phone", "+86 131 2345 678", False, ("PHONE_INVALID",), region="SZ"),
    S("phone", "0755-234 5678", False, ("PHONE_CN_LOCAL_LENGTH",), region="SZ"),
    S("phone", "+852 2123 4567", True, value="+85221234567", region="HK"),
    S("phone", "+852 5123 4567", True, value="+85251234567", region="HK"),
    S("phone", "+852 1234 5678", False, ("PHONE_INVALID",), region="HK"),
    S("phone", "+853 2821 2345", True, value="+85328212345", region="MO"),
    S("phone", "+853 6612 3456", True, value="+85366123456", region="MO"),
    S("phone", "+853 3123 4567", False, ("PHONE_INVALID",), region="MO"),
]
DOMAIN_SAMPLES = (
    USCC_SAMPLES + RIC_SAMPLES + HKID_SAMPLES + BUSINESS_SAMPLES + LOGISTICS_SAMPLES + PHONE_SAMPLES
)


@pytest.mark.parametrize("sample", DOMAIN_SAMPLES, ids=str)
def test_check_domain_sample_gives_documented_result(sample: Sample) -> None:
    result = get_validator(sample.validator).check(sample.raw, region=sample.region)
    assert_checked(
        result, ok=sample.ok, rules=sample.rules, value=sample.value, expected=sample.expected
    )


@pytest.mark.parametrize("sample", USCC_SAMPLES, ids=str)
def test_uscc_sample_agrees_with_stdnum(sample: Sample) -> None:
    assert uscc.is_valid(sample.raw) is sample.ok


@pytest.mark.parametrize("sample", RIC_SAMPLES, ids=str)
def test_resident_id_sample_check_digit_agrees_with_stdnum(sample: Sample) -> None:
    # stdnum's check digit only: its validate() applies a region table DOMAIN.md §1.2 rejects.
    number = sample.value or normalise_identifier(sample.raw)
    ours = get_validator("cn_resident_id").check(number)
    assert (ric.calc_check_digit(number) == number[-1]) is ("RIC_CHECK" not in ours.rules)


@pytest.mark.parametrize("sample", LOGISTICS_SAMPLES[:3], ids=str)
def test_container_sample_agrees_with_stdnum(sample: Sample) -> None:
    assert iso6346.is_valid(sample.raw) is sample.ok


# --- Further behaviour the §2 rule table asks for ---------------------------------------


def test_hk_brn_accepts_br_cert_no_with_warning_and_keeps_brn() -> None:
    result = get_validator("hk_brn").check("71234567-000-07-25-3")
    assert_checked(result, ok=True, rules=("HK_BR_CERT_NO",), value="71234567")
    assert brn_from_cert("71234567 000 07 25 3") == "71234567"


@pytest.mark.parametrize(
    ("validator", "raw", "rules"),
    [
        ("hk_brn", "7123456A", ("HK_BRN_FORMAT",)),
        ("hk_br_cert_no", "71234567-000-7-25-3", ("HK_BR_CERT_FORMAT",)),
        ("mo_tin", "51234567", ("MO_TIN_FORMAT",)),
        ("uscc", "914403OOMA5G7K3P7P", ("USCC_CHARSET",)),
        ("uscc", "91440300MA5G7K3P7PX", ("USCC_LENGTH",)),
        ("container_no", "CSQX3054383", ("CONTAINER_FORMAT",)),
        ("awb", "160-1234567", ("AWB_FORMAT",)),
        ("cn_resident_id", "44030519900307123", ("RIC_FORMAT",)),
        ("phone", "+86 20 8123 45678", ("PHONE_CN_LOCAL_LENGTH",)),
        ("phone", "020 8123 4567 ext. 12", ("PHONE_EXTENSION",)),
    ],
)
def test_check_reports_rule_for_malformed_value(
    validator: str, raw: str, rules: tuple[str, ...]
) -> None:
    assert get_validator(validator).check(raw, region="GZ").rules == rules


@pytest.mark.parametrize(
    ("validator", "raw", "rule", "severity"),
    [
        ("uscc", "91440300MA5G7K3P02", "USCC_ORG_CODE_CHECK", "warn"),  # V-12
        ("cn_resident_id", "440305900307123", "LEGACY_15", "warn"),  # V-24
        ("hk_br_cert_no", "71234567", "HK_BR_CERT_FORMAT", "warn"),  # V-51
        ("mo_tin", "1234567(8)", "MO_TIN_FORMAT", "warn"),  # V-55
        ("phone", "+86 120 1234 5678", "PHONE_INVALID", "quarantine"),  # V-60
        ("phone", "0755-234 5678", "PHONE_CN_LOCAL_LENGTH", "quarantine"),  # V-61
        ("hkid", "K254176(0)", "HKID_CHECK", "reject"),  # V-31
        ("mo_bir", "3234567(8)", "MO_BIR_FORMAT", "reject"),  # V-40
        ("awb", "160-12345676", "AWB_CHECK", "reject"),  # V-71
    ],
)
def test_finding_severity_matches_domain_rule_table(
    validator: str, raw: str, rule: str, severity: str
) -> None:
    (finding,) = get_validator(validator).check(raw, region="SZ").findings
    assert (finding.rule, finding.severity) == (rule, severity)


def test_uscc_lookalike_letters_are_suggested_never_applied() -> None:
    result = get_validator("uscc").check("914403OOMA5G7K3P7P")
    assert_checked(result, ok=False, rules=("USCC_CHARSET",), expected="91440300MA5G7K3P7P")


def test_resident_id_region_outside_gb2260_warns_only() -> None:
    first17 = "00030519900307123"  # '00' is no GB/T 2260 province
    number = first17 + ric.calc_check_digit(first17 + "0")
    result = get_validator("cn_resident_id").check(number)
    assert_checked(result, ok=True, rules=("RIC_REGION",), value=number)


def test_resident_id_foreign_permanent_resident_skips_region_rule() -> None:
    first17 = "91015619900307123"  # 9 + province 10 + nationality 156 (layout unverified)
    number = first17 + ric.calc_check_digit(first17 + "0")
    assert_checked(get_validator("cn_resident_id").check(number), ok=True, value=number)


def test_resident_id_birth_date_after_today_rejected() -> None:
    validator = ResidentIdValidator(today=lambda: date(2001, 8, 14))
    result = validator.check("44010620010815002X")
    assert_checked(result, ok=False, rules=("RIC_DATE",))


def test_uscc_gba_city_reads_registration_region() -> None:
    assert gba_city("91441900MA4W2R8N7U") == "Dongguan"
    assert gba_city("91110000600037341L") is None


@pytest.mark.parametrize(
    ("validator", "raw", "region"),
    [
        ("cn_resident_id", "4.40305E+17", None),
        ("cn_resident_id", "440305199003071000", None),
        ("uscc", "9.14403E+17", None),
        ("phone", "1.31235E+10", "SZ"),
        ("phone", "13123456789.0", "GZ"),
        ("mo_tin", "1234567", "MO"),
        ("awb", "1612345675", None),
    ],
)
def test_check_excel_damaged_value_quarantined(
    validator: str, raw: str, region: str | None
) -> None:
    result = get_validator(validator).check(raw, region=region)
    assert_checked(result, ok=False, rules=("EXCEL_NUMERIC_COERCION",))
    assert result.findings[0].severity == "quarantine"


def test_excel_damage_recognises_only_excel_shapes() -> None:
    assert excel_damage("4.40305E+17")
    assert excel_damage("４.４０３０５Ｅ＋１７")
    assert excel_damage("440305199003071000")
    assert not excel_damage("440305199003071236")
    assert not excel_damage("91440300MA5G7K3P7P")
    assert not excel_damage("9144030012345678E1")  # a USCC shape, not Excel's E+nn


def test_normalise_identifier_folds_width_separators_and_case() -> None:
    assert normalise_identifier("ｋ２５４１７６（９）") == "K254176(9)"
    assert normalise_identifier(" 160\u221212345675 ") == "16012345675"
    assert normalise_identifier("0755－2345.6789\u3000") == "075523456789"


# --- Registry -----------------------------------------------------------------------------


def test_validators_registry_lists_every_family() -> None:
    assert set(VALIDATORS) >= {
        "uscc",
        "cn_resident_id",
        "hkid",
        "hk_brn",
        "mo_bir",
        "mo_tin",
        "phone",
        "container_no",
        "awb",
    }
    assert all(VALIDATORS[name].name == name for name in VALIDATORS)


def test_get_validator_unknown_name_lists_registered_names() -> None:
    with pytest.raises(KeyError) as caught:
        get_validator("usci")
    error = caught.value
    assert isinstance(error, UnknownValidatorError)
    assert isinstance(error, IngestError)
    assert error.attrs() == {"name": "usci", "available": sorted(VALIDATORS)}
    assert "uscc" in str(error)


def test_register_same_name_twice_refused_unless_replacing() -> None:
    with pytest.raises(DuplicateValidatorError):
        register(get_validator("hkid"))
    assert register(get_validator("hkid"), replace=True) is get_validator("hkid")


def test_phone_unknown_origin_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown dataset origin"):
        get_validator("phone").check("+852 2123 4567", region="TW")
