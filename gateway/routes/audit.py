"""The audit log (``GET /v1/audit``), its verification, the delivery ledger and usage.

Stewards see entries about datasets of the regions they steward (and their own
actions); admins see everything. Providers read entries about their own datasets as
notifications (``GET /v1/usage``): who asked, who was granted what and why, who used it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from catalog.governance_models import Delivery
from catalog.models import AuditEvent, aware
from gateway.deps import PlatformDep, PrincipalDep, require_role, require_scope
from gateway.schemas import AuditOut
from gateway.services import Platform
from policies.governance import stewarded_regions
from policies.ledger import yearly_counters
from policies.model import Principal

router = APIRouter(prefix="/v1", tags=["audit"])
Auditor = Annotated[Principal, Depends(require_role("steward", "admin"))]
Provider = Annotated[Principal, Depends(require_role("provider"))]
SCAN_LIMIT = 20_000  # events looked at per request when filtering by region


def _datasets_of(event: AuditEvent) -> set[str]:
    """Dataset ids and SQL names (``org.name``, from refusals) an event is about."""
    found = set()
    if event.resource.startswith("dataset:"):
        found.add(event.resource.removeprefix("dataset:"))
    elif event.resource.startswith("org:"):  # e.g. a provider's rule-6 threshold alert
        found.add(event.resource)
    detail = event.detail or {}
    for entry in detail.get("datasets") or []:
        if isinstance(entry, dict) and isinstance(entry.get("dataset"), str):
            found.add(entry["dataset"])
    for key in ("resource", "dataset"):  # a refused query names the dataset it was refused on
        value = detail.get(key)
        if isinstance(value, str):
            found.add(value.rsplit(" ", 1)[-1])
    return found


def _visible_events(
    platform: Platform,
    *,
    dataset_ids: set[str] | None,
    actor_ids: set[str],
    limit: int,
    before: int | None,
    actor: str | None,
    action: str | None,
) -> list[AuditEvent]:
    """Newest first; ``dataset_ids=None`` means every event."""
    if dataset_ids is None:
        return platform.audit.page(limit=limit, before=before, actor=actor, action=action)
    out: list[AuditEvent] = []
    scanned = 0
    while len(out) < limit and scanned < SCAN_LIMIT:
        page = platform.audit.page(limit=500, before=before, actor=actor, action=action)
        if not page:
            break
        scanned += len(page)
        before = page[-1].seq
        out += [e for e in page if e.actor in actor_ids or _datasets_of(e) & dataset_ids]
    return out[:limit]


@router.get("/audit", dependencies=[require_scope("audit:read")])
def audit(
    principal: Auditor,
    platform: PlatformDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[int | None, Query(ge=1, description="Page back from this seq.")] = None,
    actor: str | None = None,
    action: str | None = None,
) -> dict[str, object]:
    regions = stewarded_regions(principal)
    everything = "admin" in principal.roles
    dataset_ids = None
    if not everything:
        dataset_ids = set()
        for d, o in platform.registry.list_datasets():
            if d.region in regions:
                dataset_ids |= {d.id, f"{o.slug}.{d.name}", f"org:{o.id}"}
    events = _visible_events(
        platform,
        dataset_ids=dataset_ids,
        actor_ids={principal.client_id},
        limit=limit,
        before=before,
        actor=actor,
        action=action,
    )
    intact, broken_at = platform.audit.verify()
    return {
        "chain_intact": intact,
        "broken_at": broken_at,
        "regions": sorted(regions),
        "events": [AuditOut.model_validate(e, from_attributes=True) for e in events],
        "next_before": events[-1].seq if len(events) == limit else None,
    }


@router.get("/audit/verify", dependencies=[require_scope("audit:read")])
def verify(_principal: Auditor, platform: PlatformDep) -> dict[str, Any]:
    """Recompute the whole hash chain; ``first_broken`` names the first entry that fails."""
    return platform.audit.verify_report()


def _delivery(row: Delivery) -> dict[str, Any]:
    return {
        "id": row.id,
        "ts": row.ts,
        "action": row.action,
        "dataset_id": row.dataset_id,
        "dataset_version": row.dataset_version,
        "provider_org_id": row.provider_org_id,
        "consumer_org_id": row.consumer_org_id,
        "consumer_entity": row.consumer_entity,
        "consumer_jurisdiction": row.consumer_jurisdiction,
        "origin_jurisdiction": row.origin_jurisdiction,
        "cross_boundary": row.cross_boundary,
        "purpose": row.purpose,
        "grant_id": row.grant_id,
        "columns": row.columns,
        "masks": row.masks,
        "instruments": row.instruments,
        "rule_set": row.rule_set,
        "row_count": row.row_count,
        "pi_subjects": row.pi_subjects,
        "spi_subjects": row.spi_subjects,
    }


@router.get("/deliveries", dependencies=[require_scope("datasets:read", "audit:read")])
def deliveries(
    principal: PrincipalDep,
    platform: PlatformDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """The delivery ledger: stewards see deliveries from their regions, providers from their
    datasets, consumers their own organisation's."""
    ledger = platform.query_policy.ledger
    if "admin" in principal.roles:
        rows = ledger.list(limit=limit)
    elif regions := stewarded_regions(principal):
        ids = [d.id for d, _o in platform.registry.list_datasets() if d.region in regions]
        rows = ledger.list(dataset_ids=ids, limit=limit)
    else:
        own = ledger.list(provider_org_id=principal.org_id, limit=limit)
        rows = own + ledger.list(consumer_org_id=principal.org_id, limit=limit)
        rows = sorted({r.id: r for r in rows}.values(), key=lambda r: -r.id)[:limit]
    return [_delivery(r) for r in rows]


@router.get("/deliveries/counters", dependencies=[require_scope("audit:read")])
def counters(principal: Auditor, platform: PlatformDep) -> list[dict[str, Any]]:
    """DOMAIN.md rule 6: per mainland provider, this calendar year's distinct subjects
    delivered out of the mainland, with alerts at 80% of each threshold."""
    orgs = platform.registry.list_orgs()
    regions = stewarded_regions(principal)
    in_scope = {o.id for o in orgs if o.region in regions}
    reports = yearly_counters(platform.query_policy, orgs)
    return [r.as_dict() for r in reports if r.provider_org_id in in_scope]


@router.get("/usage", dependencies=[require_scope("datasets:write")])
def usage(
    principal: Provider,
    platform: PlatformDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Who uses my data and why: live grants per dataset (consumer, purpose, columns,
    obligations, expiry), the delivery ledger, and notifications (audit entries about my
    datasets: requests, decisions, revocations, instruments)."""
    datasets = {d.id: d for d, _o in platform.registry.list_datasets(org_id=principal.org_id)}
    orgs = {o.id: o for o in platform.registry.list_orgs()}
    now = platform.query_policy.now()
    grants = []
    for grant in platform.grants.list():
        if grant.dataset_id not in datasets:
            continue
        live = grant.revoked_at is None and (
            grant.expires_at is None or aware(grant.expires_at) > now
        )
        grants.append(
            {
                "grant_id": grant.id,
                "dataset_id": grant.dataset_id,
                "dataset": datasets[grant.dataset_id].name,
                "consumer": org.slug if (org := orgs.get(grant.org_id)) else grant.org_id,
                "consumer_name": org.name if org else None,
                "consumer_region": org.region if org else None,
                "purpose": grant.purpose,
                "columns": grant.columns,
                "masks": grant.masks,
                "row_filter": grant.row_filter,
                "aggregate_only": grant.aggregate_only,
                "expires_at": grant.expires_at,
                "revoked_at": grant.revoked_at,
                "live": live,
                "request_id": grant.request_id,
            }
        )
    notifications = _visible_events(
        platform,
        dataset_ids=set(datasets),
        actor_ids=set(),
        limit=limit,
        before=None,
        actor=None,
        action=None,
    )
    ledger = platform.query_policy.ledger.list(provider_org_id=principal.org_id, limit=limit)
    return {
        "grants": grants,
        "deliveries": [
            {
                **_delivery(r),
                "consumer_name": org.name if (org := orgs.get(r.consumer_org_id)) else None,
            }
            for r in ledger
        ],
        "notifications": [
            AuditOut.model_validate(e, from_attributes=True)
            for e in notifications
            if e.action != "query.run" and e.action != "query.explain"
        ],
    }
