"""Catalog search on the real catalog databases (SQLite and PostgreSQL).

The corpus mixes scripts on purpose: a Dongguan dataset written in Simplified Chinese, a
Hong Kong one in Traditional, an English one, and a dataset that mentions 用电量 only in its
description.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from catalog.database import make_engine, session_factory, upgrade_to_head
from catalog.glossary import Glossary
from catalog.metadata import MetadataStore
from catalog.registry import Registry
from catalog.search import CatalogSearch, Filters
from tests.conftest import fresh_postgres_url
from tests.factories import REGISTRATION, suffix


@pytest.fixture
def sessions(catalog_url: str):
    engine = make_engine(catalog_url)
    upgrade_to_head(engine)
    yield session_factory(engine)
    engine.dispose()


def column(name: str, *, source: str | None = None, pi: str | None = "non_pi") -> dict[str, Any]:
    found: dict[str, Any] = {"name": name, "type": "string", "pi": pi}
    if source:
        found["source"] = source
    return found


CORPUS: list[dict[str, Any]] = [
    {
        "name": "dg_power",
        "region": "DG",
        "title": "dg power",
        "columns": [column("meter_id", source="设备编号"), column("kwh", source="用电量(度)")],
        "meta": {
            "title": {"zh-Hans": "东莞工厂用电量（15分钟）", "en": "Dongguan factory power use"},
            "description": {"en": "Quarter-hour readings of the plant's main switchboards."},
            "keywords": {"zh-Hans": ["电表", "工厂"]},
            "tags": ["manufacturing", "utilities"],
            "columns": {"kwh": {"en": "Active energy in the interval", "zh-Hans": "区间有功电量"}},
        },
    },
    {
        "name": "hk_shipments",
        "region": "HK",
        "title": "hk shipments",
        "columns": [column("container_no"), column("driver_hkid", pi="pi_direct_id")],
        "meta": {
            "title": {"zh-Hant": "跨境陸路貨運記錄", "en": "Cross-boundary road shipments"},
            "description": {"zh-Hant": "香港與深圳之間的貨櫃車運輸"},
            "tags": ["logistics"],
        },
    },
    {
        "name": "mo_maintenance",
        "region": "MO",
        "title": "mo maintenance",
        "columns": [column("work_order")],
        "meta": {
            "title": {"zh-Hant": "冷鏈倉庫設備維修記錄", "en": "Cold-chain warehouse maintenance"},
            "tags": ["logistics", "maintenance"],
        },
    },
    {
        "name": "sz_line_meters",
        "region": "SZ",
        "title": "sz line meters",
        "columns": [column("line"), column("reading")],
        "meta": {
            "title": {"en": "SMT line energy meters"},
            "description": {"en": "Sub-meters on each surface-mount line."},
            "tags": ["manufacturing"],
        },
    },
    {
        "name": "gz_archive",
        "region": "GZ",
        "title": "gz archive",
        "columns": [column("sensor"), column("value")],
        "meta": {
            "title": {"en": "Plant telemetry archive"},
            "description": {"zh-Hans": "历史遥测数据，包含用电量字段"},
        },
    },
]


def load_corpus(sessions: sessionmaker[Session]) -> dict[str, str]:
    registry, store = Registry(sessions), MetadataStore(sessions)
    ids: dict[str, str] = {}
    for spec in CORPUS:
        tag = suffix()
        org = registry.create_org(
            name=f"{spec['region']} provider {tag}",
            slug=f"p_{spec['region'].lower()}_{tag}",
            kind="provider",
            region=spec["region"],
            registration_id=REGISTRATION[spec["region"]],
        )
        dataset = registry.create_dataset(
            org=org,
            name=spec["name"],
            title=spec["title"],
            description="",
            classification="personal" if spec["name"] == "hk_shipments" else "internal",
            licence="",
            contract={"columns": spec["columns"]},
        )
        store.update(dataset.id, spec["meta"], actor="test")
        ids[spec["name"]] = dataset.id
    return ids


def names(search: CatalogSearch, ids: dict[str, str], query: str, **filters: Any) -> list[str]:
    by_id = {v: k for k, v in ids.items()}
    result = search.search(query, visible=set(ids.values()), filters=Filters(**filters))
    return [by_id[hit.dataset_id] for hit in result.hits]


def test_search_chinese_queries_match_across_scripts_and_rank_titles_first(sessions) -> None:
    ids = load_corpus(sessions)
    search = CatalogSearch(sessions)
    # Traditional query, Simplified documents: the title match ranks before the description
    # match (sz_line_meters sits between them: "energy" in its title, via the glossary)
    assert names(search, ids, "用電量") == ["dg_power", "sz_line_meters", "gz_archive"]
    # Simplified query, Traditional documents
    assert names(search, ids, "货运记录")[0] == "hk_shipments"
    assert names(search, ids, "冷链仓库")[0] == "mo_maintenance"
    # no spaces in Chinese: a phrase inside a longer title, and a longer run around it
    assert names(search, ids, "工厂用电")[0] == "dg_power"
    assert names(search, ids, "东莞工厂用电量数据")[0] == "dg_power"
    # column names, source headers and column docs are searched too
    assert names(search, ids, "有功电量")[0] == "dg_power"
    assert names(search, ids, "container")[0] == "hk_shipments"


def test_search_english_folds_case_stems_and_matches_prefixes(sessions) -> None:
    ids = load_corpus(sessions)
    search = CatalogSearch(sessions)
    assert names(search, ids, "METER")[0] == "sz_line_meters"
    assert names(search, ids, "shipment")[0] == "hk_shipments"
    assert names(search, ids, "shipm")[0] == "hk_shipments"
    assert names(search, ids, "ＳＭＴ")[0] == "sz_line_meters"  # full-width letters (NFKC)
    assert names(search, ids, "zzzz") == []


def test_search_glossary_links_chinese_and_english_terms(sessions) -> None:
    ids = load_corpus(sessions)
    search = CatalogSearch(sessions)
    found = names(search, ids, "能耗")
    assert set(found[:2]) == {"dg_power", "sz_line_meters"}  # 用电量 and "energy" titles
    assert "dg_power" in names(search, ids, "electricity")
    assert names(search, ids, "能源")[:2] == found[:2]
    result = search.search("能耗", visible=set(ids.values()))
    assert result.expanded == [{"query": "能耗", "synonyms": ["energy"]}]

    # the glossary is data: a new group takes effect at the next search
    assert names(search, ids, "reefer") == []
    glossary = Glossary(sessions)
    glossary.replace("reefer", [("冷鏈", "zh-Hant"), ("reefer", "en")], actor="steward")
    assert names(search, ids, "reefer") == ["mo_maintenance"]
    glossary.delete("reefer")
    assert names(search, ids, "reefer") == []


def test_search_filters_facets_and_visibility(sessions) -> None:
    ids = load_corpus(sessions)
    search = CatalogSearch(sessions)
    # no query: every match, by English title
    assert names(search, ids, "", region=("HK", "MO")) == ["mo_maintenance", "hk_shipments"]
    assert names(search, ids, "", tag=("logistics",), pi=True) == ["hk_shipments"]
    assert names(search, ids, "", classification=("personal",)) == ["hk_shipments"]
    everything = search.search("", visible=set(ids.values()))
    facets = {
        name: {f["value"]: f["count"] for f in values} for name, values in everything.facets.items()
    }
    assert facets["tag"] == {"manufacturing": 2, "logistics": 2, "maintenance": 1, "utilities": 1}
    assert facets["region"] == {"DG": 1, "GZ": 1, "HK": 1, "MO": 1, "SZ": 1}
    assert facets["pi"] == {False: 4, True: 1}
    assert facets["quality"] == {"unknown": 5}
    hidden = search.search("用电量", visible={ids["gz_archive"]})
    assert [h.dataset_id for h in hidden.hits] == [ids["gz_archive"]]


def test_search_index_follows_metadata_edits(sessions) -> None:
    ids = load_corpus(sessions)
    search = CatalogSearch(sessions)
    assert names(search, ids, "furnace") == []
    MetadataStore(sessions).update(
        ids["gz_archive"], {"keywords": {"en": ["furnace"]}}, actor="test"
    )
    assert names(search, ids, "furnaces") == ["gz_archive"]


@pytest.mark.integration
def test_search_gives_the_same_results_on_sqlite_and_postgres(tmp_path, postgres_server) -> None:
    queries = [
        "用電量",
        "用电量",
        "能耗",
        "货运",
        "冷鏈",
        "meter",
        "ener",
        "logistics",
        "東莞 power",
    ]
    outcomes = []
    for url in (f"sqlite:///{tmp_path / 'same.db'}", fresh_postgres_url(postgres_server)):
        engine = make_engine(url)
        upgrade_to_head(engine)
        sessions = session_factory(engine)
        ids = load_corpus(sessions)
        by_id = {v: k for k, v in ids.items()}
        search = CatalogSearch(sessions)
        outcome = {}
        for query in queries:
            result = search.search(query, visible=set(ids.values()))
            outcome[query] = [(by_id[h.dataset_id], h.score, h.matched) for h in result.hits]
        outcomes.append(outcome)
        engine.dispose()
    assert outcomes[0] == outcomes[1]
    assert all(outcomes[0][q] for q in queries)
