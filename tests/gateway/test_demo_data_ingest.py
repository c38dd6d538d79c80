"""The bundled demo datasets through the real ingest engine.

Each sample goes through ``ingest.pipeline.process_file`` exactly as an upload of it would (its
encoding, its region): the quarantine must hold exactly the planted defects, each with the
planted rule, and the Parquet output must hold the accepted variants in canonical form.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gateway import demo
from gateway.admin import AdminContext
from gateway.demo_data import Region, SampleDataset, sample_datasets, sample_orgs
from gateway.services import Platform
from ingest.errors import TooManyRejectedRowsError
from ingest.pipeline import ProcessOutcome, process_file
from ingest.writers import read_quarantine

ROWS = 500
REGIONS: tuple[Region, ...] = ("GZ", "SZ", "DG", "HK", "MO")


@pytest.fixture(scope="module")
def datasets() -> dict[str, SampleDataset]:
    return {dataset.org.region: dataset for dataset in sample_datasets(ROWS)}


@pytest.fixture(scope="module")
def ingested(
    datasets: dict[str, SampleDataset], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, ProcessOutcome]:
    return {
        region: _ingest(dataset, tmp_path_factory.mktemp(region), max_error_ratio=0.05)
        for region, dataset in datasets.items()
    }


def _ingest(dataset: SampleDataset, folder: Path, *, max_error_ratio: float) -> ProcessOutcome:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / dataset.filename
    path.write_bytes(dataset.content)
    return process_file(
        path,
        dataset.contract,
        encoding=dataset.encoding,
        staging_dir=folder / "staging",
        max_error_ratio=max_error_ratio,
        region=dataset.org.region,
    )


def _stored_rows(dataset: SampleDataset, outcome: ProcessOutcome) -> dict[int, dict[str, Any]]:
    """Data row number (1-based) → the typed row ingest stored, for every valid row."""
    table = pa.concat_tables(pq.read_table(part.path) for part in outcome.parts)
    rejected = {p.row for p in dataset.planted_defects}
    numbers = [n for n in range(1, ROWS + 1) if n not in rejected]
    return dict(zip(numbers, table.to_pylist(), strict=True))


def _as_text(value: object) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _raw_records(dataset: SampleDataset) -> tuple[list[str], list[dict[str, str]]]:
    text = dataset.content.decode(dataset.encoding)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    return list(reader.fieldnames or []), list(reader)


@pytest.mark.parametrize("region", REGIONS)
def test_sample_ingest_counts_match_expected(datasets, ingested, region):
    dataset, outcome = datasets[region], ingested[region]
    assert outcome.rows_read == ROWS
    assert outcome.rows_valid == dataset.expected_valid_rows
    assert outcome.rows_rejected == dataset.expected_rejected_rows
    assert sum(part.rows for part in outcome.parts) == dataset.expected_valid_rows


@pytest.mark.parametrize("region", REGIONS)
def test_sample_ingest_quarantines_exactly_the_planted_defects(datasets, ingested, region):
    dataset, outcome = datasets[region], ingested[region]
    assert outcome.quarantine_path is not None
    quarantined = read_quarantine(outcome.quarantine_path)
    assert [q["row"] for q in quarantined] == [p.row for p in dataset.planted_defects]
    key_headers = [dataset.contract.column(k).header for k in dataset.contract.primary_key]
    for row, planted in zip(quarantined, dataset.planted_defects, strict=True):
        assert [(r["column"], r["rule"]) for r in row["reasons"]] == [
            (planted.reason_column, planted.rule)
        ], planted.note
        actual = row["reasons"][0]["actual"]
        if planted.rule == "unique" and "+" in planted.reason_column:
            assert actual == " | ".join(row["values"][h] for h in key_headers)
            assert actual.endswith(planted.value)
        else:
            assert actual == planted.value, planted.note
        assert row["values"][dataset.contract.column(planted.column).header] == planted.value


def test_sample_ingest_uses_the_identifier_rule_names(ingested):
    rules = {
        region: outcome.gx_result["row_checks"]["failures_by_rule"]
        for region, outcome in ingested.items()
    }
    assert rules["GZ"] == {"USCC_CHECK": 2, "pattern": 2, "range": 2, "type": 2, "unique": 2}
    assert rules["SZ"] == {"not_null": 2, "range": 2, "type": 4, "unique": 2}
    assert rules["DG"] == {
        "EXCEL_NUMERIC_COERCION": 2,
        "allowed": 2,
        "not_null": 2,
        "pattern": 2,
        "range": 2,
    }
    assert rules["HK"] == {"CONTAINER_CHECK": 2, "HKID_CHECK": 2, "range": 2, "type": 4}
    assert rules["MO"] == {"PHONE_INVALID": 2, "allowed": 2, "range": 2, "type": 4}
    warnings = {
        region: o.gx_result["row_checks"]["warnings_by_rule"] for region, o in ingested.items()
    }
    assert warnings == {region: {} for region in REGIONS}


@pytest.mark.parametrize("region", REGIONS)
def test_sample_ingest_stores_accepted_variants_canonically(datasets, ingested, region):
    dataset = datasets[region]
    stored = _stored_rows(dataset, ingested[region])
    for variant in dataset.accepted_variants:
        assert _as_text(stored[variant.row][variant.column]) == variant.stored, variant.note


def test_sample_ingest_normalises_the_full_width_hkid(datasets, ingested):
    dataset = datasets["HK"]
    rows = [v.row for v in dataset.accepted_variants if v.value == "ｋ２５４１７６（９）"]
    assert rows
    stored = _stored_rows(dataset, ingested["HK"])
    assert {stored[row]["driver_hkid"] for row in rows} == {"K254176(9)"}


def test_sample_ingest_stores_identifiers_in_canonical_form(datasets, ingested):
    hk = list(_stored_rows(datasets["HK"], ingested["HK"]).values())
    assert all(re.fullmatch(r"[A-Z]{4}[0-9]{7}", r["container_no"]) for r in hk)
    assert all(re.fullmatch(r"[A-Z]{1,2}[0-9]{6}\([0-9A]\)", r["driver_hkid"]) for r in hk)
    assert all(re.fullmatch(r"\+852[0-9]{8}", r["driver_phone"]) for r in hk)
    mo = list(_stored_rows(datasets["MO"], ingested["MO"]).values())
    assert all(
        r["technician_phone"] is None or re.fullmatch(r"\+8536[0-9]{7}", r["technician_phone"])
        for r in mo
    )
    gz = list(_stored_rows(datasets["GZ"], ingested["GZ"]).values())
    assert {r["supplier_uscc"] for r in gz} == {
        "91440112MA59J3KU9E",
        "91440606MA4UWN8BXG",
        "91440113MA5CTQ7E5C",
    }
    dg = list(_stored_rows(datasets["DG"], ingested["DG"]).values())
    assert "914419007231418786" in {r["tenant_uscc"] for r in dg}


def test_sample_ingest_parses_number_formats(datasets, ingested):
    _, raw = _raw_records(datasets["HK"])
    hk = _stored_rows(datasets["HK"], ingested["HK"])
    mo = _stored_rows(datasets["MO"], ingested["MO"])
    _, mo_raw = _raw_records(datasets["MO"])
    dg = _stored_rows(datasets["DG"], ingested["DG"])
    _, dg_raw = _raw_records(datasets["DG"])
    for number, row in hk.items():
        written = raw[number - 1]["發票金額(港元)"]  # HK$123,456.78
        assert written.startswith("HK$")
        assert row["invoice_value_hkd"] == float(written[3:].replace(",", ""))
    for number, row in mo.items():
        written = mo_raw[number - 1]["費用"]  # MOP 1.234,50 (HKD amounts carry no sign)
        assert written.startswith("MOP ") == (row["currency"] == "MOP")
        plain = written.removeprefix("MOP ").replace(".", "").replace(",", ".")
        assert row["cost"] == float(plain)
    assert any("." in mo_raw[n - 1]["費用"] for n in mo)  # thousands were grouped somewhere
    for number, row in dg.items():
        written = dg_raw[number - 1]["正向有功总电能(度)"]  # 1,234,567.89
        assert row["kwh_import_total"] == float(written.replace(",", ""))


def test_sample_ingest_parses_every_declared_date_format(datasets, ingested):
    _, raw = _raw_records(datasets["HK"])
    hk = _stored_rows(datasets["HK"], ingested["HK"])
    tms = [n for n in hk if re.fullmatch(r"[0-9]{2}-[A-Z][a-z]{2}-2025", raw[n - 1]["出車日期"])]
    assert tms and all(hk[n]["ship_date"].month == 8 for n in tms)  # 18-Aug-2025 onwards
    legacy = [n for n in hk if "/" in raw[n - 1]["出車日期"]]
    assert len(tms) + len(legacy) == len(hk)
    gz = _stored_rows(datasets["GZ"], ingested["GZ"])
    _, gz_raw = _raw_records(datasets["GZ"])
    chinese = [n for n in gz if gz_raw[n - 1]["检验日期"].startswith("二〇二五")]
    assert chinese
    for n in chinese:
        assert gz[n]["inspection_date"].month == 7


# PII scan and the demo's grants -----------------------------------------------------------------


def test_sample_ingest_pii_scan_suggests_classes_for_open_columns(ingested):
    scanned = {
        (region, column["name"]): column
        for region, outcome in ingested.items()
        for column in outcome.schema
        if column["pi_source"] == "scan"
    }
    assert sorted(scanned) == [("GZ", "remark"), ("HK", "driver_phone")]
    assert scanned[("GZ", "remark")]["pi"] == "pi_other"
    assert scanned[("GZ", "remark")]["pi_scan"]["detector"] == "free_text"
    assert scanned[("HK", "driver_phone")]["pi"] == "pi_direct_id"
    assert scanned[("HK", "driver_phone")]["pi_scan"]["detector"] == "phone"


def test_demo_grants_leave_unclassified_and_personal_columns_closed(datasets, monkeypatch):
    granted: dict[str, list[str]] = {}

    def record_grant(*_args: object, dataset: Any, columns: list[str], **_kwargs: object) -> None:
        granted[dataset.name] = columns

    monkeypatch.setattr(demo, "record_grant", record_grant)
    platform = SimpleNamespace(grants=SimpleNamespace(live_for_org=lambda _org: []), audit=None)
    admin = SimpleNamespace(
        dataset=lambda sql_name: SimpleNamespace(id=sql_name, name=sql_name.split(".")[1]),
        registry=SimpleNamespace(find_org=lambda slug: SimpleNamespace(id=slug)),
    )
    consumer = next(o for o in sample_orgs() if o.kind == "consumer")
    for dataset in datasets.values():
        demo._grant_open_columns(
            cast(Platform, platform), cast(AdminContext, admin), dataset, consumer
        )
    assert "remark" not in granted["gz_spot_weld_inspection"]
    assert "driver_phone" not in granted["hk_cross_boundary_shipments"]
    for dataset in datasets.values():
        expected = [c.name for c in dataset.contract.columns if c.pi == "non_pi"]
        assert granted[dataset.name] == expected
        closed = {c.name for c in dataset.contract.columns} - set(expected)
        assert all(dataset.contract.column(name).pi != "non_pi" for name in closed)
    # the README tour's query reads these DG columns as the consumer
    assert {"meter_id", "ts_local", "tariff_period", "kwh_interval"} <= set(
        granted["dg_energy_metering"]
    )


# max_invalid_ratio -------------------------------------------------------------------------------


def test_sample_contract_max_invalid_ratio_overrides_the_platform_limit(tmp_path):
    gz = next(d for d in sample_datasets(ROWS) if d.org.region == "GZ")
    assert gz.contract.max_invalid_ratio == 0.03
    passed = _ingest(gz, tmp_path / "strict", max_error_ratio=0.0)  # 2% < the contract's 3%
    assert passed.rows_rejected == gz.expected_rejected_rows
    small = next(d for d in sample_datasets(60) if d.org.region == "GZ")
    assert small.expected_rejected_rows / 60 > 0.03
    with pytest.raises(TooManyRejectedRowsError):
        _ingest(small, tmp_path / "lenient", max_error_ratio=1.0)
