"""Settings owned by ingest (``DATASHARE_INGEST__*``)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class IngestSettings(BaseModel):
    max_upload_mb: int = Field(
        default=2048, ge=1, le=1_048_576, description="Largest accepted upload."
    )
    max_error_ratio: float = Field(
        default=0.05, ge=0.0, le=1.0,
        description="A batch fails as a whole when more than this share of its rows is rejected.",
    )  # fmt: skip
    batch_rows: int = Field(
        default=65_536, ge=1_000, le=1_048_576, description="Rows per record batch."
    )
    lease_seconds: int = Field(
        default=60, ge=2, le=3600,
        description="A running job whose worker stops renewing its lease for this long is retried.",
    )  # fmt: skip
    workers: int = Field(default=2, ge=1, le=32, description="Concurrent ingest jobs per process.")
    scratch_dir: str | None = Field(
        default=None, description="Staging directory for jobs. Default: <data-dir>/scratch/ingest."
    )
