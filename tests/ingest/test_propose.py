"""ingest.propose: contracts proposed from generated per-region samples.

Identifiers are built here with check characters from python-stdnum (USCC, resident ID,
ISO 6346) and a test-side HKID rule, never with ``ingest.validators``. Each region's
sample is written the way its partners write (DOMAIN.md §3): GBK-style simplified
headers, ``1,234.50`` and ISO dates in Guangdong; traditional headers, ``HK$1,200.50``
and day-first dates in Hong Kong; ``MOP 1.234,50`` in Macao.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
import string
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import phonenumbers
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stdnum import iso6346
from stdnum.cn import ric, uscc

from ingest.contracts import COLUMN_NAME, ColumnContract, DataContract
from ingest.propose import Proposal, column_names, propose_contract

ROWS = 300
FAST = settings(
    max_examples=80, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

# --- identifiers, computed independently of ingest.validators --------------------------------

USCC_SYMBOLS = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def make_uscc(rng: random.Random, region_code: str) -> str:
    body = "91" + region_code + "".join(rng.choices(USCC_SYMBOLS, k=9))
    return body + uscc.calc_check_digit(body)


def make_ric(rng: random.Random) -> str:
    born = dt.date(1960, 1, 1) + dt.timedelta(days=rng.randrange(20_000))
    body = "440305" + born.strftime("%Y%m%d") + f"{rng.randrange(1000):03d}"
    return body + ric.calc_check_digit(body + "0")  # stdnum drops the last character


def make_hkid(rng: random.Random) -> str:
    letter = rng.choice(string.ascii_uppercase)
    digits = "".join(rng.choices(string.digits, k=6))
    weighted = sum(int(d) * w for d, w in zip(digits, range(7, 1, -1), strict=True))
    total = 36 * 9 + (ord(letter) - 55) * 8 + weighted
    check = (11 - total % 11) % 11
    return f"{letter}{digits}({'A' if check == 10 else check})"


def make_container(rng: random.Random) -> str:
    body = rng.choice(["CSQ", "OOL", "MSC", "GBA"]) + "U" + "".join(rng.choices(string.digits, k=6))
    return body + iso6346.calc_check_digit(body)


def make_phone(rng: random.Random, template: str) -> str:
    """A number libphonenumber (the authority, DOMAIN.md §1.6) calls valid; each ``#`` of
    *template* is a random digit."""
    while True:
        text = "".join(str(rng.randrange(10)) if ch == "#" else ch for ch in template)
        if phonenumbers.is_valid_number(phonenumbers.parse(text)):
            return text


def money(value: float, thousands: str, decimal: str) -> str:
    return f"{value:,.2f}".replace(",", "\0").replace(".", decimal).replace("\0", thousands)


def cn_numerals(day: dt.date) -> str:
    digits = "〇一二三四五六七八九"

    def small(n: int) -> str:
        tens, units = divmod(n, 10)
        return (
            (digits[tens] if tens > 1 else "")
            + ("十" if tens else "")
            + (digits[units] if units else "")
        )

    return (
        "".join(digits[int(c)] for c in str(day.year)) + f"年{small(day.month)}月{small(day.day)}日"
    )


def some_day(rng: random.Random) -> dt.date:
    return dt.date(2024, 1, 1) + dt.timedelta(days=rng.randrange(700))


def remark(rng: random.Random) -> str:
    return rng.choice(["", "", "正常", "复检", "OK", f"批次 {rng.randrange(10_000)}"])


# --- samples per region ----------------------------------------------------------------------

Sample = tuple[list[str], list[list[str]], DataContract]
"""Headers, rows and the contract the proposal must equal."""


def mainland_sample(region: str, rows: int = ROWS) -> Sample:
    """Guangzhou/Shenzhen/Dongguan factory data; each city writes timestamps its own way."""
    rng = random.Random(f"mainland-{region}")
    area = {"GZ": "440106", "SZ": "440305", "DG": "441900"}[region]
    companies = [make_uscc(rng, area) for _ in range(5)]
    hs_codes = [f"0{rng.randrange(10**8, 10**9)}" for _ in range(20)]
    stamp_format = {
        "GZ": "%Y-%m-%d %H:%M:%S",
        "SZ": "%Y-%m-%dT%H:%M:%S%z",
        "DG": "%Y/%m/%d %H:%M",
    }[region]
    headers = ["设备编号", "统一社会信用代码", "城市", "日期", "金额", "数量", "合格",
               "联系电话", "身份证号", "备注", "时间", "商品编码", "签约日期"]  # fmt: skip
    data = []
    for i in range(rows):
        day = some_day(rng)
        moment = dt.datetime.combine(day, dt.time(rng.randrange(24), rng.randrange(60)))
        moment = moment.replace(tzinfo=dt.timezone(dt.timedelta(hours=8)))
        signed = cn_numerals(day) if i % 2 else f"{day.year}年{day.month}月{day.day}日"
        data.append([
            f"{region}-{i:05d}",
            rng.choice(companies),
            rng.choice(["广州市", "深圳市", "东莞市"]),
            day.isoformat(),
            money(rng.uniform(0, 99_999), ",", "."),
            str(rng.randint(1, 5000)),
            rng.choice(["是", "否"]),
            make_phone(rng, "+86 13# #### ####"),
            make_ric(rng),
            remark(rng),
            moment.strftime(stamp_format).replace("+0800", "+08:00"),
            rng.choice(hs_codes),
            signed,
        ])  # fmt: skip
    stamp_column = "%Y-%m-%dT%H:%M:%S%z" if region == "SZ" else stamp_format
    contract = DataContract(
        columns=[
            ColumnContract(name="she_bei_bian_hao", source="设备编号", nullable=False),
            ColumnContract(name="tong_yi_she_hui_xin_yong_dai_ma", source="统一社会信用代码",
                           nullable=False, validator="uscc"),
            ColumnContract(name="cheng_shi", source="城市", nullable=False,
                           allowed=["东莞市", "广州市", "深圳市"]),
            ColumnContract(name="ri_qi", source="日期", type="date", nullable=False,
                           format=["%Y-%m-%d"]),
            ColumnContract(name="jin_e", source="金额", type="double", nullable=False,
                           thousands=","),
            ColumnContract(name="shu_liang", source="数量", type="integer", nullable=False),
            ColumnContract(name="he_ge", source="合格", type="boolean", nullable=False),
            ColumnContract(name="lian_xi_dian_hua", source="联系电话", nullable=False,
                           validator="phone"),
            ColumnContract(name="shen_fen_zheng_hao", source="身份证号", nullable=False,
                           validator="cn_resident_id"),
            ColumnContract(name="bei_zhu", source="备注"),
            ColumnContract(name="shi_jian", source="时间", type="timestamp", nullable=False,
                           format=[stamp_column]),
            ColumnContract(name="shang_pin_bian_ma", source="商品编码", nullable=False),
            ColumnContract(name="qian_yue_ri_qi", source="签约日期", type="date",
                           nullable=False, format=["%Y年%m月%d日"]),
        ],
        primary_key=["she_bei_bian_hao"],
    )  # fmt: skip
    return headers, data, contract


def hong_kong_sample(rows: int = ROWS) -> Sample:
    rng = random.Random("hong-kong")
    brns = [f"{rng.randrange(10**7, 10**8)}" for _ in range(10)]
    containers = [make_container(rng) for _ in range(30)]
    headers = ["訂單編號", "香港身份證號碼", "商業登記號碼", "日期", "金額", "電話",
               "貨櫃號碼", "狀態", "Remarks"]  # fmt: skip
    data = []
    for i in range(rows):
        day = some_day(rng)
        data.append([
            f"HK{i:06d}",
            make_hkid(rng),
            rng.choice(brns),
            f"{day.day}/{day.month}/{day.year}",
            "HK$" + money(rng.uniform(0, 99_999), ",", "."),
            make_phone(rng, "+852 5### ####"),
            rng.choice(containers),
            rng.choice(["已完成", "運輸中", "待清關"]),
            rng.choice(["", "urgent", "fragile", f"ref {rng.randrange(10**5)}"]),
        ])  # fmt: skip
    contract = DataContract(
        columns=[
            ColumnContract(name="ding_dan_bian_hao", source="訂單編號", nullable=False),
            ColumnContract(name="xiang_gang_shen_fen_zheng_hao_ma", source="香港身份證號碼",
                           nullable=False, validator="hkid"),
            ColumnContract(name="shang_ye_deng_ji_hao_ma", source="商業登記號碼",
                           nullable=False, validator="hk_brn"),
            ColumnContract(name="ri_qi", source="日期", type="date", nullable=False,
                           format=["%d/%m/%Y"]),
            ColumnContract(name="jin_e", source="金額", type="double", nullable=False,
                           thousands=",", currency="HK$"),
            ColumnContract(name="dian_hua", source="電話", nullable=False, validator="phone"),
            ColumnContract(name="huo_gui_hao_ma", source="貨櫃號碼", nullable=False,
                           validator="container_no"),
            ColumnContract(name="zhuang_tai", source="狀態", nullable=False,
                           allowed=["已完成", "待清關", "運輸中"]),
            ColumnContract(name="remarks", source="Remarks"),
        ],
        primary_key=["ding_dan_bian_hao"],
    )  # fmt: skip
    return headers, data, contract


def macao_sample(rows: int = ROWS) -> Sample:
    rng = random.Random("macao")
    tins = [f"8{rng.randrange(10**6, 10**7)}" for _ in range(8)]
    headers = ["編號", "金額", "日期", "身份證號碼", "納稅人編號", "電話", "重量"]
    data = []
    for i in range(rows):
        day = some_day(rng)
        bir = f"{rng.choice('157')}{rng.randrange(10**6):06d}({rng.randrange(10)})"
        data.append([
            f"MO-{i}",
            "MOP " + money(rng.uniform(0, 99_999), ".", ","),
            f"{day.day:02d}/{day.month:02d}/{day.year}",
            bir,
            rng.choice(tins),
            make_phone(rng, "+853 66## ####"),
            f"{rng.uniform(0, 500):.1f}".replace(".", ","),
        ])  # fmt: skip
    contract = DataContract(
        columns=[
            ColumnContract(name="bian_hao", source="編號", nullable=False),
            ColumnContract(name="jin_e", source="金額", type="double", nullable=False,
                           thousands=".", decimal=",", currency="MOP"),
            ColumnContract(name="ri_qi", source="日期", type="date", nullable=False,
                           format=["%d/%m/%Y"]),
            ColumnContract(name="shen_fen_zheng_hao_ma", source="身份證號碼", nullable=False,
                           validator="mo_bir"),
            ColumnContract(name="na_shui_ren_bian_hao", source="納稅人編號", nullable=False,
                           validator="mo_tin"),
            ColumnContract(name="dian_hua", source="電話", nullable=False, validator="phone"),
            ColumnContract(name="zhong_liang", source="重量", type="double", nullable=False,
                           decimal=","),
        ],
        primary_key=["bian_hao"],
    )  # fmt: skip
    return headers, data, contract


SAMPLES: dict[str, Callable[[], Sample]] = {
    "GZ": lambda: mainland_sample("GZ"),
    "SZ": lambda: mainland_sample("SZ"),
    "DG": lambda: mainland_sample("DG"),
    "HK": hong_kong_sample,
    "MO": macao_sample,
}


def table(headers: list[str], rows: Sequence[Sequence[str | None]]) -> pa.Table:
    columns = [pa.array([row[i] for row in rows], pa.string()) for i in range(len(headers))]
    return pa.Table.from_arrays(columns, names=[f"c{i}" for i in range(len(headers))])


def propose(
    headers: list[str], rows: Sequence[Sequence[str | None]], region: str = "GZ"
) -> Proposal:
    return propose_contract(headers, table(headers, rows), region=region)


def one_column(values: list[str], header: str = "值", region: str = "GZ") -> ColumnContract:
    return propose([header], [[v] for v in values], region).contract.columns[0]


# --- whole samples -----------------------------------------------------------------------


@pytest.mark.parametrize("region", list(SAMPLES))
def test_proposal_per_region(region: str) -> None:
    headers, rows, expected = SAMPLES[region]()
    proposal = propose(headers, rows, region)
    for got, want in zip(proposal.contract.columns, expected.columns, strict=True):
        assert got == want, proposal.notes[want.name]
    assert proposal.contract == expected
    assert list(proposal.notes) == [c.name for c in expected.columns]
    assert all(proposal.notes.values())


def test_notes_say_why() -> None:
    headers, rows, _ = macao_sample()
    notes = propose(headers, rows, "MO").notes
    assert notes["jin_e"] == [
        "name 'jin_e': pinyin of header '金額'",
        "not nullable: none of the 300 sample values is empty",
        "double (thousands '.', decimal ',', currency MOP): 300 of 300 values (100%) parse",
    ]
    assert "date %d/%m/%Y: 300 of 300 values (100%) parse" in notes["ri_qi"]
    assert (
        "string, validator mo_tin: 300 of 300 values (100%) pass and the header names it"
        in (notes["na_shui_ren_bian_hao"])
    )
    assert "proposed as the primary key" in notes["bian_hao"]
    assert (
        "never proposed as a key: mo_bir values are personal data"
        in (notes["shen_fen_zheng_hao_ma"])
    )


def test_proposal_is_deterministic_and_ignores_row_order() -> None:
    headers, rows, _ = hong_kong_sample()
    first = propose(headers, rows, "HK")
    assert propose(headers, rows, "HK") == first
    shuffled = rows[:]
    random.Random(3).shuffle(shuffled)
    assert propose(headers, shuffled, "HK").contract == first.contract


# --- names ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "names"),
    [
        (["Device ID", "deviceId", "HKIDNumber"], ["device_id", "device_id_2", "hkid_number"]),
        (["Número de Série", "Temp (°C)"], ["numero_de_serie", "temp_c"]),
        (["设备编号", "數量", "金額(MOP)"], ["she_bei_bian_hao", "shu_liang", "jin_e_mop"]),
        (["绿色", "女工"], ["lv_se", "nv_gong"]),
        (["", "###", "—"], ["column_1", "column_2", "column_3"]),
        (["2025年产量", "1"], ["c_2025_nian_chan_liang", "c_1"]),
        (["a", "A", "a_2"], ["a", "a_3", "a_2"]),
        (["column_2", "", "x"], ["column_2", "column_2_2", "x"]),
        (["x" * 80, "x" * 90], ["x" * 63, "x" * 61 + "_2"]),
    ],
)
def test_column_names(headers: list[str], names: list[str]) -> None:
    assert column_names(headers)[0] == names


def test_column_name_notes() -> None:
    _, notes = column_names(["设备编号", "Device ID", "device-id", "？"])
    assert notes == [
        "name 'she_bei_bian_hao': pinyin of header '设备编号'",
        "name 'device_id': snake case of header 'Device ID'",
        "name 'device_id_2': snake case of 'device-id' gives 'device_id', used by an earlier "
        "column",
        "name 'column_4': header '？' has no letters or digits to use",
    ]


@FAST
@given(st.lists(st.text(max_size=70), min_size=1, max_size=12))
def test_names_are_valid_unique_and_stable(headers: list[str]) -> None:
    names, notes = column_names(headers)
    assert len(names) == len(headers) == len(notes)
    assert len(set(names)) == len(names)
    assert all(COLUMN_NAME.match(name) for name in names)
    assert column_names(headers)[0] == names


# --- single inferences ----------------------------------------------------------------------


def test_type_needs_95_percent() -> None:
    assert one_column([str(i) for i in range(19)] + ["N/A"]).type == "integer"
    assert one_column([str(i) for i in range(18)] + ["N/A", "-"]).type == "string"
    notes = propose(["数量"], [[str(i)] for i in range(19)] + [["N/A"]]).notes["shu_liang"]
    assert "integer: 19 of 20 values (95%) parse" in notes
    assert "1 of 20 values (5%) would be rejected, e.g. 'N/A'" in notes


def test_integer_when_double_reads_no_more() -> None:
    assert one_column(["1", "2", "3"]).type == "integer"
    assert one_column(["1", "2", "3.5"]).type == "double"
    assert one_column(["1", "0", "1"]).type == "integer"
    assert one_column(["1", "0", "yes"]).type == "boolean"


def test_leading_zeros_keep_text() -> None:
    column = one_column(["0755", "0769", "020"], header="区号")
    assert column.type == "string"
    notes = propose(["区号"], [["0755"], ["0769"], ["020"]]).notes["qu_hao"]
    assert "string, not a number: leading zeros would be lost ('020', '0755', '0769')" in notes


@pytest.mark.parametrize(
    ("region", "values", "expected"),
    [
        ("MO", ["1.234", "12.345", "5"], {"type": "integer", "thousands": ".", "decimal": ","}),
        ("GZ", ["1.234", "12.345", "5"], {"type": "double"}),
        ("GZ", ["1,234", "12,345", "5"], {"type": "integer", "thousands": ","}),
        ("MO", ["1,234", "12,345", "5"], {"type": "double", "decimal": ","}),
        ("HK", ["1 234,5", "12 345,0"], {"type": "double", "thousands": " ", "decimal": ","}),
        ("HK", ["1'234.50", "99.00"], {"type": "double", "thousands": "'"}),
        ("GZ", ["¥ 35.00", "￥1,200.00", "12.00"], {"type": "double", "thousands": ",",
                                                   "currency": "¥"}),
        ("GZ", ["35.00元", "1,200.00元"], {"type": "double", "thousands": ",", "currency": "元"}),
        ("GZ", ["12 kg", "13 kg"], {"type": "string"}),
        ("GZ", ["1e3", "2.5E-2"], {"type": "double"}),
    ],
)  # fmt: skip
def test_number_layouts(region: str, values: list[str], expected: dict[str, Any]) -> None:
    column = one_column(values, region=region)
    fields = column.model_dump(include={"type", "thousands", "decimal", "currency"})
    assert fields == {"thousands": None, "decimal": ".", "currency": None} | expected


def test_ambiguous_numbers_are_noted() -> None:
    notes = propose(["金額"], [["1.234"], ["12.345"]], "MO").notes["jin_e"]
    assert notes[-1] == (
        "the values also read as double (decimal '.'), giving other numbers; "
        "integer (thousands '.') is preferred in MO: confirm"
    )


@pytest.mark.parametrize(
    ("values", "type_", "formats"),
    [
        (["2025-07-11", "2025-07-12"], "date", ["%Y-%m-%d"]),
        (["2025-07-11", "2025/7/12", "2025/7/13"], "date", ["%Y/%m/%d", "%Y-%m-%d"]),
        (["11/7/2025", "31/12/2024"], "date", ["%d/%m/%Y"]),
        (["2025.7.11", "2025.12.31"], "date", ["%Y.%m.%d"]),
        (["二〇二五年七月十一日", "2025年7月11日"], "date", ["%Y年%m月%d日"]),
        (["2025-07-11 10:00:00", "2025-07-11 10:00"], "timestamp",
         ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"]),
        (["2025-07-11T10:00:00.250+08:00"], "timestamp", ["%Y-%m-%dT%H:%M:%S.%f%z"]),
        (["07/11/2025 13:45", "31/01/2025 08:00"], "timestamp", ["%d/%m/%Y %H:%M"]),
        (["2025-02-30", "2025-02-31"], "string", None),
        (["20250711", "20250712"], "integer", None),
    ],
)  # fmt: skip
def test_date_formats(values: list[str], type_: str, formats: list[str] | None) -> None:
    column = one_column(values)
    assert (column.type, column.format) == (type_, formats)


def test_day_first_ambiguity_is_noted() -> None:
    notes = propose(["日期"], [["01/02/2025"], ["03/04/2025"]], "HK").notes["ri_qi"]
    assert notes[-1] == (
        "every %d/%m/%Y value has day and month ≤ 12, so month-first would read them too: "
        "confirm the partner writes the day first"
    )
    unambiguous = propose(["日期"], [["01/02/2025"], ["13/04/2025"]], "HK").notes["ri_qi"]
    assert not any("month-first" in note for note in unambiguous)


def test_format_only_validators_need_a_hint_for_plain_integers() -> None:
    brns = [str(10_000_000 + 7919 * i) for i in range(50)]
    assert one_column(brns, header="數量", region="HK").type == "integer"
    notes = propose(["數量"], [[v] for v in brns], "HK").notes["shu_liang"]
    assert notes[-1] == (
        "50 of 50 values (100%) pass validator hk_brn, but the header does not name it: "
        "set validator hk_brn if that is what they are"
    )
    assert one_column(brns, header="BRN", region="HK").validator == "hk_brn"
    assert one_column(brns, header="商業登記號碼", region="HK").validator == "hk_brn"
    mobiles = [f"13{i % 10}1234{i:04d}" for i in range(50)]
    assert one_column(mobiles, header="手机", region="SZ").validator == "phone"
    assert one_column(mobiles, header="读数", region="SZ").type == "integer"


def test_checked_validators_need_no_hint() -> None:
    rng = random.Random(5)
    rics = [make_ric(rng) for _ in range(40)]
    assert one_column(rics, header="x").validator == "cn_resident_id"
    containers = [make_container(rng) for _ in range(40)]
    assert one_column(containers, header="x", region="HK").validator == "container_no"
    broken = [*rics[:37], "440305199003071237", "4.40305E+17", "x"]
    assert one_column(broken, header="x").validator is None
    almost = [*rics[:38], "4.40305E+17", "440305199003071237"]
    assert one_column(almost, header="x").validator == "cn_resident_id"
    assert propose(["x"], [[v] for v in almost]).notes["x"][3] == (
        "2 of 40 values (5%) would be rejected, e.g. '4.40305E+17', '440305199003071237'"
    )


def test_nullable_and_empty_columns() -> None:
    column = one_column(["", "", ""])
    assert (column.type, column.nullable) == ("string", True)
    column = one_column(["1", "", "3"])
    assert (column.type, column.nullable) == ("integer", True)
    rows = [[v] for v in ["1", None, "3"]]
    assert propose(["n"], rows).contract.columns[0].nullable


@pytest.mark.parametrize(
    ("values", "allowed"),
    [
        (["A", "B", "C"] * 67, ["A", "B", "C"]),
        (["A", "B", "C"] * 66 + ["A", "B"], ["A", "B", "C"]),
        (["A", "B", "C"] * 66 + ["A"], None),
        ([f"v{i % 13}" for i in range(260)], None),
        ([f"v{i % 12}" for i in range(260)], sorted(f"v{i}" for i in range(12))),
        (["A", ""] * 150, None),
        (["A", "B", ""] * 100 + ["A"] * 100, ["A", "B"]),
    ],
)
def test_allowed_values(values: list[str], allowed: list[str] | None) -> None:
    """At most 12 distinct values in at least 200 non-empty rows."""
    assert one_column(values).allowed == allowed


def test_primary_key_needs_exactly_one_unique_id_column() -> None:
    ids = [[f"A{i}", str(i), f"B{i}"] for i in range(20)]
    assert propose(["Order No", "数量", "备注"], ids).contract.primary_key == ["order_no"]
    two = propose(["Order No", "数量", "批次号"], ids)
    assert two.contract.primary_key == []
    assert "not proposed as the primary key: so could pi_ci_hao" in two.notes["order_no"]
    assert propose(["标签", "数量", "备注"], ids).contract.primary_key == []
    repeated = [[f"A{i % 19}", str(i), "x"] for i in range(20)]
    assert propose(["Order No", "数量", "备注"], repeated).contract.primary_key == []
    gap = [row[:] for row in ids]
    gap[3][0] = ""
    assert propose(["Order No", "数量", "备注"], gap).contract.primary_key == []
    typed_dupes = [["+1", "x"], ["1", "y"], ["2", "z"], ["3", "w"]]
    assert propose(["ID", "备注"], typed_dupes).contract.primary_key == []
    assert propose(["ID", "备注"], typed_dupes[1:]).contract.primary_key == ["id"]


def test_bad_calls() -> None:
    sample = table(["a"], [["1"]])
    with pytest.raises(ValueError, match="unknown region 'CN'"):
        propose_contract(["a"], sample, region="CN")
    with pytest.raises(ValueError, match="2 headers but the sample has 1 columns"):
        propose_contract(["a", "b"], sample, region="GZ")
    with pytest.raises(ValueError, match="at least one column"):
        propose_contract([], pa.table({}), region="GZ")


def test_timestamp_notes_say_how_zones_are_stored() -> None:
    zoned = propose(["时间"], [["2025-07-11T10:00:00+08:00"]]).notes["shi_jian"]
    assert zoned[-1] == "values carry a UTC offset and are stored in UTC"
    naive = propose(["时间"], [["2025-07-11 10:00:00"]]).notes["shi_jian"]
    assert naive[-1] == "values carry no UTC offset and are stored as written (local time)"


# --- end to end: a file ingested with its own proposed contract loses no rows --------------


def write_csv(path: Path, headers: list[str], rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(headers)
        writer.writerows(rows)


def ingest_with_own_proposal(tmp_path: Path, region: str, sample: Sample) -> None:
    from ingest.pipeline import process_file  # imports GX: only these tests need it

    headers, rows, _ = sample
    proposal = propose(headers, rows[:200], region)
    path = tmp_path / f"{region}.csv"
    write_csv(path, headers, rows)
    outcome = process_file(
        path,
        proposal.contract,
        encoding="utf-8",
        staging_dir=tmp_path / "staging",
        max_error_ratio=0.05,
    )
    assert (outcome.rows_read, outcome.rows_rejected) == (len(rows), 0)
    assert outcome.rows_valid == len(rows)


def plain_sample() -> Sample:
    """Only forms the current transform already reads: plain numbers, ISO and padded
    day-first dates, identifiers, booleans, free text."""
    rng = random.Random("plain")
    headers = ["Device ID", "统一社会信用代码", "香港身份證號碼", "日期", "Reading", "Count",
               "合格", "时间", "Status", "备注"]  # fmt: skip
    companies = [make_uscc(rng, "441900") for _ in range(4)]
    rows = []
    for i in range(1000):
        day = some_day(rng)
        rows.append([
            f"DG-{i:05d}", rng.choice(companies), make_hkid(rng),
            day.strftime("%d/%m/%Y"), f"{rng.uniform(-40, 100):.2f}", str(rng.randint(1, 900)),
            rng.choice(["是", "否"]), f"{day.isoformat()} 0{rng.randrange(10)}:15:00",
            rng.choice(["RUN", "IDLE", "STOP"]), remark(rng),
        ])  # fmt: skip
    return headers, rows, DataContract(columns=[ColumnContract(name="unused")])


def test_ingest_with_own_proposal_plain_forms(tmp_path: Path) -> None:
    ingest_with_own_proposal(tmp_path, "DG", plain_sample())


@pytest.mark.parametrize("region", list(SAMPLES))
def test_ingest_with_own_proposal_regional_forms(tmp_path: Path, region: str) -> None:
    """Thousands separators, currencies, unpadded and Chinese-numeral dates and %z: needs
    ``ingest.transform`` to parse with ``ingest.parsing``."""
    ingest_with_own_proposal(tmp_path, region, SAMPLES[region]())
