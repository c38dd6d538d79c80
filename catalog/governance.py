"""Stores for governance metadata, transfer instruments, access requests and deliveries.

Plain persistence: each method is one short transaction. What the rows mean (which
instrument covers what, who may decide a request) is decided in ``policies``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from catalog.errors import Conflict, NotFound
from catalog.governance_models import (
    AccessRequest,
    DatasetGovernance,
    Delivery,
    TransferInstrument,
)
from catalog.models import Dataset, utcnow


class GovernanceStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def get(self, dataset_id: str) -> DatasetGovernance | None:
        with self.sessions() as session:
            return session.get(DatasetGovernance, dataset_id)

    def get_many(self, dataset_ids: Sequence[str]) -> dict[str, DatasetGovernance]:
        """``get`` for several datasets in one read; a dataset without a row is absent."""
        if not dataset_ids:
            return {}
        with self.sessions() as session:
            rows = session.scalars(
                select(DatasetGovernance).where(DatasetGovernance.dataset_id.in_(dataset_ids))
            ).all()
        return {row.dataset_id: row for row in rows}

    def put(self, dataset_id: str, **fields: Any) -> DatasetGovernance:
        with self.sessions.begin() as session:
            row = session.get(DatasetGovernance, dataset_id)
            if row is None:
                row = DatasetGovernance(dataset_id=dataset_id, **fields)
                session.add(row)
            else:
                for key, value in fields.items():
                    setattr(row, key, value)
                row.updated_at = utcnow()
            return row

    # transfer instruments ------------------------------------------------------------
    def add_instrument(self, **fields: Any) -> TransferInstrument:
        instrument = TransferInstrument(**fields)
        with self.sessions.begin() as session:
            session.add(instrument)
        return instrument

    def instruments(
        self, dataset_id: str, *, include_revoked: bool = False
    ) -> list[TransferInstrument]:
        query = select(TransferInstrument).where(TransferInstrument.dataset_id == dataset_id)
        if not include_revoked:
            query = query.where(TransferInstrument.revoked_at.is_(None))
        with self.sessions() as session:
            return list(session.scalars(query.order_by(TransferInstrument.created_at)))

    def get_instrument(self, instrument_id: str) -> TransferInstrument:
        with self.sessions() as session:
            found = session.get(TransferInstrument, instrument_id)
        if found is None:
            raise NotFound("transfer instrument", instrument_id)
        return found

    def revoke_instrument(self, instrument_id: str) -> TransferInstrument:
        with self.sessions.begin() as session:
            found = session.get(TransferInstrument, instrument_id)
            if found is None:
                raise NotFound("transfer instrument", instrument_id)
            if found.revoked_at is None:
                found.revoked_at = utcnow()
            return found


class AccessRequestStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def create(self, **fields: Any) -> AccessRequest:
        request = AccessRequest(**fields)
        with self.sessions.begin() as session:
            session.add(request)
        return request

    def get(self, request_id: str) -> AccessRequest:
        with self.sessions() as session:
            found = session.get(AccessRequest, request_id)
        if found is None:
            raise NotFound(
                "access request", request_id, "GET /v1/access-requests lists the ones you may see"
            )
        return found

    def list(
        self,
        *,
        org_id: str | None = None,
        regions: Sequence[str] | None = None,
        provider_org_id: str | None = None,
        status: str | None = None,
        limit: int = 200,
    ) -> list[AccessRequest]:
        query = select(AccessRequest).order_by(AccessRequest.created_at.desc()).limit(limit)
        if org_id is not None:
            query = query.where(AccessRequest.org_id == org_id)
        if regions is not None:
            query = query.where(AccessRequest.region.in_(list(regions)))
        if provider_org_id is not None:
            query = query.join(Dataset, Dataset.id == AccessRequest.dataset_id).where(
                Dataset.org_id == provider_org_id
            )
        if status is not None:
            query = query.where(AccessRequest.status == status)
        with self.sessions() as session:
            return list(session.scalars(query))

    def settle(self, request_id: str, *, status: str, **fields: Any) -> AccessRequest:
        """Move a pending request to ``status``; exactly one decision wins a race."""
        with self.sessions.begin() as session:
            changed = session.execute(
                update(AccessRequest)
                .where(AccessRequest.id == request_id, AccessRequest.status == "pending")
                .values(status=status, **fields)
            ).rowcount  # type: ignore[attr-defined]
            found = session.get(AccessRequest, request_id)
            if found is None:
                raise NotFound("access request", request_id)
            if changed != 1:
                raise Conflict(
                    f"access request {request_id} is already {found.status}; "
                    "only a pending request can be decided or withdrawn",
                    request=request_id,
                    status=found.status,
                )
            session.refresh(found)
            return found


class DeliveryLedger:
    """Rule 13's delivery log and rule 6's yearly counters."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def add(self, rows: Sequence[Delivery]) -> None:
        with self.sessions.begin() as session:
            session.add_all(rows)

    def list(
        self,
        *,
        provider_org_id: str | None = None,
        consumer_org_id: str | None = None,
        dataset_ids: Sequence[str] | None = None,
        limit: int = 200,
    ) -> list[Delivery]:
        query = select(Delivery).order_by(Delivery.id.desc()).limit(limit)
        if provider_org_id is not None:
            query = query.where(Delivery.provider_org_id == provider_org_id)
        if consumer_org_id is not None:
            query = query.where(Delivery.consumer_org_id == consumer_org_id)
        if dataset_ids is not None:
            query = query.where(Delivery.dataset_id.in_(list(dataset_ids)))
        with self.sessions() as session:
            return list(session.scalars(query))

    def yearly_out_of_mainland(self, year: int) -> dict[str, tuple[int, int]]:
        """Per provider organisation: (PI subjects, sensitive-PI subjects) delivered out of the
        mainland in ``year`` (sums of per-delivery estimates: an upper bound)."""
        query = (
            select(
                Delivery.provider_org_id,
                func.coalesce(func.sum(Delivery.pi_subjects), 0),
                func.coalesce(func.sum(Delivery.spi_subjects), 0),
            )
            .where(
                Delivery.year == year,
                Delivery.cross_boundary.is_(True),
                Delivery.origin_jurisdiction.in_(["CN-GBA9", "CN-other"]),
            )
            .group_by(Delivery.provider_org_id)
        )
        with self.sessions() as session:
            return {org: (int(pi), int(spi)) for org, pi, spi in session.execute(query)}
