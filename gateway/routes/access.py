"""Access requests and steward decisions (``/v1/access-requests``).

The rules (who sees, who decides, how far an approval may go) live in
``policies.access``; this module only maps HTTP to them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from catalog.governance_models import AccessRequest
from gateway.deps import PlatformDep, PrincipalDep, require_role, require_scope
from gateway.routes.grants import GrantDetailOut, grant_details
from gateway.routes.org_names import ConsumerOrgFields, with_org_names
from gateway.services import Platform
from policies.access import AccessWorkflow, Approval, RequestInput
from policies.evaluate import consumer_of
from policies.facts import PURPOSES
from policies.model import Principal

router = APIRouter(prefix="/v1/access-requests", tags=["access"])
Requester = Annotated[Principal, Depends(require_role("consumer", "provider"))]
Steward = Annotated[Principal, Depends(require_role("steward"))]


def workflow(platform: Platform) -> AccessWorkflow:
    return AccessWorkflow(platform.query_policy, platform.audit)


class RequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset_id: str = Field(max_length=64)
    columns: list[str] | None = Field(default=None, description="None: every column.")
    purpose: str = Field(description="One of: " + ", ".join(PURPOSES))
    duration_days: int = Field(default=90, ge=1, le=730)
    justification: str = Field(default="", max_length=4000)
    accept_no_onward_transfer: bool = Field(
        default=False,
        description="The consumer will not provide the data to parties outside the GBA "
        "(required for the GBA Standard Contract path).",
    )

    def as_input(self) -> RequestInput:
        return RequestInput(**self.model_dump())


class MaskIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    column: str
    kind: Literal["hmac", "redact", "partial", "generalise", "null"]
    keep_prefix: int | None = None
    keep_suffix: int | None = None
    to: Literal["day", "week", "month", "quarter", "year"] | None = None
    text: str | None = Field(default=None, max_length=64)
    bucket: float | None = None


class ApprovalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    columns: list[str] | None = Field(default=None, description="A subset of those asked.")
    masks: list[MaskIn] = Field(default_factory=list)
    row_filter: str | None = Field(
        default=None, max_length=2000, description="DuckDB predicate over the dataset's columns."
    )
    duration_days: int | None = Field(default=None, ge=1, le=730)
    aggregate_only: bool = False
    min_group_size: int | None = None
    subject_column: str | None = None
    version: int | None = Field(default=None, ge=1, description="Pin the grant to a version.")
    note: str = Field(default="", max_length=4000)

    def as_approval(self) -> Approval:
        return Approval(
            columns=self.columns,
            masks=[m.model_dump(exclude_none=True) for m in self.masks],
            row_filter=self.row_filter,
            duration_days=self.duration_days,
            aggregate_only=self.aggregate_only,
            min_group_size=self.min_group_size,
            subject_column=self.subject_column,
            version=self.version,
            note=self.note,
        )


class DenyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=4000)


class RequestOut(ConsumerOrgFields):
    id: str
    dataset_id: str
    org_id: str
    region: str
    requested_by: str
    columns: list[str] | None
    purpose: str
    duration_days: int
    justification: str
    accept_no_onward_transfer: bool
    status: str
    preview: dict[str, Any] = Field(
        description="What the cross-boundary rules deliver under the request as asked."
    )
    created_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision: dict[str, Any] | None
    reason: str
    grant_id: str | None


class ApprovedOut(BaseModel):
    request: RequestOut
    grant: GrantDetailOut


def requests_out(platform: Platform, requests: Sequence[AccessRequest]) -> list[RequestOut]:
    """The requests with their consumer organisation's slug, name and region (one query)."""
    return with_org_names(platform, requests, RequestOut)


def request_out(platform: Platform, request: AccessRequest) -> RequestOut:
    return requests_out(platform, [request])[0]


@router.post("/preview", dependencies=[require_scope("access:request")])
def preview(body: RequestIn, principal: Requester, platform: PlatformDep) -> dict[str, Any]:
    """What the rules would deliver for this request, without filing it."""
    flow = workflow(platform)
    dataset = platform.registry.get_dataset(body.dataset_id)
    decision = flow.preview(
        consumer_of(principal),
        dataset,
        columns=body.columns,
        purpose=body.purpose,
        no_onward_transfer=body.accept_no_onward_transfer,
    )
    return decision.as_dict()


@router.post("", status_code=201, dependencies=[require_scope("access:request")])
def create(body: RequestIn, principal: Requester, platform: PlatformDep) -> RequestOut:
    return request_out(platform, workflow(platform).create(principal, body.as_input()))


@router.get("", dependencies=[require_scope("access:request", "access:approve")])
def list_requests(
    principal: PrincipalDep,
    platform: PlatformDep,
    status: Annotated[Literal["pending", "approved", "denied", "withdrawn"] | None, Query()] = None,
) -> list[RequestOut]:
    """Consumers: their organisation's; providers: those on their datasets; stewards: those
    of the regions they steward (the approval queue is ``?status=pending``)."""
    return requests_out(platform, workflow(platform).visible(principal, status))


@router.get("/{request_id}", dependencies=[require_scope("access:request", "access:approve")])
def get_request(request_id: str, principal: PrincipalDep, platform: PlatformDep) -> RequestOut:
    return request_out(platform, workflow(platform).get(principal, request_id))


@router.post("/{request_id}/approve", dependencies=[require_scope("access:approve")])
def approve(
    request_id: str, body: ApprovalIn, principal: Steward, platform: PlatformDep
) -> ApprovedOut:
    request, grant = workflow(platform).approve(principal, request_id, body.as_approval())
    return ApprovedOut(
        request=request_out(platform, request), grant=grant_details(platform, [grant])[0]
    )


@router.post("/{request_id}/deny", dependencies=[require_scope("access:approve")])
def deny(request_id: str, body: DenyIn, principal: Steward, platform: PlatformDep) -> RequestOut:
    return request_out(platform, workflow(platform).deny(principal, request_id, body.reason))


@router.post("/{request_id}/withdraw", dependencies=[require_scope("access:request")])
def withdraw(request_id: str, principal: Requester, platform: PlatformDep) -> RequestOut:
    return request_out(platform, workflow(platform).withdraw(principal, request_id))
