"""Who may discover a dataset's metadata (never its rows: that is ``evaluate``'s decision).

Resolution, first match wins:

1. a *discoverable* dataset (the default) is visible to every authenticated caller —
   consumers find datasets they hold no grant on, and request access to them;
2. an unlisted one (``discoverable: false`` in its metadata) is visible to its own
   organisation, to organisations holding a live grant on it, to stewards of its region
   and to admins;
3. otherwise it is invisible: listing, search and DCAT leave it out and a direct lookup
   answers 404, exactly as for a dataset that does not exist (no existence oracle).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from policies.model import Principal


@dataclass(frozen=True)
class Listing:
    """What the decision needs to know about one dataset."""

    dataset_id: str
    org_id: str
    region: str
    discoverable: bool


def may_discover(principal: Principal, listing: Listing, granted: set[str]) -> bool:
    if listing.discoverable:
        return True
    if listing.org_id == principal.org_id or listing.dataset_id in granted:
        return True
    if "admin" in principal.roles:
        return True
    return "steward" in principal.roles and principal.region == listing.region


def discoverable_ids(
    principal: Principal, listings: Iterable[Listing], granted: set[str]
) -> set[str]:
    """Ids of the datasets ``principal`` may discover (``granted``: ids it holds live
    grants on)."""
    return {x.dataset_id for x in listings if may_discover(principal, x, granted)}


GOVERNED_FIELDS = frozenset({"classification"})
"""Metadata fields that change how policies treat the data: the region's stewards decide."""


def metadata_edit_refusal(principal: Principal, listing: Listing, fields: set[str]) -> str | None:
    """Why ``principal`` may not edit ``fields`` of a dataset's metadata (None: it may).

    Admins edit everything. The classification (it drives the cross-boundary rules) is a
    steward's decision for the dataset's region; every other field — texts, keywords,
    tags, contact, column docs, licence, discoverability — is the providing
    organisation's, edited by its provider clients.
    """
    if "admin" in principal.roles:
        return None
    roles = principal.roles
    if fields & GOVERNED_FIELDS and not ("steward" in roles and principal.region == listing.region):
        return "only a steward of the dataset's region (or an admin) may change its classification"
    if fields - GOVERNED_FIELDS and not (
        "provider" in roles and listing.org_id == principal.org_id
    ):
        return (
            "only a provider client of the dataset's own organisation (or an admin) may edit "
            "its metadata"
        )
    return None
