"""Decisions: what may a principal read, and under which obligations?

``decide`` (policies/engine.py, re-exported here) is the one function that turns
(principal, dataset, columns, purpose) plus the grant, the dataset's governance metadata,
its transfer instruments and the provider's yearly counters into obligations: visible
columns, masks, row filter, aggregate-only with a minimum group size, version pin. Its
module docstring documents the precedence (deny overrides mask overrides clear).

Resolution of a dataset reference ``org.dataset[@version]`` in a query:

1. The name must be two-part; no dataset by that name → ``UnknownDataset`` (404).
2. The caller's own organisation's datasets are readable in full (route ``own``).
3. Otherwise a live grant (not revoked, not expired at the policy clock) held by the
   caller's organisation is required → else ``AccessDenied`` (403) with the way to ask.
   Admins and stewards get no implicit data access.
4. Version: none asked → the grant's pinned version, else the current one; version *n*
   asked → allowed unless the grant pins another version (403); no version *n* → 404.
5. ``decide`` runs over that version's schema; no visible column left → ``AccessDenied``
   naming why each column was refused.

Every decision is written to the audit log by the caller of ``resolver`` (with the
rule-set version the decision carries).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from catalog.generation import GenerationCache, Snapshot
from catalog.governance import (
    AccessRequestStore,
    DeliveryLedger,
    GovernanceStore,
)
from catalog.governance_models import DatasetGovernance
from catalog.grants import GrantStore, live_at
from catalog.lake import Lake
from catalog.metadata import MetadataStore
from catalog.models import Dataset, DatasetVersion, Grant, aware, utcnow
from catalog.registry import Registry
from policies.discovery import Listing, may_discover
from policies.engine import Decision, decide
from policies.errors import AccessDenied, UnknownDataset
from policies.facts import (
    ColumnFacts,
    Consumer,
    Counters,
    DatasetFacts,
    DecisionInput,
    GrantTerms,
    InstrumentFacts,
    jurisdiction_of_origin,
    origin_for_region,
)
from policies.model import GovernedSource, Mask, Principal
from policies.ruleset import RuleSet, load_rule_set

__all__ = ["Decision", "QueryDecisions", "QueryPolicy", "decide"]

Clock = Callable[[], datetime]
Ref = tuple[str | None, str, int | None]
"""A table reference as the rewrite asks for it: (org slug, dataset name, version asked)."""


class _Unread:
    """``governance`` not passed: read it."""


UNREAD = _Unread()


@dataclass
class QueryDecisions:
    """The sources one query resolved, with the grant and decision behind each."""

    sources: list[GovernedSource] = field(default_factory=list)
    grants: dict[str, str | None] = field(
        default_factory=dict
    )  # dataset id → grant id (None: owner)
    decisions: dict[str, Decision] = field(default_factory=dict)


def grant_terms(grant: Grant) -> GrantTerms:
    return GrantTerms(
        id=grant.id,
        purpose=grant.purpose,
        columns=None if grant.columns is None else frozenset(grant.columns),
        masks=tuple(mask_from_json(m) for m in (grant.masks or [])),
        row_filter=grant.row_filter,
        aggregate_only=bool(grant.aggregate_only),
        min_group_size=grant.min_group_size,
        subject_column=grant.subject_column,
        version_pin=grant.version_pin,
        no_onward_transfer=bool(grant.no_onward_transfer),
    )


def mask_from_json(spec: dict[str, Any]) -> Mask:
    params = {k: v for k, v in spec.items() if k not in ("column", "kind")}
    return Mask(str(spec["column"]), spec["kind"], params)


class QueryPolicy:
    """The policy side of the platform: decisions, and the stores they read.

    ``clock`` is the policy clock (grant expiry, instruments in force); tests inject one.
    ``cache``: the rows a query's decisions read (grants, datasets, versions, governance),
    kept while the catalog's generation stays the same (``catalog.generation``); without
    one, every query reads them.
    """

    def __init__(
        self,
        registry: Registry,
        grants: GrantStore,
        lake: Lake,
        *,
        rules: RuleSet | None = None,
        clock: Clock = utcnow,
        cache: GenerationCache | None = None,
    ) -> None:
        self.registry = registry
        self.cache = cache or GenerationCache(None)
        self.grants = grants
        self.lake = lake
        self.rules = rules or load_rule_set()
        self.clock = clock
        self.governance = GovernanceStore(registry.sessions)
        self.requests = AccessRequestStore(registry.sessions)
        self.ledger = DeliveryLedger(registry.sessions)

    def now(self) -> datetime:
        return self.clock()

    def resolver(self, principal: Principal, decisions: QueryDecisions) -> _Resolver:
        """The resolver of one query: it decides at one catalog generation and one moment."""
        snapshot = self.cache.snapshot()
        held = snapshot.get("grants", principal.org_id, self._unrevoked_grants) or []
        live = {g.dataset_id: g for g in live_at(held, self.now())}
        return _Resolver(self, principal, live, decisions, snapshot)

    # loaders for ``self.cache`` (``Snapshot.get_many``): keys in, rows found out
    def _unrevoked_grants(self, org_ids: list[str]) -> dict[str, list[Grant]]:
        return {org_id: self.grants.unrevoked_for_org(org_id) for org_id in org_ids}

    def versions(self, wanted: list[tuple[str, int]]) -> dict[tuple[str, int], DatasetVersion]:
        """Without their statistics and GX result (tens of KB each; never read here)."""
        return self.registry.versions_by_number(wanted, documents=False)

    def distinct_estimates(
        self, wanted: list[tuple[str, int]]
    ) -> dict[tuple[str, int], dict[str, int]]:
        """Each version's distinct-value estimate per column (the delivery ledger's subject
        counts): only these numbers are kept, not the statistics document."""
        found = self.registry.versions_by_number(wanted, documents=True)
        return {
            key: {
                str(column): int(stats["distinct_estimate"])
                for column, stats in (version.stats or {}).items()
                if isinstance(stats, dict) and stats.get("distinct_estimate")
            }
            for key, version in found.items()
        }

    # facts ---------------------------------------------------------------------------
    def dataset_facts(
        self,
        dataset: Dataset,
        version: DatasetVersion | None,
        governance: DatasetGovernance | _Unread | None = UNREAD,
    ) -> DatasetFacts:
        """``governance``: the dataset's row when the caller read it already (None: it has
        none); read here otherwise."""
        if isinstance(governance, _Unread):
            governance = self.governance.get(dataset.id)
        contract_pi = {str(c["name"]): c.get("pi") for c in dataset.contract.get("columns", [])}
        if version is not None:
            names = [str(c["name"]) for c in version.schema]
            scanned = {str(c["name"]): c.get("pi") for c in version.schema}
        else:
            names, scanned = list(contract_pi), {}
        validators = {
            str(c["name"]): c.get("validator") for c in dataset.contract.get("columns", [])
        }
        columns = tuple(
            ColumnFacts(n, contract_pi.get(n) or scanned.get(n) or "pi_other", validators.get(n))
            for n in names
        )
        if governance is None:
            origin, city = origin_for_region(dataset.region)
            dsl = "important" if dataset.classification == "important" else "general"
            return DatasetFacts(
                dataset.id, dataset.org_id, dataset.region, origin, city, dsl, columns
            )
        return DatasetFacts(
            dataset_id=dataset.id,
            org_id=dataset.org_id,
            region=dataset.region,
            origin=governance.origin_jurisdiction,
            origin_city=governance.origin_city,
            dsl_level=governance.dsl_level,
            columns=columns,
            collection_purposes=frozenset(governance.collection_purposes or ()),
            consented_purposes=frozenset(governance.consented_purposes or ()),
            separate_consent=governance.separate_consent,
            spi_release=governance.spi_release,
            pipia_ref=governance.pipia_ref,
        )

    def instrument_facts(self, dataset_id: str) -> tuple[InstrumentFacts, ...]:
        return tuple(
            InstrumentFacts(
                id=i.id,
                type=i.type,
                reference=i.reference,
                effective_from=aware(i.effective_from),
                expires_at=None if i.expires_at is None else aware(i.expires_at),
                columns=None if i.columns is None else frozenset(i.columns),
                purposes=frozenset(i.purposes or ()),
            )
            for i in self.governance.instruments(dataset_id)
        )

    def counters(self, facts: DatasetFacts, now: datetime) -> Counters:
        if jurisdiction_of_origin(facts.origin) != "mainland":
            return Counters()
        pi, spi = self.ledger.yearly_out_of_mainland(now.year).get(facts.org_id, (0, 0))
        return Counters(pi, spi)

    def decide_for(
        self,
        consumer: Consumer,
        dataset: Dataset,
        version: DatasetVersion | None,
        grant: GrantTerms,
        columns: tuple[str, ...] | None = None,
        governance: DatasetGovernance | _Unread | None = UNREAD,
    ) -> Decision:
        now = self.now()
        facts = self.dataset_facts(dataset, version, governance)
        own = consumer.org_id == dataset.org_id
        return decide(
            DecisionInput(
                consumer=consumer,
                dataset=facts,
                grant=grant,
                now=now,
                instruments=() if own else self.instrument_facts(dataset.id),
                counters=Counters() if own else self.counters(facts, now),
                columns=columns,
            ),
            self.rules,
        )


def consumer_of(principal: Principal) -> Consumer:
    return Consumer(principal.org_id, principal.region, principal.jurisdiction)


@dataclass
class _Resolver:
    """Resolves the tables of *one* query, at one moment: a table named twice (a self-join, a
    subquery over the same dataset - TPC-H Q2 names 5 datasets 9 times) is decided once, and
    the catalog is read once for it (~5 ms of ORM work each on SQLite)."""

    policy: QueryPolicy
    principal: Principal
    live: dict[str, Grant]
    decisions: QueryDecisions
    snapshot: Snapshot
    _seen: dict[Ref, GovernedSource] = field(default_factory=dict, repr=False)
    # what ``prefetch`` read, in one query per table instead of three per dataset
    _datasets: dict[tuple[str, str], Dataset] | None = field(default=None, repr=False)
    _versions: dict[tuple[str, int], DatasetVersion] = field(default_factory=dict, repr=False)
    _governance: dict[str, DatasetGovernance | None] | None = field(default=None, repr=False)

    def prefetch(self, refs: Iterable[Ref]) -> None:
        """Read the datasets, versions and governance rows that ``refs`` will need, three
        reads in all (TPC-H Q8 names eight datasets: 24 reads before). The decisions are
        unchanged: ``__call__`` still decides each reference, from what was read here."""
        refs = list(refs)
        names = {(org, name) for org, name, _ in refs if org is not None}
        datasets = self.snapshot.get_many("dataset", names, self.policy.registry.find_datasets)
        wanted: set[tuple[str, int]] = set()
        for org, name, asked in refs:
            dataset = datasets.get((org, name)) if org is not None else None
            if dataset is None:
                continue
            grant = self.live.get(dataset.id)
            pin = None
            if grant is not None and dataset.org_id != self.principal.org_id:
                pin = grant.version_pin
            number = next((n for n in (asked, pin, dataset.current_version) if n is not None), None)
            if number is not None:
                wanted.add((dataset.id, number))
        self._versions = self.snapshot.get_many("version", wanted, self.policy.versions)
        ids = sorted({d.id for d in datasets.values()})
        found = self.snapshot.get_many("governance", ids, self.policy.governance.get_many)
        self._governance = {i: found.get(i) for i in ids}  # None: read, and it has none
        self._datasets = {key: datasets[key] for key in names if key in datasets}

    def _discoverable(self, dataset: Dataset) -> bool:
        """``policies.discovery``: may the caller (no grant, not the owner) know it exists?"""
        meta = MetadataStore(self.policy.registry.sessions).get(dataset.id)
        listing = Listing(
            dataset.id, dataset.org_id, dataset.region, meta.discoverable if meta else True
        )
        return may_discover(self.principal, listing, set())

    def __call__(self, org: str | None, name: str, version: int | None = None) -> GovernedSource:
        key = (org, name, version)
        source = self._seen.get(key)
        if source is None:
            source = self._seen[key] = self._resolve(org, name, version)
        self.decisions.sources.append(source)
        return source

    def _resolve(self, org: str | None, name: str, version: int | None) -> GovernedSource:
        if org is None:
            raise UnknownDataset(name)
        if self._datasets is not None and (org, name) in self._datasets:
            dataset: Dataset | None = self._datasets[(org, name)]
        else:
            dataset = self.snapshot.get("dataset", (org, name), self.policy.registry.find_datasets)
        if dataset is None:
            raise UnknownDataset(f"{org}.{name}")
        grant = self.live.get(dataset.id)
        own = dataset.org_id == self.principal.org_id
        if not own and grant is None:
            if not self._discoverable(dataset):  # unlisted: answer as if it did not exist
                raise UnknownDataset(f"{org}.{name}")
            raise AccessDenied(
                "query",
                f"dataset {org}.{name}",
                "your organisation holds no live grant on it; request access with "
                "POST /v1/access-requests or ask the dataset's steward",
            )
        terms = grant_terms(grant) if grant is not None and not own else GrantTerms(None, "own")
        committed = self._version(dataset, f"{org}.{name}", version, terms.version_pin)
        # a dataset the prefetch did not see (created since) has its row read as before
        governance = (
            self._governance[dataset.id]
            if self._governance is not None and dataset.id in self._governance
            else self.snapshot.get("governance", dataset.id, self.policy.governance.get_many)
        )
        decision = self.policy.decide_for(
            consumer_of(self.principal), dataset, committed, terms, governance=governance
        )
        if not decision.allowed:
            refused = "; ".join(f"{c.column}: {c.reason}" for c in decision.denied)
            raise AccessDenied(
                "query",
                f"dataset {org}.{name}",
                f"no column may be delivered to your organisation ({refused or 'none granted'}); "
                "ask the dataset's steward, or the provider to record a transfer instrument",
            )
        source = GovernedSource(
            dataset_id=dataset.id,
            org=org,
            name=name,
            version=committed.version,
            files=tuple(self.policy.lake.location(f["bucket"], f["key"]) for f in committed.files),
            columns=decision.columns,
            masks=decision.masks,
            row_filter=decision.row_filter,
            aggregate_only=decision.aggregate_only,
            min_group_size=decision.min_group_size,
            subject_column=decision.subject_column,
            purpose=decision.purpose,
            grant_id=decision.grant_id,
            rule_set=decision.rule_set,
            instruments=decision.instruments,
        )
        self.decisions.grants[dataset.id] = None if own else terms.id
        self.decisions.decisions[dataset.id] = decision
        return source

    def _version(
        self, dataset: Dataset, sql_name: str, asked: int | None, pin: int | None
    ) -> DatasetVersion:
        if asked is not None and pin is not None and asked != pin:
            raise AccessDenied(
                "query",
                f"version {asked} of dataset {sql_name}",
                f"your grant is pinned to version {pin}; query that version or request access "
                "to another with POST /v1/access-requests",
            )
        # "current" is read from the dataset row this call just loaded: asking the registry
        # for the current version would read that row again
        number = next((n for n in (asked, pin, dataset.current_version) if n is not None), None)
        if number is None:
            raise UnknownDataset(
                sql_name,
                "has no committed version yet; its provider's upload is still running or failed",
            )
        found = self._versions.get((dataset.id, number)) or self.snapshot.get(
            "version", (dataset.id, number), self.policy.versions
        )
        if found is None:
            raise UnknownDataset(
                sql_name,
                f"has no version {number}; GET /v1/datasets/{dataset.id}/versions lists them",
            )
        return found


def audit_detail(decision: Decision) -> dict[str, Any]:
    """The part of a decision the audit log keeps (names and classes only, never values)."""
    return {
        "rule_set": decision.rule_set,
        "route": decision.route,
        "masks": {m.column: m.kind for m in decision.masks},
        "denied": [c.column for c in decision.denied],
        "instruments": list(decision.instruments),
    }
