"""Grants: list, create directly (admin / steward of the dataset's region), revoke.

Grants normally come from an approved access request (``/v1/access-requests``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from catalog.models import Grant
from gateway.deps import PlatformDep, PrincipalDep, require_role, require_scope
from gateway.routes.org_names import ConsumerOrgFields, with_org_names
from gateway.schemas import GrantCreate, GrantOut
from gateway.services import Platform
from policies.access import AccessWorkflow
from policies.errors import AccessDenied
from policies.governance import stewarded_regions
from policies.grants import record_grant
from policies.model import Principal

router = APIRouter(prefix="/v1/grants", tags=["grants"])
Steward = Annotated[Principal, Depends(require_role("steward", "admin"))]


class GrantDetailOut(GrantOut, ConsumerOrgFields):
    masks: list[dict[str, Any]]
    row_filter: str | None
    aggregate_only: bool
    min_group_size: int | None
    subject_column: str | None
    version_pin: int | None
    request_id: str | None
    no_onward_transfer: bool


def grant_details(platform: Platform, grants: Sequence[Grant]) -> list[GrantDetailOut]:
    """The grants with their consumer organisation's slug, name and region (one query)."""
    return with_org_names(platform, grants, GrantDetailOut)


@router.get("", dependencies=[require_scope("access:request", "access:approve")])
def list_grants(principal: PrincipalDep, platform: PlatformDep) -> list[GrantDetailOut]:
    """Your organisation's grants, grants on your organisation's datasets, and (stewards)
    grants on datasets of the regions you steward."""
    regions = stewarded_regions(principal)
    datasets = {d.id: d for d, _org in platform.registry.list_datasets()}
    visible = [
        g
        for g in platform.grants.list()
        if g.org_id == principal.org_id
        or (
            (d := datasets.get(g.dataset_id)) is not None
            and (d.org_id == principal.org_id or d.region in regions)
        )
    ]
    return grant_details(platform, visible)


@router.post("", status_code=201, dependencies=[require_scope("access:approve")])
def post_grant(body: GrantCreate, principal: Steward, platform: PlatformDep) -> GrantDetailOut:
    dataset = platform.registry.get_dataset(body.dataset_id)
    if dataset.region not in stewarded_regions(principal):
        raise AccessDenied(
            "grant", f"dataset {dataset.id}", f"only a steward of region {dataset.region} may"
        )
    grant = record_grant(
        platform.grants,
        platform.audit,
        actor=principal.client_id,
        dataset=dataset,
        consumer=platform.registry.find_org(body.org),
        columns=body.columns,
        purpose=body.purpose,
        expires_at=body.expires_at,
    )
    return grant_details(platform, [grant])[0]


@router.delete("/{grant_id}", dependencies=[require_scope("access:request", "access:approve")])
def revoke_grant(grant_id: str, principal: PrincipalDep, platform: PlatformDep) -> GrantDetailOut:
    """Stewards of the dataset's region and its provider revoke at once: queries that start
    afterwards are refused."""
    flow = AccessWorkflow(platform.query_policy, platform.audit)
    return grant_details(platform, [flow.revoke_grant(principal, grant_id)])[0]
