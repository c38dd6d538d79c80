"""Ingest jobs: queued → running → succeeded | failed, with leases.

A job is claimed with a lease that its runner renews while it works. A job whose
lease ran out (its process died) is claimable again, so a crash mid-job leaves
the last good version intact and the job retried, by any gateway process.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from catalog.errors import NotFound
from catalog.models import Job, utcnow

LEASE = timedelta(seconds=60)
MAX_ATTEMPTS = 3


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
            raise NotFound("job", job_id)
        return job

    def claim(self, job_id: str, *, now: datetime | None = None) -> bool:
        """Take the lease on a queued job, or on a running one whose lease expired."""
        now = now or utcnow()
        with self.sessions.begin() as session:
            result = session.execute(
                update(Job)
                .where(
                    Job.id == job_id,
                    Job.attempts < MAX_ATTEMPTS,
                    or_(
                        Job.status == "queued", (Job.status == "running") & (Job.lease_until < now)
                    ),
                )
                .values(
                    status="running",
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
                    select(Job.id)
                    .where(
                        Job.attempts < MAX_ATTEMPTS,
                        or_(
                            Job.status == "queued",
                            (Job.status == "running") & (Job.lease_until < now),
                        ),
                    )
                    .order_by(Job.created_at)
                    .limit(limit)
                )
            )

    def progress(self, job_id: str, **fields: Any) -> None:
        """Record progress and renew the lease."""
        with self.sessions.begin() as session:
            session.execute(
                update(Job)
                .where(Job.id == job_id)
                .values(lease_until=utcnow() + self.lease, **fields)
            )

    def finish(self, job_id: str, *, status: str, **fields: Any) -> None:
        with self.sessions.begin() as session:
            session.execute(
                update(Job)
                .where(Job.id == job_id)
                .values(status=status, finished_at=utcnow(), lease_until=None, **fields)
            )

    def exhaust_stale(self, *, now: datetime | None = None) -> int:
        """Fail jobs that crashed ``MAX_ATTEMPTS`` times, so they stop looking alive."""
        now = now or utcnow()
        with self.sessions.begin() as session:
            result = session.execute(
                update(Job)
                .where(Job.status == "running", Job.lease_until < now, Job.attempts >= MAX_ATTEMPTS)
                .values(
                    status="failed",
                    finished_at=now,
                    error={
                        "code": "job_abandoned",
                        "message": f"the job's worker stopped {MAX_ATTEMPTS} times; "
                        "upload the file again",
                    },
                )
            )
            return int(result.rowcount)  # type: ignore[attr-defined]
