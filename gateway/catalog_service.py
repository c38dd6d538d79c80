"""The catalog as one caller sees it: discovery (``policies.discovery``) applied to the
catalog's datasets, metadata, versions, quality, lineage and DCAT.

Routes build a ``CatalogView`` per request and shape its answers; the rules live in
``policies.discovery`` (who sees metadata) and ``catalog.quality.readable_columns`` (who
sees value statistics).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from sqlalchemy import select

from catalog.dcat import DcatEntry, catalog_document
from catalog.errors import NotFound
from catalog.lineage import Graph, Lineage
from catalog.metadata import MetadataStore, contract_columns
from catalog.metadata_models import DatasetMetadata
from catalog.models import Dataset, DatasetVersion, Grant, Organisation
from catalog.quality import readable_columns, redact_stats, summarise
from catalog.search import CatalogSearch, Filters, SearchResult
from gateway.services import Platform
from policies.discovery import Listing, discoverable_ids
from policies.model import Principal


@dataclass
class CatalogView:
    platform: Platform
    principal: Principal

    @cached_property
    def grants(self) -> dict[str, Grant]:
        return {g.dataset_id: g for g in self.platform.grants.live_for_org(self.principal.org_id)}

    @cached_property
    def datasets(self) -> dict[str, tuple[Dataset, Organisation, DatasetMetadata | None]]:
        with self.platform.sessions() as session:
            rows = session.execute(
                select(Dataset, Organisation, DatasetMetadata)
                .join(Organisation, Organisation.id == Dataset.org_id)
                .outerjoin(DatasetMetadata, DatasetMetadata.dataset_id == Dataset.id)
                .order_by(Organisation.slug, Dataset.name)
            ).all()
        return {d.id: (d, o, m) for d, o, m in rows}

    @cached_property
    def visible(self) -> set[str]:
        listings = [
            Listing(d.id, d.org_id, d.region, m.discoverable if m is not None else True)
            for d, _o, m in self.datasets.values()
        ]
        return discoverable_ids(self.principal, listings, set(self.grants))

    def require(self, dataset_id: str) -> tuple[Dataset, Organisation, DatasetMetadata | None]:
        """The dataset, or 404 — also when it exists but the caller may not discover it."""
        found = self.datasets.get(dataset_id)
        if found is None or dataset_id not in self.visible:
            raise NotFound("dataset", dataset_id, "GET /v1/catalog/search finds datasets")
        return found

    def access(self, dataset: Dataset) -> str:
        if dataset.org_id == self.principal.org_id:
            return "owner"
        return "granted" if dataset.id in self.grants else "none"

    def oversees(self, dataset: Dataset) -> bool:
        """Owner organisation, an admin, or a steward of the dataset's region."""
        p = self.principal
        return (
            dataset.org_id == p.org_id
            or "admin" in p.roles
            or ("steward" in p.roles and p.region == dataset.region)
        )

    # versions and quality ----------------------------------------------------------------
    def readable(self, dataset: Dataset, version: DatasetVersion) -> set[str]:
        grant = self.grants.get(dataset.id)
        return readable_columns(
            version.schema,
            contract_columns(dataset.contract),
            owner=dataset.org_id == self.principal.org_id,
            granted=False if grant is None else grant.columns,
        )

    def version_view(self, dataset: Dataset, version: DatasetVersion) -> dict[str, Any]:
        quality = summarise(
            version.gx_result, rows_read=version.rows_read, rows_rejected=version.rejected_count
        )
        quality.update(
            {k: version.gx_result[k] for k in ("success", "statistics") if k in version.gx_result}
        )
        return {
            "version": version.version,
            "created_at": version.created_at,
            "job_id": version.job_id,
            "source_sha256": version.source_sha256,
            "source_name": version.source_name,
            "source_bytes": version.source_bytes,
            "contract_version": version.contract_version,
            "mode": version.mode,
            "parent_version": version.parent_version,
            "rows_read": version.rows_read,
            "row_count": version.row_count,
            "rejected_count": version.rejected_count,
            "bytes": version.bytes,
            "schema": version.schema,
            "stats": redact_stats(version.stats, self.readable(dataset, version)),
            "quality": quality,
            "files": len(version.files),
        }

    # search, lineage, DCAT ---------------------------------------------------------------
    def search(self, query: str, filters: Filters, *, limit: int, offset: int) -> SearchResult:
        return CatalogSearch(self.platform.sessions).search(
            query, visible=self.visible, filters=filters, limit=limit, offset=offset
        )

    def lineage(self) -> Lineage:
        return Lineage(self.platform.sessions)

    def dataset_lineage(self, dataset_id: str) -> Graph:
        dataset, _org, _meta = self.require(dataset_id)
        everyone = self.oversees(dataset)
        return self.lineage().for_dataset(
            dataset_id, show_reader=lambda org_id: everyone or org_id == self.principal.org_id
        )

    def sees_reader(self, org_id: str) -> bool:
        """Queries and exports: the reading organisation's own, and stewards' and admins'."""
        p = self.principal
        return org_id == p.org_id or "admin" in p.roles or "steward" in p.roles

    def dcat(self) -> dict[str, Any]:
        entries = []
        with self.platform.sessions() as session:
            for dataset_id in sorted(self.visible, key=lambda i: self._sort_key(i)):
                dataset, org, meta = self.datasets[dataset_id]
                version = None
                if dataset.current_version is not None:
                    version = session.scalar(
                        select(DatasetVersion).where(
                            DatasetVersion.dataset_id == dataset_id,
                            DatasetVersion.version == dataset.current_version,
                        )
                    )
                score = None
                if version is not None:
                    score = summarise(
                        version.gx_result,
                        rows_read=version.rows_read,
                        rows_rejected=version.rejected_count,
                    )["score"]
                entries.append(DcatEntry(dataset, org, meta, version, score))
        return catalog_document(self.platform.settings.public_url, entries)

    def _sort_key(self, dataset_id: str) -> tuple[str, str]:
        dataset, org, _meta = self.datasets[dataset_id]
        return org.slug, dataset.name


def metadata_store(platform: Platform) -> MetadataStore:
    return MetadataStore(platform.sessions)
