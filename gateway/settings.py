"""Platform settings: one pydantic-settings class composed from each package's section.

Env prefix ``DATASHARE_``, nested delimiter ``__``:
``DATASHARE_STORAGE__ENDPOINT_URL``, ``DATASHARE_QUERY__TIMEOUT_SECONDS``.
Precedence (highest first): constructor arguments, environment, ``.env`` file, defaults.
Nothing here runs at import time; ``create_app(settings)`` receives an instance.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from catalog.settings import CatalogSettings, StorageSettings
from ingest.settings import IngestSettings

PLACEHOLDER_SECRETS = {"changeme", "change-me", "secret", "dev", ""}


class QuerySettings(BaseModel):
    timeout_seconds: float = Field(
        default=30.0, gt=0, le=3600, description="Wall-clock limit per query."
    )
    memory_mb: int = Field(
        default=2048, ge=128, le=65_536, description="Address-space limit of a worker."
    )
    threads: int = Field(default=2, ge=1, le=64, description="DuckDB threads per query.")
    max_rows: int = Field(
        default=1_000_000, ge=1, le=100_000_000, description="Rows returned at most."
    )
    max_temp_mb: int = Field(default=2048, ge=0, le=1_048_576, description="Spill space per query.")
    max_sql_bytes: int = Field(
        default=65_536, ge=1024, le=1_048_576, description="Longest SQL accepted."
    )
    pool_size: int = Field(default=2, ge=0, le=32, description="Warm worker processes kept ready.")
    govern_cache_entries: int = Field(
        default=512,
        ge=0,
        le=100_000,
        description="Governed queries remembered per gateway process (and at most 16 MiB of "
        "SQL text in all), so a repeated SQL text skips parsing and rewriting (its grants and "
        "decisions are checked again); 0 turns it off.",
    )
    catalog_cache_entries: int = Field(
        default=5_000,
        ge=0,
        le=1_000_000,
        description="Catalog rows a query's decisions read (grants, datasets, versions, "
        "governance) kept per gateway process until the catalog changes: database triggers "
        "count every change (catalog.generation), so a change made anywhere ends them all "
        "at once; 0 turns it off (every query reads them).",
    )
    max_concurrent: int = Field(
        default=4, ge=1, le=256, description="Queries run at once per gateway process; more wait."
    )
    queue_seconds: float = Field(
        default=10.0, ge=0, le=600, description="How long a query waits for a free slot before 422."
    )
    batch_rows: int = Field(
        default=65_536, ge=1024, le=1_048_576, description="Rows per Arrow batch."
    )
    per_client_concurrent: int = Field(
        default=4, ge=1, le=256, description="Queries one OAuth client may run at once (429 past)."
    )
    per_client_per_minute: int = Field(
        default=600, ge=1, le=1_000_000, description="Queries and explains per client per minute."
    )
    export_max_rows: int = Field(
        default=100_000_000, ge=1, le=10_000_000_000, description="Rows one export may hold."
    )
    export_url_seconds: int = Field(
        default=300, ge=10, le=86_400, description="Lifetime of an export's presigned URLs."
    )
    export_retention_hours: int = Field(
        default=24, ge=1, le=8760, description="How long export files may be fetched."
    )
    export_sweep_seconds: float = Field(
        default=300.0,
        ge=0,
        le=86_400,
        description="How often each gateway deletes the files of expired, revoked and "
        "abandoned exports (0: only `datashare admin sweep-exports`).",
    )
    mask_secret: SecretStr | None = Field(
        default=None,
        min_length=16,
        description="Secret each consumer organisation's HMAC mask key is derived from (dev/test: "
        "generated under the data dir).",
    )
    mask_key_version: int = Field(
        default=1, ge=1, le=10_000, description="HMAC mask key version; raise it to rotate tokens."
    )


class ExternalIssuerSettings(BaseModel):
    """A partner identity provider whose access tokens the gateway trusts."""

    name: str = Field(
        pattern=r"^[a-z][a-z0-9_]{1,31}$", description="Short name; prefixes subjects (name:sub)."
    )
    issuer: str = Field(description="Exact issuer URL (https; http only on loopback).")
    audience: str = Field(
        default="datashare-gateway", description="Audience its tokens must carry for us."
    )
    organisations: list[str] = Field(
        min_length=1, description="Our organisation slugs this issuer may assert; no others."
    )
    org_claim: str = Field(default="org_slug", description="Claim naming the organisation.")
    roles_claim: str = Field(default="roles", description="Claim listing roles.")
    jurisdiction_claim: str = Field(
        default="jurisdiction", description="Claim checked against the organisation's, if present."
    )
    allowed_roles: list[str] = Field(
        default=["provider", "consumer"], description="Roles the issuer may grant."
    )
    jwks_cache_seconds: float = Field(default=300, ge=10, le=86_400, description="JWKS cache.")

    @field_validator("issuer")
    @classmethod
    def _https_issuer(cls, value: str) -> str:
        from gateway.oauth.external import check_issuer_url

        return check_issuer_url(value)


class OAuthSettings(BaseModel):
    issuer: str | None = Field(
        default=None, description="Token issuer URL. Default: the gateway's public URL."
    )
    audience: str = Field(default="datashare-gateway", description="Audience of access tokens.")
    access_token_ttl_seconds: int = Field(
        default=900, ge=60, le=86_400, description="Access token lifetime."
    )
    key_rotate_days: int = Field(default=30, ge=1, le=365, description="Signing key lifetime.")
    refresh_token_days: int = Field(
        default=14, ge=1, le=90, description="Sign-in lifetime: no refresh after this many days."
    )
    login_session_hours: int = Field(
        default=8, ge=1, le=720, description="Login page session (silent re-authorization)."
    )
    token_requests_per_minute: int = Field(
        default=60, ge=1, le=100_000, description="Token endpoint limit per client and process."
    )
    token_requests_per_minute_per_ip: int = Field(
        default=300, ge=1, le=100_000, description="Token endpoint limit per address and process."
    )
    logins_per_minute: int = Field(
        default=10, ge=1, le=10_000, description="Sign-in attempts per user name and process."
    )
    logins_per_minute_per_ip: int = Field(
        default=30, ge=1, le=100_000, description="Sign-in attempts per address and process."
    )
    resources: list[str] = Field(
        default_factory=list,
        description="Other resource servers tokens may be issued for (RFC 8707 `resource`).",
    )
    external_issuers: list[ExternalIssuerSettings] = Field(
        default_factory=list,
        description="Partner identity providers trusted by configuration (JSON list).",
    )
    key_secret: SecretStr | None = Field(
        default=None,
        description=(
            "Encrypts signing keys at rest. Required outside dev; dev generates one under the data "
            "dir."
        ),
    )


class GatewaySettings(BaseModel):
    public_url: str | None = Field(
        default=None, description="URL clients use to reach the gateway. Default: http://HOST:PORT."
    )
    max_body_kb: int = Field(
        default=1024,
        ge=16,
        le=1_048_576,
        description="Largest request body outside uploads (JSON, forms); see ingest.max_upload_mb.",
    )
    url_signing_secret: SecretStr | None = Field(
        default=None, description="Signs download URLs of the local store. Dev generates one."
    )


class LogSettings(BaseModel):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Log level."
    )
    json_format: bool = Field(default=True, description="JSON lines (true) or plain text (false).")


class PlatformSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="DATASHARE_", env_nested_delimiter="__", env_file=".env", extra="forbid"
    )

    environment: Literal["dev", "test", "prod"] = Field(
        default="dev",
        description="dev and test generate missing secrets; prod refuses to start without them.",
    )
    data_dir: Path = Field(
        default=Path(".datashare"), description="Catalog file, secrets, embedded S3 data."
    )
    host: str = Field(default="127.0.0.1", description="Interface `datashare serve` binds.")
    port: int = Field(default=8000, ge=1, le=65_535, description="Port `datashare serve` binds.")
    catalog: CatalogSettings = Field(default_factory=CatalogSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    query: QuerySettings = Field(default_factory=QuerySettings)
    oauth: OAuthSettings = Field(default_factory=OAuthSettings)
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    log: LogSettings = Field(default_factory=LogSettings)

    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        # worker processes and subprocesses must not depend on the current directory
        return value.expanduser().absolute()

    @model_validator(mode="after")
    def _prod_needs_real_secrets(self) -> PlatformSettings:
        if self.environment != "prod":
            return self
        missing = [
            env
            for env, value in (
                ("DATASHARE_OAUTH__KEY_SECRET", self.oauth.key_secret),
                ("DATASHARE_GATEWAY__URL_SIGNING_SECRET", self.gateway.url_signing_secret),
                ("DATASHARE_QUERY__MASK_SECRET", self.query.mask_secret),
            )
            if value is None or value.get_secret_value().lower() in PLACEHOLDER_SECRETS
        ]
        if missing:
            raise ValueError(f"environment=prod needs real secrets: set {', '.join(missing)}")
        return self

    @property
    def catalog_url(self) -> str:
        return self.catalog.url or f"sqlite:///{(self.data_dir / 'catalog.db').resolve()}"

    @property
    def public_url(self) -> str:
        if self.gateway.public_url:
            return self.gateway.public_url.rstrip("/")
        # bound to every interface: loopback is the one address sure to reach it; set
        # DATASHARE_GATEWAY__PUBLIC_URL (https) when clients come from elsewhere
        host = "localhost" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"

    @property
    def issuer(self) -> str:
        return (self.oauth.issuer or self.public_url).rstrip("/")

    def dev_secret(self, name: str) -> bytes:
        """A generated secret kept under the data dir (dev/test only)."""
        path = self.data_dir / "secrets.json"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        stored: dict[str, str] = json.loads(path.read_text()) if path.is_file() else {}
        if name not in stored:
            stored[name] = secrets.token_urlsafe(32)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump(stored, handle)
        return stored[name].encode()

    def mask_secret(self) -> bytes:
        """The platform secret HMAC mask keys are derived from (``policies.masking``)."""
        return self.secret(self.query.mask_secret, "query_mask_secret")

    def secret(self, configured: SecretStr | None, name: str) -> bytes:
        if configured is not None:
            return configured.get_secret_value().encode()
        if self.environment == "prod":
            raise ValueError(f"secret {name} is not configured")
        return self.dev_secret(name)
