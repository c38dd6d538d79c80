"""Local-filesystem backend: the embedded fallback where no S3 server can run.

Objects live under ``<root>/<bucket>/<key>``; writes go to a temporary name and
are renamed into place, so a reader never sees half an object. Downloads go
through the gateway's own signed URLs (``signer``), since there is no S3 server
to presign against.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from catalog.errors import NotFound, StorageUnavailable
from catalog.storage.base import ObjectInfo, check_key

Signer = Callable[[str, str, int], str]  # (bucket, key, expires_seconds) -> URL


class LocalStore:
    name = "local"

    def __init__(self, root: Path, signer: Signer | None = None) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._signer = signer

    def __repr__(self) -> str:
        return f"LocalStore(root={str(self.root)!r})"

    def _path(self, bucket: str, key: str) -> Path:
        check_key(bucket)
        return self.root / bucket / check_key(key)

    def ensure_bucket(self, bucket: str) -> None:
        (self.root / check_key(bucket)).mkdir(parents=True, exist_ok=True)

    def bucket_exists(self, bucket: str) -> bool:
        return (self.root / check_key(bucket)).is_dir()

    def put_file(
        self, bucket: str, key: str, path: Path, content_type: str = "application/octet-stream"
    ) -> ObjectInfo:
        del content_type  # files carry no content type here
        target = self._path(bucket, key)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
        shutil.copyfile(path, partial)
        os.replace(partial, target)
        return ObjectInfo(bucket, key, target.stat().st_size)

    def put_stream(
        self,
        bucket: str,
        key: str,
        chunks: Iterable[bytes],
        content_type: str = "application/octet-stream",
    ) -> ObjectInfo:
        del content_type
        target = self._path(bucket, key)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
        size = 0
        try:
            with partial.open("wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                    size += len(chunk)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        os.replace(partial, target)
        return ObjectInfo(bucket, key, size)

    def get_to_file(self, bucket: str, key: str, path: Path) -> None:
        source = self._path(bucket, key)
        if not source.is_file():
            raise NotFound("object", f"{bucket}/{key}")
        shutil.copyfile(source, path)

    def open_stream(self, bucket: str, key: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        source = self._path(bucket, key)
        if not source.is_file():
            raise NotFound("object", f"{bucket}/{key}")
        with source.open("rb") as handle:
            while chunk := handle.read(chunk_size):
                yield chunk

    def exists(self, bucket: str, key: str) -> bool:
        return self._path(bucket, key).is_file()

    def delete_prefix(self, bucket: str, prefix: str) -> int:
        base = self._path(bucket, prefix.rstrip("/"))
        if base.is_file():
            base.unlink()
            return 1
        if not base.is_dir():
            return 0
        count = sum(1 for p in base.rglob("*") if p.is_file())
        shutil.rmtree(base)
        return count

    def presigned_get(self, bucket: str, key: str, expires_seconds: int) -> str:
        if self._signer is None:
            raise StorageUnavailable("local storage has no URL signer configured")
        return self._signer(bucket, check_key(key), expires_seconds)

    def duckdb_location(self, bucket: str, key: str) -> str:
        return str(self._path(bucket, key))

    def read_credentials(self, bucket: str) -> None:
        del bucket
        return None

    def ping(self) -> None:
        if not os.access(self.root, os.W_OK):
            raise StorageUnavailable(f"local object root {self.root} is not writable")
