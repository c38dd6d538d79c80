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
    workers: int = Field(
        default=2, ge=1, le=32, description="Jobs one worker process runs at the same time."
    )
    embedded_workers: int = Field(
        default=1, ge=0, le=16,
        description=(
            "Worker processes `datashare serve` and `demo` start beside the gateway (they die "
            "with it). 0: run `datashare worker` separately, on this or other machines."
        ),
    )  # fmt: skip
    poll_seconds: float = Field(
        default=0.5, ge=0.05, le=60,
        description="How often an idle worker looks for queued jobs (embedded workers are also "
        "woken at once by the gateway).",
    )  # fmt: skip
    shutdown_grace_seconds: float = Field(
        default=20.0, ge=0, le=3600,
        description="On SIGTERM a worker lets running jobs finish for this long, then hands them "
        "back to the queue for another worker.",
    )  # fmt: skip
    scratch_dir: str | None = Field(
        default=None, description="Staging directory for jobs. Default: <data-dir>/scratch/ingest."
    )
