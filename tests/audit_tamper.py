"""Tampering with the audit log the way an attacker with database-owner rights would.

The migration makes ``audit_events`` append-only with triggers, so an ordinary UPDATE or
DELETE fails; an owner (or superuser) can still switch the triggers off. These helpers do
exactly that, so tests can check the hash chain still catches the edit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.orm import Session

SQLITE_TRIGGERS = {
    "UPDATE": "audit_events_no_update",
    "DELETE": "audit_events_no_delete",
}


@contextmanager
def append_only_lifted(session: Session) -> Iterator[None]:
    """Within one transaction: the append-only triggers are off, then back on."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
        yield
        session.flush()
        session.execute(text("ALTER TABLE audit_events ENABLE TRIGGER USER"))
        return
    for name in SQLITE_TRIGGERS.values():
        session.execute(text(f"DROP TRIGGER {name}"))
    yield
    session.flush()
    for verb, name in SQLITE_TRIGGERS.items():
        session.execute(
            text(
                f"CREATE TRIGGER {name} BEFORE {verb} ON audit_events BEGIN "
                f"SELECT RAISE(ABORT, 'audit_events is append-only: {verb} refused'); END"
            )
        )
