"""The catalog generation: database triggers count every change a decision could depend on,
so rows cached at one generation are never used after a change, however it was made."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from catalog.database import make_engine, session_factory, upgrade_to_head
from catalog.generation import WATCHED, CatalogGeneration, GenerationCache
from catalog.governance_models import DatasetGovernance, TransferInstrument
from catalog.metadata_models import DatasetMetadata
from catalog.models import AuditEvent, Dataset, DatasetVersion, Grant, Job, Organisation


@pytest.fixture
def engine(catalog_url: str) -> Iterator[Engine]:
    built = make_engine(catalog_url)
    upgrade_to_head(built)
    yield built
    built.dispose()


def _triggered_tables(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            rows = connection.execute(
                text(
                    "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                    # statement-level (bit 0 clear) and BEFORE (bit 1): see migration 0011
                    "WHERE t.tgname = 'catalog_generation_bump' AND (t.tgtype & 3) = 2"
                )
            )
            return {row[0] for row in rows}
        rows = connection.execute(
            text("SELECT tbl_name, sql FROM sqlite_master WHERE type = 'trigger'")
        )
        verbs: dict[str, set[str]] = {}
        for table, sql in rows:
            if "catalog_generation" in sql:
                verbs.setdefault(table, set()).update(
                    v for v in ("INSERT", "UPDATE", "DELETE") if f"AFTER {v} " in sql
                )
        return {table for table, seen in verbs.items() if seen == {"INSERT", "UPDATE", "DELETE"}}


def test_every_watched_table_has_its_trigger_at_head(engine: Engine) -> None:
    """A later migration that rebuilds a watched table (SQLite's batch mode drops triggers)
    must recreate them: this fails otherwise."""
    assert _triggered_tables(engine) == set(WATCHED)


def _rows() -> list[Any]:
    now = datetime(2026, 11, 29, tzinfo=UTC)
    org = Organisation(
        id="o1", slug="o1", name="Org 1", kind="provider", region="GZ",
        registration_id="91440101MA9Y1T6H6L", registration_scheme="uscc",
    )  # fmt: skip
    dataset = Dataset(id="d1", org_id="o1", name="meters", title="Meters", region="GZ", contract={})
    version = DatasetVersion(
        id="v1", dataset_id="d1", version=1, job_id="j1", source_sha256="0" * 64,
        row_count=1, rejected_count=0, bytes=1, schema=[], stats={}, gx_result={}, files=[],
    )  # fmt: skip
    governance = DatasetGovernance(
        dataset_id="d1", origin_jurisdiction="CN-GBA9", provider_entity_id="x", updated_by="t"
    )
    instrument = TransferInstrument(
        id="i1", dataset_id="d1", type="standard_contract", reference="r", authority="a",
        effective_from=now, created_by="t",
    )  # fmt: skip
    grant = Grant(id="g1", dataset_id="d1", org_id="o1", created_by="t")
    metadata = DatasetMetadata(dataset_id="d1")
    return [org, dataset, version, governance, instrument, grant, metadata]


def test_every_change_to_a_watched_table_raises_the_generation(engine: Engine) -> None:
    generation = CatalogGeneration(engine)
    sessions = session_factory(engine)
    rows = _rows()
    assert {row.__tablename__ for row in rows} == set(WATCHED)

    def raises(change: Callable[[Session], Any]) -> None:
        before = generation.current()
        with sessions.begin() as session:
            change(session)
        assert generation.current() > before

    for row in rows:
        raises(lambda session, row=row: session.add(row))
    for row in rows:  # plain SQL too: the database counts, not the application
        table = row.__tablename__
        key = "dataset_id" if table in ("dataset_governance", "dataset_metadata") else "id"
        value = getattr(row, key)
        raises(
            lambda s, t=table, k=key, v=value: s.execute(
                text(f"UPDATE {t} SET {k} = {k} WHERE {k} = :v"), {"v": v}
            )
        )
    for row in reversed(rows):
        raises(lambda session, row=row: session.delete(row))


def test_what_a_query_writes_leaves_the_generation_alone(engine: Engine) -> None:
    """The query path appends audit events and runs jobs: no cached row should end."""
    generation = CatalogGeneration(engine)
    sessions = session_factory(engine)
    with sessions.begin() as session:
        for row in _rows()[:2]:  # an organisation and a dataset for the job
            session.add(row)
            session.flush()
    before = generation.current()
    event = AuditEvent(
        ts=datetime.now(UTC), actor="a", action="query.run", resource="query",
        outcome="allowed", detail={}, prev_hash="0" * 64, hash="1" * 64,
    )  # fmt: skip
    job = Job(
        id="j1", dataset_id="d1", created_by="t", source_bucket="b", source_key="k",
        source_sha256="0" * 64, source_bytes=1,
    )  # fmt: skip
    with sessions.begin() as session:
        session.add(event)
        session.add(job)
    with sessions.begin() as session:
        session.execute(text("UPDATE jobs SET status = 'running' WHERE id = 'j1'"))
    assert generation.current() == before


def test_rows_are_used_only_at_the_generation_they_were_read_at(engine: Engine) -> None:
    cache = GenerationCache(CatalogGeneration(engine))
    sessions = session_factory(engine)
    loads: list[list[str]] = []

    def load(keys: list[str]) -> dict[str, str]:
        loads.append(keys)
        with sessions() as session:
            found = session.execute(
                text("SELECT id, slug FROM organisations WHERE id IN ('o1', 'o2')")
            ).all()
        return {k: slug for k, slug in found if k in keys}

    with sessions.begin() as session:
        session.add(_rows()[0])
    first = cache.snapshot()
    assert first.get_many("org", ["o1", "o2"], load) == {"o1": "o1"}
    assert first.get_many("org", ["o1", "o2"], load) == {"o1": "o1"}  # "o2 absent" is kept
    assert cache.snapshot().get("org", "o1", load) == "o1"
    assert loads == [["o1", "o2"]]
    with engine.begin() as connection:
        connection.execute(text("UPDATE organisations SET slug = 'renamed' WHERE id = 'o1'"))
    assert cache.snapshot().get("org", "o1", load) == "renamed"
    # a snapshot taken before the change reads for itself and leaves the cache alone
    assert first.get("org", "o1", load) == "renamed"
    assert cache.snapshot().get("org", "o1", load) == "renamed"
    assert len(loads) == 3


def test_a_cache_without_a_generation_reads_every_time() -> None:
    cache = GenerationCache(None)
    calls = []
    for _ in range(3):
        cache.snapshot().get("k", 1, lambda keys: calls.append(keys) or {1: "x"})
    assert calls == [[1], [1], [1]]


def test_the_cache_holds_at_most_its_entries(engine: Engine) -> None:
    cache = GenerationCache(CatalogGeneration(engine), max_entries=2)
    loads: list[list[int]] = []

    def load(keys: list[int]) -> dict[int, int]:
        loads.append(keys)
        return {k: k for k in keys}

    snapshot = cache.snapshot()
    snapshot.get_many("n", [1, 2], load)
    snapshot.get("n", 3, load)  # a third key: the cache starts again with it alone
    snapshot.get("n", 3, load)
    snapshot.get("n", 1, load)
    assert loads == [[1, 2], [3], [1]]
