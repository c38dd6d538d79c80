"""The append-only, hash-chained audit log.

Each event's ``hash`` is sha256 over the previous hash and the event's canonical
JSON; ``prev_hash`` is unique, so two writers racing for the same predecessor
cannot both commit (the loser retries on the new head). ``verify`` recomputes
the chain.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from catalog.errors import Conflict
from catalog.models import AuditEvent, utcnow

GENESIS = "0" * 64


def event_hash(
    prev_hash: str,
    ts: datetime,
    actor: str,
    action: str,
    resource: str,
    outcome: str,
    detail: dict[str, Any],
) -> str:
    stamp = (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).astimezone(UTC).isoformat()
    canonical = json.dumps(
        [prev_hash, stamp, actor, action, resource, outcome, detail],
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class AuditLog:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def append(
        self,
        *,
        actor: str,
        action: str,
        resource: str,
        outcome: str,
        detail: dict[str, Any] | None = None,
    ) -> AuditEvent:
        detail = json.loads(json.dumps(detail or {}, default=str))
        for _attempt in range(20):
            with self.sessions() as session:
                head = session.scalar(
                    select(AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
                )
                prev = head or GENESIS
                ts = utcnow()
                event = AuditEvent(
                    ts=ts,
                    actor=actor,
                    action=action,
                    resource=resource,
                    outcome=outcome,
                    detail=detail,
                    prev_hash=prev,
                    hash=event_hash(prev, ts, actor, action, resource, outcome, detail),
                )
                session.add(event)
                try:
                    session.commit()
                except IntegrityError:
                    session.rollback()
                    continue
                return event
        raise Conflict("could not append to the audit log: too much contention")

    def recent(self, *, limit: int = 100, actor: str | None = None) -> list[AuditEvent]:
        query = select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(limit)
        if actor is not None:
            query = query.where(AuditEvent.actor == actor)
        with self.sessions() as session:
            return list(session.scalars(query))

    def verify(self) -> tuple[bool, int | None]:
        """(True, None) when the chain is intact, else (False, seq of the first bad event)."""
        prev = GENESIS
        with self.sessions() as session:
            for event in session.scalars(select(AuditEvent).order_by(AuditEvent.seq)):
                expected = event_hash(
                    prev,
                    event.ts,
                    event.actor,
                    event.action,
                    event.resource,
                    event.outcome,
                    event.detail,
                )
                if event.prev_hash != prev or event.hash != expected:
                    return False, event.seq
                prev = event.hash
        return True, None
