"""Request and response models of the /v1 API."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ingest.contracts import MAX_COLUMNS, DataContract, PIClass


class Me(BaseModel):
    subject: str
    client_id: str
    org_id: str
    org_slug: str
    region: str
    jurisdiction: str
    roles: list[str]
    scopes: list[str]
    steward_regions: list[str] = []


class DatasetCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="SQL name within the organisation: [a-z][a-z0-9_]{0,62}.")
    title: str = ""
    description: str = ""
    classification: Literal["public", "internal", "restricted", "personal", "important"] = (
        "internal"
    )
    licence: str = ""
    contract: DataContract


class DatasetOut(BaseModel):
    id: str
    org: str
    org_name: str | None = Field(default=None, description="The provider organisation's name.")
    name: str
    sql_name: str
    title: str
    description: str
    region: str
    classification: str
    licence: str
    current_version: int | None
    created_at: datetime
    contract: dict[str, Any]


class VersionOut(BaseModel):
    version: int
    created_at: datetime
    job_id: str
    source_sha256: str
    row_count: int
    rejected_count: int
    bytes: int
    schema_: list[Any] = Field(alias="schema")
    stats: dict[str, Any]
    quality: dict[str, Any] = Field(
        description="score (share of rows that passed, 0-100), bucket, failed_expectations "
        "(without values), GX success and statistics."
    )
    files: int
    source_name: str = ""
    source_bytes: int = 0
    contract_version: int = 1
    mode: str = "replace"
    parent_version: int | None = None
    rows_read: int = 0

    model_config = ConfigDict(populate_by_name=True)


class UploadMode(StrEnum):
    """What a committed upload does to the dataset's current version."""

    REPLACE = "replace"  # the new version holds this file's rows only
    APPEND = "append"  # the new version holds the current version's rows plus this file's


class JobOut(BaseModel):
    id: str
    dataset_id: str
    status: Literal["queued", "running", "succeeded", "failed", "duplicate"]
    phase: Literal["queued", "downloading", "reading", "uploading", "committing", "done"] = Field(
        description="Within running: downloading (the raw file from the region's store) → "
        "reading (validating) → uploading (Parquet parts) → committing (the version row)."
    )
    mode: UploadMode
    filename: str
    encoding: str
    format: str
    source_sha256: str
    source_bytes: int
    rows_read: int
    rows_valid: int
    rows_rejected: int
    progress: float = Field(description="Share of the file's bytes read, 0 to 1.")
    rows_per_second: float | None = Field(
        description="Rows read per second of the current (or last) attempt."
    )
    eta_seconds: float | None = Field(
        description="Estimated seconds until the file is read (running jobs only)."
    )
    version: int | None
    attempts: int
    worker: str | None = Field(description="host:pid of the worker running the job.")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: dict[str, Any] | None
    links: dict[str, str]


class QuarantineRow(BaseModel):
    row: int = Field(description="1-based data row of the uploaded file (the header is row 0).")
    values: dict[str, Any] = Field(description="The row as uploaded, by source header.")
    reasons: list[dict[str, Any]] = Field(
        description="One entry per broken rule: rule, column, expected, actual."
    )


class QuarantineRowsPage(BaseModel):
    rows: list[QuarantineRow]
    total: int
    offset: int
    limit: int


class GrantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset_id: str
    org: str = Field(description="Consumer organisation id or slug.")
    columns: list[str] | None = None
    purpose: str = "analytics"
    expires_at: datetime | None = None


class GrantOut(BaseModel):
    id: str
    dataset_id: str
    org_id: str
    columns: list[str] | None
    purpose: str
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class QueryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sql: str = Field(max_length=1_048_576)
    format: Literal["json", "ndjson", "csv", "arrow", "parquet"] = "json"


class ExplainOut(BaseModel):
    governed_sql: str
    datasets: list[dict[str, Any]]
    max_rows: int


class AuditOut(BaseModel):
    seq: int
    ts: datetime
    actor: str
    action: str
    resource: str
    outcome: str
    detail: dict[str, Any]
    hash: str


class ContractVersionOut(BaseModel):
    """One stored contract version (``GET /v1/datasets/{id}/contracts`` lists them)."""

    version: int
    current: bool = Field(description="True for the version new uploads are validated with.")
    created_at: datetime
    created_by: str = Field(description="OAuth client that stored this version.")
    note: str


class ContractOut(ContractVersionOut):
    dataset_id: str
    contract: dict[str, Any]
    unclassified: list[str] = Field(
        description="Columns without a PI class: the provider confirms the scan's suggestion "
        "with POST /v1/datasets/{id}/contract/pi."
    )


class ContractUpdate(BaseModel):
    """``PUT /v1/datasets/{id}/contract``: the whole new contract."""

    model_config = ConfigDict(extra="forbid")

    contract: DataContract
    note: str = Field(default="", max_length=2000, description="Why the contract changed.")
    base_version: int | None = Field(
        default=None,
        ge=1,
        description="The contract version this edit starts from; 409 if it is no longer "
        "current (someone else changed the contract meanwhile).",
    )


class ContractPiUpdate(BaseModel):
    """``POST /v1/datasets/{id}/contract/pi``: confirm or correct columns' PI classes."""

    model_config = ConfigDict(extra="forbid")

    columns: dict[str, PIClass] = Field(
        min_length=1,
        max_length=MAX_COLUMNS,
        description="Column name → non_pi, pi_direct_id, pi_quasi_id, pi_other or spi.",
    )
    note: str = Field(default="", max_length=2000)
    base_version: int | None = Field(
        default=None,
        ge=1,
        description="The contract version these classes were reviewed against; 409 if it is "
        "no longer current.",
    )


class ExportCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sql: str = Field(max_length=1_048_576, description="One SELECT, governed like /v1/query.")


class ExportFileOut(BaseModel):
    key: str
    size: int
    rows: int
    url: str = Field(description="Presigned GET URL; expires after url_expires_in seconds.")


class ExportSourceOut(BaseModel):
    dataset_id: str
    version: int
    grant_id: str | None = Field(description="The grant that allowed it; null: own dataset.")


class ExportSummary(BaseModel):
    id: str
    status: Literal["running", "succeeded", "failed", "revoked", "expired"]
    region: str
    row_count: int
    byte_count: int
    created_at: datetime
    finished_at: datetime | None
    expires_at: datetime
    sources: list[ExportSourceOut] = Field(description="Lineage: dataset versions read.")


class ExportPublic(BaseModel):
    id: str
    status: Literal["running", "succeeded", "failed", "revoked", "expired"]
    region: str = Field(description="Region of the export bucket (the consumer's region).")
    row_count: int
    byte_count: int
    created_at: datetime
    finished_at: datetime | None
    expires_at: datetime
    query_sha256: str
    sources: list[ExportSourceOut] = Field(description="Lineage: dataset versions read.")
    files: list[ExportFileOut]
    url_expires_in: int | None
    error: dict[str, Any] | None
