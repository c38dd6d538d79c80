"""Ingest jobs: queued → running → succeeded | failed, with leases.

A worker claims a job with a lease (``worker`` = its host:pid) and renews it while
it works. A job whose lease ran out (its worker died) is claimable again, so a
crash mid-job leaves the last good version intact and the job runs again, on any
worker process sharing the catalog. A claim is one conditional ``UPDATE``: of
several workers racing for a job exactly one gets it.

A stopping worker *releases* the jobs it will not finish (back to ``queued``,
the attempt not counted); the dataset's provider may *retry* a ``failed`` job
(``queued`` again with its attempts reset).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from catalog.errors import NotFound
from catalog.models import Job, utcnow

LEASE = timedelta(seconds=60)
MAX_ATTEMPTS = 3
FINISHED = ("succeeded", "failed", "duplicate")


def _claimable(now: datetime) -> ColumnElement[bool]:
    return (Job.attempts < MAX_ATTEMPTS) & or_(
        Job.status == "queued", (Job.status == "running") & (Job.lease_until < now)
    )


class JobStore:
    def __init__(self, sessions: sessionmaker[Session], *, lease: timedelta = LEASE) -> None:
        self.sessions = sessions
        self.lease = lease

    def create(self, **fields: Any) -> Job:
        job = Job(**fields)
        with self.sessions.begin() as session:
            session.add(job)
        return job

    def get(self, job_id: str) -> Job:
        with self.sessions() as session:
            job = session.get(Job, job_id)
        if job is None:
            raise NotFound("job", job_id, "GET /v1/datasets/{id}/versions lists committed jobs")
        return job

    def claim(self, job_id: str, *, worker: str | None = None, now: datetime | None = None) -> bool:
        """Take the lease on a queued job, or on a running one whose lease expired."""
        now = now or utcnow()
        with self.sessions.begin() as session:
            result = session.execute(
                update(Job)
                .where(Job.id == job_id, _claimable(now))
                .values(
                    status="running",
                    phase="reading",
                    worker=worker,
                    lease_until=now + self.lease,
                    started_at=now,
                    attempts=Job.attempts + 1,
                )
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def claimable(self, *, now: datetime | None = None, limit: int = 20) -> list[str]:
        now = now or utcnow()
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(Job.id).where(_claimable(now)).order_by(Job.created_at).limit(limit)
                )
            )

    def claim_next(self, *, worker: str, now: datetime | None = None) -> str | None:
        """Claim the oldest claimable job; ``None`` when there is none (or others won them)."""
        for job_id in self.claimable(now=now, limit=8):
            if self.claim(job_id, worker=worker, now=now):
                return job_id
        return None

    def progress(self, job_id: str, *, worker: str | None = None, **fields: Any) -> bool:
        """Record progress and renew the lease; with ``worker``, only while it holds the lease.

        Returns whether the row was updated (False: the lease went to another worker)."""
        query = update(Job).where(Job.id == job_id, Job.status == "running")
        if worker is not None:
            query = query.where(Job.worker == worker)
        with self.sessions.begin() as session:
            result = session.execute(query.values(lease_until=utcnow() + self.lease, **fields))
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def renew(self, job_ids: Iterable[str], *, worker: str) -> set[str]:
        """Extend the leases ``worker`` holds on ``job_ids``; returns the ids it still holds."""
        ids = list(job_ids)
        if not ids:
            return set()
        with self.sessions.begin() as session:
            session.execute(
                update(Job)
                .where(Job.id.in_(ids), Job.worker == worker, Job.status == "running")
                .values(lease_until=utcnow() + self.lease)
            )
            held = session.scalars(
                select(Job.id).where(Job.id.in_(ids), Job.worker == worker, Job.status == "running")
            )
            return set(held)

    def finish(self, job_id: str, *, status: str, worker: str | None = None, **fields: Any) -> bool:
        """End an attempt: ``succeeded``/``failed`` (phase done) or ``queued`` to run again.

        With ``worker``, only while that worker holds the job (a worker whose lease went
        elsewhere must not overwrite the new attempt). Returns whether the row changed."""
        fields.setdefault("phase", "done" if status in FINISHED else "queued")
        if status == "queued":
            fields["worker"] = None
        query = update(Job).where(Job.id == job_id)
        if worker is not None:
            query = query.where(Job.worker == worker)
        with self.sessions.begin() as session:
            result = session.execute(
                query.values(status=status, finished_at=utcnow(), lease_until=None, **fields)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def release(self, job_id: str, *, worker: str) -> bool:
        """Hand a running job back to the queue without counting the attempt (a worker is
        stopping, or the job must run again against a newer version)."""
        with self.sessions.begin() as session:
            result = session.execute(
                update(Job)
                .where(Job.id == job_id, Job.worker == worker, Job.status == "running")
                .values(
                    status="queued",
                    phase="queued",
                    worker=None,
                    lease_until=None,
                    started_at=None,
                    progress=0.0,
                    attempts=Job.attempts - 1,
                )
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def retry(self, job_id: str) -> bool:
        """Queue a ``failed`` job again with its attempts reset; False if it is not failed."""
        with self.sessions.begin() as session:
            result = session.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == "failed")
                .values(
                    status="queued",
                    phase="queued",
                    worker=None,
                    attempts=0,
                    error=None,
                    started_at=None,
                    finished_at=None,
                    lease_until=None,
                    progress=0.0,
                    rows_read=0,
                    rows_valid=0,
                    rows_rejected=0,
                    quarantine_key=None,
                )
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def exhaust_stale(self, *, now: datetime | None = None) -> int:
        """Fail jobs whose worker stopped ``MAX_ATTEMPTS`` times, so they stop looking alive."""
        now = now or utcnow()
        with self.sessions.begin() as session:
            result = session.execute(
                update(Job)
                .where(
                    Job.attempts >= MAX_ATTEMPTS,
                    or_(
                        (Job.status == "running") & (Job.lease_until < now),
                        Job.status == "queued",
                    ),
                )
                .values(
                    status="failed",
                    phase="done",
                    finished_at=now,
                    lease_until=None,
                    error={
                        "code": "job_abandoned",
                        "message": f"the job was attempted {MAX_ATTEMPTS} times without "
                        "finishing; retry it with POST /v1/jobs/{id}/retry once the cause "
                        "is fixed",
                    },
                )
            )
            return int(result.rowcount)  # type: ignore[attr-defined]
