"""Governance metadata (DOMAIN.md §6.1) and transfer instruments: who may write them, and
the checks that refuse a bad record when it is written.

Who: the dataset's provider, a steward of the dataset's region, or an admin. Every write
is audited against ``dataset:<id>`` (which is what the provider's notifications read).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from catalog.audit import AuditLog
from catalog.errors import InvalidInput
from catalog.governance_models import TransferInstrument
from catalog.identifiers import validate_registration
from catalog.models import Dataset, aware
from catalog.regions import MAINLAND, Region
from policies.errors import AccessDenied
from policies.evaluate import QueryPolicy
from policies.facts import (
    CIIO,
    DSL_LEVELS,
    ORIGINS,
    PURPOSES,
    jurisdiction_of_origin,
    origin_for_region,
    valid_instrument_type,
)
from policies.model import Principal


def stewarded_regions(principal: Principal) -> frozenset[str]:
    """The regions whose datasets a principal stewards (admins: all).

    A person's token carries the regions they steward (``steward_regions``); a steward
    client without that claim stewards the region of its own organisation.
    """
    if "admin" in principal.roles:
        return frozenset(r.value for r in Region)
    if "steward" in principal.roles:
        return principal.steward_regions or frozenset({principal.region})
    return frozenset()


def may_govern(principal: Principal, dataset: Dataset) -> bool:
    """The dataset's provider, a steward of its region, or an admin."""
    return (
        principal.org_id == dataset.org_id and "provider" in principal.roles
    ) or dataset.region in stewarded_regions(principal)


def _purposes(values: list[str] | None, field: str) -> list[str]:
    unknown = sorted(set(values or ()) - set(PURPOSES))
    if unknown:
        raise InvalidInput(
            f"{field}: unknown purpose(s) {', '.join(unknown)}; use {', '.join(PURPOSES)}",
            field=field,
        )
    return sorted(set(values or ()))


@dataclass(frozen=True)
class GovernanceInput:
    origin_jurisdiction: str | None = None
    origin_city: str | None = None
    provider_entity_id: str | None = None
    provider_is_ciio: str = "unknown"
    dsl_level: str = "general"
    important_notice_ref: str | None = None
    collection_purposes: list[str] | None = None
    consented_purposes: list[str] | None = None
    consent_ref: str | None = None
    separate_consent: bool = False
    spi_release: bool = False
    pipia_ref: str | None = None
    legal_basis: dict[str, str] | None = None


class GovernanceService:
    def __init__(self, policy: QueryPolicy, audit: AuditLog) -> None:
        self.policy = policy
        self.audit = audit

    def _require(self, principal: Principal, dataset: Dataset, action: str) -> None:
        if not may_govern(principal, dataset):
            raise AccessDenied(
                action,
                f"dataset {dataset.id}",
                "only the dataset's provider, a steward of its region or an admin may",
            )

    def describe(self, dataset: Dataset) -> dict[str, Any]:
        """The dataset's governance record (or the defaults in force), with derived flags."""
        version = None
        if dataset.current_version is not None:
            version = self.policy.registry.version(dataset.id)
        facts = self.policy.dataset_facts(dataset, version)
        row = self.policy.governance.get(dataset.id)
        return {
            "dataset_id": dataset.id,
            "recorded": row is not None,
            "origin_jurisdiction": facts.origin,
            "origin_city": facts.origin_city,
            "provider_entity_id": row.provider_entity_id if row else None,
            "provider_is_ciio": row.provider_is_ciio if row else "unknown",
            "dsl_level": facts.dsl_level,
            "important_notice_ref": row.important_notice_ref if row else None,
            "collection_purposes": sorted(facts.collection_purposes),
            "consented_purposes": sorted(facts.consented_purposes),
            "consent_ref": row.consent_ref if row else None,
            "separate_consent": facts.separate_consent,
            "spi_release": facts.spi_release,
            "pipia_ref": facts.pipia_ref,
            "legal_basis": row.legal_basis if row else {},
            "contains_pi": facts.contains_pi,
            "contains_sensitive_pi": facts.contains_spi,
            "column_classes": {c.name: c.pi for c in facts.columns},
            "updated_by": row.updated_by if row else None,
            "updated_at": row.updated_at if row else None,
        }

    def put(self, principal: Principal, dataset: Dataset, body: GovernanceInput) -> dict[str, Any]:
        self._require(principal, dataset, "set governance metadata")
        fields = self._validated(dataset, body)
        self.policy.governance.put(dataset.id, updated_by=principal.client_id, **fields)
        self.audit.append(
            actor=principal.client_id,
            action="governance.updated",
            resource=f"dataset:{dataset.id}",
            outcome="updated",
            detail={k: v for k, v in fields.items() if k != "legal_basis"},
        )
        return self.describe(dataset)

    def _validated(self, dataset: Dataset, body: GovernanceInput) -> dict[str, Any]:
        default_origin, default_city = origin_for_region(dataset.region)
        origin = body.origin_jurisdiction or default_origin
        if origin not in ORIGINS:
            raise InvalidInput(
                f"origin_jurisdiction {origin!r}; use one of {', '.join(ORIGINS)}",
                field="origin_jurisdiction",
            )
        mainland_region = Region(dataset.region) in MAINLAND
        if mainland_region != (jurisdiction_of_origin(origin) == "mainland"):
            raise InvalidInput(
                f"a dataset stored in {dataset.region} cannot have origin {origin}: mainland-"
                "origin data is stored in the mainland and other data is not replicated "
                "into it (DOMAIN.md §6.2 rule 12); register it in a region of its origin",
                field="origin_jurisdiction",
            )
        if body.dsl_level == "core":
            raise InvalidInput(
                "core data is never ingested or shared on this platform (DOMAIN.md §6.2 "
                "rule 1); remove the dataset",
                field="dsl_level",
            )
        if body.dsl_level not in DSL_LEVELS:
            raise InvalidInput(f"dsl_level: use one of {', '.join(DSL_LEVELS)}", field="dsl_level")
        if body.dsl_level == "important" and not origin.startswith("CN-"):
            raise InvalidInput(
                "dsl_level important applies to mainland-origin data (Data Security Law)",
                field="dsl_level",
            )
        if body.provider_is_ciio not in CIIO:
            raise InvalidInput(f"provider_is_ciio: use {', '.join(CIIO)}", field="provider_is_ciio")
        if body.spi_release and not body.pipia_ref:
            raise InvalidInput(
                "spi_release needs pipia_ref: the reference of the personal-information "
                "impact assessment (DOMAIN.md §6.2 rule 5)",
                field="pipia_ref",
            )
        org = self.policy.registry.get_org(dataset.org_id)
        entity = body.provider_entity_id or org.registration_id
        entity = validate_registration(Region(org.region), entity).value
        return {
            "origin_jurisdiction": origin,
            "origin_city": body.origin_city or (default_city if origin == "CN-GBA9" else None),
            "provider_entity_id": entity,
            "provider_is_ciio": body.provider_is_ciio,
            "dsl_level": body.dsl_level,
            "important_notice_ref": body.important_notice_ref,
            "collection_purposes": _purposes(body.collection_purposes, "collection_purposes"),
            "consented_purposes": _purposes(body.consented_purposes, "consented_purposes"),
            "consent_ref": body.consent_ref,
            "separate_consent": body.separate_consent,
            "spi_release": body.spi_release,
            "pipia_ref": body.pipia_ref,
            "legal_basis": dict(body.legal_basis or {}),
        }

    # transfer instruments ------------------------------------------------------------
    def add_instrument(
        self,
        principal: Principal,
        dataset: Dataset,
        *,
        type: str,
        reference: str,
        authority: str,
        effective_from: datetime,
        expires_at: datetime | None,
        columns: list[str] | None,
        purposes: list[str],
    ) -> TransferInstrument:
        self._require(principal, dataset, "record a transfer instrument")
        self._check_instrument(dataset, type, reference, authority, columns)
        if expires_at is not None and aware(expires_at) <= aware(effective_from):
            raise InvalidInput("expires_at must be after effective_from", field="expires_at")
        if not purposes:
            raise InvalidInput(
                "purposes: list the purposes the filing or approval covers", field="purposes"
            )
        instrument = self.policy.governance.add_instrument(
            dataset_id=dataset.id,
            type=type,
            reference=reference.strip(),
            authority=authority.strip(),
            effective_from=aware(effective_from),
            expires_at=None if expires_at is None else aware(expires_at),
            columns=columns,
            purposes=_purposes(purposes, "purposes"),
            created_by=principal.client_id,
        )
        self.audit.append(
            actor=principal.client_id,
            action="instrument.recorded",
            resource=f"dataset:{dataset.id}",
            outcome="recorded",
            detail={
                "instrument": instrument.id,
                "type": type,
                "reference": instrument.reference,
                "columns": columns,
                "purposes": instrument.purposes,
            },
        )
        return instrument

    def _check_instrument(
        self,
        dataset: Dataset,
        kind: str,
        reference: str,
        authority: str,
        columns: list[str] | None,
    ) -> None:
        if not valid_instrument_type(kind):
            raise InvalidInput(
                f"instrument type {kind!r}; use GBA_SC_HK, GBA_SC_MO, CN_SC, CN_SEC_ASSESS, "
                "CN_CERT, CN_EXEMPT_<REASON>, MO_ART20_NOTIF, MO_AUTH or HK_MODEL_CLAUSES",
                field="type",
            )
        if not reference.strip() or not authority.strip():
            raise InvalidInput(
                "reference and authority are required: the filing or approval number and "
                "who issued it",
                field="reference",
            )
        facts = self.policy.dataset_facts(dataset, None)
        origin = jurisdiction_of_origin(facts.origin)
        fits = {
            "GBA_SC_HK": facts.origin in ("CN-GBA9", "HK"),
            "GBA_SC_MO": facts.origin in ("CN-GBA9", "MO"),
            "MO": origin == "MO",
            "HK": origin == "HK",
            "CN": origin == "mainland",
        }
        family = kind if kind.startswith("GBA_SC") else kind.split("_", 1)[0]
        if not fits.get(family, False):
            raise InvalidInput(
                f"a {kind} instrument does not apply to data of origin {facts.origin}",
                field="type",
            )
        if kind.startswith("GBA_SC") and facts.dsl_level == "important":
            raise InvalidInput(
                "important data is excluded from the GBA Standard Contract; it leaves the "
                "mainland only under CN_SEC_ASSESS (DOMAIN.md §6.2 rule 2)",
                field="type",
            )
        if columns is not None:
            known = {c.name for c in facts.columns}
            unknown = sorted(set(columns) - known)
            if unknown or not columns:
                raise InvalidInput(
                    f"columns must be a non-empty subset of the dataset's columns (or null "
                    f"for all); unknown: {', '.join(unknown) or '(none given)'}",
                    field="columns",
                )

    def revoke_instrument(self, principal: Principal, instrument_id: str) -> TransferInstrument:
        instrument = self.policy.governance.get_instrument(instrument_id)
        dataset = self.policy.registry.get_dataset(instrument.dataset_id)
        self._require(principal, dataset, "revoke a transfer instrument")
        revoked = self.policy.governance.revoke_instrument(instrument_id)
        self.audit.append(
            actor=principal.client_id,
            action="instrument.revoked",
            resource=f"dataset:{dataset.id}",
            outcome="revoked",
            detail={"instrument": instrument_id, "type": instrument.type},
        )
        return revoked
