"""GET /v1/catalog/dcat: W3C DCAT 3 JSON-LD, parsed with pyld and a document loader that
refuses every remote fetch (the context is embedded from catalog/dcat_context.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pyld import jsonld
from pyld.jsonld import JsonLdError

from tests.factories import ENERGY_CSV, make_caller, make_dataset, wait_job

RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
DCAT = "http://www.w3.org/ns/dcat#"
DCT = "http://purl.org/dc/terms/"
CONTEXT = json.loads(
    (Path(__file__).parents[2] / "catalog" / "dcat_context.json").read_text(encoding="utf-8")
)["@context"]


def refuse_remote(url: str, options: Any = None) -> Any:
    raise JsonLdError(
        f"remote fetch refused: {url}", "jsonld.LoadDocumentError", code="loading document failed"
    )


@pytest.fixture
def backend() -> str:
    return "local"


def triples(document: dict[str, Any]) -> list[tuple[str, str, Any]]:
    dataset = jsonld.to_rdf(document, {"documentLoader": refuse_remote})
    found = []
    for quad in dataset["@default"]:
        obj = quad["object"]
        value = obj["value"] if obj["type"] != "literal" else (obj["value"], obj.get("language"))
        found.append((quad["subject"]["value"], quad["predicate"]["value"], value))
    return found


def undefined_terms(node: Any, container: str | None = None) -> set[str]:
    """Keys the embedded context does not define (JSON-LD would silently drop them)."""
    found: set[str] = set()
    if isinstance(node, list):
        for item in node:
            found |= undefined_terms(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if container == "@language" or key.startswith("@"):
                continue
            definition = CONTEXT.get(key)
            if definition is None:
                found.add(key)
                continue
            inner = definition.get("@container") if isinstance(definition, dict) else None
            found |= undefined_terms(value, inner if isinstance(inner, str) else None)
    return found


def test_dcat_lists_every_visible_dataset_and_no_invisible_one(client, platform) -> None:
    provider = make_caller(platform, client)
    listed = make_dataset(client, provider)
    unlisted = make_dataset(client, provider)
    other = make_dataset(client, make_caller(platform, client, region="HK"))
    client.patch(
        f"/v1/datasets/{listed['id']}/metadata",
        headers=provider.headers,
        json={
            "title": {"en": "Factory power", "zh-Hans": "工厂用电量", "zh-Hant": "工廠用電量"},
            "keywords": {"zh-Hans": ["能耗"], "en": ["energy"]},
            "tags": ["manufacturing", "能源"],
            "update_frequency": "daily",
            "contact": {"name": "Desk", "email": "desk@example.com"},
        },
    ).raise_for_status()
    client.patch(
        f"/v1/datasets/{unlisted['id']}/metadata",
        headers=provider.headers,
        json={"discoverable": False},
    ).raise_for_status()
    job = client.post(
        f"/v1/datasets/{listed['id']}/uploads",
        headers=provider.headers,
        content=ENERGY_CSV,
        params={"filename": "m.csv"},
    ).json()
    assert wait_job(client, provider, job["id"])["status"] == "succeeded"

    consumer = make_caller(platform, client, region="HK", role="consumer")
    response = client.get("/v1/catalog/dcat", headers=consumer.headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/ld+json")
    document = response.json()
    assert document["@context"] == CONTEXT
    assert undefined_terms(document) == set()

    found = triples(document)
    base = str(platform.settings.public_url).rstrip("/")
    iri = {d["id"]: f"{base}/v1/datasets/{d['id']}" for d in (listed, unlisted, other)}
    datasets = {s for s, p, o in found if p == RDF_TYPE and o == DCAT + "Dataset"}
    assert datasets == {iri[listed["id"]], iri[other["id"]]}
    assert (f"{base}/v1/catalog/dcat", DCAT + "dataset", iri[listed["id"]]) in found

    titles = {o for s, p, o in found if s == iri[listed["id"]] and p == DCT + "title"}
    assert titles == {
        ("Factory power", "en"),
        ("工厂用电量", "zh-hans"),  # pyld lower-cases language tags (BCP 47 is case-insensitive)
        ("工廠用電量", "zh-hant"),
    }
    keywords = {o for s, p, o in found if s == iri[listed["id"]] and p == DCAT + "keyword"}
    assert keywords == {("能耗", "zh-hans"), ("energy", "en")}
    facts = {(p, o) for s, p, o in found if s == iri[listed["id"]]}
    frequency = "http://publications.europa.eu/resource/authority/frequency/DAILY"
    assert (DCT + "accrualPeriodicity", frequency) in facts
    assert (DCAT + "version", ("1", None)) in facts

    # the owner also sees its unlisted dataset
    owner = triples(client.get("/v1/catalog/dcat", headers=provider.headers).json())
    assert iri[unlisted["id"]] in {s for s, p, o in owner if o == DCAT + "Dataset"}


def test_dcat_parsing_never_fetches_remote_contexts() -> None:
    with pytest.raises(JsonLdError):
        jsonld.expand(
            {"@context": "https://www.w3.org/ns/dcat3.jsonld", "@id": "urn:x", "title": "x"},
            {"documentLoader": refuse_remote},
        )
