"""Dataset governance metadata (DOMAIN.md §6.1) and transfer instruments."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from catalog.governance_models import TransferInstrument
from gateway.deps import PlatformDep, PrincipalDep, require_scope
from gateway.services import Platform
from policies.governance import GovernanceInput, GovernanceService

router = APIRouter(prefix="/v1", tags=["governance"])
READ = require_scope("datasets:read")
WRITE = require_scope("datasets:write", "access:approve")  # the provider, or a steward


def service(platform: Platform) -> GovernanceService:
    return GovernanceService(platform.query_policy, platform.audit)


class GovernanceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    origin_jurisdiction: Literal["CN-GBA9", "CN-other", "HK", "MO"] | None = Field(
        default=None, description="Defaults from the dataset's region."
    )
    origin_city: str | None = Field(default=None, max_length=32)
    provider_entity_id: str | None = Field(
        default=None, max_length=64, description="USCC, BRN or Macao number; default: the org's."
    )
    provider_is_ciio: Literal["yes", "no", "unknown"] = "unknown"
    dsl_level: str = Field(default="general", description="general | important (core refused)")
    important_notice_ref: str | None = Field(default=None, max_length=200)
    collection_purposes: list[str] = Field(default_factory=list)
    consented_purposes: list[str] = Field(default_factory=list)
    consent_ref: str | None = Field(default=None, max_length=200)
    separate_consent: bool = False
    spi_release: bool = False
    pipia_ref: str | None = Field(default=None, max_length=200)
    legal_basis: dict[str, str] = Field(default_factory=dict)


class InstrumentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = Field(
        max_length=48,
        description="GBA_SC_HK | GBA_SC_MO | CN_SC | CN_SEC_ASSESS | CN_CERT | "
        "CN_EXEMPT_<REASON> | MO_ART20_NOTIF | MO_AUTH | HK_MODEL_CLAUSES",
    )
    reference: str = Field(max_length=200, description="Filing or approval reference.")
    authority: str = Field(max_length=200)
    effective_from: datetime
    expires_at: datetime | None = None
    columns: list[str] | None = Field(default=None, description="None: every column.")
    purposes: list[str]


class InstrumentOut(BaseModel):
    id: str
    dataset_id: str
    type: str
    reference: str
    authority: str
    effective_from: datetime
    expires_at: datetime | None
    columns: list[str] | None
    purposes: list[str]
    created_by: str
    created_at: datetime
    revoked_at: datetime | None


def instrument_out(row: TransferInstrument) -> InstrumentOut:
    return InstrumentOut.model_validate(row, from_attributes=True)


@router.get("/policies/rule-set", dependencies=[READ])
def rule_set(_p: PrincipalDep, platform: PlatformDep) -> dict[str, Any]:
    """The cross-boundary rule set in force (``policies/rules/*.yaml``) and its version, as
    recorded with every decision: the policy is data anyone may review."""
    rules = platform.query_policy.rules
    return {"ref": rules.ref, "document": rules.document}


@router.get("/datasets/{dataset_id}/governance", dependencies=[READ])
def get_governance(dataset_id: str, _p: PrincipalDep, platform: PlatformDep) -> dict[str, Any]:
    """The §6.1 record, or the defaults in force when none is recorded; ``contains_pi`` and
    ``contains_sensitive_pi`` are derived from the column classes."""
    return service(platform).describe(platform.registry.get_dataset(dataset_id))


@router.put("/datasets/{dataset_id}/governance", dependencies=[WRITE])
def put_governance(
    dataset_id: str, body: GovernanceIn, principal: PrincipalDep, platform: PlatformDep
) -> dict[str, Any]:
    dataset = platform.registry.get_dataset(dataset_id)
    return service(platform).put(principal, dataset, GovernanceInput(**body.model_dump()))


@router.get("/datasets/{dataset_id}/transfer-instruments", dependencies=[READ])
def list_instruments(
    dataset_id: str, _p: PrincipalDep, platform: PlatformDep
) -> list[InstrumentOut]:
    platform.registry.get_dataset(dataset_id)
    rows = platform.query_policy.governance.instruments(dataset_id, include_revoked=True)
    return [instrument_out(r) for r in rows]


@router.post("/datasets/{dataset_id}/transfer-instruments", status_code=201, dependencies=[WRITE])
def add_instrument(
    dataset_id: str, body: InstrumentIn, principal: PrincipalDep, platform: PlatformDep
) -> InstrumentOut:
    dataset = platform.registry.get_dataset(dataset_id)
    return instrument_out(service(platform).add_instrument(principal, dataset, **body.model_dump()))


@router.delete("/transfer-instruments/{instrument_id}", dependencies=[WRITE])
def revoke_instrument(
    instrument_id: str, principal: PrincipalDep, platform: PlatformDep
) -> InstrumentOut:
    return instrument_out(service(platform).revoke_instrument(principal, instrument_id))
