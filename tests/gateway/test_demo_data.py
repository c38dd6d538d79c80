"""The bundled demo datasets: encodings, identifiers and an independent re-validation.

The re-validation below does not use any ingest code: it decodes each file, parses it with the
csv module and applies the contract rules itself (numbers with their separators and currency,
dates through ``datetime.strptime`` after spelling Chinese numerals as digits, identifiers
through python-stdnum, phonenumbers and check-digit code written here), then checks the result
against the counts, rows and rules the generator promises. ``test_demo_data_ingest.py`` holds
the ingest engine to the same promises.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import phonenumbers
import pytest
from stdnum import iso6346
from stdnum.cn import uscc

from gateway.demo_data import (
    Region,
    SampleDataset,
    chinese_numeral_date,
    excel_scientific,
    full_width,
    make_hkid,
    sample_datasets,
    sample_orgs,
    write_samples,
)
from ingest.contracts import ColumnContract, DataContract
from ingest.validators.logistics import container_check_digit

ROWS = 500
REGIONS: tuple[Region, ...] = ("GZ", "SZ", "DG", "HK", "MO")
DEFECT_ROW = re.compile(r"^data row (\d+) ")
MAINLAND_PREFIX = {"GZ": "4401", "SZ": "4403", "DG": "441900"}
COUNTRY = {"GZ": "CN", "SZ": "CN", "DG": "CN", "HK": "HK", "MO": "MO"}
ISO_FORMATS = {
    "date": ("%Y-%m-%d",),
    "timestamp": ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S.%f"),
}
"""Accepted after a column's own formats (ingest accepts ISO text in every date column)."""


@pytest.fixture(scope="module")
def datasets() -> dict[str, SampleDataset]:
    return {dataset.org.region: dataset for dataset in sample_datasets(ROWS)}


# independent re-validation ---------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One cell as the independent checker sees it: its canonical value or its problem."""

    value: object = None
    problem: str | None = None


def _records(dataset: SampleDataset) -> tuple[list[str], list[list[str]]]:
    text = dataset.content.decode(dataset.encoding, errors="strict")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    return rows[0], rows[1:]


def _number(column: ColumnContract, raw: str) -> Cell:
    digits = r"[0-9]+"
    if column.thousands is not None:
        sep = re.escape(column.thousands)
        digits = rf"(?:[1-9][0-9]{{0,2}}(?:{sep}[0-9]{{3}})+|[0-9]+)"
    if column.type == "double":
        digits += rf"(?:{re.escape(column.decimal)}[0-9]+)?"
    body = f"-?{digits}"
    if column.currency is not None:
        cur = re.escape(column.currency)
        body = rf"(?:{cur} ?)?{body}|{body}(?: ?{cur})?"
    if not re.fullmatch(body, raw):
        return Cell(problem="type")
    text = raw.replace(column.currency or "\0", "").strip()
    text = text.replace(column.thousands or "\0", "").replace(column.decimal, ".")
    value = int(text) if column.type == "integer" else float(text)
    if (column.min is not None and value < column.min) or (
        column.max is not None and value > column.max
    ):
        return Cell(problem="range")
    return Cell(value)


_CN_NUMERALS = "〇一二三四五六七八九"


def _digits_for_chinese_numerals(text: str) -> str:
    def number(run: str) -> str:
        if "十" not in run:
            return "".join(str(_CN_NUMERALS.index(ch)) for ch in run)
        tens, _, units = run.partition("十")
        tens_value = _CN_NUMERALS.index(tens) if tens else 1
        return str(tens_value * 10 + (_CN_NUMERALS.index(units) if units else 0))

    return re.sub(f"[{_CN_NUMERALS}十]+", lambda m: number(m.group()), text)


def _temporal(column: ColumnContract, raw: str) -> Cell:
    text = _digits_for_chinese_numerals(raw)
    for fmt in (*column.formats, *ISO_FORMATS[column.type]):
        try:
            parsed = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return Cell(parsed.date() if column.type == "date" else parsed)
    return Cell(problem="type")


def _normalised(raw: str) -> str:
    return re.sub(r"[\s.\-]", "", unicodedata.normalize("NFKC", raw)).upper()


_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def _uscc_valid(code: str) -> bool:
    """GB 32100, written independently of the module under test."""
    if len(code) != 18 or any(ch not in _USCC_ALPHABET for ch in code):
        return False
    weights = [3**i % 31 for i in range(17)]
    total = sum(_USCC_ALPHABET.index(ch) * w for ch, w in zip(code[:17], weights, strict=True))
    return _USCC_ALPHABET[(31 - total % 31) % 31] == code[17]


def _hkid_valid(code: str) -> bool:
    """HKID check (DOMAIN.md §1.3): a space worth 36 pads one letter, A=10 … Z=35."""
    match = re.fullmatch(r"([A-Z]{1,2})([0-9]{6})\(([0-9A])\)", code)
    if match is None:
        return False
    letters, digits, check = match.groups()
    values = [36 if ch == " " else int(ch, 36) for ch in letters.rjust(2) + digits]
    total = sum(v * w for v, w in zip(values, range(9, 1, -1), strict=True))
    return "0123456789A"[(11 - total % 11) % 11] == check


def _hkid(raw: str) -> Cell:
    text = _normalised(raw)
    canonical = text if "(" in text else f"{text[:-1]}({text[-1]})"
    return Cell(canonical) if _hkid_valid(canonical) else Cell(problem="HKID_CHECK")


def _uscc(raw: str) -> Cell:
    text = _normalised(raw)
    return Cell(text) if _uscc_valid(text) else Cell(problem="USCC_CHECK")


def _container(raw: str) -> Cell:
    text = _normalised(raw)
    return Cell(text) if iso6346.is_valid(text) else Cell(problem="CONTAINER_CHECK")


def _phone(raw: str, region: Region) -> Cell:
    number = phonenumbers.parse(raw, COUNTRY[region])
    if not phonenumbers.is_valid_number(number):
        return Cell(problem="PHONE_INVALID")
    return Cell(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


IDENTIFIERS: dict[str, Callable[[str, Region], Cell]] = {
    "uscc": lambda raw, _region: _uscc(raw),
    "hkid": lambda raw, _region: _hkid(raw),
    "container_no": lambda raw, _region: _container(raw),
    "phone": _phone,
}


def _cell(column: ColumnContract, raw: str, region: Region) -> Cell:
    if raw == "":
        return Cell() if column.nullable else Cell(problem="not_null")
    if column.type in ("integer", "double"):
        return _number(column, raw)
    if column.type in ("date", "timestamp"):
        return _temporal(column, raw)
    assert column.type == "string", f"no independent rule for {column.type}"
    if column.validator is not None:
        if re.fullmatch(r"[0-9]\.[0-9]+E\+[0-9]+", raw):
            return Cell(problem="EXCEL_NUMERIC_COERCION")
        return IDENTIFIERS[column.validator](raw, region)
    if column.allowed is not None and raw not in column.allowed:
        return Cell(problem="allowed")
    if column.pattern is not None and re.fullmatch(column.pattern, raw) is None:
        return Cell(problem="pattern")
    return Cell(raw)


def _keys(contract: DataContract) -> list[tuple[str, ...]]:
    keys = [tuple(contract.primary_key)] if contract.primary_key else []
    return keys + [(c.name,) for c in contract.columns if c.unique and (c.name,) not in keys]


def _checked(
    dataset: SampleDataset,
) -> tuple[dict[int, list[tuple[str, str]]], list[dict[str, object]]]:
    """Data row number (1-based) → its ``(column, rule)`` problems, for invalid rows; and the
    canonical values of the valid rows, in file order (duplicates: the first one wins)."""
    header, records = _records(dataset)
    columns = dataset.contract.columns
    assert header == [column.header for column in columns]
    problems: dict[int, list[tuple[str, str]]] = {}
    typed: dict[int, dict[str, object]] = {}
    for number, record in enumerate(records, start=1):
        assert len(record) == len(columns), f"row {number} has {len(record)} fields"
        cells = {
            c.name: _cell(c, raw, dataset.org.region)
            for c, raw in zip(columns, record, strict=True)
        }
        found = [(name, cell.problem) for name, cell in cells.items() if cell.problem]
        if found:
            problems[number] = found
        else:
            typed[number] = {name: cell.value for name, cell in cells.items()}
    for key in _keys(dataset.contract):
        seen: set[tuple[object, ...]] = set()
        for number, values in list(typed.items()):
            value = tuple(values[name] for name in key)
            if None in value:
                continue
            if value in seen:
                problems[number] = [(key[-1], "unique")]
                del typed[number]
            seen.add(value)
    return dict(sorted(problems.items())), list(typed.values())


def _valid_values(dataset: SampleDataset, name: str) -> list[object]:
    return [row[name] for row in _checked(dataset)[1]]


@pytest.mark.parametrize("region", REGIONS)
def test_sample_dataset_revalidation_matches_planted_defects(datasets, region):
    dataset = datasets[region]
    rejected, valid = _checked(dataset)

    assert len(rejected) == dataset.expected_rejected_rows
    assert len(valid) == dataset.expected_valid_rows
    assert dataset.expected_valid_rows + dataset.expected_rejected_rows == ROWS
    assert 0.01 * ROWS <= dataset.expected_rejected_rows <= 0.03 * ROWS
    planted = {p.row: [(p.column, p.rule)] for p in dataset.planted_defects}
    assert rejected == planted  # each planted row fails, for exactly its one planted reason
    listed = [int(m.group(1)) for d in dataset.defects if (m := DEFECT_ROW.match(d))]
    assert listed == sorted(rejected), "defect list does not name the rejected rows"
    assert [p.row for p in dataset.planted_defects] == listed


@pytest.mark.parametrize("region", REGIONS)
def test_sample_dataset_defects_cover_several_rule_kinds(datasets, region):
    kinds = {p.rule for p in datasets[region].planted_defects}
    assert len(kinds) >= 4, kinds


def test_sample_datasets_defects_cover_every_rule_family(datasets):
    rules = {p.rule for d in datasets.values() for p in d.planted_defects}
    assert rules >= {"type", "range", "pattern", "allowed", "not_null", "unique"}
    assert rules >= {
        "USCC_CHECK",
        "HKID_CHECK",
        "CONTAINER_CHECK",
        "PHONE_INVALID",
        "EXCEL_NUMERIC_COERCION",
    }


@pytest.mark.parametrize("region", REGIONS)
def test_sample_dataset_accepted_variants_are_valid_and_canonicalised(datasets, region):
    dataset = datasets[region]
    _, records = _records(dataset)
    names = [c.name for c in dataset.contract.columns]
    for variant in dataset.accepted_variants:
        raw = records[variant.row - 1][names.index(variant.column)]
        assert raw == variant.value
        cell = _cell(dataset.contract.column(variant.column), raw, dataset.org.region)
        assert cell.problem is None, variant
        assert str(cell.value) == variant.stored, variant
        assert raw != variant.stored
    defect_rows = {p.row for p in dataset.planted_defects}
    assert not defect_rows & {v.row for v in dataset.accepted_variants}


def test_sample_datasets_plant_the_domain_variants(datasets):
    variants = {(r, v.value, v.stored) for r, d in datasets.items() for v in d.accepted_variants}
    assert ("HK", "ｋ２５４１７６（９）", "K254176(9)") in variants
    assert any(r == "GZ" and value.startswith("二〇二五年七月") for r, value, _ in variants)
    assert any(r == "GZ" and value.islower() for r, value, _ in variants)  # USCC
    assert any(r == "HK" and " " in value for r, value, _ in variants)  # container as printed
    assert any(r == "MO" and stored.startswith("+853") for r, _, stored in variants)


@pytest.mark.parametrize("region", REGIONS)
def test_sample_dataset_valid_dates_are_real_calendar_dates(datasets, region):
    dataset = datasets[region]
    temporal = [c for c in dataset.contract.columns if c.type in ("date", "timestamp")]
    assert temporal, "every sample has a date or timestamp column"
    for column in temporal:
        assert column.formats
        values = _valid_values(dataset, column.name)
        assert len(values) == dataset.expected_valid_rows
        assert all(v is not None for v in values) or column.nullable


@pytest.mark.parametrize("region", REGIONS)
def test_sample_dataset_primary_key_unique_among_valid_rows(datasets, region):
    dataset = datasets[region]
    _, valid = _checked(dataset)
    assert dataset.contract.primary_key
    for key in _keys(dataset.contract):
        values = [tuple(row[name] for name in key) for row in valid]
        assert len(values) == len(set(values)) == dataset.expected_valid_rows


def test_chinese_numeral_date_spells_month_and_day():
    assert chinese_numeral_date(datetime(2025, 7, 11).date()) == "二〇二五年七月十一日"
    assert chinese_numeral_date(datetime(2025, 7, 20).date()) == "二〇二五年七月二十日"
    assert chinese_numeral_date(datetime(2025, 10, 1).date()) == "二〇二五年十月一日"
    assert _digits_for_chinese_numerals("二〇二五年七月三十一日") == "2025年7月31日"


def test_excel_scientific_rounds_like_excel_general_format():
    assert excel_scientific("440305199003071236") == "4.40305E+17"
    assert excel_scientific("914419007231418786") == "9.14419E+17"
    assert excel_scientific("914419997231418786") == "9.1442E+17"


def test_full_width_is_what_nfkc_folds_back():
    assert full_width("k254176(9)") == "ｋ２５４１７６（９）"
    assert unicodedata.normalize("NFKC", full_width("K254176(9)")) == "K254176(9)"


# determinism and shape -------------------------------------------------------------------------


def test_sample_datasets_is_deterministic(datasets):
    again = {dataset.org.region: dataset for dataset in sample_datasets(ROWS)}
    other = {dataset.org.region: dataset for dataset in sample_datasets(ROWS, seed=7)}
    for region in REGIONS:
        assert again[region].content == datasets[region].content
        assert again[region].planted_defects == datasets[region].planted_defects
        assert again[region].accepted_variants == datasets[region].accepted_variants
        assert other[region].content != datasets[region].content


@pytest.mark.parametrize("seed", [7, 20251128, 31337])
def test_sample_datasets_scales_defects_with_rows(seed):
    for rows, per_kind in ((60, 1), (1000, 4)):
        for dataset in sample_datasets(rows, seed):
            kinds = {(p.column, p.rule) for p in dataset.planted_defects}
            assert dataset.expected_rejected_rows == len(kinds) * per_kind == 5 * per_kind
            assert dataset.expected_valid_rows + dataset.expected_rejected_rows == rows
            rejected, _ = _checked(dataset)
            assert rejected == {p.row: [(p.column, p.rule)] for p in dataset.planted_defects}
    with pytest.raises(ValueError, match="at least"):
        sample_datasets(10)


def test_sample_datasets_one_per_provider_region(datasets):
    assert sorted(datasets) == sorted(REGIONS)
    for region, dataset in datasets.items():
        assert dataset.org.kind == "provider" and dataset.org.region == region
        assert dataset.title and dataset.title_zh and dataset.description
        assert dataset.filename.endswith(".csv")


@pytest.mark.parametrize("region", REGIONS)
def test_sample_dataset_contract_is_complete(datasets, region):
    contract = datasets[region].contract
    assert 6 <= len(contract.columns) <= 12
    for column in contract.columns:
        assert column.source is not None and column.source != column.name
        assert (column.format is not None) == (column.type in ("date", "timestamp"))
    assert any(not column.header.isascii() for column in contract.columns)


def test_sample_contracts_use_every_kind_of_rule(datasets):
    columns = {(r, c.name): c for r, d in datasets.items() for c in d.contract.columns}
    validators = {c.validator for c in columns.values() if c.validator}
    assert validators == {"uscc", "hkid", "phone", "container_no"}
    assert columns[("HK", "invoice_value_hkd")].currency == "HK$"
    cost = columns[("MO", "cost")]
    assert (cost.thousands, cost.decimal, cost.currency) == (".", ",", "MOP")
    assert columns[("DG", "kwh_import_total")].thousands == ","
    assert len(columns[("HK", "ship_date")].formats) == 2
    assert columns[("GZ", "inspection_date")].format == "%Y年%m月%d日"
    assert [name for (_, name), c in columns.items() if c.unique] == ["body_no"]
    assert datasets["GZ"].contract.max_invalid_ratio == 0.03
    composite = [r for r, d in datasets.items() if len(d.contract.primary_key) > 1]
    assert composite == ["SZ", "DG"]


def test_sample_dataset_pi_columns_are_tagged(datasets):
    pi = {(r, c.name): c.pi for r, d in datasets.items() for c in d.contract.columns}
    assert pi[("HK", "driver_name")] == "pi_direct_id"
    assert pi[("HK", "driver_hkid")] == "pi_direct_id"
    assert pi[("MO", "technician_name")] == "pi_direct_id"
    assert pi[("MO", "technician_phone")] == "pi_direct_id"
    assert pi[("SZ", "operator_badge")] == "pi_quasi_id"
    assert pi[("GZ", "inspector_id")] == "pi_quasi_id"
    assert all(c.pi == "non_pi" for c in datasets["DG"].contract.columns)
    # left open for the ingest PII scan to suggest a class
    assert [key for key, value in pi.items() if value is None] == [
        ("GZ", "remark"),
        ("HK", "driver_phone"),
    ]


def test_write_samples_writes_each_file(tmp_path: Path) -> None:
    paths = write_samples(tmp_path / "samples", rows=100)
    expected = {d.filename: d.content for d in sample_datasets(100)}
    assert sorted(p.name for p in paths) == sorted(expected)
    for path in paths:
        assert path.read_bytes() == expected[path.name]


# encodings -------------------------------------------------------------------------------------


@pytest.mark.parametrize("region", REGIONS)
def test_sample_dataset_decodes_strictly_with_declared_encoding(datasets, region):
    dataset = datasets[region]
    text = dataset.content.decode(dataset.encoding, errors="strict")
    assert not text.startswith("\ufeff")
    assert dataset.encoding in ("utf-8", "utf-8-sig", "gbk", "gb18030", "big5", "big5hkscs")
    if dataset.encoding in ("gbk", "gb18030", "big5hkscs"):
        with pytest.raises(UnicodeDecodeError):
            dataset.content.decode("utf-8")


def test_sample_dataset_encodings_per_region(datasets):
    assert {r: d.encoding for r, d in datasets.items()} == {
        "GZ": "gb18030",
        "SZ": "utf-8-sig",
        "DG": "gbk",
        "HK": "big5hkscs",
        "MO": "utf-8",
    }
    assert datasets["SZ"].content.startswith(b"\xef\xbb\xbf")
    assert not datasets["MO"].content.startswith(b"\xef\xbb\xbf")
    assert "设备编号" in datasets["DG"].content.decode("gbk")


def test_hk_sample_needs_big5hkscs(datasets):
    content = datasets["HK"].content
    text = content.decode("big5hkscs")
    hkscs_only = [ch for ch in sorted(set(text)) if not _encodes(ch, "big5")]
    assert "嘅" in hkscs_only and "啲" in hkscs_only
    assert all(_encodes(ch, "big5hkscs") for ch in hkscs_only)
    with pytest.raises(UnicodeDecodeError):
        content.decode("big5")
    assert "許" in text  # Big5 B3 5C: a trail byte that is an ASCII backslash
    assert b"\xb3\x5c" in content
    assert "ｋ２５４１７６（９）" in text  # full-width forms are plain Big5


def test_gz_sample_needs_gb18030(datasets):
    content = datasets["GZ"].content
    text = content.decode("gb18030")
    assert [ch for ch in sorted(set(text)) if not _encodes(ch, "gbk")] == ["Ø"]
    with pytest.raises(UnicodeDecodeError):
        content.decode("gbk")
    assert "二〇二五年七月" in text  # 〇 (U+3007) is GBK A996


def _encodes(ch: str, encoding: str) -> bool:
    try:
        ch.encode(encoding)
    except UnicodeEncodeError:
        return False
    return True


# identifiers -----------------------------------------------------------------------------------


def test_sample_orgs_registration_ids_valid():
    orgs = sample_orgs()
    assert {o.region for o in orgs if o.kind == "provider"} == set(REGIONS)
    assert [(o.region, o.kind) for o in orgs if o.kind != "provider"] == [
        ("HK", "consumer"),
        ("GZ", "steward"),
    ]
    assert len({o.slug for o in orgs}) == len(orgs)
    for org in orgs:
        rid = org.registration_id
        if org.region in MAINLAND_PREFIX:
            assert uscc.is_valid(rid), rid
            assert _uscc_valid(rid), rid
            assert rid[2:].startswith(MAINLAND_PREFIX[org.region]), rid
        elif org.region == "HK":
            assert re.fullmatch(r"^\d{8}$", rid), rid
        else:
            assert re.fullmatch(r"^\d{4,6}\(SO\)$", rid), rid


def test_own_check_digit_code_agrees_with_domain_examples():
    assert _uscc_valid("91440300MA5G7K3P7P")  # DOMAIN.md worked example
    assert not _uscc_valid("91440300MA5G7K3P7Q")
    for good in ("K254176(9)", "XA123456(8)", "C100007(A)", "Z683003(0)"):  # DOMAIN.md §1.3
        assert _hkid_valid(good), good
    assert not _hkid_valid("K254176(8)")
    assert make_hkid("K", "254176") == "K254176(9)"


def test_sample_supplier_and_tenant_usccs_are_valid_gba_codes(datasets):
    for region, column, prefix in (("GZ", "supplier_uscc", "44"), ("DG", "tenant_uscc", "4419")):
        codes = set(_valid_values(datasets[region], column))
        assert len(codes) == 3
        for code in codes:
            assert isinstance(code, str) and uscc.is_valid(code), code
            assert code[2:].startswith(prefix), code
    assert any(str(code).isdigit() for code in _valid_values(datasets["DG"], "tenant_uscc"))


def test_hk_sample_container_numbers_pass_iso6346(datasets):
    containers = _valid_values(datasets["HK"], "container_no")
    assert len(containers) == datasets["HK"].expected_valid_rows
    for number in containers:
        assert isinstance(number, str) and iso6346.is_valid(number), number
    assert container_check_digit("CSQU305438") == "3"


@pytest.mark.parametrize(("region", "column"), [("HK", "driver_phone"), ("MO", "technician_phone")])
def test_sample_phone_numbers_valid_for_their_region(datasets, region, column):
    phones = [p for p in _valid_values(datasets[region], column) if p]
    assert phones
    code = {"HK": "+852", "MO": "+853"}[region]
    assert all(isinstance(p, str) and p.startswith(code) for p in phones)


def test_dg_sample_import_register_increases_per_meter(datasets):
    meters = _valid_values(datasets["DG"], "meter_id")
    totals = _valid_values(datasets["DG"], "kwh_import_total")
    assert any(isinstance(total, float) and total > 1e6 for total in totals)  # 1,234,567.89
    last: dict[object, float] = {}
    for meter, total in zip(meters, totals, strict=True):
        assert isinstance(total, float)
        assert total > last.get(meter, 0.0), meter
        last[meter] = total
