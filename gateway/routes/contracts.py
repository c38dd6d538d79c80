"""A dataset's data contract: read it, list and read its versions, edit it, confirm PI.

Datasets are named by id in paths, as in ``gateway/routes/datasets.py``. Anyone who may
discover the dataset (``policies.discovery``) may read its contract; rows need a grant.
Only the dataset's own organisation, with the provider role, may change it. Every change
stores a new, immutable contract version and makes it current: versions already
committed keep the contract version they were validated with, and the next upload is
validated against the new one. Changes are audited as ``contract.updated`` with the old
and new version numbers and every PI class that changed.
"""

from __future__ import annotations

import shutil
from pathlib import Path, PurePath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from starlette.concurrency import run_in_threadpool

from catalog.errors import Conflict, InvalidInput
from catalog.models import Dataset, DatasetContract, new_id
from gateway.catalog_service import CatalogView
from gateway.deps import PlatformDep, PrincipalDep, require_role, require_scope
from gateway.errors import Forbidden
from gateway.schemas import ContractOut, ContractPiUpdate, ContractUpdate, ContractVersionOut
from gateway.services import Platform
from ingest.contracts import DataContract
from ingest.errors import EmptyFileError, FileTooLargeError
from ingest.propose import SAMPLE_ROWS, propose_from_file
from ingest.sources import resolve_format
from policies.model import Principal

router = APIRouter(prefix="/v1/datasets", tags=["contracts"])
Provider = Annotated[Principal, Depends(require_role("provider"))]
MAX_LISTED = 20


def _own_dataset(dataset_id: str, principal: Provider, platform: PlatformDep) -> Dataset:
    """Dependency: the dataset, if the caller's organisation owns it (403 otherwise).

    Runs before the body is validated, so a stranger learns nothing from 422 details."""
    dataset = platform.registry.get_dataset(dataset_id)
    if dataset.org_id != principal.org_id:
        raise Forbidden(
            "only the dataset's own organisation may change its contract",
            dataset=dataset_id,
        )
    return dataset


OwnDataset = Annotated[Dataset, Depends(_own_dataset)]


def contract_out(dataset: Dataset, row: DatasetContract) -> ContractOut:
    columns = row.contract.get("columns", [])
    return ContractOut(
        dataset_id=dataset.id,
        version=row.version,
        current=row.version == dataset.contract_version,
        created_at=row.created_at,
        created_by=row.created_by,
        note=row.note,
        contract=row.contract,
        unclassified=[c["name"] for c in columns if c.get("pi") is None],
    )


def version_out(dataset: Dataset, row: DatasetContract) -> ContractVersionOut:
    return ContractVersionOut(
        version=row.version,
        current=row.version == dataset.contract_version,
        created_at=row.created_at,
        created_by=row.created_by,
        note=row.note,
    )


@router.get("/{dataset_id}/contract", dependencies=[require_scope("datasets:read")])
def current_contract(
    dataset_id: str, principal: PrincipalDep, platform: PlatformDep
) -> ContractOut:
    """The contract new uploads are validated with, and its version number."""
    dataset, _org, _meta = CatalogView(platform, principal).require(dataset_id)
    return contract_out(dataset, platform.registry.contract(dataset_id, dataset.contract_version))


@router.get("/{dataset_id}/contracts", dependencies=[require_scope("datasets:read")])
def list_contracts(
    dataset_id: str, principal: PrincipalDep, platform: PlatformDep
) -> list[ContractVersionOut]:
    """Every contract version, oldest first (the contracts themselves: GET …/contracts/{n})."""
    dataset, _org, _meta = CatalogView(platform, principal).require(dataset_id)
    return [version_out(dataset, row) for row in platform.registry.contracts(dataset_id)]


@router.get("/{dataset_id}/contracts/{version}", dependencies=[require_scope("datasets:read")])
def contract_version(
    dataset_id: str,
    version: Annotated[int, PathParam(ge=1)],
    principal: PrincipalDep,
    platform: PlatformDep,
) -> ContractOut:
    dataset, _org, _meta = CatalogView(platform, principal).require(dataset_id)
    return contract_out(dataset, platform.registry.contract(dataset_id, version))


@router.put(
    "/{dataset_id}/contract", status_code=201, dependencies=[require_scope("datasets:write")]
)
async def replace_contract(
    body: ContractUpdate, dataset: OwnDataset, principal: Provider, platform: PlatformDep
) -> ContractOut:
    """Store a new contract version (201 with it); uploads from now on are validated by it."""
    _check_base(dataset, body.base_version)
    new = body.contract.model_dump(mode="json", exclude_none=True)
    return await run_in_threadpool(_store, platform, principal, dataset, new, body.note, "replace")


@router.post(
    "/{dataset_id}/contract/pi", status_code=201, dependencies=[require_scope("datasets:write")]
)
async def confirm_pi(
    body: ContractPiUpdate, dataset: OwnDataset, principal: Provider, platform: PlatformDep
) -> ContractOut:
    """Set the PI class of the named columns (confirming or correcting the PII scan's
    suggestions) as a new contract version; other columns are unchanged."""
    _check_base(dataset, body.base_version)
    current = DataContract.model_validate(dataset.contract)
    names = [c.name for c in current.columns]
    unknown = [name for name in body.columns if name not in names]
    if unknown:
        raise InvalidInput(
            f"the contract has no column {unknown[0]!r}; its columns are "
            f"{', '.join(names[:MAX_LISTED])}{' …' if len(names) > MAX_LISTED else ''}",
            field=f"columns.{unknown[0]}",
            unknown=unknown,
        )
    updated = current.model_copy(
        update={
            "columns": [
                c.model_copy(update={"pi": body.columns[c.name]}) if c.name in body.columns else c
                for c in current.columns
            ]
        }
    )
    new = updated.model_dump(mode="json", exclude_none=True)
    return await run_in_threadpool(_store, platform, principal, dataset, new, body.note, "pi")


def _check_base(dataset: Dataset, base_version: int | None) -> None:
    if base_version is not None and base_version != dataset.contract_version:
        raise Conflict(
            f"the contract is at version {dataset.contract_version}, not {base_version}: "
            f"GET /v1/datasets/{dataset.id}/contract and apply the change to it",
            dataset=dataset.id,
            base_version=base_version,
            current_version=dataset.contract_version,
        )


def _store(
    platform: Platform,
    principal: Principal,
    dataset: Dataset,
    new: dict[str, Any],
    note: str,
    change: str,
) -> ContractOut:
    row = platform.registry.update_contract(
        dataset.id, new, created_by=principal.client_id, note=note
    )
    detail: dict[str, Any] = {
        "old_version": dataset.contract_version,
        "new_version": row.version,
        "change": change,
        "note": note,
        **_differences(dataset.contract, new),
    }
    if row.version != dataset.contract_version + 1:
        # another edit landed between reading the contract and storing this one
        detail["intervening_versions"] = list(range(dataset.contract_version + 1, row.version))
    platform.audit.append(
        actor=principal.client_id,
        action="contract.updated",
        resource=f"dataset:{dataset.id}",
        outcome="updated",
        detail=detail,
    )
    stored = platform.registry.get_dataset(dataset.id)
    return contract_out(stored, row)


def _differences(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Columns added and removed, and every PI class that changed (names and classes only:
    contracts hold no row values)."""
    before = {c["name"]: c.get("pi") for c in old.get("columns", [])}
    after = {c["name"]: c.get("pi") for c in new.get("columns", [])}
    return {
        "columns_added": [n for n in after if n not in before],
        "columns_removed": [n for n in before if n not in after],
        "pi_changes": {
            name: {"from": before.get(name), "to": pi}
            for name, pi in after.items()
            if before.get(name) != pi
        },
    }


proposals = APIRouter(prefix="/v1/contracts", tags=["contracts"])


@proposals.post("/proposals", dependencies=[require_scope("datasets:write")])
async def propose(
    request: Request,
    principal: Provider,
    platform: PlatformDep,
    encoding: Annotated[str, Query(description="Declared text encoding of the file.")] = "utf-8",
    filename: Annotated[str, Query(max_length=255)] = "",
    fmt: Annotated[
        str | None, Query(alias="format", description="csv, tsv, jsonl, parquet or xlsx")
    ] = None,
    sheet: Annotated[str | None, Query(max_length=100)] = None,
    header_row: Annotated[int | None, Query(ge=1, le=1000)] = None,
    rows: Annotated[int, Query(ge=10, le=10_000, description="Rows to look at.")] = SAMPLE_ROWS,
) -> dict[str, Any]:
    """Propose a data contract from a sample file (the body, as for uploads): column names,
    types, date and number formats, identifier validators, allowed values, primary key,
    each with the reason in ``notes``. Nothing is stored; review it, then create the
    dataset with it. ``pi`` is left open: the first upload's PII scan suggests classes."""
    file_format = resolve_format(fmt, filename)
    limit = platform.settings.ingest.max_upload_mb * 1024 * 1024
    folder = Path(platform.ingest.scratch) / f"proposal-{new_id()}"
    name = PurePath(filename).name
    path = folder / (name if name not in ("", ".", "..") else "sample")  # errors name it
    size = 0
    try:
        folder.mkdir(parents=True)
        with path.open("wb") as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise FileTooLargeError(size=size, limit=limit, file=filename or None)
                out.write(chunk)
        if size == 0:
            raise EmptyFileError(file=filename or "sample", has_header=False)
        proposal = await run_in_threadpool(
            propose_from_file,
            path,
            fmt=file_format,
            encoding=encoding.lower(),
            region=principal_region(platform, principal),
            sheet=sheet,
            header_row=header_row,
            rows=rows,
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {
        "contract": proposal.contract.model_dump(mode="json", exclude_none=True),
        "notes": proposal.notes,
        "format": file_format,
    }


def principal_region(platform: Platform, principal: Principal) -> str:
    return platform.registry.get_org(principal.org_id).region
