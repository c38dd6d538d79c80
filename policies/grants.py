"""Recording a grant: the checks every path (API, CLI, later the access workflow) shares."""

from __future__ import annotations

from datetime import datetime

from catalog.audit import AuditLog
from catalog.errors import InvalidInput
from catalog.grants import GrantStore
from catalog.models import Dataset, Grant, Organisation


def record_grant(
    grants: GrantStore,
    audit: AuditLog,
    *,
    actor: str,
    dataset: Dataset,
    consumer: Organisation,
    columns: list[str] | None,
    purpose: str,
    expires_at: datetime | None = None,
) -> Grant:
    """Grant ``consumer`` read access to ``dataset`` (only ``columns`` when given) and audit it."""
    if columns is not None:
        known = {c["name"] for c in dataset.contract.get("columns", [])}
        unknown = sorted(set(columns) - known)
        if unknown or not columns:
            raise InvalidInput(
                f"columns must be a non-empty subset of {dataset.name}'s columns; unknown: "
                f"{', '.join(unknown) or '(none given)'}",
                field="columns",
            )
    if consumer.id == dataset.org_id:
        raise InvalidInput(
            "an organisation already reads its own datasets; no grant needed", field="org"
        )
    grant = grants.create(
        dataset_id=dataset.id,
        org_id=consumer.id,
        columns=columns,
        purpose=purpose,
        created_by=actor,
        expires_at=expires_at,
    )
    audit.append(
        actor=actor,
        action="grant.create",
        resource=f"dataset:{dataset.id}",
        outcome="granted",
        detail={"grant": grant.id, "org": consumer.slug, "columns": columns, "purpose": purpose},
    )
    return grant
