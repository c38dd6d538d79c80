"""The audit log is append-only in the database and its chain names the first bad entry.

Real SQLite and real PostgreSQL (the embedded server); tampering is done the way an
attacker with database-owner rights would, with the append-only triggers switched off.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import DBAPIError

from catalog.audit import AuditLog
from catalog.database import make_engine, session_factory, upgrade_to_head
from catalog.models import AuditEvent
from tests.audit_tamper import append_only_lifted
from tests.conftest import fresh_postgres_url, make_settings
from tests.factories import make_caller
from tests.gateway.test_api import assert_error_envelope


def test_gateway_role_cannot_update_delete_or_truncate_audit_rows_on_postgres(
    postgres_server: str,
) -> None:
    url = fresh_postgres_url(postgres_server)
    owner = make_engine(url)
    upgrade_to_head(owner)
    AuditLog(session_factory(owner)).append(
        actor="owner", action="setup", resource="r", outcome="ok"
    )
    role = "gw_" + secrets.token_hex(4)
    with owner.begin() as connection:
        connection.execute(text(f'CREATE ROLE "{role}" LOGIN'))
        # the privileges an application role usually gets on its tables, all of them
        connection.execute(
            text(f'GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON audit_events TO "{role}"')
        )
        connection.execute(text(f'GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO "{role}"'))
    gateway = create_engine(url.replace("postgres@", f"{role}@"))
    try:
        log = AuditLog(session_factory(gateway))
        log.append(actor="gateway", action="query.run", resource="query", outcome="allowed")
        for statement in (
            "UPDATE audit_events SET outcome = 'refused'",
            "DELETE FROM audit_events",
            "TRUNCATE audit_events",
        ):
            with pytest.raises(DBAPIError, match="append-only"), gateway.begin() as connection:
                connection.execute(text(statement))
        # the table owner's plain UPDATE is refused just the same
        with pytest.raises(DBAPIError, match="append-only"), owner.begin() as connection:
            connection.execute(text("DELETE FROM audit_events"))
        assert log.verify() == (True, None)
        assert len(log.recent()) == 2
    finally:
        gateway.dispose()
        owner.dispose()


@pytest.fixture
def app_on(catalog_url: str, tmp_path: Path) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from gateway.app import create_app
    from gateway.services import build_platform

    settings = make_settings(
        tmp_path / "data", backend="local", seaweed=None, catalog_url=catalog_url
    )
    platform = build_platform(settings)
    try:
        with TestClient(create_app(settings, platform)) as client:
            yield client, platform
    finally:
        platform.close()


def _events(platform: Any) -> list[AuditEvent]:
    with platform.sessions() as session:
        return list(session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))


def test_verify_names_the_edited_and_the_entry_after_a_deleted_one(app_on) -> None:
    client, platform = app_on
    auditor = make_caller(platform, client, role="steward")
    for n in range(4):
        platform.audit.append(
            actor="c", action="query.run", resource="query", outcome="allowed", detail={"n": n}
        )
    intact = client.get("/v1/audit/verify", headers=auditor.headers).json()
    assert intact["intact"] is True and intact["first_broken"] is None
    events = _events(platform)
    target, original = events[-3], dict(events[-3].detail)

    with platform.sessions.begin() as session:  # the database itself refuses the edit
        row = session.get(AuditEvent, target.seq)
        row.outcome = "refused"
        with pytest.raises(DBAPIError, match="append-only"):
            session.flush()
    with platform.sessions.begin() as session, append_only_lifted(session):
        session.get(AuditEvent, target.seq).detail = {"n": 99}
    report = client.get("/v1/audit/verify", headers=auditor.headers).json()
    assert report["intact"] is False
    assert report["first_broken"]["seq"] == target.seq
    assert "edited" in report["first_broken"]["problem"]
    listing = client.get("/v1/audit", headers=auditor.headers).json()
    assert (listing["chain_intact"], listing["broken_at"]) == (False, target.seq)

    with platform.sessions.begin() as session, append_only_lifted(session):
        session.get(AuditEvent, target.seq).detail = original  # put it back: intact again
    assert client.get("/v1/audit/verify", headers=auditor.headers).json()["intact"] is True

    with platform.sessions.begin() as session, append_only_lifted(session):
        session.delete(session.get(AuditEvent, target.seq))
    report = client.get("/v1/audit/verify", headers=auditor.headers).json()
    successor = events[-2].seq
    assert report["first_broken"]["seq"] == successor
    assert "deleted" in report["first_broken"]["problem"]


def test_audit_and_verify_are_for_stewards_and_admins(app_on) -> None:
    client, platform = app_on
    consumer = make_caller(platform, client, role="consumer", region="HK")
    for path in ("/v1/audit", "/v1/audit/verify"):
        error = assert_error_envelope(client.get(path, headers=consumer.headers), 403)
        assert error["code"] in ("insufficient_scope", "forbidden")
