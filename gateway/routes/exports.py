"""POST /v1/exports (start), GET /v1/exports (the organisation's, newest first) and
GET /v1/exports/{id} (status, lineage, presigned URLs)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from gateway.deps import PlatformDep, require_role, require_scope
from gateway.query_exports import export_view, list_exports, start_export
from gateway.schemas import ExportCreate, ExportPublic, ExportSummary
from policies.model import Principal

router = APIRouter(prefix="/v1/exports", tags=["exports"])
Exporter = Annotated[Principal, Depends(require_role("consumer", "provider"))]


@router.post(
    "", status_code=202, response_model=ExportPublic, dependencies=[require_scope("query")]
)
async def create_export(
    body: ExportCreate, principal: Exporter, platform: PlatformDep
) -> JSONResponse:
    """Govern the SQL, start writing its result as Parquet; poll GET /v1/exports/{id}."""
    export = await run_in_threadpool(start_export, platform, principal, body.sql)
    view = await run_in_threadpool(export_view, platform, principal, export.id)
    out = ExportPublic.model_validate(view)
    return JSONResponse(
        out.model_dump(mode="json"),
        status_code=202,
        headers={"Location": f"/v1/exports/{export.id}", "Cache-Control": "no-store"},
    )


@router.get("", dependencies=[require_scope("query")])
async def my_exports(
    principal: Exporter,
    platform: PlatformDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[ExportSummary]:
    """Your organisation's exports, newest first (download links: GET /v1/exports/{id})."""
    views = await run_in_threadpool(list_exports, platform, principal, limit=limit)
    return [ExportSummary.model_validate(v) for v in views]


@router.get("/{export_id}", dependencies=[require_scope("query")])
async def get_export(export_id: str, principal: Exporter, platform: PlatformDep) -> ExportPublic:
    """Status and lineage; presigned URLs once it succeeded and its grants are still live."""
    view = await run_in_threadpool(export_view, platform, principal, export_id)
    return ExportPublic.model_validate(view)
