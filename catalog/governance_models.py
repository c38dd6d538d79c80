"""Governance tables: dataset governance metadata (DOMAIN.md §6.1), transfer instruments,
access requests and the delivery ledger (rule 13).

They live beside ``catalog.models`` (which imports this module at its end so that
``Base.metadata`` always holds every table the migrations create). The decisions made
over these rows are ``policies``' business; this module only stores them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from catalog.models import Base, new_id, utcnow


class DatasetGovernance(Base):
    """DOMAIN.md §6.1 metadata of one dataset; absent → defaults derived from its provider."""

    __tablename__ = "dataset_governance"

    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id"), primary_key=True)
    origin_jurisdiction: Mapped[str] = mapped_column(String(16))  # CN-GBA9 | CN-other | HK | MO
    origin_city: Mapped[str | None] = mapped_column(String(32), default=None)
    provider_entity_id: Mapped[str] = mapped_column(String(64))
    provider_is_ciio: Mapped[str] = mapped_column(String(8), default="unknown")
    dsl_level: Mapped[str] = mapped_column(String(16), default="general")  # general | important
    important_notice_ref: Mapped[str | None] = mapped_column(String(200), default=None)
    collection_purposes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    consented_purposes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    consent_ref: Mapped[str | None] = mapped_column(String(200), default=None)
    separate_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    spi_release: Mapped[bool] = mapped_column(Boolean, default=False)
    pipia_ref: Mapped[str | None] = mapped_column(String(200), default=None)
    legal_basis: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class TransferInstrument(Base):
    """A recorded legal basis for delivering a dataset's columns across a boundary."""

    __tablename__ = "transfer_instruments"
    __table_args__ = (Index("ix_transfer_instruments_dataset", "dataset_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id"))
    type: Mapped[str] = mapped_column(String(48))
    reference: Mapped[str] = mapped_column(String(200))
    authority: Mapped[str] = mapped_column(String(200))
    effective_from: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    columns: Mapped[list[Any] | None] = mapped_column(JSON, default=None)  # None: every column
    purposes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class AccessRequest(Base):
    """A consumer's request: pending → approved (with a grant) | denied | withdrawn."""

    __tablename__ = "access_requests"
    __table_args__ = (Index("ix_access_requests_status", "status", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id"))
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"))
    region: Mapped[str] = mapped_column(String(2))  # the dataset's region: whose stewards decide
    requested_by: Mapped[str] = mapped_column(String(64))
    columns: Mapped[list[Any] | None] = mapped_column(JSON, default=None)
    purpose: Mapped[str] = mapped_column(String(64))
    duration_days: Mapped[int] = mapped_column(Integer)
    justification: Mapped[str] = mapped_column(Text, default="")
    accept_no_onward_transfer: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    preview: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(64), default=None)
    decided_at: Mapped[datetime | None] = mapped_column(default=None)
    decision: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    reason: Mapped[str] = mapped_column(Text, default="")
    grant_id: Mapped[str | None] = mapped_column(String(32), default=None)


class Delivery(Base):
    """One query or export that returned rows (DOMAIN.md rule 13; keep ≥ 3 years)."""

    __tablename__ = "deliveries"
    __table_args__ = (Index("ix_deliveries_provider_year", "provider_org_id", "year"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ts: Mapped[datetime] = mapped_column(default=utcnow)
    year: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(32))  # query.run | export
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id"))
    dataset_version: Mapped[int] = mapped_column(Integer)
    provider_org_id: Mapped[str] = mapped_column(String(32))
    consumer_org_id: Mapped[str] = mapped_column(String(32))
    consumer_entity: Mapped[str] = mapped_column(String(64))
    consumer_jurisdiction: Mapped[str] = mapped_column(String(16))
    origin_jurisdiction: Mapped[str] = mapped_column(String(16))
    cross_boundary: Mapped[bool] = mapped_column(Boolean)
    purpose: Mapped[str] = mapped_column(String(64))
    grant_id: Mapped[str | None] = mapped_column(String(32), default=None)
    columns: Mapped[list[Any]] = mapped_column(JSON)
    masks: Mapped[list[Any]] = mapped_column(JSON)
    instruments: Mapped[list[Any]] = mapped_column(JSON)
    rule_set: Mapped[str] = mapped_column(String(64))
    row_count: Mapped[int] = mapped_column(BigInteger)
    pi_subjects: Mapped[int] = mapped_column(BigInteger, default=0)  # distinct-subject estimate
    spi_subjects: Mapped[int] = mapped_column(BigInteger, default=0)
