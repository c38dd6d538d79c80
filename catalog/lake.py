"""The lake: where each region's data lives.

Each region maps to one bucket on one object store; mainland and HK/MO regions
can sit on different stores (per-region endpoint overrides). Versions record
``{"bucket", "key"}`` per file, never URLs, so moving an endpoint needs no
catalog rewrite.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from catalog.duckdb_session import S3ReadCredentials
from catalog.regions import Region
from catalog.settings import StorageSettings
from catalog.storage.base import ObjectStore
from catalog.storage.local import LocalStore, Signer
from catalog.storage.s3 import S3Store


@dataclass
class Lake:
    stores: dict[Region, ObjectStore]
    buckets: dict[Region, str]
    _by_bucket: dict[str, ObjectStore] = field(init=False)

    def __post_init__(self) -> None:
        self._by_bucket = {self.buckets[r]: self.stores[r] for r in self.stores}
        self._by_bucket.update({self.export_bucket(r): self.stores[r] for r in self.stores})

    def store(self, region: Region | str) -> ObjectStore:
        return self.stores[Region(region)]

    def bucket(self, region: Region | str) -> str:
        return self.buckets[Region(region)]

    def export_bucket(self, region: Region | str) -> str:
        """Where a region's exports are written: beside, never inside, its curated bucket."""
        return f"{self.bucket(region)}-exports"

    def store_for_bucket(self, bucket: str) -> ObjectStore:
        return self._by_bucket[bucket]

    def location(self, bucket: str, key: str) -> str:
        return self.store_for_bucket(bucket).duckdb_location(bucket, key)

    def read_credentials(self, buckets: Iterable[str]) -> list[S3ReadCredentials]:
        found = (self.store_for_bucket(b).read_credentials(b) for b in sorted(set(buckets)))
        return [c for c in found if c is not None]

    def ensure_buckets(self) -> None:
        for region, store in self.stores.items():
            store.ensure_bucket(self.buckets[region])

    def missing_buckets(self) -> list[str]:
        return [b for r, b in self.buckets.items() if not self.stores[r].bucket_exists(b)]

    def ping(self) -> None:
        for store in {id(s): s for s in self.stores.values()}.values():
            store.ping()

    @property
    def backend(self) -> str:
        return ",".join(sorted({s.name for s in self.stores.values()}))


def build_lake(
    settings: StorageSettings,
    *,
    endpoint_url: str | None,
    local_root: Path,
    signer: Signer | None,
    embedded_keys: tuple[str, str, str, str] | None = None,
) -> Lake:
    """Build the lake from settings; ``endpoint_url`` is the resolved default S3 endpoint
    (configured or embedded) or None for the local-filesystem store."""
    stores: dict[Region, ObjectStore] = {}
    shared: dict[str, ObjectStore] = {}
    for region in Region:
        override = settings.regions.get(region)
        endpoint = (
            str(override.endpoint_url) if override and override.endpoint_url else endpoint_url
        )
        if endpoint is None:
            stores[region] = shared.setdefault("local", LocalStore(local_root, signer))
            continue
        keys = _keys(settings, region, embedded_keys)
        stores[region] = shared.setdefault(endpoint + keys[0], _s3(settings, endpoint, keys))
    return Lake(stores, {r: settings.bucket_for(r) for r in Region})


def _keys(
    settings: StorageSettings, region: Region, embedded: tuple[str, str, str, str] | None
) -> tuple[str, str, str | None, str | None]:
    override = settings.regions.get(region)

    def pick(name: str) -> str | None:
        return _secret(override, name) or _secret(settings, name)

    access, secret = pick("access_key"), pick("secret_key")
    if access is None or secret is None:
        if embedded is None:
            raise ValueError(f"no S3 credentials for region {region.value}")
        return embedded
    return access, secret, pick("read_access_key"), pick("read_secret_key")


def _secret(holder: object, name: str) -> str | None:
    value = getattr(holder, name, None) if holder is not None else None
    return value.get_secret_value() if value is not None else None


def _s3(
    settings: StorageSettings, endpoint: str, keys: tuple[str, str, str | None, str | None]
) -> S3Store:
    return S3Store(
        endpoint,
        access_key=keys[0],
        secret_key=keys[1],
        read_access_key=keys[2],
        read_secret_key=keys[3],
        region_name=settings.region_name,
        url_style=settings.url_style,
    )
