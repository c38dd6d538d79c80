"""The catalog on real SQLite and real PostgreSQL: migrations, constraints, atomic versions."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import event, inspect, select

from catalog.audit import AuditLog
from catalog.database import make_engine, session_factory, upgrade_to_head
from catalog.errors import Conflict, InvalidInput, NotFound
from catalog.jobs import JobStore
from catalog.models import AuditEvent, Base, Organisation
from catalog.registry import Registry
from tests.audit_tamper import append_only_lifted
from tests.factories import REGISTRATION, suffix


@pytest.fixture
def sessions(catalog_url: str):
    engine = make_engine(catalog_url)
    upgrade_to_head(engine)
    upgrade_to_head(engine)  # idempotent
    yield session_factory(engine)
    engine.dispose()


def provider_dataset(registry: Registry, region: str, name: str):
    org = registry.create_org(
        name=f"{region} {suffix()}",
        slug=f"{region.lower()}_{suffix()}",
        kind="provider",
        region=region,
        registration_id=REGISTRATION[region],
    )
    return registry.create_dataset(
        org=org,
        name=name,
        title="",
        description="",
        classification="internal",
        licence="",
        contract={},
    )


def version_fields(job_id: str = "j") -> dict[str, object]:
    return {
        "job_id": job_id,
        "source_sha256": "0" * 64,
        "row_count": 3,
        "rejected_count": 1,
        "bytes": 10,
        "schema": [{"name": "a", "type": "string"}],
        "stats": {},
        "gx_result": {},
        "files": [],
    }


def test_migrations_create_exactly_the_model_tables(sessions) -> None:
    inspector = inspect(sessions.kw["bind"])
    tables = set(inspector.get_table_names()) - {"alembic_version"}
    assert tables == set(Base.metadata.tables)
    for name, table in Base.metadata.tables.items():  # a column added to a model needs a migration
        migrated = {column["name"] for column in inspector.get_columns(name)}
        assert migrated == set(table.columns.keys()), name


def test_datetimes_are_stored_as_utc_and_read_back_aware(sessions) -> None:
    """SQLite keeps no offset (it used to hand back naive values) and PostgreSQL answers in
    the session time zone: every datetime column reads back as aware UTC, and a value given in
    another offset is stored as the same instant."""
    registry = Registry(sessions)
    org = registry.create_org(
        name="Clock " + suffix(),
        slug="ck_" + suffix(),
        kind="consumer",
        region="HK",
        registration_id=REGISTRATION["HK"],
    )
    hong_kong = datetime(2026, 11, 28, 18, 30, tzinfo=timezone(timedelta(hours=8)))
    with sessions.begin() as session:
        row = session.get(Organisation, org.id)
        assert row is not None and row.created_at.tzinfo is not None
        row.created_at = hong_kong
    with sessions() as session:
        stored = session.scalar(select(Organisation.created_at).where(Organisation.id == org.id))
        assert stored == hong_kong and stored.utcoffset() == timedelta(0)
        assert stored.hour == 10 and stored.tzinfo == UTC
        later = session.scalar(
            select(Organisation.id).where(
                Organisation.created_at > datetime(2026, 11, 28, 10, 29, tzinfo=UTC)
            )
        )
        assert later == org.id


def test_org_registration_ids_are_validated_per_region(sessions) -> None:
    registry = Registry(sessions)
    org = registry.create_org(
        name="Shenzhen SMT " + suffix(),
        slug="sz_" + suffix(),
        kind="provider",
        region="sz",
        registration_id="９１４４０３００ＭＡ５Ｇ７Ｋ３Ｐ７Ｐ",
    )
    assert (org.region, org.registration_id, org.registration_scheme) == (
        "SZ",
        "91440300MA5G7K3P7P",
        "uscc",
    )
    with pytest.raises(InvalidInput) as bad_check:
        registry.create_org(
            name="x",
            slug="x_" + suffix(),
            kind="provider",
            region="GZ",
            registration_id="91440300MA5G7K3P7Q",
        )
    assert bad_check.value.field == "registration_id"
    with pytest.raises(InvalidInput, match="old Companies Registry"):
        registry.create_org(
            name="y", slug="y_" + suffix(), kind="provider", region="HK", registration_id="7123456"
        )
    with pytest.raises(InvalidInput, match="unknown region") as region:
        registry.create_org(
            name="z", slug="z_" + suffix(), kind="provider", region="TW", registration_id="1"
        )
    assert region.value.field == "region"


def test_duplicate_org_and_dataset_names_conflict(sessions) -> None:
    registry = Registry(sessions)
    name, slug = "HK Freight " + suffix(), "hk_" + suffix()
    org = registry.create_org(
        name=name, slug=slug, kind="provider", region="HK", registration_id=REGISTRATION["HK"]
    )
    with pytest.raises(Conflict):
        registry.create_org(
            name=name,
            slug=slug + "x",
            kind="provider",
            region="HK",
            registration_id=REGISTRATION["HK"],
        )
    registry.create_dataset(
        org=org,
        name="shipments",
        title="",
        description="",
        classification="internal",
        licence="",
        contract={"columns": []},
    )
    with pytest.raises(Conflict, match="already has a dataset named 'shipments'"):
        registry.create_dataset(
            org=org,
            name="shipments",
            title="",
            description="",
            classification="internal",
            licence="",
            contract={"columns": []},
        )
    assert [d.name for d, _ in registry.list_datasets(org_id=org.id)] == ["shipments"]


def test_concurrent_version_commits_get_distinct_numbers(sessions) -> None:
    registry = Registry(sessions)
    dataset = provider_dataset(registry, "DG", "meters")
    with pytest.raises(NotFound):
        registry.version(dataset.id)
    errors: list[BaseException] = []

    def commit(i: int) -> None:
        try:
            registry.commit_version(dataset.id, **version_fields(f"job{i}"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=commit, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert [v.version for v in registry.versions(dataset.id)] == [1, 2, 3, 4]
    assert (
        registry.version(dataset.id).version
        == registry.get_dataset(dataset.id).current_version
        == 4
    )


def test_job_lease_is_claimed_once_and_reclaimable_after_expiry(sessions) -> None:
    from datetime import timedelta

    from catalog.models import utcnow

    registry, jobs = Registry(sessions), JobStore(sessions)
    dataset = provider_dataset(registry, "GZ", "welds")
    job = jobs.create(
        dataset_id=dataset.id,
        created_by="c",
        source_bucket="b",
        source_key="k",
        source_sha256="0" * 64,
        source_bytes=1,
    )
    assert jobs.claim(job.id) is True
    assert jobs.claim(job.id) is False  # lease held
    later = utcnow() + timedelta(minutes=5)
    assert job.id in jobs.claimable(now=later)
    assert jobs.claim(job.id, now=later) is True
    assert jobs.get(job.id).attempts == 2


def test_audit_chain_verifies_and_detects_tampering(sessions) -> None:
    audit = AuditLog(sessions)
    for i in range(5):
        audit.append(
            actor="c", action="query.run", resource="query", outcome="allowed", detail={"i": i}
        )
    assert audit.verify() == (True, None)
    with sessions.begin() as session, append_only_lifted(session):  # the database refuses edits
        third = session.query(AuditEvent).order_by(AuditEvent.seq).offset(2).first()
        third.detail = {"i": 99}
        tampered = third.seq
    assert audit.verify() == (False, tampered)


def test_audit_appends_from_threads_form_one_chain(sessions) -> None:
    audit = AuditLog(sessions)
    threads = [
        threading.Thread(
            target=lambda: audit.append(actor="t", action="a", resource="r", outcome="ok")
        )
        for _ in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert audit.verify() == (True, None)
    assert len(audit.recent(limit=100)) == 6


def test_audit_appends_from_threads_take_turns_without_losing_races(sessions) -> None:
    """Threads of one process append one at a time: no INSERT loses the race for the head
    of the chain and is retried (on SQLite each loser also slept in the busy handler)."""
    audit = AuditLog(sessions)
    inserts: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO AUDIT_EVENTS"):
            inserts.append(statement)

    engine = sessions.kw["bind"]
    event.listen(engine, "before_cursor_execute", count)
    start = threading.Barrier(8)

    def append_ten() -> None:
        start.wait()
        for i in range(10):
            audit.append(actor="t", action="a", resource="r", outcome="ok", detail={"i": i})

    threads = [threading.Thread(target=append_ten) for _ in range(8)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(inserts) == 80 and audit.verify() == (True, None)
