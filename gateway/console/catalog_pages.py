"""Catalog pages: the dataset list with search and filters, and a dataset's page (schema
with column tags, versions, quality trend, column distributions)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.responses import Response

from gateway.console.context import UserConsole

router = APIRouter(prefix="/console", include_in_schema=False)

CLASSIFICATIONS = ("public", "internal", "restricted", "personal", "important")
REGIONS = ("GZ", "SZ", "DG", "HK", "MO")
QUALITY = ("high", "medium", "low", "unknown")


@router.get("")
async def home(console: UserConsole) -> Response:
    return console.redirect("/console/catalog")


@router.get("/catalog")
async def catalog(
    console: UserConsole,
    q: Annotated[str, Query(max_length=200)] = "",
    region: Annotated[str, Query(max_length=8)] = "",
    classification: Annotated[str, Query(max_length=20)] = "",
    tag: Annotated[str, Query(max_length=60)] = "",
    quality: Annotated[str, Query(max_length=10)] = "",
) -> Response:
    filters = {
        "q": q.strip(),
        "region": region,
        "classification": classification,
        "tag": tag,
        "quality": quality,
    }
    search = await console.api.optional("/v1/catalog/search", None, limit=100, **filters)
    if search is not None:
        datasets = search.get("hits", [])
        facets = {
            name: {str(v.get("value")): v.get("count") for v in values}
            for name, values in (search.get("facets") or {}).items()
        }
        searched = True
    else:  # a gateway without the search API: the plain list, filtered by the API's fields
        datasets = await console.api.get("/v1/datasets")
        facets = {}
        searched = not any(filters.values())
    return console.render(
        "catalog.html",
        datasets=[_dataset_card(d) for d in datasets],
        filters=filters,
        facets=facets,
        searched=searched,
        regions=REGIONS,
        classifications=CLASSIFICATIONS,
        qualities=QUALITY,
        expanded=(search or {}).get("expanded", []),
    )


def _dataset_card(item: dict[str, Any]) -> dict[str, Any]:
    """A search hit (``dataset_id``, ``titles``, ``description`` per language…) or a plain
    dataset, in one shape for the template."""
    card = dict(item)
    card.setdefault("id", item.get("dataset_id"))
    if isinstance(item.get("description"), dict):
        card["descriptions"] = item["description"]
    return card


@router.get("/datasets/{dataset_id}")
async def dataset_page(dataset_id: str, console: UserConsole) -> Response:
    dataset = await console.api.get(f"/v1/datasets/{dataset_id}")
    metadata = await console.api.optional(f"/v1/datasets/{dataset_id}/metadata", {})
    versions = await console.api.get(f"/v1/datasets/{dataset_id}/versions")
    versions = sorted(versions, key=lambda v: v["version"], reverse=True)
    current = next((v for v in versions if v["version"] == dataset.get("current_version")), None)
    current = current or (versions[0] if versions else None)
    return console.render(
        "dataset.html",
        dataset=dataset,
        versions=versions,
        current=current,
        metadata=metadata,
        columns=_columns(dataset, current, metadata),
        own=console.me is not None and dataset.get("org") == console.me.get("org_slug"),
    )


def _columns(
    dataset: dict[str, Any], version: dict[str, Any] | None, metadata: dict[str, Any]
) -> list[dict[str, Any]]:
    """Contract columns joined with the version's schema (PI classes found by the scan),
    the provider's column docs per language and the version's statistics."""
    contract_columns = {c["name"]: dict(c) for c in dataset.get("contract", {}).get("columns", [])}
    for entry in (version or {}).get("schema", []) or []:
        if isinstance(entry, dict) and entry.get("name") in contract_columns:
            column = contract_columns[entry["name"]]
            if column.get("pi") is None and entry.get("pi"):
                column["pi"] = entry["pi"]  # the scan's suggestion, until confirmed
                column["pi_suggested"] = True
    for doc in metadata.get("columns", []) or []:
        if doc.get("name") in contract_columns and doc.get("doc"):
            contract_columns[doc["name"]]["docs"] = doc["doc"]
    stats = (version or {}).get("stats", {}) or {}
    stats = stats.get("columns", stats) if isinstance(stats, dict) else {}
    names = list(contract_columns)
    for name in stats:
        if name not in contract_columns:
            names.append(name)
    rows = []
    for name in names:
        column = dict(contract_columns.get(name, {"name": name}))
        column["stats"] = stats.get(name) if isinstance(stats.get(name), dict) else {}
        column["tags"] = _tags(column)
        rows.append(column)
    return rows


def _tags(column: dict[str, Any]) -> list[str]:
    tags = []
    pi = column.get("pi")
    if pi and pi != "non_pi":
        tags.append(str(pi))
    for key in ("validator", "unit"):
        if column.get(key):
            tags.append(str(column[key]))
    if column.get("nullable") is False:
        tags.append("required")
    tags.extend(str(t) for t in column.get("tags", []) or [])
    return tags
