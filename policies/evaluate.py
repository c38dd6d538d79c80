"""Decisions: what may a principal read?

Resolution order for a dataset reference ``org.dataset`` in a query:

1. The name must be two-part; no dataset by that name → ``UnknownDataset`` (404).
2. The caller's own organisation's datasets are readable in full (providers
   query what they uploaded).
3. Otherwise a live grant (not revoked, not expired) held by the caller's
   organisation is required → else ``AccessDenied`` (403) with the way to ask.
   Admins and stewards get no implicit data access: they administer, they do
   not read rows without a grant.
4. The grant's columns (all when unset) intersected with the current
   version's schema are what the query sees; the version is the current one.

Every decision is written to the audit log by the caller of ``resolver``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from catalog.errors import NotFound
from catalog.grants import GrantStore
from catalog.lake import Lake
from catalog.models import Grant
from catalog.registry import Registry
from policies.errors import AccessDenied, UnknownDataset
from policies.model import GovernedSource, Principal


@dataclass
class QueryDecisions:
    """The sources one query resolved, with the grant behind each (for the audit log)."""

    sources: list[GovernedSource] = field(default_factory=list)
    grants: dict[str, str | None] = field(
        default_factory=dict
    )  # dataset id → grant id (None: owner)


class QueryPolicy:
    def __init__(self, registry: Registry, grants: GrantStore, lake: Lake) -> None:
        self.registry = registry
        self.grants = grants
        self.lake = lake

    def resolver(self, principal: Principal, decisions: QueryDecisions) -> _Resolver:
        live = {g.dataset_id: g for g in self.grants.live_for_org(principal.org_id)}
        return _Resolver(self, principal, live, decisions)


@dataclass
class _Resolver:
    policy: QueryPolicy
    principal: Principal
    live: dict[str, Grant]
    decisions: QueryDecisions

    def __call__(self, org: str | None, name: str) -> GovernedSource:
        if org is None:
            raise UnknownDataset(name)
        dataset = self.policy.registry.find_dataset(org, name)
        if dataset is None:
            raise UnknownDataset(f"{org}.{name}")
        grant = self.live.get(dataset.id)
        if dataset.org_id != self.principal.org_id and grant is None:
            raise AccessDenied(
                "query",
                f"dataset {org}.{name}",
                "your organisation holds no live grant on it; request access with "
                "POST /v1/access-requests or ask the dataset's steward",
            )
        try:
            version = self.policy.registry.version(dataset.id)
        except NotFound:
            raise UnknownDataset(
                f"{org}.{name}",
                "has no committed version yet; its provider's upload is still running or failed",
            ) from None
        schema_columns = [str(c["name"]) for c in version.schema]
        allowed = set(grant.columns) if grant is not None and grant.columns is not None else None
        columns = tuple(c for c in schema_columns if allowed is None or c in allowed)
        source = GovernedSource(
            dataset_id=dataset.id,
            org=org,
            name=name,
            version=version.version,
            files=tuple(self.policy.lake.location(f["bucket"], f["key"]) for f in version.files),
            columns=columns,
        )
        self.decisions.sources.append(source)
        self.decisions.grants[dataset.id] = grant.id if grant is not None else None
        return source
