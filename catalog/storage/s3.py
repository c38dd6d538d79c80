"""S3 backend (the only module that imports the minio SDK)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import urllib3
from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import MinioException, S3Error

from catalog.duckdb_session import S3ReadCredentials
from catalog.errors import NotFound, StorageError, StorageUnavailable
from catalog.storage.base import ObjectInfo, check_key


class S3Store:
    name = "s3"

    def __init__(
        self,
        endpoint_url: str,
        *,
        access_key: str,
        secret_key: str,
        read_access_key: str | None = None,
        read_secret_key: str | None = None,
        region_name: str = "us-east-1",
        url_style: str = "path",
    ) -> None:
        parts = urlsplit(endpoint_url)
        if not parts.hostname:
            raise StorageError(
                f"storage endpoint {endpoint_url!r} has no host", endpoint=endpoint_url
            )
        self.endpoint = parts.netloc
        self.secure = parts.scheme == "https"
        self.region_name = region_name
        self.url_style = url_style
        self._read_key = read_access_key or access_key
        self._read_secret = read_secret_key or secret_key
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=5, read=120),
            retries=urllib3.Retry(
                total=3, backoff_factor=0.3, status_forcelist=[500, 502, 503, 504]
            ),
            maxsize=16,
        )
        self._client = Minio(
            self.endpoint,
            access_key=access_key,
            secret_key=secret_key,
            secure=self.secure,
            region=region_name,
            http_client=http,
        )

    def __repr__(self) -> str:
        return f"S3Store(endpoint={self.endpoint!r})"

    def ensure_bucket(self, bucket: str) -> None:
        try:
            if not self._client.bucket_exists(bucket):
                self._client.make_bucket(bucket)
        except S3Error as exc:
            if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise StorageError(
                    f"cannot create bucket {bucket}: {exc.code}", bucket=bucket
                ) from exc
        except (MinioException, urllib3.exceptions.HTTPError) as exc:
            raise StorageUnavailable(
                f"object store {self.endpoint} unreachable", bucket=bucket
            ) from exc

    def bucket_exists(self, bucket: str) -> bool:
        try:
            return bool(self._client.bucket_exists(bucket))
        except (MinioException, urllib3.exceptions.HTTPError) as exc:
            raise StorageUnavailable(
                f"object store {self.endpoint} unreachable", bucket=bucket
            ) from exc

    def put_file(
        self, bucket: str, key: str, path: Path, content_type: str = "application/octet-stream"
    ) -> ObjectInfo:
        check_key(key)
        try:
            self._client.fput_object(bucket, key, str(path), content_type=content_type)
        except S3Error as exc:
            message = f"upload of {bucket}/{key} refused: {exc.code}"
            raise StorageError(message, bucket=bucket) from exc
        except (MinioException, urllib3.exceptions.HTTPError) as exc:
            raise StorageUnavailable(
                f"upload of {bucket}/{key} failed", bucket=bucket, key=key
            ) from exc
        return ObjectInfo(bucket, key, path.stat().st_size)

    def get_to_file(self, bucket: str, key: str, path: Path) -> None:
        check_key(key)
        try:
            self._client.fget_object(bucket, key, str(path))
        except S3Error as exc:
            if exc.code == "NoSuchKey":
                raise NotFound("object", f"{bucket}/{key}") from exc
            raise StorageError(f"download of {bucket}/{key} failed: {exc.code}") from exc
        except (MinioException, urllib3.exceptions.HTTPError) as exc:
            raise StorageUnavailable(f"download of {bucket}/{key} failed", bucket=bucket) from exc

    def open_stream(self, bucket: str, key: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        check_key(key)
        try:
            response = self._client.get_object(bucket, key)
        except S3Error as exc:
            if exc.code == "NoSuchKey":
                raise NotFound("object", f"{bucket}/{key}") from exc
            raise StorageError(f"download of {bucket}/{key} failed: {exc.code}") from exc
        try:
            yield from response.stream(chunk_size)
        finally:
            response.close()
            response.release_conn()

    def exists(self, bucket: str, key: str) -> bool:
        check_key(key)
        try:
            self._client.stat_object(bucket, key)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject", "NoSuchBucket"):
                return False
            raise StorageError(f"stat of {bucket}/{key} failed: {exc.code}") from exc
        return True

    def delete_prefix(self, bucket: str, prefix: str) -> int:
        check_key(prefix.rstrip("/"))
        names = [o.object_name for o in self._client.list_objects(bucket, prefix, recursive=True)]
        errors = list(self._client.remove_objects(bucket, (DeleteObject(n) for n in names if n)))
        if errors:
            raise StorageError(f"could not delete {len(errors)} objects under {bucket}/{prefix}")
        return len(names)

    def presigned_get(self, bucket: str, key: str, expires_seconds: int) -> str:
        check_key(key)
        return self._client.presigned_get_object(
            bucket, key, expires=timedelta(seconds=expires_seconds)
        )

    def duckdb_location(self, bucket: str, key: str) -> str:
        return f"s3://{bucket}/{check_key(key)}"

    def read_credentials(self, bucket: str) -> S3ReadCredentials:
        return S3ReadCredentials(
            scope=f"s3://{bucket}/",
            endpoint=self.endpoint,
            access_key=self._read_key,
            secret_key=self._read_secret,
            region=self.region_name,
            url_style="vhost" if self.url_style == "vhost" else "path",
            use_ssl=self.secure,
        )

    def ping(self) -> None:
        try:
            self._client.list_buckets()
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise StorageUnavailable(f"object store {self.endpoint} unreachable: {exc}") from exc
