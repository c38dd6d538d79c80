"""POST /v1/exports (start) and GET /v1/exports/{id} (status, lineage, presigned URLs)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from gateway.deps import PlatformDep, require_role, require_scope
from gateway.query_exports import export_view, start_export
from gateway.schemas import ExportCreate, ExportPublic
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


@router.get("/{export_id}", dependencies=[require_scope("query")])
async def get_export(export_id: str, principal: Exporter, platform: PlatformDep) -> ExportPublic:
    """Status and lineage; presigned URLs once it succeeded and its grants are still live."""
    view = await run_in_threadpool(export_view, platform, principal, export_id)
    return ExportPublic.model_validate(view)
