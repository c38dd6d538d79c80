"""W3C DCAT 3 as JSON-LD, with language-tagged literals (en, zh-Hans, zh-Hant).

The JSON-LD context ships with the package (``catalog/dcat_context.json``) and is embedded
in every document, so a harvester never fetches a context from the network. Each dataset
is a ``dcat:Dataset`` whose IRI is its API URL; its distribution is reached through the
gateway's governed query service (a ``dcat:DataService``), never through raw files.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from catalog.metadata_models import DatasetMetadata
from catalog.models import Dataset, DatasetVersion, Organisation

CONTEXT_FILE = Path(__file__).with_name("dcat_context.json")
FREQUENCY = "http://publications.europa.eu/resource/authority/frequency/"
FREQUENCIES = {
    "continuous": "CONT",
    "hourly": "HOURLY",
    "daily": "DAILY",
    "weekly": "WEEKLY",
    "monthly": "MONTHLY",
    "quarterly": "QUARTERLY",
    "annual": "ANNUAL",
    "irregular": "IRREG",
    "never": "NEVER",
}
REGION_LABELS = {
    "GZ": {"en": "Guangzhou", "zh-Hans": "广州", "zh-Hant": "廣州"},
    "SZ": {"en": "Shenzhen", "zh-Hans": "深圳", "zh-Hant": "深圳"},
    "DG": {"en": "Dongguan", "zh-Hans": "东莞", "zh-Hant": "東莞"},
    "HK": {"en": "Hong Kong SAR", "zh-Hans": "香港特别行政区", "zh-Hant": "香港特別行政區"},
    "MO": {"en": "Macao SAR", "zh-Hans": "澳门特别行政区", "zh-Hant": "澳門特別行政區"},
}
CATALOG_TITLE = {
    "en": "GBA Industrial Data Exchange catalog",
    "zh-Hans": "大湾区工业数据交易平台目录",
    "zh-Hant": "大灣區工業數據交易平台目錄",
}


@cache
def context() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(CONTEXT_FILE.read_text(encoding="utf-8"))["@context"]
    return loaded


@dataclass(frozen=True)
class DcatEntry:
    dataset: Dataset
    org: Organisation
    meta: DatasetMetadata | None
    version: DatasetVersion | None
    quality_score: float | None


def catalog_document(base_url: str, entries: Iterable[DcatEntry]) -> dict[str, Any]:
    base = base_url.rstrip("/")
    catalog_iri = f"{base}/v1/catalog/dcat"
    service_iri = f"{catalog_iri}#query-service"
    datasets = [_dataset(base, catalog_iri, service_iri, e) for e in entries]
    return {
        "@context": context(),
        "@id": catalog_iri,
        "@type": "Catalog",
        "title": CATALOG_TITLE,
        "homepage": f"{base}/console",
        "dataset": datasets,
        "service": [
            {
                "@id": service_iri,
                "@type": "DataService",
                "title": {"en": "Governed SQL query service", "zh-Hans": "受治理的SQL查询服务"},
                "endpointURL": f"{base}/v1/query",
                "endpointDescription": f"{base}/openapi.json",
                "servesDataset": [d["@id"] for d in datasets],
            }
        ],
    }


def _dataset(base: str, catalog_iri: str, service_iri: str, entry: DcatEntry) -> dict[str, Any]:
    dataset, org, meta, version = entry.dataset, entry.org, entry.meta, entry.version
    iri = f"{base}/v1/datasets/{dataset.id}"
    node: dict[str, Any] = {
        "@id": iri,
        "@type": "Dataset",
        "identifier": f"{org.slug}.{dataset.name}",
        "title": _texts(meta.title if meta else {}, dataset.title),
        "issued": _when(dataset.created_at),
        "publisher": _publisher(catalog_iri, org, meta),
        "spatial": _region(catalog_iri, dataset.region),
        "accessRights": {
            "@id": f"{catalog_iri}#classification-{dataset.classification}",
            "@type": "RightsStatement",
            "label": {"en": dataset.classification},
        },
        "distribution": [
            {
                "@id": f"{iri}#governed-query",
                "@type": "Distribution",
                "title": {"en": f"Governed SQL over {org.slug}.{dataset.name}"},
                "accessURL": f"{base}/v1/query",
                "accessService": service_iri,
                "mediaType": "https://www.iana.org/assignments/media-types/application/json",
            }
        ],
    }
    description = _texts(meta.description if meta else {}, dataset.description)
    if description:
        node["description"] = description
    if meta and meta.keywords:
        node["keyword"] = {lang: list(words) for lang, words in meta.keywords.items()}
    if meta and meta.tags:
        node["theme"] = [
            {"@id": f"{catalog_iri}#tag-{_fragment(t)}", "@type": "Concept", "prefLabel": {"en": t}}
            for t in meta.tags
        ]
    if meta and meta.update_frequency in FREQUENCIES:
        node["accrualPeriodicity"] = FREQUENCY + FREQUENCIES[meta.update_frequency]
    if dataset.licence:
        node["license"] = _licence(catalog_iri, dataset.licence)
    if meta and meta.contact:
        node["contactPoint"] = _contact(meta.contact)
    if version is not None:
        node["version"] = str(version.version)
        node["modified"] = _when(version.created_at)
        node["distribution"][0]["byteSize"] = version.bytes
    if entry.quality_score is not None:
        node["hasQualityMeasurement"] = [
            {
                "@type": "QualityMeasurement",
                "isMeasurementOf": f"{catalog_iri}#metric-valid-row-percent",
                "value": entry.quality_score,
            }
        ]
    return node


def _texts(texts: Mapping[str, Any], fallback: str) -> dict[str, str] | str:
    """A language map; a plain literal when the provider gave no language-tagged text."""
    tagged = {lang: str(text) for lang, text in texts.items() if text}
    return tagged or fallback


def _publisher(catalog_iri: str, org: Organisation, meta: DatasetMetadata | None) -> Any:
    names = {lang: str(n) for lang, n in (meta.publisher if meta else {}).items() if n}
    return {
        "@id": f"{catalog_iri}#org-{org.slug}",
        "@type": "Organization",
        "name": names or {"en": org.name},
    }


def _region(catalog_iri: str, region: str) -> dict[str, Any]:
    return {
        "@id": f"{catalog_iri}#region-{region}",
        "@type": "Location",
        "prefLabel": REGION_LABELS.get(region, {"en": region}),
    }


def _licence(catalog_iri: str, licence: str) -> Any:
    if licence.startswith(("https://", "http://")):
        return licence
    return {
        "@id": f"{catalog_iri}#licence-{_fragment(licence)}",
        "@type": "LicenseDocument",
        "label": {"en": licence},
    }


def _contact(contact: Mapping[str, Any]) -> dict[str, Any]:
    node: dict[str, Any] = {"@type": "Kind"}
    if contact.get("name"):
        node["fn"] = contact["name"]
    if contact.get("email"):
        node["hasEmail"] = f"mailto:{contact['email']}"
    if contact.get("phone"):
        node["hasTelephone"] = "tel:" + "".join(
            ch for ch in contact["phone"] if ch.isdigit() or ch == "+"
        )
    if contact.get("url"):
        node["hasURL"] = contact["url"]
    return node


def _fragment(text: str) -> str:
    return quote(text.lower().replace(" ", "-"), safe="")


def _when(moment: datetime) -> str:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")
