"""Catalog tables (SQLAlchemy 2). Schema changes go through Alembic migrations
in ``catalog/migrations``; a test checks the migrations produce this metadata.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator
from typing_extensions import override  # typing.override needs 3.12


def new_id() -> str:
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(moment: datetime) -> datetime:
    """``moment`` as an aware UTC datetime; naive values are taken to be UTC (the catalog
    stores UTC; SQLite keeps no offset)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that stores UTC and always reads back aware UTC values:
    SQLite keeps no offset and hands back naive datetimes, PostgreSQL answers in the session
    time zone; with this type both compare safely with ``utcnow()``."""

    impl = DateTime(timezone=True)
    cache_ok = True

    @override
    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else aware(value)

    @override
    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else aware(value)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        list[Any]: JSON,
        datetime: UTCDateTime(),
    }


class Organisation(Base):
    __tablename__ = "organisations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    slug: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # provider | consumer | steward | operator
    region: Mapped[str] = mapped_column(String(2))
    registration_id: Mapped[str] = mapped_column(String(64))
    registration_scheme: Mapped[str] = mapped_column(String(16))  # uscc | hk_brn | mo_reg
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OAuthClient(Base):
    __tablename__ = "oauth_clients"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"))
    roles: Mapped[list[Any]] = mapped_column(default=list)
    scope: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(default=None)


class SigningKey(Base):
    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    # "access" signs access tokens, "id" signs OIDC ID tokens (never the same key)
    purpose: Mapped[str] = mapped_column(String(8), default="access", server_default="access")
    algorithm: Mapped[str] = mapped_column(String(16))
    private_key: Mapped[str] = mapped_column(Text)  # PEM, encrypted with the platform key secret
    public_jwk: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(default=None)


class Dataset(Base):
    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("org_id", "name", name="uq_datasets_org_name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"))
    name: Mapped[str] = mapped_column(String(63))
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    region: Mapped[str] = mapped_column(String(2))
    classification: Mapped[str] = mapped_column(String(16), default="internal")
    licence: Mapped[str] = mapped_column(String(100), default="")
    contract: Mapped[dict[str, Any]] = mapped_column()
    """The current contract (a copy of the newest ``DatasetContract`` row's)."""
    contract_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    current_version: Mapped[int | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DatasetContract(Base):
    """Every contract a dataset has had; versions are immutable, the newest is current."""

    __tablename__ = "dataset_contracts"
    __table_args__ = (
        UniqueConstraint("dataset_id", "version", name="uq_contracts_dataset_version"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id"))
    version: Mapped[int] = mapped_column(Integer)
    contract: Mapped[dict[str, Any]] = mapped_column()
    note: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DatasetVersion(Base):
    """One committed, immutable version: its row exists only once every file is written."""

    __tablename__ = "dataset_versions"
    __table_args__ = (
        UniqueConstraint("dataset_id", "version", name="uq_versions_dataset_version"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id"))
    version: Mapped[int] = mapped_column(Integer)
    job_id: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    source_sha256: Mapped[str] = mapped_column(String(64))
    source_name: Mapped[str] = mapped_column(String(255), default="", server_default="")
    source_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    contract_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    mode: Mapped[str] = mapped_column(String(8), default="replace", server_default="replace")
    """``replace``: the version holds this upload only; ``append``: parent's files + this one's."""
    parent_version: Mapped[int | None] = mapped_column(default=None)
    rows_read: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    """Rows read from this upload; ``row_count`` counts every row the version holds."""
    row_count: Mapped[int] = mapped_column(BigInteger)
    rejected_count: Mapped[int] = mapped_column(BigInteger)
    bytes: Mapped[int] = mapped_column(BigInteger)
    schema: Mapped[list[Any]] = mapped_column()
    stats: Mapped[dict[str, Any]] = mapped_column()
    gx_result: Mapped[dict[str, Any]] = mapped_column()
    files: Mapped[list[Any]] = mapped_column()  # [{"bucket", "key", "rows", "bytes"}]


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status_created", "status", "created_at"),)
    """Workers poll for the oldest claimable job every half second."""

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id"))
    kind: Mapped[str] = mapped_column(String(16), default="upload")
    status: Mapped[str] = mapped_column(String(16), default="queued")
    phase: Mapped[str] = mapped_column(String(16), default="queued", server_default="queued")
    """Within ``running``: ``downloading`` → ``reading`` → ``uploading`` → ``committing``."""
    mode: Mapped[str] = mapped_column(String(8), default="replace", server_default="replace")
    worker: Mapped[str | None] = mapped_column(String(128), default=None)
    """Host and pid of the worker holding the lease."""
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    filename: Mapped[str] = mapped_column(String(255), default="")
    encoding: Mapped[str] = mapped_column(String(32), default="utf-8")
    format: Mapped[str] = mapped_column(String(16), default="csv", server_default="csv")
    options: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    source_bucket: Mapped[str] = mapped_column(String(63))
    source_key: Mapped[str] = mapped_column(String(512))
    source_sha256: Mapped[str] = mapped_column(String(64))
    source_bytes: Mapped[int] = mapped_column(BigInteger)
    rows_read: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_valid: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_rejected: Mapped[int] = mapped_column(BigInteger, default=0)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    version: Mapped[int | None] = mapped_column(default=None)
    quarantine_key: Mapped[str | None] = mapped_column(String(512), default=None)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)


class Grant(Base):
    __tablename__ = "grants"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id"))
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"))
    columns: Mapped[list[Any] | None] = mapped_column(JSON, default=None)  # None: every column
    purpose: Mapped[str] = mapped_column(String(64), default="analytics")
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    # Obligations a steward set when approving (issue 6); decided on by ``policies.evaluate``.
    masks: Mapped[list[Any]] = mapped_column(JSON, default=list, server_default="[]")
    row_filter: Mapped[str | None] = mapped_column(Text, default=None)
    aggregate_only: Mapped[bool] = mapped_column(default=False, server_default=false())
    min_group_size: Mapped[int | None] = mapped_column(Integer, default=None)
    subject_column: Mapped[str | None] = mapped_column(String(63), default=None)
    version_pin: Mapped[int | None] = mapped_column(Integer, default=None)
    request_id: Mapped[str | None] = mapped_column(String(32), default=None)
    no_onward_transfer: Mapped[bool] = mapped_column(default=False, server_default=false())


class AuditEvent(Base):
    """Append-only, hash-chained: ``hash = sha256(prev_hash || canonical event)``."""

    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ts: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    resource: Mapped[str] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[dict[str, Any]] = mapped_column()
    prev_hash: Mapped[str] = mapped_column(
        String(64), unique=True
    )  # a fork in the chain cannot commit
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class CatalogGenerationRow(Base):
    """One row: raised by database triggers on every change to a table a query's decision
    reads (``catalog.generation``; migration 0011). Never written by the application."""

    __tablename__ = "catalog_generation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


# Governance tables live in their own module; importing it here keeps ``Base.metadata`` whole.
from catalog import exports as _exports  # noqa: E402, F401  (export and lineage tables)
from catalog import governance_models as _governance_models  # noqa: E402, F401
from catalog import metadata_models as _metadata_models  # noqa: E402, F401
