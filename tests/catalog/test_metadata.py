"""Metadata validation, and the demo's trilingual metadata on the demo's own contracts:
what `make demo` loads must validate and be findable in every script."""

from __future__ import annotations

from typing import Any

import pytest

from catalog.database import make_engine, session_factory, upgrade_to_head
from catalog.errors import Conflict, InvalidInput
from catalog.metadata import MetadataStore
from catalog.registry import Registry
from catalog.search import CatalogSearch
from gateway.demo_data import SAMPLE_METADATA, sample_datasets


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('metadata') / 'metadata.db'}")
    upgrade_to_head(engine)
    yield session_factory(engine)
    engine.dispose()


@pytest.fixture(scope="module")
def demo_catalog(sessions) -> dict[str, str]:
    registry, store = Registry(sessions), MetadataStore(sessions)
    ids = {}
    for sample in sample_datasets(rows=50):
        org = registry.create_org(
            name=sample.org.name,
            slug=sample.org.slug,
            kind=sample.org.kind,
            region=sample.org.region,
            registration_id=sample.org.registration_id,
        )
        dataset = registry.create_dataset(
            org=org,
            name=sample.name,
            title=f"{sample.title} · {sample.title_zh}",
            description=sample.description,
            classification=sample.classification,
            licence="",
            contract=sample.contract.model_dump(mode="json", exclude_none=True),
        )
        store.update(dataset.id, SAMPLE_METADATA[sample.name], actor="demo")
        ids[sample.name] = dataset.id
    return ids


def test_demo_metadata_covers_every_sample_in_three_languages(demo_catalog) -> None:
    assert set(SAMPLE_METADATA) == set(demo_catalog)
    for name, metadata in SAMPLE_METADATA.items():
        assert set(metadata["title"]) == {"en", "zh-Hans", "zh-Hant"}, name  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("能耗", "dg_energy_metering"),
        ("用電量", "dg_energy_metering"),
        ("energy", "dg_energy_metering"),
        ("货运", "hk_cross_boundary_shipments"),
        ("冷链维修", "mo_coldchain_maintenance"),
        ("回流焊", "sz_smt_reflow_telemetry"),
        ("點焊", "gz_spot_weld_inspection"),
        ("IPQC", "gz_spot_weld_inspection"),
    ],
)
def test_demo_datasets_are_found_in_every_script(sessions, demo_catalog, query, expected) -> None:
    by_id = {v: k for k, v in demo_catalog.items()}
    hits = CatalogSearch(sessions).search(query, visible=set(demo_catalog.values())).hits
    assert hits and by_id[hits[0].dataset_id] == expected


def test_metadata_update_validates_and_locks(sessions, demo_catalog) -> None:
    store = MetadataStore(sessions)
    dataset_id = demo_catalog["dg_energy_metering"]
    bad: list[dict[str, Any]] = [
        {"keywords": {"en": ["x"] * 31}},
        {"columns": {"kwh_interval": {"en": "bidi \u202e trick"}}},
        {"contact": {"fax": "1"}},
        {"discoverable": "yes"},
    ]
    for change in bad:
        with pytest.raises(InvalidInput):
            store.update(dataset_id, change, actor="t")
    row = store.update(dataset_id, {"columns": {"power_factor": None}}, actor="t")
    assert "power_factor" not in row.columns and "kwh_interval" in row.columns
    with pytest.raises(Conflict):
        store.update(dataset_id, {"tags": ["x"]}, actor="t", base_revision=row.revision - 1)
