"""Ingest jobs: status and progress, retry, and their quarantined rows.

Who may do what: the dataset's own organisation (and admins) read a job; only the
dataset's organisation with the provider role retries it or reads its quarantine, which
holds the rejected rows as uploaded (admins, stewards and consumers of the platform
never see raw rows that did not pass validation).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from catalog.errors import NotFound
from catalog.models import Job, aware, utcnow
from gateway.deps import PlatformDep, PrincipalDep, require_scope
from gateway.errors import Forbidden
from gateway.schemas import JobOut, QuarantineRow, QuarantineRowsPage, UploadMode
from gateway.services import Platform
from ingest.quarantine import MAX_PAGE, PARQUET_MEDIA_TYPE
from policies.model import Principal

router = APIRouter(prefix="/v1/jobs", tags=["ingest"])


def job_out(job: Job, *, now: datetime | None = None) -> JobOut:
    links = {"self": f"/v1/jobs/{job.id}", "dataset": f"/v1/datasets/{job.dataset_id}"}
    if job.quarantine_key:
        links["quarantine"] = f"/v1/jobs/{job.id}/quarantine"
    if job.status == "failed":
        links["retry"] = f"/v1/jobs/{job.id}/retry"
    rate, eta = _pace(job, now or utcnow())
    return JobOut(
        id=job.id,
        dataset_id=job.dataset_id,
        status=job.status,  # type: ignore[arg-type]  # the column holds only JobOut's literals
        phase=job.phase,  # type: ignore[arg-type]
        mode=UploadMode(job.mode),
        filename=job.filename,
        encoding=job.encoding,
        format=job.format,
        source_sha256=job.source_sha256,
        source_bytes=job.source_bytes,
        rows_read=job.rows_read,
        rows_valid=job.rows_valid,
        rows_rejected=job.rows_rejected,
        progress=job.progress,
        rows_per_second=rate,
        eta_seconds=eta,
        version=job.version,
        attempts=job.attempts,
        worker=job.worker,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        error=job.error,
        links=links,
    )


def _pace(job: Job, now: datetime) -> tuple[float | None, float | None]:
    """Rows per second of the current attempt, and the seconds left at that pace (from the
    share of bytes read; unknown until some progress is recorded)."""
    if job.started_at is None or job.status not in ("running", "succeeded", "failed"):
        return None, None
    started = aware(job.started_at)
    end = aware(job.finished_at) if job.finished_at and job.status != "running" else now
    elapsed = (end - started).total_seconds()
    if elapsed <= 0:
        return None, None
    rate = round(job.rows_read / elapsed, 1)
    if job.status != "running" or job.phase != "reading" or not 0 < job.progress < 1:
        return rate, None
    return rate, round(elapsed * (1 - job.progress) / job.progress, 1)


def _visible_job(platform: Platform, principal: Principal, job_id: str) -> Job:
    """Jobs belong to the dataset's organisation; other callers get a 403 naming the job."""
    job = platform.jobs.get(job_id)
    dataset = platform.registry.get_dataset(job.dataset_id)
    if dataset.org_id != principal.org_id and not principal.has_role("admin"):
        raise Forbidden("only the dataset's own organisation may read its jobs", job=job_id)
    return job


def _providers_job(platform: Platform, principal: Principal, job_id: str, action: str) -> Job:
    """The dataset's own organisation, with the provider role itself (an admin token of
    another organisation does not count)."""
    job = platform.jobs.get(job_id)
    dataset = platform.registry.get_dataset(job.dataset_id)
    if dataset.org_id != principal.org_id or "provider" not in principal.roles:
        raise Forbidden(
            f"only the dataset's provider (its organisation, provider role) may {action}",
            job=job_id,
            dataset=dataset.id,
        )
    return job


@router.get("/{job_id}", dependencies=[require_scope("datasets:read")])
def get_job(job_id: str, principal: PrincipalDep, platform: PlatformDep) -> JobOut:
    return job_out(_visible_job(platform, principal, job_id))


@router.post("/{job_id}/retry", status_code=202, dependencies=[require_scope("datasets:write")])
def retry_job(job_id: str, principal: PrincipalDep, platform: PlatformDep) -> JobOut:
    """Queue a failed job again, e.g. after fixing the dataset's contract; 409 otherwise."""
    _providers_job(platform, principal, job_id, "retry its jobs")
    return job_out(platform.ingest.retry(job_id, actor=principal.client_id))


@router.get(
    "/{job_id}/quarantine", response_model=None, dependencies=[require_scope("datasets:write")]
)
async def get_quarantine(
    job_id: str,
    principal: PrincipalDep,
    platform: PlatformDep,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    fmt: Annotated[
        Literal["json", "parquet"],
        Query(alias="format", description="json: a page of rows; parquet: the whole report"),
    ] = "json",
) -> QuarantineRowsPage | StreamingResponse:
    """Rejected rows with the reason per row: a JSON page, or the Parquet report."""
    job = await run_in_threadpool(
        _providers_job, platform, principal, job_id, "read its rejected rows"
    )
    if fmt == "parquet":
        return await run_in_threadpool(_report_download, platform, job)
    page = await run_in_threadpool(platform.ingest.quarantine_page, job, offset=offset, limit=limit)
    return QuarantineRowsPage(
        rows=[QuarantineRow(**row) for row in page.rows],
        total=page.total,
        offset=page.offset,
        limit=page.limit,
    )


def _report_download(platform: Platform, job: Job) -> StreamingResponse:
    found = platform.ingest.quarantine_file(job)
    if found is None:  # nothing rejected: an empty report would need the source headers
        raise NotFound("quarantine report", job.id, "the job rejected no rows")
    stream, media_type = found
    name = f"quarantine-{job.id}{'.parquet' if media_type == PARQUET_MEDIA_TYPE else '.jsonl'}"
    return StreamingResponse(
        stream,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
