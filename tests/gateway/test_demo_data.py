"""The bundled demo datasets: encodings, identifiers and an independent re-validation.

The re-validation below does not use any ingest code: it decodes each file, parses it with the
csv module and applies the contract rules itself (dates through the exact pyarrow call ingest
uses), then checks the result against the counts and defect list the generator promises.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime
from pathlib import Path

import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from stdnum import iso6346
from stdnum.cn import uscc

from gateway.demo_data import (
    Region,
    SampleDataset,
    sample_datasets,
    sample_orgs,
    write_samples,
)
from ingest.contracts import ColumnContract
from ingest.validators.logistics import container_check_digit

ROWS = 500
REGIONS: tuple[Region, ...] = ("GZ", "SZ", "DG", "HK", "MO")
INTEGER = re.compile(r"-?[0-9]+")
DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
DEFECT_ROW = re.compile(r"^data row (\d+) ")
MAINLAND_PREFIX = {"GZ": "4401", "SZ": "4403", "DG": "441900"}


@pytest.fixture(scope="module")
def datasets() -> dict[str, SampleDataset]:
    return {dataset.org.region: dataset for dataset in sample_datasets(ROWS)}


# independent re-validation ---------------------------------------------------------------------


def _records(dataset: SampleDataset) -> tuple[list[str], list[list[str]]]:
    text = dataset.content.decode(dataset.encoding, errors="strict")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    return rows[0], rows[1:]


def _pyarrow_parses(value: str, fmt: str) -> bool:
    try:
        pc.strptime(pa.array([value]), format=fmt, unit="s")
    except pa.ArrowInvalid:
        return False
    return True


def _number_problems(column: ColumnContract, raw: str) -> list[str]:
    if not (INTEGER if column.type == "integer" else DECIMAL).fullmatch(raw):
        return [f"not {column.type}"]
    value = float(raw)
    if column.min is not None and value < column.min:
        return ["below min"]
    if column.max is not None and value > column.max:
        return ["above max"]
    return []


def _problems(column: ColumnContract, raw: str) -> list[str]:
    if raw == "":
        return [] if column.nullable else ["missing required value"]
    if column.type in ("integer", "double"):
        return _number_problems(column, raw)
    if column.type in ("date", "timestamp"):
        assert column.format is not None
        return [] if _pyarrow_parses(raw, column.format) else ["unparseable date"]
    assert column.type == "string", f"no independent rule for {column.type}"
    problems = []
    if column.allowed is not None and raw not in column.allowed:
        problems.append("not in allowed set")
    if column.pattern is not None and re.fullmatch(column.pattern, raw) is None:
        problems.append("pattern mismatch")
    return problems


def _rejections(dataset: SampleDataset) -> dict[int, list[str]]:
    """Data row number (1-based) → the contract problems of that row, for invalid rows."""
    header, records = _records(dataset)
    columns = dataset.contract.columns
    assert header == [column.header for column in columns]
    rejected: dict[int, list[str]] = {}
    for number, record in enumerate(records, start=1):
        assert len(record) == len(columns), f"row {number} has {len(record)} fields"
        problems = [
            f"{column.name}: {problem}"
            for column, raw in zip(columns, record, strict=True)
            for problem in _problems(column, raw)
        ]
        if problems:
            rejected[number] = problems
    return rejected


def _valid_values(dataset: SampleDataset, name: str) -> list[str]:
    _, records = _records(dataset)
    rejected = _rejections(dataset)
    index = [column.name for column in dataset.contract.columns].index(name)
    return [r[index] for n, r in enumerate(records, start=1) if n not in rejected]


@pytest.mark.parametrize("region", REGIONS)
def test_sample_dataset_revalidation_matches_expected_counts(datasets, region):
    dataset = datasets[region]
    rejected = _rejections(dataset)

    assert len(rejected) == dataset.expected_rejected_rows
    assert ROWS - len(rejected) == dataset.expected_valid_rows
    assert dataset.expected_valid_rows + dataset.expected_rejected_rows == ROWS
    assert 0.01 * ROWS <= dataset.expected_rejected_rows <= 0.03 * ROWS
    for number, problems in rejected.items():
        assert len(problems) == 1, f"row {number} fails for several reasons: {problems}"
    listed = [int(m.group(1)) for d in dataset.defects if (m := DEFECT_ROW.match(d))]
    assert listed == sorted(rejected), "defect list does not name the rejected rows"


@pytest.mark.parametrize("region", REGIONS)
def test_sample_dataset_defects_cover_several_rule_kinds(datasets, region):
    kinds = {problems[0].split(": ", 1)[1] for problems in _rejections(datasets[region]).values()}
    assert len(kinds) >= 4, kinds


@pytest.mark.parametrize("region", REGIONS)
def test_sample_dataset_valid_dates_parse_with_pyarrow_strptime(datasets, region):
    dataset = datasets[region]
    temporal = [c for c in dataset.contract.columns if c.type in ("date", "timestamp")]
    assert temporal, "every sample has a date or timestamp column"
    for column in temporal:
        assert column.format is not None
        values = _valid_values(dataset, column.name)
        parsed = pc.strptime(pa.array(values), format=column.format, unit="s")
        assert parsed.null_count == 0
        # no silent roll-over (pyarrow turns 31/02 into 03/03): Python's strict parser agrees
        expected = [datetime.strptime(v, column.format) for v in values]
        assert parsed.to_pylist() == expected


@pytest.mark.parametrize("region", REGIONS)
def test_sample_dataset_primary_key_unique_among_valid_rows(datasets, region):
    dataset = datasets[region]
    keys = list(
        zip(*(_valid_values(dataset, name) for name in dataset.contract.primary_key), strict=True)
    )
    assert dataset.contract.primary_key
    assert len(keys) == len(set(keys)) == dataset.expected_valid_rows


def test_pyarrow_strptime_rolls_impossible_days_over():
    # Why no sample relies on 31/02/2025 being rejected: pyarrow accepts it as 3 March.
    parsed = pc.strptime(pa.array(["31/02/2025"]), format="%d/%m/%Y", unit="s")
    assert parsed.to_pylist() == [datetime(2025, 3, 3)]


# determinism and shape -------------------------------------------------------------------------


def test_sample_datasets_is_deterministic(datasets):
    again = {dataset.org.region: dataset for dataset in sample_datasets(ROWS)}
    other = {dataset.org.region: dataset for dataset in sample_datasets(ROWS, seed=7)}
    for region in REGIONS:
        assert again[region].content == datasets[region].content
        assert again[region].defects == datasets[region].defects
        assert other[region].content != datasets[region].content


def test_sample_datasets_scales_defects_with_rows():
    for rows, per_kind in ((60, 1), (1000, 4)):
        for dataset in sample_datasets(rows):
            assert dataset.expected_rejected_rows == 5 * per_kind
            assert dataset.expected_valid_rows + dataset.expected_rejected_rows == rows
            assert len(_rejections(dataset)) == dataset.expected_rejected_rows
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
    assert 6 <= len(contract.columns) <= 10
    for column in contract.columns:
        assert column.source is not None and column.source != column.name
        assert (column.format is not None) == (column.type in ("date", "timestamp"))
    assert any(not column.header.isascii() for column in contract.columns)


def test_sample_dataset_pi_columns_are_tagged(datasets):
    pi = {(r, c.name): c.pi for r, d in datasets.items() for c in d.contract.columns}
    assert pi[("HK", "driver_name")] == "pi_direct_id"
    assert pi[("MO", "technician_name")] == "pi_direct_id"
    assert pi[("MO", "technician_phone")] == "pi_direct_id"
    assert pi[("SZ", "operator_badge")] == "pi_quasi_id"
    assert pi[("GZ", "inspector_id")] == "pi_quasi_id"
    assert all(c.pi == "non_pi" for c in datasets["DG"].contract.columns)


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


def test_gz_sample_needs_gb18030(datasets):
    content = datasets["GZ"].content
    text = content.decode("gb18030")
    assert [ch for ch in sorted(set(text)) if not _encodes(ch, "gbk")] == ["Ø"]
    with pytest.raises(UnicodeDecodeError):
        content.decode("gbk")


def _encodes(ch: str, encoding: str) -> bool:
    try:
        ch.encode(encoding)
    except UnicodeEncodeError:
        return False
    return True


# identifiers -----------------------------------------------------------------------------------

_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def _uscc_valid(code: str) -> bool:
    """GB 32100, written independently of the module under test."""
    if len(code) != 18 or any(ch not in _USCC_ALPHABET for ch in code):
        return False
    weights = [3**i % 31 for i in range(17)]
    total = sum(_USCC_ALPHABET.index(ch) * w for ch, w in zip(code[:17], weights, strict=True))
    return _USCC_ALPHABET[(31 - total % 31) % 31] == code[17]


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


def test_own_uscc_check_rejects_altered_code():
    assert _uscc_valid("91440300MA5G7K3P7P")  # DOMAIN.md worked example
    assert not _uscc_valid("91440300MA5G7K3P7Q")


def test_hk_sample_container_numbers_pass_iso6346(datasets):
    containers = _valid_values(datasets["HK"], "container_no")
    assert len(containers) == datasets["HK"].expected_valid_rows
    for number in containers:
        assert iso6346.is_valid(number), number
    assert container_check_digit("CSQU305438") == "3"


def test_mo_sample_phone_numbers_valid(datasets):
    phones = [p for p in _valid_values(datasets["MO"], "technician_phone") if p]
    assert phones
    for phone in phones:
        assert phonenumbers.is_valid_number(phonenumbers.parse(phone)), phone


def test_dg_sample_import_register_increases_per_meter(datasets):
    meters = _valid_values(datasets["DG"], "meter_id")
    totals = [float(v) for v in _valid_values(datasets["DG"], "kwh_import_total")]
    last: dict[str, float] = {}
    for meter, total in zip(meters, totals, strict=True):
        assert total > last.get(meter, 0.0), meter
        last[meter] = total
