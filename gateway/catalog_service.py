"""The catalog as one caller sees it: discovery (``policies.discovery``) applied to the
catalog's datasets, metadata, versions, quality, lineage and DCAT.

Routes build a ``CatalogView`` per request and shape its answers; the rules live in
``policies.discovery`` (who sees metadata) and ``catalog.quality.readable_columns`` (who
sees value statistics).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from sqlalchemy import and_, select

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

Card = tuple[Dataset, Organisation, DatasetMetadata | None]


@dataclass
class CatalogView:
    platform: Platform
    principal: Principal

    @cached_property
    def grants(self) -> dict[str, Grant]:
        return {g.dataset_id: g for g in self.platform.grants.live_for_org(self.principal.org_id)}

    @cached_property
    def listings(self) -> dict[str, Listing]:
        """What discovery needs of every dataset (no JSON columns: cheap for large catalogs)."""
        with self.platform.sessions() as session:
            rows = session.execute(
                select(
                    Dataset.id, Dataset.org_id, Dataset.region, DatasetMetadata.discoverable
                ).outerjoin(DatasetMetadata, DatasetMetadata.dataset_id == Dataset.id)
            ).all()
        return {r[0]: Listing(r[0], r[1], r[2], r[3] if r[3] is not None else True) for r in rows}

    @cached_property
    def visible(self) -> set[str]:
        return discoverable_ids(self.principal, self.listings.values(), set(self.grants))

    def load(self, ids: Iterable[str]) -> dict[str, Card]:
        """Datasets with their organisation and metadata, ordered by org slug and name."""
        wanted = sorted(set(ids))
        found: dict[str, Card] = {}
        with self.platform.sessions() as session:
            for start in range(0, len(wanted), 500):
                rows = session.execute(
                    select(Dataset, Organisation, DatasetMetadata)
                    .join(Organisation, Organisation.id == Dataset.org_id)
                    .outerjoin(DatasetMetadata, DatasetMetadata.dataset_id == Dataset.id)
                    .where(Dataset.id.in_(wanted[start : start + 500]))
                ).all()
                found.update({d.id: (d, o, m) for d, o, m in rows})
        order = sorted(found, key=lambda i: (found[i][1].slug, found[i][0].name))
        return {i: found[i] for i in order}

    def require(self, dataset_id: str) -> Card:
        """The dataset, or 404 — also when it exists but the caller may not discover it."""
        found = self.load([dataset_id]) if dataset_id in self.visible else {}
        if dataset_id not in found:
            raise NotFound("dataset", dataset_id, "GET /v1/catalog/search finds datasets")
        return found[dataset_id]

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
        cards = self.load(self.visible)
        with self.platform.sessions() as session:
            versions = {
                v.dataset_id: v
                for v in session.scalars(
                    select(DatasetVersion)
                    .join(
                        Dataset,
                        and_(
                            Dataset.id == DatasetVersion.dataset_id,
                            Dataset.current_version == DatasetVersion.version,
                        ),
                    )
                    .where(Dataset.id.in_(sorted(cards)))
                )
            }
        entries = []
        for dataset_id, (dataset, org, meta) in cards.items():
            version = versions.get(dataset_id)
            score = None
            if version is not None:
                score = summarise(
                    version.gx_result,
                    rows_read=version.rows_read,
                    rows_rejected=version.rejected_count,
                )["score"]
            entries.append(DcatEntry(dataset, org, meta, version, score))
        return catalog_document(self.platform.settings.public_url, entries)


def metadata_store(platform: Platform) -> MetadataStore:
    return MetadataStore(platform.sessions)
