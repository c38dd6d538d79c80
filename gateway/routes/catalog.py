"""Catalog discovery: search, glossary, DCAT and lineage of queries and exports."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from catalog.errors import InvalidInput, NotFound
from catalog.glossary import Glossary
from catalog.models import OAuthClient
from catalog.regions import Region
from catalog.registry import CLASSIFICATIONS
from catalog.search import Filters, SearchResult
from gateway.catalog_schemas import (
    Access,
    GlossaryConcept,
    GlossaryTermIn,
    GlossaryUpdate,
    LineageGraph,
    QualityBrief,
    SearchHit,
    SearchPage,
)
from gateway.catalog_service import CatalogView
from gateway.deps import PlatformDep, PrincipalDep, require_role, require_scope
from policies.model import Principal

router = APIRouter(prefix="/v1/catalog", tags=["catalog"])
Steward = Annotated[Principal, Depends(require_role("steward", "admin"))]
QUALITY = ("high", "medium", "low", "unknown")


@router.get("/search", dependencies=[require_scope("datasets:read")])
def search(
    principal: PrincipalDep,
    platform: PlatformDep,
    q: Annotated[str, Query(max_length=200, description="Words in en, 简体 or 繁體.")] = "",
    region: Annotated[list[str] | None, Query(description="GZ, SZ, DG, HK, MO")] = None,
    tag: Annotated[list[str] | None, Query()] = None,
    classification: Annotated[list[str] | None, Query()] = None,
    org: Annotated[list[str] | None, Query(description="Organisation slug.")] = None,
    pi: Annotated[bool | None, Query(description="Holds personal information.")] = None,
    quality: Annotated[list[str] | None, Query(description=", ".join(QUALITY))] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
) -> SearchPage:
    """Ranked search over titles, keywords, tags, column names and docs, publisher and
    descriptions, with facets. Finds every dataset the caller may discover, including
    those it holds no grant on (``access: none``: metadata only)."""
    filters = Filters(
        region=_allowed("region", [r.upper() for r in region or ()], [r.value for r in Region]),
        tag=tuple(t.lower() for t in tag or () if t),
        classification=_allowed("classification", classification, CLASSIFICATIONS),
        org=tuple(o for o in org or () if o),
        pi=pi,
        quality=_allowed("quality", quality, QUALITY),
    )
    view = CatalogView(platform, principal)
    result = view.search(q, filters, limit=limit, offset=offset)
    return _page(view, q, result, limit, offset)


def _allowed(name: str, given: list[str] | None, valid: Sequence[str]) -> tuple[str, ...]:
    """Filter values (empty ones ignored); an unknown value is a 422 naming the valid ones."""
    values = tuple(v for v in given or () if v)
    unknown = sorted(set(values) - set(valid))
    if unknown:
        raise InvalidInput(
            f"{name} {', '.join(unknown)} is not one of {', '.join(valid)}", field=name
        )
    return values


def _page(view: CatalogView, q: str, result: SearchResult, limit: int, offset: int) -> SearchPage:
    hits = []
    cards = view.load(hit.dataset_id for hit in result.hits)
    for hit in result.hits:
        dataset, org, meta = cards[hit.dataset_id]
        hits.append(
            SearchHit(
                dataset_id=dataset.id,
                sql_name=f"{org.slug}.{dataset.name}",
                org=org.slug,
                name=dataset.name,
                title=dataset.title,
                titles=dict(meta.title) if meta else {},
                description=dict(meta.description) if meta else {},
                region=dataset.region,
                classification=dataset.classification,
                tags=list(hit.facets["tags"]),
                pi=bool(hit.facets["pi"]),
                quality=QualityBrief(
                    score=hit.facets["quality_score"], bucket=hit.facets["quality"]
                ),
                current_version=dataset.current_version,
                access=Access(view.access(dataset)),
                score=hit.score,
                matched=list(hit.matched),
            )
        )
    return SearchPage.model_validate(
        {
            "query": q,
            "total": result.total,
            "offset": offset,
            "limit": limit,
            "hits": hits,
            "facets": result.facets,
            "expanded": result.expanded,
        }
    )


# glossary ----------------------------------------------------------------------------------
@router.get("/glossary", dependencies=[require_scope("datasets:read")])
def list_glossary(_principal: PrincipalDep, platform: PlatformDep) -> list[GlossaryConcept]:
    return [_concept_out(c.concept, c.terms) for c in Glossary(platform.sessions).concepts()]


@router.put("/glossary/{concept}", dependencies=[require_scope("access:approve", "admin")])
def put_glossary(
    concept: str, body: GlossaryUpdate, principal: Steward, platform: PlatformDep
) -> GlossaryConcept:
    """Replace (or create) a synonym group. Stewards and admins only."""
    saved = Glossary(platform.sessions).replace(
        concept, [(t.term, t.lang) for t in body.terms], actor=principal.client_id
    )
    platform.audit.append(
        actor=principal.client_id,
        action="glossary.update",
        resource=f"glossary:{concept}",
        outcome="updated",
        detail={"terms": [t for t, _ in saved.terms]},
    )
    return _concept_out(saved.concept, saved.terms)


@router.delete(
    "/glossary/{concept}", status_code=204, dependencies=[require_scope("access:approve", "admin")]
)
def delete_glossary(concept: str, principal: Steward, platform: PlatformDep) -> None:
    Glossary(platform.sessions).delete(concept)
    platform.audit.append(
        actor=principal.client_id,
        action="glossary.delete",
        resource=f"glossary:{concept}",
        outcome="deleted",
        detail={},
    )


def _concept_out(concept: str, terms: tuple[tuple[str, str], ...]) -> GlossaryConcept:
    return GlossaryConcept(
        concept=concept,
        terms=[GlossaryTermIn.model_validate({"term": t, "lang": lang}) for t, lang in terms],
    )


# DCAT --------------------------------------------------------------------------------------
@router.get("/dcat", response_class=JSONResponse, dependencies=[require_scope("datasets:read")])
def dcat(principal: PrincipalDep, platform: PlatformDep) -> JSONResponse:
    """W3C DCAT 3 JSON-LD of the datasets the caller may discover (context embedded)."""
    document = CatalogView(platform, principal).dcat()
    return JSONResponse(document, media_type="application/ld+json")


# lineage -----------------------------------------------------------------------------------
@router.get("/lineage/queries/{seq}", dependencies=[require_scope("datasets:read")])
def query_lineage(seq: int, principal: PrincipalDep, platform: PlatformDep) -> LineageGraph:
    """An allowed query (its audit sequence number) back to the raw uploads it read."""
    view = CatalogView(platform, principal)
    graph, actor = view.lineage().for_query(seq)
    with platform.sessions() as session:
        client = session.get(OAuthClient, actor)
    if client is None or not view.sees_reader(client.org_id):
        raise NotFound("query", seq, "GET /v1/audit lists queries (action query.run)")
    return LineageGraph.model_validate(graph.as_dict())


@router.get("/lineage/exports/{export_id}", dependencies=[require_scope("datasets:read")])
def export_lineage(export_id: str, principal: PrincipalDep, platform: PlatformDep) -> LineageGraph:
    """An export back to the versions it read and their raw upload objects."""
    view = CatalogView(platform, principal)
    graph, record = view.lineage().for_export(export_id)
    if not view.sees_reader(record.org_id):
        raise NotFound("export", export_id, "GET /v1/exports lists your exports")
    return LineageGraph.model_validate(graph.as_dict())
