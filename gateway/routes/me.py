"""Who am I, and the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from gateway.deps import PlatformDep, PrincipalDep, require_role, require_scope
from gateway.schemas import AuditOut, Me
from policies.model import Principal

router = APIRouter(prefix="/v1", tags=["identity"])
Auditor = Annotated[Principal, Depends(require_role("steward", "admin"))]


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
    )


@router.get("/audit", dependencies=[require_scope("audit:read")])
def audit(
    _principal: Auditor,
    platform: PlatformDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    actor: str | None = None,
) -> dict[str, object]:
    intact, broken_at = platform.audit.verify()
    events = [
        AuditOut.model_validate(e, from_attributes=True)
        for e in platform.audit.recent(limit=limit, actor=actor)
    ]
    return {"chain_intact": intact, "broken_at": broken_at, "events": events}
