"""The object-store interface, run against the local filesystem and a real SeaweedFS."""

from __future__ import annotations

import hashlib
import secrets
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from catalog.errors import InvalidInput, NotFound, StorageError, StorageUnavailable
from catalog.storage.base import ObjectStore
from catalog.storage.local import LocalStore
from catalog.storage.s3 import S3Store
from tests.conftest import ACTIVE_BACKENDS


@pytest.fixture(params=ACTIVE_BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return LocalStore(tmp_path / "objects", signer=lambda b, k, e: f"signed://{b}/{k}?e={e}")
    weed = request.getfixturevalue("seaweed")
    c = weed.credentials
    return S3Store(
        weed.endpoint_url,
        access_key=c.access_key,
        secret_key=c.secret_key,
        read_access_key=c.read_access_key,
        read_secret_key=c.read_secret_key,
    )


def test_put_get_stream_exists_delete_roundtrip(store: ObjectStore, tmp_path: Path) -> None:
    bucket = "st-" + secrets.token_hex(4)
    store.ensure_bucket(bucket)
    store.ensure_bucket(bucket)  # idempotent
    payload = secrets.token_bytes(3 * 1024 * 1024 + 17)
    source = tmp_path / "in.bin"
    source.write_bytes(payload)
    info = store.put_file(bucket, "lake/ds1/job1/part-00000.parquet", source)
    assert info.size == len(payload)
    assert store.exists(bucket, "lake/ds1/job1/part-00000.parquet")
    assert not store.exists(bucket, "lake/ds1/job1/part-00001.parquet")
    streamed = b"".join(
        store.open_stream(bucket, "lake/ds1/job1/part-00000.parquet", chunk_size=65536)
    )
    assert hashlib.sha256(streamed).digest() == hashlib.sha256(payload).digest()
    target = tmp_path / "out.bin"
    store.get_to_file(bucket, "lake/ds1/job1/part-00000.parquet", target)
    assert target.read_bytes() == payload
    assert store.delete_prefix(bucket, "lake/ds1/") == 1
    assert not store.exists(bucket, "lake/ds1/job1/part-00000.parquet")
    with pytest.raises(NotFound):
        store.get_to_file(bucket, "lake/ds1/job1/part-00000.parquet", target)


def test_a_download_in_ranges_is_the_object_byte_for_byte(
    store: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S3 downloads go in parallel ranges written at their offsets (shrunk here to 1 MiB so
    that 5 MiB + 3 bytes are six ranges, the last one short); an empty object stays empty."""
    monkeypatch.setattr("catalog.storage.s3.RANGE_BYTES", 1 << 20)
    bucket = "st-" + secrets.token_hex(4)
    store.ensure_bucket(bucket)
    payload = secrets.token_bytes(5 * 1024 * 1024 + 3)
    streamed = store.put_stream(bucket, "raw/ds1/job1/source", iter([payload[:7], payload[7:]]))
    assert streamed.size == len(payload)
    target = tmp_path / "downloads" / "out.bin"
    target.parent.mkdir()
    store.get_to_file(bucket, "raw/ds1/job1/source", target)
    assert hashlib.sha256(target.read_bytes()).digest() == hashlib.sha256(payload).digest()
    store.put_stream(bucket, "raw/ds1/job2/source", iter([]))
    store.get_to_file(bucket, "raw/ds1/job2/source", target)
    assert target.read_bytes() == b""
    assert [p.name for p in target.parent.iterdir()] == ["out.bin"]  # no partial file left


def test_a_streamed_read_goes_range_by_range_and_is_the_object_byte_for_byte(
    store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``open_stream`` on S3 asks for one range after another (shrunk here to 1 MiB: six
    requests, the last one short), never the whole object: in one GET SeaweedFS read ahead
    of a slow reader into its own memory (1.2 GiB for a 1.4 GB object)."""
    monkeypatch.setattr("catalog.storage.s3.RANGE_BYTES", 1 << 20)
    bucket = "st-" + secrets.token_hex(4)
    store.ensure_bucket(bucket)
    payload = secrets.token_bytes(5 * 1024 * 1024 + 3)
    store.put_stream(bucket, "raw/ds1/job1/source", iter([payload]))
    ranges: list[tuple[int, int]] = []
    if isinstance(store, S3Store):
        real = store._client.get_object

        def get_object(*args: Any, **kwargs: Any) -> Any:
            ranges.append((kwargs.get("offset", 0), kwargs.get("length", 0)))
            return real(*args, **kwargs)

        monkeypatch.setattr(store._client, "get_object", get_object)
    chunks = list(store.open_stream(bucket, "raw/ds1/job1/source", chunk_size=65_536))
    assert hashlib.sha256(b"".join(chunks)).digest() == hashlib.sha256(payload).digest()
    assert max(len(c) for c in chunks) <= 1 << 20
    if isinstance(store, S3Store):
        assert ranges == [(i << 20, 1 << 20) for i in range(5)] + [(5 << 20, 3)]
    store.put_stream(bucket, "raw/ds1/job2/source", iter([]))
    assert list(store.open_stream(bucket, "raw/ds1/job2/source")) == []
    with pytest.raises(NotFound):
        list(store.open_stream(bucket, "raw/ds1/nothing/source"))


def test_a_stream_that_fails_midway_stores_nothing(store: ObjectStore) -> None:
    """Past the first 16 MiB part the S3 store has a multipart upload going; the error
    from the stream aborts it and propagates unchanged."""
    bucket = "st-" + secrets.token_hex(4)
    store.ensure_bucket(bucket)

    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b"x" * (1 << 20)
        raise ValueError("the upload was refused halfway")

    with pytest.raises(ValueError, match="halfway"):
        store.put_stream(bucket, "raw/ds1/job1/source", chunks())
    assert not store.exists(bucket, "raw/ds1/job1/source")
    assert store.delete_prefix(bucket, "raw/") == 0


@pytest.mark.parametrize(
    "key", ["../etc/passwd", "lake/*/x", "lake/a/../../b", "/abs", "lake/x?y", "Lake/{a,b}"]
)
def test_keys_that_are_not_platform_keys_are_refused(
    store: ObjectStore, key: str, tmp_path: Path
) -> None:
    source = tmp_path / "f"
    source.write_bytes(b"x")
    with pytest.raises(InvalidInput):
        store.put_file("bucket-x", key, source)
    with pytest.raises(InvalidInput):
        store.duckdb_location("bucket-x", key)


def test_presigned_url_downloads_the_object(store: ObjectStore, tmp_path: Path) -> None:
    bucket = "ps-" + secrets.token_hex(4)
    store.ensure_bucket(bucket)
    source = tmp_path / "f.csv"
    source.write_bytes("设备编号\nDG-1\n".encode())
    store.put_file(bucket, "exports/e1/data.csv", source)
    url = store.presigned_get(bucket, "exports/e1/data.csv", 60)
    if isinstance(store, LocalStore):
        assert url.startswith("signed://")  # the gateway signs these; see tests/gateway/test_api.py
        return
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == source.read_bytes()


def test_s3_read_credentials_cannot_write(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    if "s3" not in ACTIVE_BACKENDS:
        pytest.skip("s3 backend not active")
    weed = request.getfixturevalue("seaweed")
    c = weed.credentials
    admin = S3Store(weed.endpoint_url, access_key=c.access_key, secret_key=c.secret_key)
    reader = S3Store(weed.endpoint_url, access_key=c.read_access_key, secret_key=c.read_secret_key)
    bucket = "ro-" + secrets.token_hex(4)
    admin.ensure_bucket(bucket)
    source = tmp_path / "f"
    source.write_bytes(b"data")
    admin.put_file(bucket, "lake/a/b", source)
    assert b"".join(reader.open_stream(bucket, "lake/a/b")) == b"data"
    with pytest.raises(StorageError, match="AccessDenied") as refused:
        reader.put_file(bucket, "lake/a/c", source)
    assert not isinstance(refused.value, StorageUnavailable)  # a refusal is not worth retrying
