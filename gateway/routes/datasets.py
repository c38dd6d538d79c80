"""Datasets, versions and uploads."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import anyio.from_thread
from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from catalog.errors import InvalidInput
from catalog.models import Dataset, DatasetVersion, Organisation
from gateway.deps import PlatformDep, PrincipalDep, require_role, require_scope
from gateway.errors import Forbidden
from gateway.routes.jobs import job_out
from gateway.schemas import DatasetCreate, DatasetOut, JobOut, UploadMode, VersionOut
from ingest.sources import resolve_format
from ingest.stats import public_stats
from policies.model import Principal

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])
UPLOAD_BLOCK_BYTES = 1 << 20
Provider = Annotated[Principal, Depends(require_role("provider"))]


def dataset_out(dataset: Dataset, org: Organisation) -> DatasetOut:
    return DatasetOut(
        id=dataset.id,
        org=org.slug,
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


def version_out(version: DatasetVersion) -> VersionOut:
    quality: dict[str, Any] = {
        k: version.gx_result[k] for k in ("success", "statistics") if k in version.gx_result
    }
    return VersionOut(
        version=version.version,
        created_at=version.created_at,
        job_id=version.job_id,
        source_sha256=version.source_sha256,
        row_count=version.row_count,
        rejected_count=version.rejected_count,
        bytes=version.bytes,
        schema=version.schema,
        stats=public_stats(version.stats),
        quality=quality,
        files=len(version.files),
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
def list_datasets(_principal: PrincipalDep, platform: PlatformDep) -> list[DatasetOut]:
    """Metadata of every dataset is discoverable; rows need a grant."""
    return [dataset_out(d, o) for d, o in platform.registry.list_datasets()]


@router.get("/{dataset_id}", dependencies=[require_scope("datasets:read")])
def get_dataset(dataset_id: str, _principal: PrincipalDep, platform: PlatformDep) -> DatasetOut:
    dataset = platform.registry.get_dataset(dataset_id)
    return dataset_out(dataset, platform.registry.get_org(dataset.org_id))


@router.get("/{dataset_id}/versions", dependencies=[require_scope("datasets:read")])
def list_versions(
    dataset_id: str, _principal: PrincipalDep, platform: PlatformDep
) -> list[VersionOut]:
    platform.registry.get_dataset(dataset_id)
    return [version_out(v) for v in platform.registry.versions(dataset_id)]


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
        platform.ingest.receive, chunks, encoding=encoding.lower(), fmt=file_format
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
