"""Export records: what a consumer materialised, from which dataset versions, where.

One ``Export`` row per ``POST /v1/exports``; ``ExportSource`` rows are its lineage (the
governed sources it read: dataset id + committed version + the grant that allowed it);
``ExportObject`` rows are the Parquet objects written to the export bucket. The catalog
helper's lineage graph reads these tables (export → dataset versions).
Statuses: ``running`` → ``succeeded`` | ``failed`` | ``revoked`` (a grant behind it was
revoked while it ran, or before its files were fetched); ``succeeded`` → ``expired`` once
the sweeper deleted its files after the retention period (``revoked`` likewise when a grant
behind it ends). ``due_for_sweep`` names the exports whose files must go.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    and_,
    delete,
    exists,
    or_,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from catalog.errors import NotFound
from catalog.models import Base, Grant, new_id, utcnow

ExportStatus = Literal["running", "succeeded", "failed", "revoked", "expired"]


class Export(Base):
    __tablename__ = "exports"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    consumer_org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"))
    client_id: Mapped[str] = mapped_column(String(64))
    query_sha256: Mapped[str] = mapped_column(String(64))
    region: Mapped[str] = mapped_column(String(2))  # where the objects are stored
    bucket: Mapped[str] = mapped_column(String(63))
    status: Mapped[str] = mapped_column(String(16), default="running")
    row_count: Mapped[int] = mapped_column(BigInteger, default=0)
    byte_count: Mapped[int] = mapped_column(BigInteger, default=0)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    expires_at: Mapped[datetime] = mapped_column()

    __table_args__ = (Index("ix_exports_org_created", "consumer_org_id", "created_at"),)


class ExportSource(Base):
    __tablename__ = "export_sources"

    export_id: Mapped[str] = mapped_column(ForeignKey("exports.id"), primary_key=True)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    grant_id: Mapped[str | None] = mapped_column(String(32), default=None)  # None: own dataset

    __table_args__ = (Index("ix_export_sources_dataset", "dataset_id", "version"),)


class ExportObject(Base):
    __tablename__ = "export_objects"

    export_id: Mapped[str] = mapped_column(ForeignKey("exports.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(512), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    rows: Mapped[int] = mapped_column(BigInteger)


@dataclass(frozen=True)
class SourceRef:
    dataset_id: str
    version: int
    grant_id: str | None


class ExportStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def create(
        self,
        *,
        consumer_org_id: str,
        client_id: str,
        query_sha256: str,
        region: str,
        bucket: str,
        expires_at: datetime,
        sources: Sequence[SourceRef],
    ) -> Export:
        export = Export(
            consumer_org_id=consumer_org_id,
            client_id=client_id,
            query_sha256=query_sha256,
            region=region,
            bucket=bucket,
            expires_at=expires_at,
        )
        with self.sessions.begin() as session:
            session.add(export)
            session.flush()
            for ref in {(s.dataset_id, s.version): s for s in sources}.values():
                session.add(
                    ExportSource(
                        export_id=export.id,
                        dataset_id=ref.dataset_id,
                        version=ref.version,
                        grant_id=ref.grant_id,
                    )
                )
        return export

    def add_object(self, export_id: str, key: str, size: int, rows: int) -> None:
        with self.sessions.begin() as session:
            session.add(ExportObject(export_id=export_id, key=key, size=size, rows=rows))

    def finish(
        self,
        export_id: str,
        status: ExportStatus,
        *,
        rows: int = 0,
        size: int = 0,
        error: dict[str, Any] | None = None,
    ) -> Export:
        with self.sessions.begin() as session:
            export = session.get(Export, export_id)
            if export is None:
                raise NotFound("export", export_id)
            export.status, export.row_count, export.byte_count = status, rows, size
            export.error, export.finished_at = error, utcnow()
            if status != "succeeded":
                for obj in session.scalars(
                    select(ExportObject).where(ExportObject.export_id == export_id)
                ):
                    session.delete(obj)
            return export

    def get(self, export_id: str) -> Export:
        with self.sessions() as session:
            export = session.get(Export, export_id)
        if export is None:
            raise NotFound("export", export_id)
        return export

    def sources(self, export_id: str) -> list[ExportSource]:
        query = select(ExportSource).where(ExportSource.export_id == export_id)
        with self.sessions() as session:
            return list(session.scalars(query.order_by(ExportSource.dataset_id)))

    def sources_of(self, export_ids: list[str]) -> dict[str, list[ExportSource]]:
        """The sources of several exports in one query (listing pages)."""
        out: dict[str, list[ExportSource]] = {export_id: [] for export_id in export_ids}
        query = (
            select(ExportSource)
            .where(ExportSource.export_id.in_(export_ids))
            .order_by(ExportSource.export_id, ExportSource.dataset_id)
        )
        with self.sessions() as session:
            for source in session.scalars(query):
                out[source.export_id].append(source)
        return out

    def objects(self, export_id: str) -> list[ExportObject]:
        query = select(ExportObject).where(ExportObject.export_id == export_id)
        with self.sessions() as session:
            return list(session.scalars(query.order_by(ExportObject.key)))

    def for_org(self, org_id: str, *, limit: int = 50) -> list[Export]:
        """An organisation's exports, newest first."""
        query = (
            select(Export)
            .where(Export.consumer_org_id == org_id)
            .order_by(Export.created_at.desc(), Export.id)
            .limit(limit)
        )
        with self.sessions() as session:
            return list(session.scalars(query))

    def due_for_sweep(
        self, *, now: datetime, stale_before: datetime, limit: int = 100
    ) -> list[Export]:
        """Exports whose files must be deleted, oldest first: succeeded ones past their
        expiry or with a revoked or expired grant behind them, and ``running`` ones created
        before ``stale_before`` (their writer died with its gateway)."""
        grant_ended = exists().where(
            ExportSource.export_id == Export.id,
            ExportSource.grant_id == Grant.id,
            or_(Grant.revoked_at.is_not(None), Grant.expires_at <= now),
        )
        query = (
            select(Export)
            .where(
                or_(
                    and_(
                        Export.status == "succeeded",
                        or_(Export.expires_at <= now, grant_ended),
                    ),
                    and_(Export.status == "running", Export.created_at < stale_before),
                )
            )
            .order_by(Export.created_at, Export.id)
            .limit(limit)
        )
        with self.sessions() as session:
            return list(session.scalars(query))

    def close_swept(
        self, export_id: str, status: ExportStatus, error: dict[str, Any] | None = None
    ) -> None:
        """Record that the export's files are gone: its new status, no objects left."""
        with self.sessions.begin() as session:
            export = session.get(Export, export_id)
            if export is None:
                raise NotFound("export", export_id)
            export.status = status
            export.error = error if error is not None else export.error
            export.finished_at = export.finished_at or utcnow()
            session.execute(delete(ExportObject).where(ExportObject.export_id == export_id))

    def for_dataset(self, dataset_id: str) -> list[Export]:
        """Exports that read any version of ``dataset_id`` (lineage, newest first)."""
        query = (
            select(Export)
            .join(ExportSource, ExportSource.export_id == Export.id)
            .where(ExportSource.dataset_id == dataset_id)
            .order_by(Export.created_at.desc())
        )
        with self.sessions() as session:
            return list(session.scalars(query).unique())
