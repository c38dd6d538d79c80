"""Ingest jobs and their quarantined rows."""

from __future__ import annotations

import json
from collections.abc import Iterator

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from catalog.models import Job
from gateway.deps import PlatformDep, PrincipalDep
from gateway.errors import Forbidden
from gateway.schemas import JobOut
from gateway.services import Platform
from policies.model import Principal

router = APIRouter(prefix="/v1/jobs", tags=["ingest"])


def job_out(job: Job) -> JobOut:
    links = {"self": f"/v1/jobs/{job.id}", "dataset": f"/v1/datasets/{job.dataset_id}"}
    if job.quarantine_key:
        links["quarantine"] = f"/v1/jobs/{job.id}/quarantine"
    return JobOut(
        id=job.id,
        dataset_id=job.dataset_id,
        status=job.status,  # type: ignore[arg-type]  # the column holds only JobOut's literals
        filename=job.filename,
        encoding=job.encoding,
        format=job.format,
        source_sha256=job.source_sha256,
        source_bytes=job.source_bytes,
        rows_read=job.rows_read,
        rows_valid=job.rows_valid,
        rows_rejected=job.rows_rejected,
        progress=job.progress,
        version=job.version,
        attempts=job.attempts,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        error=job.error,
        links=links,
    )


def _visible_job(platform: Platform, principal: Principal, job_id: str) -> Job:
    """Jobs belong to the dataset's organisation; other callers get a 403 naming the job."""
    job = platform.jobs.get(job_id)
    dataset = platform.registry.get_dataset(job.dataset_id)
    if dataset.org_id != principal.org_id and not principal.has_role("admin"):
        raise Forbidden("only the dataset's own organisation may read its jobs", job=job_id)
    return job


@router.get("/{job_id}")
def get_job(job_id: str, principal: PrincipalDep, platform: PlatformDep) -> JobOut:
    return job_out(_visible_job(platform, principal, job_id))


@router.get("/{job_id}/quarantine")
def get_quarantine(
    job_id: str, principal: PrincipalDep, platform: PlatformDep
) -> StreamingResponse:
    """Rejected rows with the reason per row, as a JSON array (streamed)."""
    job = _visible_job(platform, principal, job_id)
    if not job.quarantine_key:
        return StreamingResponse(iter([b"[]"]), media_type="application/json")
    stream = platform.lake.store_for_bucket(job.source_bucket).open_stream(
        job.source_bucket, job.quarantine_key
    )
    return StreamingResponse(_json_array(stream), media_type="application/json")


def _json_array(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Turn JSON Lines into one JSON array without holding the file in memory."""
    yield b"["
    first, pending = True, b""
    for chunk in chunks:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if line.strip():
                json.loads(line)  # never emit a malformed document
                yield (b"" if first else b",\n") + line
                first = False
    if pending.strip():
        yield (b"" if first else b",\n") + pending
    yield b"]"
