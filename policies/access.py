"""The access workflow: a consumer requests, a steward of the dataset's region decides.

Visibility and authority (decided here, once):

* a consumer sees its own organisation's requests; a provider sees requests on its
  datasets; a steward sees requests on datasets of the regions it stewards; admins see all.
  A request someone may not see answers 404 (it does not leak that it exists).
* Only a steward of the dataset's region (or an admin) decides, and never a request of its
  own organisation; anyone else who can see it gets 403.
* Approving may only narrow what was asked: fewer columns, masks, a row filter, a shorter
  duration, aggregate-only with a minimum group size, a version pin. The grant carries the
  request's purpose and the consumer's "no onward transfer" acceptance.

Each step is audited against ``dataset:<id>`` with the rule-set version of its decision;
providers read those entries as their notifications.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from catalog.audit import AuditLog
from catalog.errors import InvalidInput, NotFound
from catalog.governance_models import AccessRequest
from catalog.models import Dataset, Grant, aware
from catalog.regions import Region
from policies.engine import Decision
from policies.errors import AccessDenied
from policies.evaluate import QueryPolicy, audit_detail, consumer_of, mask_from_json
from policies.facts import PURPOSES, Consumer, GrantTerms
from policies.governance import stewarded_regions
from policies.model import Principal
from policies.row_filter import check_masks, check_row_filter

MAX_DURATION_DAYS = 730


@dataclass(frozen=True)
class RequestInput:
    dataset_id: str
    purpose: str
    duration_days: int
    columns: list[str] | None = None
    justification: str = ""
    accept_no_onward_transfer: bool = False


@dataclass(frozen=True)
class Approval:
    """How a steward narrows a request; every field left out keeps what was asked."""

    columns: list[str] | None = None
    masks: list[dict[str, Any]] = field(default_factory=list)
    row_filter: str | None = None
    duration_days: int | None = None
    aggregate_only: bool = False
    min_group_size: int | None = None
    subject_column: str | None = None
    version: int | None = None
    note: str = ""


class AccessWorkflow:
    def __init__(self, policy: QueryPolicy, audit: AuditLog) -> None:
        self.policy = policy
        self.audit = audit

    # helpers -------------------------------------------------------------------------
    def _columns(self, dataset: Dataset) -> list[str]:
        version = None
        if dataset.current_version is not None:
            version = self.policy.registry.version(dataset.id)
        return [c.name for c in self.policy.dataset_facts(dataset, version).columns]

    def preview(
        self,
        consumer: Consumer,
        dataset: Dataset,
        *,
        columns: list[str] | None,
        purpose: str,
        no_onward_transfer: bool,
        approval: Approval | None = None,
    ) -> Decision:
        """What the rules would deliver to ``consumer`` under a grant of these terms."""
        version = None
        if dataset.current_version is not None:
            version = self.policy.registry.version(dataset.id, (approval or Approval()).version)
        masks = tuple(mask_from_json(m) for m in (approval.masks if approval else []))
        terms = GrantTerms(
            id=None,
            purpose=purpose,
            columns=None if columns is None else frozenset(columns),
            masks=masks,
            row_filter=approval.row_filter if approval else None,
            aggregate_only=approval.aggregate_only if approval else False,
            min_group_size=approval.min_group_size if approval else None,
            subject_column=approval.subject_column if approval else None,
            version_pin=approval.version if approval else None,
            no_onward_transfer=no_onward_transfer,
        )
        return self.policy.decide_for(consumer, dataset, version, terms)

    def _scope_notes(self, dataset: Dataset, decision: Decision, purpose: str) -> list[str]:
        """Rule 14: PI asked beyond a GBA SC filing's scope needs a supplement / re-filing."""
        if decision.route != "mainland_to_sar":
            return []
        filings = [i for i in self.policy.instrument_facts(dataset.id) if i.type.startswith("GBA")]
        if not filings:
            return []
        outside = [
            c.column
            for c in decision.column_decisions
            if c.pi != "non_pi" and not any(f.covers(c.column, purpose) for f in filings)
        ]
        if not outside:
            return []
        return [
            f"scope change: {', '.join(outside)} for {purpose} are outside the GBA Standard "
            "Contract filing; the provider must file a supplement before they can go in clear"
        ]

    # requests ------------------------------------------------------------------------
    def create(self, principal: Principal, body: RequestInput) -> AccessRequest:
        dataset = self.policy.registry.get_dataset(body.dataset_id)
        if dataset.org_id == principal.org_id:
            raise InvalidInput(
                "your organisation already reads its own datasets; no request needed",
                field="dataset_id",
            )
        if body.purpose not in PURPOSES:
            raise InvalidInput(
                f"purpose {body.purpose!r}; use one of {', '.join(PURPOSES)}", field="purpose"
            )
        if not 1 <= body.duration_days <= MAX_DURATION_DAYS:
            raise InvalidInput(
                f"duration_days must be between 1 and {MAX_DURATION_DAYS}", field="duration_days"
            )
        columns = self._checked_columns(dataset, body.columns)
        decision = self.preview(
            consumer_of(principal),
            dataset,
            columns=columns,
            purpose=body.purpose,
            no_onward_transfer=body.accept_no_onward_transfer,
        )
        preview = {
            **decision.as_dict(),
            "notes": self._scope_notes(dataset, decision, body.purpose),
        }
        request = self.policy.requests.create(
            dataset_id=dataset.id,
            org_id=principal.org_id,
            region=dataset.region,
            requested_by=principal.client_id,
            columns=columns,
            purpose=body.purpose,
            duration_days=body.duration_days,
            justification=body.justification,
            accept_no_onward_transfer=body.accept_no_onward_transfer,
            preview=preview,
            created_at=self.policy.now(),
        )
        self.audit.append(
            actor=principal.client_id,
            action="access_request.created",
            resource=f"dataset:{dataset.id}",
            outcome="pending",
            detail={
                "request": request.id,
                "org": principal.org_slug,
                "columns": columns,
                "purpose": body.purpose,
                "duration_days": body.duration_days,
                "scope_change": bool(preview["notes"]),
                **audit_detail(decision),
            },
        )
        return request

    def _checked_columns(self, dataset: Dataset, columns: list[str] | None) -> list[str] | None:
        if columns is None:
            return None
        known = self._columns(dataset)
        unknown = sorted(set(columns) - set(known))
        if unknown or not columns:
            raise InvalidInput(
                f"columns must be a non-empty subset of {dataset.name}'s columns "
                f"({', '.join(known)}); unknown: {', '.join(unknown) or '(none given)'}",
                field="columns",
            )
        return [c for c in known if c in set(columns)]

    def can_see(self, principal: Principal, request: AccessRequest) -> bool:
        if request.org_id == principal.org_id or request.region in stewarded_regions(principal):
            return True
        dataset = self.policy.registry.get_dataset(request.dataset_id)
        return dataset.org_id == principal.org_id

    def get(self, principal: Principal, request_id: str) -> AccessRequest:
        request = self.policy.requests.get(request_id)
        if not self.can_see(principal, request):
            raise NotFound(
                "access request", request_id, "GET /v1/access-requests lists the ones you may see"
            )
        return request

    def visible(self, principal: Principal, status: str | None = None) -> list[AccessRequest]:
        regions = stewarded_regions(principal)
        store = self.policy.requests
        found: dict[str, AccessRequest] = {}
        for request in (
            store.list(org_id=principal.org_id, status=status)
            + store.list(provider_org_id=principal.org_id, status=status)
            + (store.list(regions=sorted(regions), status=status) if regions else [])
        ):
            found[request.id] = request
        return sorted(found.values(), key=lambda r: aware(r.created_at), reverse=True)

    def _decidable(self, principal: Principal, request_id: str) -> tuple[AccessRequest, Dataset]:
        request = self.get(principal, request_id)
        if request.region not in stewarded_regions(principal):
            raise AccessDenied(
                "decide",
                f"access request {request_id}",
                f"only a steward of region {request.region} may approve or deny it",
            )
        if request.org_id == principal.org_id:
            raise AccessDenied(
                "decide",
                f"access request {request_id}",
                "a request of your own organisation must be decided by another steward",
            )
        return request, self.policy.registry.get_dataset(request.dataset_id)

    def approve(
        self, principal: Principal, request_id: str, approval: Approval
    ) -> tuple[AccessRequest, Grant]:
        request, dataset = self._decidable(principal, request_id)
        approval = self._narrowed(request, dataset, approval)
        consumer_org = self.policy.registry.get_org(request.org_id)
        region = Region(consumer_org.region)
        consumer = Consumer(consumer_org.id, region.value, region.jurisdiction)
        decision = self.preview(
            consumer,
            dataset,
            columns=approval.columns,
            purpose=request.purpose,
            no_onward_transfer=request.accept_no_onward_transfer,
            approval=approval,
        )
        if not decision.allowed:
            raise InvalidInput(
                "under these terms no column could be delivered to the consumer: "
                + "; ".join(f"{c.column}: {c.reason}" for c in decision.denied)
                + " — deny the request instead, or record a transfer instrument first",
                field="columns",
            )
        now = self.policy.now()
        days = approval.duration_days or request.duration_days
        grant = self.policy.grants.create(
            dataset_id=dataset.id,
            org_id=request.org_id,
            columns=approval.columns,
            purpose=request.purpose,
            created_by=principal.client_id,
            created_at=now,
            expires_at=now + timedelta(days=days),
            masks=approval.masks,
            row_filter=approval.row_filter,
            aggregate_only=approval.aggregate_only,
            min_group_size=approval.min_group_size,
            subject_column=approval.subject_column,
            version_pin=approval.version,
            request_id=request.id,
            no_onward_transfer=request.accept_no_onward_transfer,
        )
        terms = {
            "columns": approval.columns,
            "masks": approval.masks,
            "row_filter": approval.row_filter,
            "duration_days": days,
            "aggregate_only": approval.aggregate_only,
            "min_group_size": approval.min_group_size,
            "subject_column": approval.subject_column,
            "version": approval.version,
            "note": approval.note,
            "obligations": decision.as_dict(),
        }
        settled = self.policy.requests.settle(
            request.id,
            status="approved",
            decided_by=principal.client_id,
            decided_at=now,
            decision=terms,
            reason=approval.note,
            grant_id=grant.id,
        )
        self.audit.append(
            actor=principal.client_id,
            action="access_request.approved",
            resource=f"dataset:{dataset.id}",
            outcome="granted",
            detail={
                "request": request.id,
                "grant": grant.id,
                "org": consumer_org.slug,
                "purpose": request.purpose,
                "columns": list(decision.columns),
                "narrowed": approval.columns != request.columns
                or bool(approval.masks or approval.row_filter or approval.aggregate_only)
                or days < request.duration_days
                or approval.version is not None,
                "expires_at": grant.expires_at,
                **audit_detail(decision),
            },
        )
        return settled, grant

    def _narrowed(self, request: AccessRequest, dataset: Dataset, approval: Approval) -> Approval:
        known = self._columns(dataset)
        asked = request.columns if request.columns is not None else known
        columns = approval.columns
        if columns is not None:
            wider = sorted(set(columns) - set(asked))
            if wider or not columns:
                raise InvalidInput(
                    "approval may only narrow the request: columns must be a non-empty subset "
                    f"of {', '.join(asked)}; not asked for: {', '.join(wider) or '(none given)'}",
                    field="columns",
                )
            columns = [c for c in known if c in set(columns)]
        else:
            columns = request.columns
        visible = columns if columns is not None else known
        if approval.duration_days is not None and not (
            1 <= approval.duration_days <= request.duration_days
        ):
            raise InvalidInput(
                f"duration_days may only shorten the request: 1 to {request.duration_days}",
                field="duration_days",
            )
        row_filter = None
        if approval.row_filter is not None:
            row_filter = check_row_filter(approval.row_filter, known)
        self._check_aggregation(approval, visible)
        if approval.version is not None:
            try:
                self.policy.registry.version(dataset.id, approval.version)
            except NotFound:
                raise InvalidInput(
                    f"version {approval.version} of the dataset does not exist; "
                    f"GET /v1/datasets/{dataset.id}/versions lists them",
                    field="version",
                ) from None
        return Approval(
            columns=columns,
            masks=check_masks(
                approval.masks,
                visible,
                {str(c["name"]): str(c.get("type", "string")) for c in dataset.contract["columns"]},
            ),
            row_filter=row_filter,
            duration_days=approval.duration_days,
            aggregate_only=approval.aggregate_only,
            min_group_size=approval.min_group_size,
            subject_column=approval.subject_column,
            version=approval.version,
            note=approval.note,
        )

    @staticmethod
    def _check_aggregation(approval: Approval, visible: list[str]) -> None:
        if approval.min_group_size is not None:
            if not approval.aggregate_only:
                raise InvalidInput(
                    "min_group_size applies to aggregate-only access: set aggregate_only",
                    field="min_group_size",
                )
            if not 2 <= approval.min_group_size <= 1_000_000:
                raise InvalidInput("min_group_size must be at least 2", field="min_group_size")
            if approval.subject_column not in visible:
                raise InvalidInput(
                    "min_group_size counts distinct subjects: name subject_column, one of "
                    + ", ".join(visible),
                    field="subject_column",
                )
        elif approval.subject_column is not None and approval.subject_column not in visible:
            raise InvalidInput(
                f"subject_column must be one of {', '.join(visible)}", field="subject_column"
            )

    def deny(self, principal: Principal, request_id: str, reason: str) -> AccessRequest:
        if not reason.strip():
            raise InvalidInput(
                "say why the request is denied: the consumer reads it", field="reason"
            )
        request, dataset = self._decidable(principal, request_id)
        settled = self.policy.requests.settle(
            request.id,
            status="denied",
            decided_by=principal.client_id,
            decided_at=self.policy.now(),
            reason=reason.strip(),
        )
        self.audit.append(
            actor=principal.client_id,
            action="access_request.denied",
            resource=f"dataset:{dataset.id}",
            outcome="denied",
            detail={
                "request": request.id,
                "reason": reason.strip(),
                "rule_set": self.policy.rules.ref,
            },
        )
        return settled

    def withdraw(self, principal: Principal, request_id: str) -> AccessRequest:
        request = self.get(principal, request_id)
        if request.org_id != principal.org_id:
            raise AccessDenied(
                "withdraw", f"access request {request_id}", "only the requesting organisation may"
            )
        settled = self.policy.requests.settle(
            request.id,
            status="withdrawn",
            decided_by=principal.client_id,
            decided_at=self.policy.now(),
        )
        self.audit.append(
            actor=principal.client_id,
            action="access_request.withdrawn",
            resource=f"dataset:{request.dataset_id}",
            outcome="withdrawn",
            detail={"request": request.id},
        )
        return settled

    def revoke_grant(self, principal: Principal, grant_id: str) -> Grant:
        """A steward of the dataset's region, the provider or an admin revokes at once."""
        grant = self.policy.grants.get(grant_id)
        dataset = self.policy.registry.get_dataset(grant.dataset_id)
        if not (
            dataset.region in stewarded_regions(principal) or dataset.org_id == principal.org_id
        ):
            if grant.org_id == principal.org_id:
                raise AccessDenied(
                    "revoke", f"grant {grant_id}", "ask the dataset's steward or provider"
                )
            raise NotFound("grant", grant_id)
        revoked = self.policy.grants.revoke(grant_id, now=self.policy.now())
        self.audit.append(
            actor=principal.client_id,
            action="grant.revoke",
            resource=f"dataset:{dataset.id}",
            outcome="revoked",
            detail={"grant": grant_id, "org_id": grant.org_id},
        )
        return revoked

    def grant_is_live(self, grant_id: str) -> bool:
        """For long-running work (exports): stop when this turns false."""
        try:
            grant = self.policy.grants.get(grant_id)
        except NotFound:
            return False
        return grant.revoked_at is None and (
            grant.expires_at is None or aware(grant.expires_at) > self.policy.now()
        )
