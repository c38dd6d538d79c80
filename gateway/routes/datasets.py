"""Datasets, versions and uploads."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import anyio.from_thread
from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from catalog import quality
from catalog.errors import InvalidInput
from catalog.metadata import card
from catalog.metadata_models import DatasetMetadata
from catalog.models import Dataset, Organisation
from gateway.catalog_schemas import (
    LineageGraph,
    MetadataOut,
    MetadataUpdate,
    QualityTrend,
    VersionDiff,
)
from gateway.catalog_service import CatalogView, metadata_store
from gateway.deps import PlatformDep, PrincipalDep, require_role, require_scope
from gateway.errors import Forbidden
from gateway.routes.jobs import job_out
from gateway.schemas import DatasetCreate, DatasetOut, JobOut, UploadMode, VersionOut
from ingest.sources import resolve_format
from policies.discovery import metadata_edit_refusal
from policies.model import Principal

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])
UPLOAD_BLOCK_BYTES = 1 << 20
Provider = Annotated[Principal, Depends(require_role("provider"))]


def dataset_out(dataset: Dataset, org: Organisation) -> DatasetOut:
    return DatasetOut(
        id=dataset.id,
        org=org.slug,
        org_name=org.name,
        name=dataset.name,
        sql_name=f"{org.slug}.{dataset.name}",
        title=dataset.title,
        description=dataset.description,
        region=dataset.region,
        classification=dataset.classification,
        licence=dataset.licence,
        current_version=dataset.current_version,
        created_at=dataset.created_at,
        contract=dataset.contract,
    )


@router.post("", status_code=201, dependencies=[require_scope("datasets:write")])
def create_dataset(body: DatasetCreate, principal: Provider, platform: PlatformDep) -> DatasetOut:
    org = platform.registry.get_org(principal.org_id)
    dataset = platform.registry.create_dataset(
        org=org,
        name=body.name,
        title=body.title,
        description=body.description,
        classification=body.classification,
        licence=body.licence,
        contract=body.contract.model_dump(mode="json", exclude_none=True),
    )
    platform.audit.append(
        actor=principal.client_id,
        action="dataset.create",
        resource=f"dataset:{dataset.id}",
        outcome="created",
        detail={"sql_name": f"{org.slug}.{dataset.name}"},
    )
    return dataset_out(dataset, org)


@router.get("", dependencies=[require_scope("datasets:read")])
def list_datasets(principal: PrincipalDep, platform: PlatformDep) -> list[DatasetOut]:
    """Metadata of every discoverable dataset (``policies.discovery``); rows need a grant."""
    view = CatalogView(platform, principal)
    return [dataset_out(d, o) for d, o, _m in view.load(view.visible).values()]


@router.get("/{dataset_id}", dependencies=[require_scope("datasets:read")])
def get_dataset(dataset_id: str, principal: PrincipalDep, platform: PlatformDep) -> DatasetOut:
    dataset, org, _meta = CatalogView(platform, principal).require(dataset_id)
    return dataset_out(dataset, org)


@router.get("/{dataset_id}/versions", dependencies=[require_scope("datasets:read")])
def list_versions(
    dataset_id: str, principal: PrincipalDep, platform: PlatformDep
) -> list[VersionOut]:
    """Every version with its provenance, statistics and quality summary. Value statistics
    (min, max, mean, histogram) only for columns the caller may read."""
    view = CatalogView(platform, principal)
    dataset, _org, _meta = view.require(dataset_id)
    return [
        VersionOut.model_validate(view.version_view(dataset, v))
        for v in platform.registry.versions(dataset_id)
    ]


@router.get("/{dataset_id}/versions/diff", dependencies=[require_scope("datasets:read")])
def diff_versions(
    dataset_id: str,
    principal: PrincipalDep,
    platform: PlatformDep,
    from_version: Annotated[int, Query(alias="from", ge=1)],
    to_version: Annotated[
        int | None, Query(alias="to", ge=1, description="Default: current")
    ] = None,
) -> VersionDiff:
    """Schema and statistics differences between two versions."""
    view = CatalogView(platform, principal)
    dataset, _org, _meta = view.require(dataset_id)
    old = platform.registry.version(dataset_id, from_version)
    new = platform.registry.version(dataset_id, to_version)
    readable = view.readable(dataset, old) & view.readable(dataset, new)
    diff = quality.diff_versions(
        view.version_view(dataset, old), view.version_view(dataset, new), readable
    )
    return VersionDiff.model_validate(
        {"dataset_id": dataset_id, "from_version": old.version, "to_version": new.version, **diff}
    )


@router.get("/{dataset_id}/versions/{number}", dependencies=[require_scope("datasets:read")])
def get_version(
    dataset_id: str, number: int, principal: PrincipalDep, platform: PlatformDep
) -> VersionOut:
    view = CatalogView(platform, principal)
    dataset, _org, _meta = view.require(dataset_id)
    return VersionOut.model_validate(
        view.version_view(dataset, platform.registry.version(dataset_id, number))
    )


@router.get("/{dataset_id}/quality", dependencies=[require_scope("datasets:read")])
def quality_trend(dataset_id: str, principal: PrincipalDep, platform: PlatformDep) -> QualityTrend:
    """Quality score per version (oldest first), its direction, and the current summary."""
    view = CatalogView(platform, principal)
    dataset, _org, _meta = view.require(dataset_id)
    views = [view.version_view(dataset, v) for v in platform.registry.versions(dataset_id)]
    trend = quality.trend((v["version"], v["created_at"], v["quality"]) for v in views)
    current = next((v["quality"] for v in views if v["version"] == dataset.current_version), None)
    return QualityTrend.model_validate({"dataset_id": dataset_id, "current": current, **trend})


@router.get("/{dataset_id}/lineage", dependencies=[require_scope("datasets:read")])
def dataset_lineage(
    dataset_id: str, principal: PrincipalDep, platform: PlatformDep
) -> LineageGraph:
    """Raw upload objects → ingest jobs → versions → the queries and exports that read them.
    Readers other than the caller's organisation are shown to the owner, the region's
    stewards and admins only."""
    graph = CatalogView(platform, principal).dataset_lineage(dataset_id)
    return LineageGraph.model_validate(graph.as_dict())


@router.get("/{dataset_id}/metadata", dependencies=[require_scope("datasets:read")])
def get_metadata(dataset_id: str, principal: PrincipalDep, platform: PlatformDep) -> MetadataOut:
    dataset, org, meta = CatalogView(platform, principal).require(dataset_id)
    return metadata_out(dataset, org, meta)


@router.patch(
    "/{dataset_id}/metadata", dependencies=[require_scope("datasets:write", "access:approve")]
)
def patch_metadata(
    dataset_id: str, body: MetadataUpdate, principal: PrincipalDep, platform: PlatformDep
) -> MetadataOut:
    """Edit titles, descriptions and keywords (en / zh-Hans / zh-Hant), publisher, tags,
    update frequency, contact, column docs, licence and discoverability (the providing
    organisation's provider clients), or the classification (the region's stewards).
    Admins may edit everything."""
    view = CatalogView(platform, principal)
    dataset, org, _meta = view.require(dataset_id)
    changes = body.model_dump(mode="json", exclude_unset=True)
    base = changes.pop("base_revision", None)
    refusal = metadata_edit_refusal(principal, view.listings[dataset_id], set(changes))
    if refusal is not None:
        raise Forbidden(refusal, dataset=dataset_id, fields=sorted(changes))
    before = dataset.classification
    meta = metadata_store(platform).update(
        dataset_id, changes, actor=principal.client_id, base_revision=base
    )
    detail: dict[str, Any] = {"fields": sorted(changes), "revision": meta.revision}
    if "classification" in changes:
        detail["classification"] = {"from": before, "to": changes["classification"]}
    platform.audit.append(
        actor=principal.client_id,
        action="dataset.metadata",
        resource=f"dataset:{dataset_id}",
        outcome="updated",
        detail=detail,
    )
    return metadata_out(platform.registry.get_dataset(dataset_id), org, meta)


def metadata_out(dataset: Dataset, org: Organisation, meta: DatasetMetadata | None) -> MetadataOut:
    return MetadataOut.model_validate(
        {
            "dataset_id": dataset.id,
            "sql_name": f"{org.slug}.{dataset.name}",
            "org": org.slug,
            "region": dataset.region,
            "classification": dataset.classification,
            "licence": dataset.licence,
            **card(dataset, meta),
        }
    )


@router.post(
    "/{dataset_id}/uploads", status_code=202, dependencies=[require_scope("datasets:write")]
)
async def upload(
    dataset_id: str,
    request: Request,
    principal: Provider,
    platform: PlatformDep,
    encoding: Annotated[str, Query(description="Declared text encoding of the file.")] = "utf-8",
    filename: Annotated[str, Query(max_length=255)] = "",
    fmt: Annotated[
        str | None,
        Query(
            alias="format", description="csv, tsv, jsonl, parquet or xlsx (default: by extension)"
        ),
    ] = None,
    sheet: Annotated[str | None, Query(max_length=100, description="xlsx: sheet name")] = None,
    header_row: Annotated[int | None, Query(ge=1, le=1000, description="xlsx: header row")] = None,
    mode: Annotated[
        UploadMode,
        Query(description="replace: the version holds this file only; append: adds its rows"),
    ] = UploadMode.REPLACE,
) -> JobOut:
    """Upload a file as the body (``--data-binary @file.csv``) or as multipart field ``file``.

    The raw file is stored and a job queued (``202``); an ingest worker validates it and
    commits the version. Follow it with ``GET /v1/jobs/{id}``."""
    dataset = await run_in_threadpool(platform.registry.get_dataset, dataset_id)
    if dataset.org_id != principal.org_id:
        raise Forbidden("only the dataset's own organisation may upload to it", dataset=dataset_id)
    chunks, name = await _body_chunks(request, filename)
    file_format = resolve_format(fmt, name)
    options = {k: v for k, v in (("sheet", sheet), ("header_row", header_row)) if v is not None}
    received = await run_in_threadpool(
        platform.ingest.receive,
        chunks,
        encoding=encoding.lower(),
        fmt=file_format,
        dataset=dataset,
    )
    job = await run_in_threadpool(
        platform.ingest.submit,
        dataset,
        received,
        filename=name,
        encoding=encoding.lower(),
        actor=principal.client_id,
        fmt=file_format,
        options=options,
        mode=mode.value,
    )
    return job_out(job)


async def _body_chunks(request: Request, filename: str) -> tuple[Iterator[bytes], str]:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=4)
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise InvalidInput("multipart uploads need a file field named 'file'", field="file")
        name = filename or (upload.filename or "")

        def read() -> Iterator[bytes]:
            while chunk := upload.file.read(1 << 20):
                yield chunk

        return read(), name
    return _sync_iter(request), filename


def _sync_iter(request: Request) -> Iterator[bytes]:
    """Bridge the async request stream to the synchronous ingest receiver (runs in a thread)."""
    stream = request.stream().__aiter__()

    async def next_block() -> bytes | None:
        # the server hands over the body in pieces of ~64 kB; one thread hop per ~1 MiB
        # instead of per piece (a 1 GiB upload: ~1,000 hops, not ~16,000)
        pieces: list[bytes] = []
        size = 0
        while size < UPLOAD_BLOCK_BYTES:
            try:
                piece = await stream.__anext__()
            except StopAsyncIteration:
                break
            pieces.append(piece)
            size += len(piece)
        return b"".join(pieces) if pieces else None

    def chunks() -> Iterator[bytes]:
        while (block := anyio.from_thread.run(next_block)) is not None:
            if block:
                yield block

    return chunks()
