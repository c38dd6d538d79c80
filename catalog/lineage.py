"""Lineage graphs: raw upload object → ingest job → version → the queries and exports
that read it.

Nodes carry a ``kind`` (``upload_object``, ``job``, ``version``, ``dataset``, ``query``,
``export``, ``export_object``) and an id that names the thing (``version:<dataset>@<n>``);
edges point downstream (``from`` was used to make ``to``). An appended version was made from its
parent version and its own upload, so walking upstream from any version reaches every raw
upload object whose rows it holds.

Reads come from two places: allowed queries in the audit log (their ``detail.datasets``
name dataset and version), and the export records of ``catalog.exports`` (export →
dataset versions read → the Parquet objects it wrote), behind the small ``ExportReads``
interface.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import String, cast, select
from sqlalchemy.orm import Session, sessionmaker

from catalog.errors import NotFound
from catalog.exports import Export, ExportStore
from catalog.models import AuditEvent, Dataset, DatasetVersion, Job, OAuthClient

QUERY_ACTIONS = ("query.run",)
"""Audit actions that read rows as a query (exports come from their own tables)."""
MAX_READS = 200


@dataclass(frozen=True)
class ExportRecord:
    """One export as lineage needs it: who made it and which versions it read."""

    export_id: str
    org_id: str
    created_at: datetime | None
    reads: tuple[tuple[str, int], ...]  # (dataset id, version)
    attrs: dict[str, Any] = field(default_factory=dict)
    objects: tuple[dict[str, Any], ...] = ()  # {"bucket", "key", "bytes", "rows"} written


class ExportReads(Protocol):
    def export(self, export_id: str) -> ExportRecord | None: ...

    def exports_reading(self, dataset_id: str, *, limit: int) -> Sequence[ExportRecord]: ...


class ExportTables:
    """``ExportReads`` over ``catalog.exports``' tables."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.store = ExportStore(sessions)

    def export(self, export_id: str) -> ExportRecord | None:
        try:
            export = self.store.get(export_id)
        except NotFound:
            return None
        return self._record(export)

    def exports_reading(self, dataset_id: str, *, limit: int) -> Sequence[ExportRecord]:
        return [self._record(e) for e in self.store.for_dataset(dataset_id)[:limit]]

    def _record(self, export: Export) -> ExportRecord:
        reads = tuple((s.dataset_id, s.version) for s in self.store.sources(export.id))
        objects = [
            {"bucket": export.bucket, "key": o.key, "bytes": o.size, "rows": o.rows}
            for o in self.store.objects(export.id)
        ]
        return ExportRecord(
            export_id=export.id,
            org_id=export.consumer_org_id,
            created_at=export.created_at,
            reads=reads,
            attrs={
                "status": export.status,
                "client_id": export.client_id,
                "query_sha256": export.query_sha256,
                "region": export.region,
                "rows": export.row_count,
            },
            objects=tuple(objects),
        )


class NoExports:
    """The export source until exports are recorded (arguments unused by design)."""

    def export(self, export_id: str) -> ExportRecord | None:  # noqa: ARG002
        return None

    def exports_reading(
        self,
        dataset_id: str,  # noqa: ARG002
        *,
        limit: int,  # noqa: ARG002
    ) -> Sequence[ExportRecord]:
        return ()


@dataclass
class Graph:
    root: str
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    edges: list[dict[str, str]] = field(default_factory=list)

    def node(self, node_id: str, kind: str, **attrs: Any) -> str:
        self.nodes.setdefault(node_id, {"id": node_id, "kind": kind, **attrs})
        return node_id

    def edge(self, source: str, target: str, relation: str) -> None:
        edge = {"from": source, "to": target, "relation": relation}
        if edge not in self.edges:
            self.edges.append(edge)

    def as_dict(self) -> dict[str, Any]:
        return {"root": self.root, "nodes": list(self.nodes.values()), "edges": self.edges}


ReaderFilter = Callable[[str], bool]
"""Given the organisation id behind a query or export, may the caller see it?"""


class Lineage:
    def __init__(self, sessions: sessionmaker[Session], exports: ExportReads | None = None) -> None:
        self.sessions = sessions
        self.exports: ExportReads = exports or ExportTables(sessions)

    def for_dataset(self, dataset_id: str, *, show_reader: ReaderFilter) -> Graph:
        with self.sessions() as session:
            dataset = session.get(Dataset, dataset_id)
            if dataset is None:
                raise NotFound("dataset", dataset_id)
            graph = Graph(root=f"dataset:{dataset_id}")
            graph.node(graph.root, "dataset", dataset_id=dataset_id, name=dataset.name)
            versions = session.scalars(
                select(DatasetVersion)
                .where(DatasetVersion.dataset_id == dataset_id)
                .order_by(DatasetVersion.version)
            ).all()
            for version in versions:
                vid = self._upstream(session, graph, version)
                graph.edge(vid, graph.root, "version_of")
            self._queries(session, graph, dataset_id, show_reader)
        for record in self.exports.exports_reading(dataset_id, limit=MAX_READS):
            if show_reader(record.org_id):
                self._export_node(graph, record, only_dataset=dataset_id)
        return graph

    def for_export(self, export_id: str) -> tuple[Graph, ExportRecord]:
        record = self.exports.export(export_id)
        if record is None:
            raise NotFound("export", export_id, "GET /v1/exports lists your exports")
        graph = Graph(root=f"export:{export_id}")
        self._export_node(graph, record)
        self._reads_upstream(graph, record.reads)
        return graph, record

    def for_query(self, seq: int) -> tuple[Graph, str]:
        """The graph of one allowed query in the audit log, and its actor (client id)."""
        with self.sessions() as session:
            event = session.get(AuditEvent, seq)
            if event is None or event.action not in QUERY_ACTIONS or event.outcome != "allowed":
                raise NotFound("query", seq, "GET /v1/audit lists queries (action query.run)")
            graph = Graph(root=f"query:{seq}")
            graph.node(graph.root, "query", **_query_attrs(event))
            reads = tuple(_reads(event))
            actor = event.actor
        for dataset_id, version in reads:
            graph.edge(f"version:{dataset_id}@{version}", graph.root, "read_by")
        self._reads_upstream(graph, reads)
        return graph, actor

    # building blocks ---------------------------------------------------------------------
    def _reads_upstream(self, graph: Graph, reads: Iterable[tuple[str, int]]) -> None:
        with self.sessions() as session:
            for dataset_id, number in reads:
                version = session.scalar(
                    select(DatasetVersion).where(
                        DatasetVersion.dataset_id == dataset_id, DatasetVersion.version == number
                    )
                )
                if version is None:  # never expected: versions are immutable and kept
                    graph.node(f"version:{dataset_id}@{number}", "version", missing=True)
                    continue
                self._upstream(session, graph, version)

    def _upstream(self, session: Session, graph: Graph, version: DatasetVersion) -> str:
        """Add a version, its job and upload object, and (appends) its parent, recursively."""
        vid = f"version:{version.dataset_id}@{version.version}"
        if vid in graph.nodes and not graph.nodes[vid].get("missing"):
            return vid
        graph.node(
            vid,
            "version",
            dataset_id=version.dataset_id,
            version=version.version,
            mode=version.mode,
            created_at=version.created_at,
            row_count=version.row_count,
            source_sha256=version.source_sha256,
        )
        job = session.get(Job, version.job_id)
        if job is not None:
            jid = graph.node(
                f"job:{job.id}",
                "job",
                job_id=job.id,
                status=job.status,
                created_at=job.created_at,
                filename=job.filename,
            )
            upload = graph.node(
                f"upload:{job.source_bucket}/{job.source_key}",
                "upload_object",
                bucket=job.source_bucket,
                key=job.source_key,
                sha256=job.source_sha256,
                bytes=job.source_bytes,
                filename=job.filename,
            )
            graph.edge(upload, jid, "ingested_by")
            graph.edge(jid, vid, "committed")
        if version.mode == "append" and version.parent_version is not None:
            parent = session.scalar(
                select(DatasetVersion).where(
                    DatasetVersion.dataset_id == version.dataset_id,
                    DatasetVersion.version == version.parent_version,
                )
            )
            if parent is not None:
                graph.edge(self._upstream(session, graph, parent), vid, "extended_by")
        return vid

    def _queries(
        self, session: Session, graph: Graph, dataset_id: str, show_reader: ReaderFilter
    ) -> None:
        events = session.scalars(
            select(AuditEvent)
            .where(
                AuditEvent.action.in_(QUERY_ACTIONS),
                AuditEvent.outcome == "allowed",
                cast(AuditEvent.detail, String).like(f"%{dataset_id}%"),
            )
            .order_by(AuditEvent.seq.desc())
            .limit(MAX_READS)
        ).all()
        clients = session.execute(
            select(OAuthClient.client_id, OAuthClient.org_id).where(
                OAuthClient.client_id.in_(sorted({e.actor for e in events}))
            )
        ).all()
        orgs = {row[0]: row[1] for row in clients}
        for event in reversed(events):
            reads = [(d, v) for d, v in _reads(event) if d == dataset_id]
            if not reads or not show_reader(orgs.get(event.actor, "")):
                continue
            qid = graph.node(f"query:{event.seq}", "query", **_query_attrs(event))
            for _, number in reads:
                graph.edge(f"version:{dataset_id}@{number}", qid, "read_by")

    def _export_node(
        self, graph: Graph, record: ExportRecord, *, only_dataset: str | None = None
    ) -> None:
        eid = graph.node(
            f"export:{record.export_id}",
            "export",
            export_id=record.export_id,
            org_id=record.org_id,
            created_at=record.created_at,
            **record.attrs,
        )
        for dataset_id, number in record.reads:
            if only_dataset is None or dataset_id == only_dataset:
                graph.edge(f"version:{dataset_id}@{number}", eid, "read_by")
        for obj in record.objects:
            oid = graph.node(f"export_object:{obj['bucket']}/{obj['key']}", "export_object", **obj)
            graph.edge(eid, oid, "written_to")


def _reads(event: AuditEvent) -> list[tuple[str, int]]:
    found = []
    for source in (event.detail or {}).get("datasets") or []:
        if isinstance(source, dict) and source.get("dataset") and source.get("version"):
            found.append((str(source["dataset"]), int(source["version"])))
    return found


def _query_attrs(event: AuditEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "action": event.action,
        "actor": event.actor,
        "ts": event.ts,
        "sql_sha256": (event.detail or {}).get("sql_sha256"),
    }
