"""Who am I (the audit log moved to ``gateway.routes.audit``)."""

from __future__ import annotations

from fastapi import APIRouter

from gateway.deps import PrincipalDep
from gateway.schemas import Me

router = APIRouter(prefix="/v1", tags=["identity"])


@router.get("/me")
def me(principal: PrincipalDep) -> Me:
    return Me(
        subject=principal.subject,
        client_id=principal.client_id,
        org_id=principal.org_id,
        org_slug=principal.org_slug,
        region=principal.region,
        jurisdiction=principal.jurisdiction,
        roles=sorted(principal.roles),
        scopes=sorted(principal.scopes),
        steward_regions=sorted(principal.steward_regions),
    )
