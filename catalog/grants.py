"""Grant records (the decisions themselves are made in ``policies``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from catalog.errors import NotFound
from catalog.models import Grant, aware, utcnow


class GrantStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def create(self, **fields: Any) -> Grant:
        grant = Grant(**fields)
        with self.sessions.begin() as session:
            session.add(grant)
        return grant

    def live_for_org(self, org_id: str, *, now: datetime | None = None) -> list[Grant]:
        """Grants held by an organisation that are neither revoked nor expired."""
        return live_at(self.unrevoked_for_org(org_id), now or utcnow())

    def unrevoked_for_org(self, org_id: str) -> list[Grant]:
        """Grants held by an organisation that are not revoked (expired ones included:
        ``live_at`` tells them apart at a given moment)."""
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(Grant).where(Grant.org_id == org_id, Grant.revoked_at.is_(None))
                ).all()
            )

    def list(self, *, org_id: str | None = None) -> list[Grant]:
        query = select(Grant).order_by(Grant.created_at)
        if org_id is not None:
            query = query.where(Grant.org_id == org_id)
        with self.sessions() as session:
            return list(session.scalars(query))

    def get(self, grant_id: str) -> Grant:
        with self.sessions() as session:
            grant = session.get(Grant, grant_id)
        if grant is None:
            raise NotFound("grant", grant_id)
        return grant

    def revoke(self, grant_id: str, *, now: datetime | None = None) -> Grant:
        with self.sessions.begin() as session:
            grant = session.get(Grant, grant_id)
            if grant is None:
                raise NotFound("grant", grant_id)
            if grant.revoked_at is None:
                grant.revoked_at = now or utcnow()
            return grant


def live_at(grants: Iterable[Grant], now: datetime) -> list[Grant]:
    """The ``grants`` not expired at ``now`` (revocation is the caller's filter)."""
    return [g for g in grants if g.expires_at is None or aware(g.expires_at) > now]
