"""Grants: list, create directly (admin/steward, until the access workflow lands), revoke."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from catalog.models import Grant
from gateway.deps import PlatformDep, PrincipalDep, require_role, require_scope
from gateway.errors import Forbidden
from gateway.schemas import GrantCreate, GrantOut
from policies.grants import record_grant
from policies.model import Principal

router = APIRouter(prefix="/v1/grants", tags=["grants"])
Steward = Annotated[Principal, Depends(require_role("steward", "admin"))]


def grant_out(grant: Grant) -> GrantOut:
    return GrantOut.model_validate(grant, from_attributes=True)


@router.get("", dependencies=[require_scope("access:request", "access:approve")])
def list_grants(principal: PrincipalDep, platform: PlatformDep) -> list[GrantOut]:
    """Consumers see their organisation's grants; stewards and admins see all."""
    org_id = None if principal.has_role("steward") else principal.org_id
    return [grant_out(g) for g in platform.grants.list(org_id=org_id)]


@router.post("", status_code=201, dependencies=[require_scope("access:approve")])
def post_grant(body: GrantCreate, principal: Steward, platform: PlatformDep) -> GrantOut:
    grant = record_grant(
        platform.grants,
        platform.audit,
        actor=principal.client_id,
        dataset=platform.registry.get_dataset(body.dataset_id),
        consumer=platform.registry.find_org(body.org),
        columns=body.columns,
        purpose=body.purpose,
        expires_at=body.expires_at,
    )
    return grant_out(grant)


@router.delete("/{grant_id}", dependencies=[require_scope("access:request", "access:approve")])
def revoke_grant(grant_id: str, principal: PrincipalDep, platform: PlatformDep) -> GrantOut:
    grant = platform.grants.get(grant_id)
    dataset = platform.registry.get_dataset(grant.dataset_id)
    if not (principal.has_role("steward") or dataset.org_id == principal.org_id):
        raise Forbidden(
            "only a steward or the dataset's provider may revoke a grant", grant=grant_id
        )
    grant = platform.grants.revoke(grant_id)
    platform.audit.append(
        actor=principal.client_id,
        action="grant.revoke",
        resource=f"dataset:{dataset.id}",
        outcome="revoked",
        detail={"grant": grant_id},
    )
    return grant_out(grant)
