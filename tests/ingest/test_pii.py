"""PII scan of unclassified contract columns (ingest.pii): every detector, positive and
negative, mixed columns, typed columns, header hints, and reasons that never echo values."""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

import pyarrow as pa
import pytest
from stdnum import luhn

from ingest.contracts import DataContract
from ingest.pii import SAMPLE_LIMIT, PiFinding, scan_column, scan_table
from ingest.validators.hkid import check_character as hkid_check
from ingest.validators.logistics import awb_check_digit as awb_check
from ingest.validators.resident_id import check_character as ric_check
from ingest.validators.uscc import ALPHABET as USCC_ALPHABET
from ingest.validators.uscc import check_character as uscc_check

SURNAMES_SIMPLIFIED = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗郑梁谢"
SURNAMES_TRADITIONAL = "王李張劉陳楊黃趙吳周徐孫馬朱胡郭何林羅鄭梁謝"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰涛明超秀霞平刚桂英华慧嘉欣"


def rng(seed: int = 7) -> random.Random:
    return random.Random(seed)


def resident_ids(n: int, seed: int = 1) -> list[str]:
    r = rng(seed)
    out = []
    for _ in range(n):
        body = (
            r.choice(["440305", "440106", "441900", "810000"])
            + f"{r.randint(1960, 2004)}{r.randint(1, 12):02d}{r.randint(1, 28):02d}"
            + f"{r.randint(0, 999):03d}"
        )
        out.append(body + ric_check(body))
    return out


def hkids(n: int, seed: int = 2) -> list[str]:
    r = rng(seed)
    out = []
    for _ in range(n):
        prefix = "".join(r.choice("ABCDEGHKMPRVYZ") for _ in range(r.choice([1, 1, 2])))
        digits = f"{r.randint(0, 999999):06d}"
        out.append(f"{prefix}{digits}({hkid_check(prefix, digits)})")
    return out


def usccs(n: int, seed: int = 3) -> list[str]:
    r = rng(seed)
    out = []
    for _ in range(n):
        body = "91" + r.choice(["440300", "440106", "441900"])
        body += "".join(r.choice(USCC_ALPHABET) for _ in range(9))
        out.append(body + uscc_check(body))
    return out


def cards(n: int, seed: int = 4) -> list[str]:
    r = rng(seed)
    out = []
    for _ in range(n):
        prefix = r.choice(["622202", "621700", "4", "5"])
        body = prefix + "".join(str(r.randint(0, 9)) for _ in range(15 - len(prefix)))
        out.append(body + luhn.calc_check_digit(body))
    return out


def cn_mobiles(n: int, seed: int = 5) -> list[str]:
    r = rng(seed)
    prefixes = ["138", "139", "135", "136", "150", "158", "159", "186", "188", "189"]
    return [f"{r.choice(prefixes)}{r.randint(0, 99999999):08d}" for _ in range(n)]


def names(n: int, seed: int = 6, traditional: bool = False) -> list[str]:
    r = rng(seed)
    surnames = SURNAMES_TRADITIONAL if traditional else SURNAMES_SIMPLIFIED
    return [r.choice(surnames) + "".join(r.sample(GIVEN, r.choice([1, 2]))) for _ in range(n)]


def scan(values: Sequence[str | None], *, region: str = "SZ", header: str = "") -> PiFinding:
    return scan_column(pa.array(list(values), pa.string()), region=region, header=header)


def assert_masked(finding: PiFinding, values: Sequence[str | None]) -> None:
    """The reason carries counts and the header, never a value or a long digit run of one."""
    for value in values:
        if value is None or len(value) < 3:
            continue
        assert value not in finding.reason
        for run in re.findall(r"[0-9]{5,}", value):
            assert run not in finding.reason


def assert_found(values: Sequence[str | None], pi: str, detector: str, **kwargs: str) -> PiFinding:
    finding = scan(values, **kwargs)
    assert (finding.pi, finding.detector) == (pi, detector), finding
    assert_masked(finding, values)
    return finding


# --- identifiers ------------------------------------------------------------------------


def test_scan_resident_ids_are_direct_identifiers() -> None:
    values = resident_ids(200)
    finding = assert_found(values, "pi_direct_id", "cn_resident_id")
    assert finding.share == 1.0
    assert finding.reason.startswith("100% of 200 values are valid mainland resident ID numbers")


def test_scan_resident_ids_with_wrong_check_characters_are_not_resident_ids() -> None:
    wrong = [v[:17] + ("0" if v[17] != "0" else "1") for v in resident_ids(100)]
    assert scan(wrong).detector != "cn_resident_id"


def test_scan_hkids_are_direct_identifiers_in_any_region() -> None:
    values = hkids(150)
    assert_found(values, "pi_direct_id", "hkid", region="HK")
    assert_found(values, "pi_direct_id", "hkid", region="SZ")  # HK staff in Shenzhen
    bare = [v.replace("(", "").replace(")", "") for v in values]
    assert_found(bare, "pi_direct_id", "hkid", region="HK")


def test_scan_hkids_with_wrong_check_characters_are_not_hkids() -> None:
    wrong = [v[:-2] + ("1" if v[-2] != "1" else "2") + ")" for v in hkids(100)]
    assert scan(wrong, region="HK").detector != "hkid"


def test_scan_macao_resident_ids_are_direct_identifiers() -> None:
    r = rng(11)
    values = [f"{r.choice('157')}{r.randint(0, 999999):06d}({r.randint(0, 9)})" for _ in range(80)]
    assert_found(values, "pi_direct_id", "mo_bir", region="MO")
    old_cards = [f"{v[0]}/{v[1:7]}/{v[8]}" for v in values]
    assert_found(old_cards, "pi_direct_id", "mo_bir", region="MO")


def test_scan_macao_ids_need_a_leading_1_5_or_7() -> None:
    r = rng(12)
    values = [f"{r.choice('2349')}{r.randint(0, 999999):06d}({r.randint(0, 9)})" for _ in range(80)]
    assert scan(values, region="MO").detector != "mo_bir"


def test_scan_company_ids_are_not_personal() -> None:
    assert_found(usccs(120), "non_pi", "uscc", region="GZ")
    brns = [f"{n:08d}" for n in rng(13).sample(range(10_000_000, 99_999_999), 200)]
    assert_found(brns, "non_pi", "hk_brn", region="HK", header="商業登記號碼")
    assert_found(brns, "non_pi", "hk_brn", region="HK", header="supplier_brn")


def test_scan_invalid_usccs_are_not_usccs() -> None:
    wrong = [v[:17] + ("0" if v[17] != "0" else "1") for v in usccs(100)]
    assert scan(wrong, region="GZ").detector != "uscc"


def test_scan_shipment_ids_are_not_personal() -> None:
    containers = ["CSQU3054383", "MSCU1234566", "TGHU9876544"] * 10
    assert_found(containers, "non_pi", "container_no", region="HK")
    serials = [f"{n:07d}" for n in rng(17).sample(range(10**7), 30)]
    airlines = ["160", "618", "180"] * 10
    awbs = [f"{p}-{s}{awb_check(s)}" for p, s in zip(airlines, serials, strict=True)]
    assert_found(awbs, "non_pi", "awb", region="HK")


# --- phones and e-mail -------------------------------------------------------------------


def test_scan_mainland_mobiles_are_direct_identifiers_even_in_hong_kong_data() -> None:
    values = cn_mobiles(300)
    assert_found(values, "pi_direct_id", "phone", region="SZ")
    assert_found(values, "pi_direct_id", "phone", region="HK")  # drivers' +86 mobiles
    spaced = [f"+86 {v[:3]} {v[3:7]} {v[7:]}" for v in values]
    assert_found(spaced, "pi_direct_id", "phone", region="MO")


def test_scan_hong_kong_phones_beat_the_brn_format_they_also_fit() -> None:
    r = rng(14)
    values = [f"{r.choice('5679')}{r.randint(0, 9_999_999):07d}" for _ in range(300)]
    finding = assert_found(values, "pi_direct_id", "phone", region="HK")
    assert finding.share >= 0.6


def test_scan_phone_header_accepts_numbers_of_another_gba_region() -> None:
    values = [f"9{n:07d}" for n in rng(15).sample(range(1_000_000, 8_000_000), 100)]
    assert scan(values, region="SZ").pi == "non_pi"  # 8 digits mean nothing in Shenzhen
    assert_found(values, "pi_direct_id", "phone", region="SZ", header="driver_tel 司機電話")


def test_scan_numbers_outside_every_numbering_plan_are_not_phones() -> None:
    values = [f"10{n:09d}" for n in rng(16).sample(range(10**8, 10**9), 100)]
    assert scan(values, region="SZ").detector not in ("phone", "mixed")


def test_scan_email_addresses_are_direct_identifiers() -> None:
    values = [f"tech.{i}@factory-{i % 7}.com.cn" for i in range(50)] + ["wong+qa@example.hk"]
    assert_found(values, "pi_direct_id", "email")


@pytest.mark.parametrize(
    "value", ["not an email", "a@b", "@example.com", "x@@example.com", "name@example"]
)
def test_scan_non_addresses_are_not_email(value: str) -> None:
    assert scan([value] * 10).detector != "email"


# --- bank cards -------------------------------------------------------------------------


def test_scan_bank_cards_are_sensitive() -> None:
    values = cards(200)
    finding = assert_found(values, "spi", "bank_card")
    assert "sensitive" in finding.reason
    grouped = [" ".join(v[i : i + 4] for i in range(0, 16, 4)) for v in values]
    assert_found(grouped, "spi", "bank_card")


def test_scan_digits_failing_luhn_or_the_issuer_digit_are_not_cards() -> None:
    values = cards(100)
    broken = [v[:-1] + str((int(v[-1]) + 1) % 10) for v in values]
    assert scan(broken).detector != "bank_card"
    other_issuer = []
    for v in values:
        body = "9" + v[1:15]
        other_issuer.append(body + luhn.calc_check_digit(body))
    assert scan(other_issuer).detector != "bank_card"


# --- names ------------------------------------------------------------------------------


def test_scan_chinese_names_are_direct_identifiers() -> None:
    assert_found(names(200), "pi_direct_id", "chinese_name")
    assert_found(names(200, traditional=True), "pi_direct_id", "chinese_name", region="HK")
    compound = ["欧阳明", "司徒嘉欣", "諸葛亮", "上官婉儿"] * 5
    assert_found(compound, "pi_direct_id", "chinese_name")


def test_scan_romanised_hong_kong_names_are_direct_identifiers() -> None:
    values = ["CHAN Tai Man", "Peter WONG Siu-ming", "LEE Ka Yan", "CHEUNG Wing Kei"] * 5
    assert_found(values, "pi_direct_id", "chinese_name", region="HK")


def test_scan_industrial_terms_starting_with_surname_characters_are_not_names() -> None:
    terms = ["高温", "白点", "黄色", "马达过热", "金属件", "石墨", "方管", "高压泵", "白色", "黄变"]
    finding = scan(terms * 10)
    assert (finding.pi, finding.detector) == ("non_pi", "none")
    english = ["Long Term", "LONG TERM", "So Far", "To Do", "Ma Wan Pier"] * 10
    assert scan(english).detector != "chinese_name"


def test_scan_name_header_lowers_the_name_threshold() -> None:
    placeholders = ["待定", "未知", "外包", "临时工", "N/A", "-", "外判", "未填", "无", "空"]
    values = names(70) + placeholders * 3
    assert scan(values).detector == "none"  # 70% names is not enough on its own
    finding = assert_found(values, "pi_direct_id", "chinese_name", header="technician 技術員")
    assert "header" in finding.reason
    assert_found(values, "pi_direct_id", "chinese_name", header="联系人")


def test_scan_name_header_also_accepts_title_case_romanisation() -> None:
    values = ["Chan Tai Man", "Wong Siu Ming", "Lee Ka Yan"] * 5
    assert scan(values, region="HK").detector != "chinese_name"
    assert_found(values, "pi_direct_id", "chinese_name", region="HK", header="driver_name")


# --- free text --------------------------------------------------------------------------

NOTES = [
    "Replaced the spindle bearing on CNC-07, vibration back to normal",
    "主轴异响，已更换轴承，试机正常",
    "Operator reported coolant leak near pump 3; tightened the fitting",
    "夜班发现温控器读数漂移，已重新校准",
    "PM done. Filters changed, belts checked, no issues found",
    "模具温度偏高，调整冷却水流量后恢复",
    "Called the vendor about the servo alarm, technician visit booked",
    "伺服报警 AL-21，复位后正常，继续观察",
    "Light curtain misaligned after cleaning, realigned and tested",
    "客户投诉外观划伤，已加强包装并通知品质部",
]


def test_scan_free_text_is_pi_other() -> None:
    finding = assert_found(NOTES * 3, "pi_other", "free_text")
    assert "names and phone numbers" in finding.reason


def test_scan_repeated_long_labels_are_not_free_text() -> None:
    labels = ["Preventive maintenance, quarterly", "Corrective maintenance, urgent"] * 50
    assert scan(labels).detector == "none"


@pytest.mark.parametrize(
    "values",
    [
        [f"2025-07-{d:02d} 08:{m:02d}:00" for d in range(1, 29) for m in (0, 15, 30, 45)],
        [f"DG-P2-MCC-{i:02d}" for i in range(100)],
        ["深圳市华强电子有限公司", "东莞市长安精密模具有限公司", "广州汽车零部件有限公司"] * 10,
    ],
    ids=["timestamps", "codes", "company-names"],
)
def test_scan_structured_strings_are_not_free_text(values: list[str]) -> None:
    assert scan(values).detector == "none"


def test_scan_notes_header_lowers_the_free_text_threshold() -> None:
    values = NOTES * 4 + ["OK"] * 60
    assert scan(values).detector == "none"
    assert_found(values, "pi_other", "free_text", header="notes 備註")


# --- mixed, nulls, sample, determinism ---------------------------------------------------


def test_scan_contact_column_of_phones_and_emails_is_mixed_direct_identifiers() -> None:
    values = cn_mobiles(50) + [f"staff{i}@example.com" for i in range(50)]
    finding = assert_found(values, "pi_direct_id", "mixed")
    assert finding.share == 1.0
    assert "phone 50%" in finding.reason and "email 50%" in finding.reason


def test_scan_mixed_column_takes_the_most_protective_class() -> None:
    values = cn_mobiles(40) + [f"staff{i}@example.com" for i in range(35)] + cards(25)
    assert_found(values, "spi", "mixed")


def test_scan_below_threshold_is_not_personal() -> None:
    values = cn_mobiles(5) + [f"LOT-{i}" for i in range(5)]
    assert scan(values).detector == "none"
    sixty = cn_mobiles(6) + [f"LOT-{i}" for i in range(4)]
    assert scan(sixty).detector == "phone"


def test_scan_ignores_nulls_and_blanks() -> None:
    values: list[str | None] = [*hkids(30), *([None] * 200), *([" "] * 50)]
    finding = assert_found(values, "pi_direct_id", "hkid", region="HK")
    assert finding.share == 1.0
    assert "of 30 values" in finding.reason


def test_scan_empty_column_suggests_nothing_personal_and_says_why() -> None:
    finding = scan([None, None, ""])
    assert (finding.pi, finding.detector, finding.share) == ("non_pi", "none", 0.0)
    assert "no values" in finding.reason


def test_scan_reads_only_the_first_sample_limit_values() -> None:
    values = [f"LOT-{i}" for i in range(SAMPLE_LIMIT)] + [f"s{i}@example.com" for i in range(9999)]
    finding = scan(values)
    assert finding.detector == "none"
    assert f"{SAMPLE_LIMIT:,} values" in finding.reason


def test_scan_is_deterministic_and_order_free() -> None:
    values = cn_mobiles(40) + hkids(40) + [f"x{i}" for i in range(20)]
    shuffled = list(values)
    rng(99).shuffle(shuffled)
    assert scan(values, region="HK") == scan(values, region="HK") == scan(shuffled, region="HK")


def test_scan_accepts_chunked_dictionary_and_non_string_arrays() -> None:
    values = hkids(20)
    chunked = pa.chunked_array([values[:10], values[10:]])
    assert scan_column(chunked, region="HK").detector == "hkid"
    encoded = pa.array(values).dictionary_encode()
    assert scan_column(encoded, region="HK").detector == "hkid"
    floats = pa.array([-12.5, 3.25, 0.0, 1e6] * 10)
    assert scan_column(floats, region="HK", kind="typed").detector == "none"


def test_scan_rejects_an_unknown_region() -> None:
    with pytest.raises(ValueError, match="unknown dataset origin"):
        scan(["x"], region="TW")


# --- typed columns ---------------------------------------------------------------------


def test_scan_typed_column_ignores_range_and_format_only_matches() -> None:
    counters = pa.array([23_456_789 + 17 * i for i in range(300)], pa.int64())
    finding = scan_column(counters, region="HK", header="kwh_import_total", kind="typed")
    assert (finding.pi, finding.detector) == ("non_pi", "none")
    assert "typed" in finding.reason
    phones = pa.array([int(v) for v in cn_mobiles(100)], pa.int64())
    assert scan_column(phones, region="SZ", kind="typed").detector == "none"
    hinted = scan_column(phones, region="SZ", header="手机号", kind="typed")
    assert (hinted.pi, hinted.detector) == ("pi_direct_id", "phone")


def test_scan_typed_column_still_finds_check_digit_identifiers() -> None:
    card_numbers = pa.array([int(v) for v in cards(50)], pa.int64())
    assert scan_column(card_numbers, region="SZ", kind="typed").pi == "spi"


# --- scan_table -------------------------------------------------------------------------


def test_scan_table_scans_exactly_the_unclassified_columns() -> None:
    contract = DataContract.model_validate(
        {
            "columns": [
                {"name": "driver_name", "source": "司機姓名"},
                {"name": "driver_id", "source": "身份證號碼", "pi": "pi_direct_id"},
                {"name": "phone", "source": "聯絡電話"},
                {"name": "gross_kg", "type": "double"},
                {"name": "etd", "type": "date"},
                {"name": "remarks", "source": "備註"},
                {"name": "consignor_brn"},
                {"name": "absent_column"},
            ]
        }
    )
    rows = 30
    table = pa.table(
        {
            "driver_name": names(rows, traditional=True),
            "driver_id": hkids(rows),
            "phone": cn_mobiles(rows),
            "gross_kg": [f"{-12.5 + i}" for i in range(rows)],
            "etd": ["11/07/2025"] * rows,
            "remarks": (NOTES * 3)[:rows],
            "consignor_brn": [f"{71234567 + i * 101}" for i in range(rows)],
        }
    )
    findings = scan_table(table, contract, region="HK")
    assert list(findings) == [
        "driver_name",
        "phone",
        "gross_kg",
        "etd",
        "remarks",
        "consignor_brn",
        "absent_column",
    ]
    got = {name: (f.pi, f.detector) for name, f in findings.items()}
    assert got == {
        "driver_name": ("pi_direct_id", "chinese_name"),
        "phone": ("pi_direct_id", "phone"),
        "gross_kg": ("non_pi", "none"),
        "etd": ("non_pi", "none"),
        "remarks": ("pi_other", "free_text"),
        "consignor_brn": ("non_pi", "hk_brn"),
        "absent_column": ("non_pi", "none"),
    }
    for name, finding in findings.items():
        if name in table.column_names:
            assert_masked(finding, table.column(name).to_pylist())
    assert findings["driver_name"].as_dict()["pi"] == "pi_direct_id"


def test_scan_table_with_every_column_classified_is_empty() -> None:
    contract = DataContract.model_validate({"columns": [{"name": "a", "pi": "non_pi"}]})
    assert scan_table(pa.table({"a": ["x"]}), contract, region="DG") == {}


# --- plates, staff IDs, Macao names, hinted notes ------------------------------------------


def test_scan_mainland_plates_are_quasi_identifiers() -> None:
    r = rng(21)
    values = [f"粤{r.choice('BSZ')}{r.randint(10000, 99999)}" for _ in range(40)]
    values += ["粤Z1234港", "粤B·D12345"]
    assert_found(values, "pi_quasi_id", "vehicle_plate", region="SZ")


def test_scan_hong_kong_plates_need_a_plate_header_because_equipment_codes_look_alike() -> None:
    plates = ["LV 1234", "RX88", "TW 5", "PK 2024", "KX 907"] * 8
    assert scan(plates, region="HK").detector != "vehicle_plate"
    assert_found(plates, "pi_quasi_id", "vehicle_plate", region="HK", header="truck_plate_hk")
    ovens = ["RF-101", "RF-102", "RF-103", "RF-105"] * 10
    assert scan(ovens, region="SZ", header="oven_id").pi == "non_pi"


def test_scan_staff_ids_are_quasi_identifiers_only_by_their_header() -> None:
    badges = ["E203117", "E203452", "E198806", "QC0412"] * 10
    assert scan(badges).pi == "non_pi"
    for header in ("operator_badge", "inspector_id 检验员工号", "員工編號"):
        assert_found(badges, "pi_quasi_id", "staff_id", header=header)


def test_scan_header_alone_does_not_outrank_what_the_values_show() -> None:
    assert_found(hkids(40), "pi_direct_id", "hkid", region="HK", header="driver_id")


def test_scan_name_header_accepts_a_macao_mix_of_chinese_and_portuguese_names() -> None:
    values = ["黎志偉", "陳嘉樂", "José Fernandes", "Ana Sousa", "何健文", "Carlos Lei"] * 10
    assert scan(values, region="MO").detector != "chinese_name"
    assert_found(values, "pi_direct_id", "chinese_name", region="MO", header="technician 技術員")


def test_scan_notes_header_counts_short_wording_as_free_text() -> None:
    values = ["首件检验"] * 30 + ["熔核直径偏小，已隔离", "虚焊，返修后复检"] * 6
    assert scan(values, region="GZ").detector == "none"
    assert_found(values, "pi_other", "free_text", region="GZ", header="remark 备注")
