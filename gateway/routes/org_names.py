"""The consumer organisation's slug, display name and region on access requests and
grants, so people read names rather than ids.

Resolved for a whole answer at once (one query however many rows), and added as fields
of their own: the ``org_id`` field stays as it was.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol, TypeVar

from pydantic import BaseModel, Field

from gateway.services import Platform


class HasOrg(Protocol):
    @property
    def org_id(self) -> str: ...


class ConsumerOrgFields(BaseModel):
    org_slug: str | None = Field(
        default=None, description="The consumer organisation's slug (None: it no longer exists)."
    )
    org_name: str | None = Field(default=None, description="Its registered display name.")
    org_region: str | None = Field(
        default=None, description="Its home region (GD, HK or MO), not the dataset's."
    )


Out = TypeVar("Out", bound=ConsumerOrgFields)


def with_org_names(platform: Platform, rows: Sequence[HasOrg], model: type[Out]) -> list[Out]:
    """``rows`` as ``model``, each with its organisation's slug, name and region."""
    orgs = platform.registry.orgs_by_id(_ids(rows))
    out = []
    for row in rows:
        item = model.model_validate(row, from_attributes=True)
        org = orgs.get(row.org_id)
        if org is not None:
            item = item.model_copy(
                update={"org_slug": org.slug, "org_name": org.name, "org_region": org.region}
            )
        out.append(item)
    return out


def _ids(rows: Iterable[HasOrg]) -> set[str]:
    return {row.org_id for row in rows}
