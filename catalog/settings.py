"""Settings owned by the catalog: the catalog database and object storage.

Composed into ``gateway.settings.PlatformSettings``; env vars look like
``DATASHARE_CATALOG__URL`` and ``DATASHARE_STORAGE__ENDPOINT_URL``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AnyHttpUrl, BaseModel, Field, SecretStr, field_validator, model_validator

from catalog.regions import Region


class CatalogSettings(BaseModel):
    url: str | None = Field(
        default=None,
        description=(
            "SQLAlchemy URL of the catalog database, e.g. "
            "postgresql+psycopg://user:pass@host/db. Default: SQLite file <data-dir>/catalog.db."
        ),
    )
    pool_size: int = Field(
        default=5, ge=1, le=100, description="Connections per process (PostgreSQL)."
    )
    echo_sql: bool = Field(
        default=False, description="Log every catalog SQL statement (debugging)."
    )


class RegionStorage(BaseModel):
    """Per-region override: a region's data may live on its own object store."""

    endpoint_url: AnyHttpUrl | None = Field(
        default=None, description="S3 endpoint for this region."
    )
    bucket: str | None = Field(default=None, description="Bucket for this region's data.")
    access_key: SecretStr | None = Field(
        default=None, description="Read-write key for this region."
    )
    secret_key: SecretStr | None = Field(
        default=None, description="Read-write secret for this region."
    )
    read_access_key: SecretStr | None = Field(
        default=None, description="Read-only key for this region."
    )
    read_secret_key: SecretStr | None = Field(default=None, description="Read-only secret.")


class StorageSettings(BaseModel):
    backend: Literal["auto", "s3", "local"] = Field(
        default="auto",
        description=(
            "auto: S3 at endpoint_url if set, else an embedded SeaweedFS started under the data "
            "dir "
            "(Linux x86-64, Windows), else the local filesystem. s3: require an S3 endpoint. "
            "local: files under <data-dir>/objects."
        ),
    )
    endpoint_url: AnyHttpUrl | None = Field(
        default=None, description="S3 endpoint (MinIO, SeaweedFS, AWS). Unset: embedded server."
    )
    url_style: Literal["path", "vhost"] = Field(default="path", description="S3 addressing style.")
    region_name: str = Field(default="us-east-1", description="S3 signing region.")
    access_key: SecretStr | None = Field(default=None, description="Read-write key (ingest).")
    secret_key: SecretStr | None = Field(default=None, description="Read-write secret (ingest).")
    read_access_key: SecretStr | None = Field(
        default=None, description="Read-only key given to query workers (defaults to access_key)."
    )
    read_secret_key: SecretStr | None = Field(default=None, description="Read-only secret.")
    bucket_prefix: str = Field(
        default="gba",
        pattern=r"^[a-z0-9][a-z0-9-]{0,40}$",
        description="Buckets are <prefix>-<region>, e.g. gba-gz, unless a region overrides bucket.",
    )
    regions: dict[Region, RegionStorage] = Field(
        default_factory=dict,
        description="Per-region overrides, e.g. DATASHARE_STORAGE__REGIONS__HK__ENDPOINT_URL.",
    )
    embedded_startup_seconds: float = Field(
        default=30.0, ge=1, le=300, description="How long to wait for the embedded SeaweedFS."
    )

    @field_validator("regions", mode="before")
    @classmethod
    def _region_keys_upper(cls, value: Any) -> Any:
        # environment variable names arrive lower-cased: DATASHARE_STORAGE__REGIONS__HK__...
        if isinstance(value, dict):
            return {str(k).upper(): v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _s3_needs_endpoint(self) -> StorageSettings:
        if self.backend == "s3" and self.endpoint_url is None:
            raise ValueError(
                "storage.backend=s3 needs storage.endpoint_url (DATASHARE_STORAGE__ENDPOINT_URL)"
            )
        if self.endpoint_url is not None and (self.access_key is None or self.secret_key is None):
            raise ValueError(
                "storage.endpoint_url is set but storage.access_key/secret_key are not "
                "(DATASHARE_STORAGE__ACCESS_KEY, DATASHARE_STORAGE__SECRET_KEY)"
            )
        return self

    def bucket_for(self, region: Region) -> str:
        override = self.regions.get(region)
        if override is not None and override.bucket:
            return override.bucket
        return f"{self.bucket_prefix}-{region.value.lower()}"
