"""POST /v1/exports → Parquet in the consumer's export bucket, lineage, presigned URLs,
revocation; through the real app with real SeaweedFS (s3) or the signed local store."""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import pyarrow.parquet as pq
import pytest

from gateway import query_exports
from tests.factories import (
    ENERGY_VALID_ROWS,
    Caller,
    load,
    make_caller,
    make_dataset,
)

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from gateway.services import Platform

SQL = "SELECT meter_id, kwh, tariff FROM {name} ORDER BY meter_id"


def shared_dataset(client: TestClient, platform: Platform) -> tuple[Caller, Caller, dict[str, Any]]:
    """A provider's dataset with one version and a consumer in HK holding a grant on it."""
    provider = make_caller(platform, client)
    consumer = make_caller(platform, client, region="HK", role="consumer")
    steward = make_caller(platform, client, role="steward")
    dataset = make_dataset(client, provider)
    load(client, provider, dataset["id"])
    grant = client.post(
        "/v1/grants",
        headers=steward.headers,
        json={"dataset_id": dataset["id"], "org": consumer.org.id},
    )
    assert grant.status_code == 201, grant.text
    dataset["grant_id"] = grant.json()["id"]
    dataset["steward"] = steward
    return provider, consumer, dataset


def finished(client: TestClient, platform: Platform, caller: Caller, export_id: str) -> Any:
    platform.exports.wait(export_id, timeout=30)
    response = client.get(f"/v1/exports/{export_id}", headers=caller.headers)
    assert response.status_code == 200, response.text
    return response.json()


def fetch(client: TestClient, url: str) -> bytes:
    """A presigned S3 URL goes straight to the object store; a local one to the gateway."""
    parts = urlsplit(url)
    if parts.path.startswith("/files/"):
        response = client.get(f"{parts.path}?{parts.query}")
    else:
        response = httpx.get(url, timeout=10)
    assert response.status_code == 200, response.text
    return response.content


def test_export_writes_parquet_in_consumer_region_with_lineage_and_presigned_urls(
    client: TestClient, platform: Platform
) -> None:
    _provider, consumer, dataset = shared_dataset(client, platform)
    sql = SQL.format(name=dataset["sql_name"])
    started = client.post("/v1/exports", headers=consumer.headers, json={"sql": sql})
    assert started.status_code == 202, started.text
    assert started.headers["location"] == f"/v1/exports/{started.json()['id']}"
    export = finished(client, platform, consumer, started.json()["id"])
    assert export["status"] == "succeeded", export
    assert export["region"] == "HK" and export["row_count"] == 3
    assert export["sources"] == [
        {"dataset_id": dataset["id"], "version": 1, "grant_id": dataset["grant_id"]}
    ]
    assert export["url_expires_in"] == platform.settings.query.export_url_seconds
    [part] = export["files"]
    assert part["key"] == f"exports/{export['id']}/part-0000.parquet" and part["rows"] == 3
    assert platform.lake.export_bucket("HK") in part["url"]  # not the curated bucket
    table = pq.read_table(io.BytesIO(fetch(client, part["url"])))
    assert [tuple(r.values()) for r in table.to_pylist()] == ENERGY_VALID_ROWS
    record = platform.exports.store.get(export["id"])
    assert record.consumer_org_id == consumer.org.id and len(record.query_sha256) == 64
    assert [e.id for e in platform.exports.store.for_dataset(dataset["id"])] == [export["id"]]


def test_export_is_invisible_to_other_organisations(client: TestClient, platform: Platform) -> None:
    provider, consumer, dataset = shared_dataset(client, platform)
    sql = SQL.format(name=dataset["sql_name"])
    export_id = client.post("/v1/exports", headers=consumer.headers, json={"sql": sql}).json()["id"]
    finished(client, platform, consumer, export_id)
    other = client.get(f"/v1/exports/{export_id}", headers=provider.headers)
    assert other.status_code == 404 and other.json()["error"]["code"] == "not_found"


def test_exports_are_listed_to_their_organisation_only_newest_first(
    client: TestClient, platform: Platform
) -> None:
    provider, consumer, dataset = shared_dataset(client, platform)
    sql = SQL.format(name=dataset["sql_name"])
    ids = []
    for _ in range(2):
        ids.append(
            client.post("/v1/exports", headers=consumer.headers, json={"sql": sql}).json()["id"]
        )
        finished(client, platform, consumer, ids[-1])
    listed = client.get("/v1/exports", headers=consumer.headers)
    assert listed.status_code == 200, listed.text
    assert [e["id"] for e in listed.json()] == ids[::-1]
    newest = listed.json()[0]
    assert (newest["status"], newest["row_count"], newest["region"]) == ("succeeded", 3, "HK")
    assert newest["sources"] == [
        {"dataset_id": dataset["id"], "version": 1, "grant_id": dataset["grant_id"]}
    ]
    assert "files" not in newest  # links only from GET /v1/exports/{id}, after the grant check
    assert [
        e["id"] for e in client.get("/v1/exports?limit=1", headers=consumer.headers).json()
    ] == [ids[1]]
    assert client.get("/v1/exports", headers=provider.headers).json() == []
    bad = client.get("/v1/exports?limit=0", headers=consumer.headers)
    assert bad.status_code == 422 and bad.json()["error"]["code"]


def test_export_refused_query_answers_like_query(client: TestClient, platform: Platform) -> None:
    _provider, consumer, dataset = shared_dataset(client, platform)
    refused = client.post(
        "/v1/exports",
        headers=consumer.headers,
        json={"sql": f"COPY (SELECT 1) TO '/tmp/x'; SELECT * FROM {dataset['sql_name']}"},
    )
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "query_refused"


def test_revoked_grant_stops_a_running_export_and_deletes_its_files(
    client: TestClient, platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    _provider, consumer, dataset = shared_dataset(client, platform)
    steward: Caller = dataset["steward"]
    real_write = query_exports._PartWriter.write

    def write_then_revoke(self: Any, schema: Any, batch: Any) -> None:
        real_write(self, schema, batch)
        revoked = client.delete(f"/v1/grants/{dataset['grant_id']}", headers=steward.headers)
        assert revoked.status_code == 200

    monkeypatch.setattr(query_exports._PartWriter, "write", write_then_revoke)
    sql = SQL.format(name=dataset["sql_name"])
    export_id = client.post("/v1/exports", headers=consumer.headers, json={"sql": sql}).json()["id"]
    export = finished(client, platform, consumer, export_id)
    assert export["status"] == "revoked" and export["files"] == []
    assert export["error"]["code"] == "export_revoked"
    assert dataset["grant_id"] in export["error"]["message"]
    store = platform.lake.store("HK")
    assert not store.exists(
        f"{platform.lake.bucket('HK')}-exports", f"exports/{export_id}/part-0000.parquet"
    )


def test_grant_revoked_after_export_stops_presigning(
    client: TestClient, platform: Platform
) -> None:
    _provider, consumer, dataset = shared_dataset(client, platform)
    sql = SQL.format(name=dataset["sql_name"])
    export_id = client.post("/v1/exports", headers=consumer.headers, json={"sql": sql}).json()["id"]
    assert finished(client, platform, consumer, export_id)["status"] == "succeeded"
    steward: Caller = dataset["steward"]
    client.delete(f"/v1/grants/{dataset['grant_id']}", headers=steward.headers)
    export = finished(client, platform, consumer, export_id)
    assert (export["status"], export["files"]) == ("revoked", [])
    time.sleep(0)  # the record is updated too
    assert platform.exports.store.get(export_id).status == "revoked"


def _age(platform: Platform, export_id: str, **changes: Any) -> None:
    """Move an export's timestamps into the past, as if time had passed."""
    from catalog.exports import Export

    with platform.exports.store.sessions.begin() as session:
        export = session.get(Export, export_id)
        assert export is not None
        for name, value in changes.items():
            setattr(export, name, value)


def _objects_left(platform: Platform, export_id: str) -> bool:
    """Whether the export's first part is still in the HK export bucket."""
    key = f"exports/{export_id}/part-0000.parquet"
    return platform.lake.store("HK").exists(platform.lake.export_bucket("HK"), key)


def test_sweep_deletes_files_of_expired_and_revoked_exports_and_audits_it(
    client: TestClient, platform: Platform
) -> None:
    _provider, consumer, dataset = shared_dataset(client, platform)
    sql = SQL.format(name=dataset["sql_name"])
    start = [client.post("/v1/exports", headers=consumer.headers, json={"sql": sql}) for _ in "ab"]
    expired_id, revoked_id = (response.json()["id"] for response in start)
    for export_id in (expired_id, revoked_id):
        assert finished(client, platform, consumer, export_id)["status"] == "succeeded"
        assert _objects_left(platform, export_id)
    admin = make_caller(platform, client, role="admin")
    nothing = client.post("/v1/admin/exports/sweep", headers=admin.headers)
    assert nothing.json() == {"expired": 0, "revoked": 0, "failed": 0}  # both still live

    _age(platform, expired_id, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    swept = client.post("/v1/admin/exports/sweep", headers=admin.headers)
    assert swept.status_code == 200 and swept.json() == {"expired": 1, "revoked": 0, "failed": 0}
    assert not _objects_left(platform, expired_id)
    assert _objects_left(platform, revoked_id)  # the live one is untouched
    view = finished(client, platform, consumer, expired_id)
    assert (view["status"], view["files"]) == ("expired", [])
    assert view["row_count"] == len(ENERGY_VALID_ROWS) and view["sources"]  # the record stays

    # a grant revoked after the export finished: nobody fetched it, the sweeper still deletes it
    steward: Caller = dataset["steward"]
    assert client.delete(f"/v1/grants/{dataset['grant_id']}", headers=steward.headers).is_success
    assert query_exports.sweep_exports(platform) == {"expired": 0, "revoked": 1, "failed": 0}
    assert not _objects_left(platform, revoked_id)
    assert platform.exports.store.get(revoked_id).status == "revoked"
    assert query_exports.sweep_exports(platform) == {"expired": 0, "revoked": 0, "failed": 0}

    events = client.get(
        "/v1/audit", headers=admin.headers, params={"action": "export.sweep"}
    ).json()
    outcomes = {e["resource"]: e["outcome"] for e in events["events"]}
    assert outcomes == {f"export:{expired_id}": "expired", f"export:{revoked_id}": "revoked"}
    consumer_only = client.post("/v1/admin/exports/sweep", headers=consumer.headers)
    assert consumer_only.status_code == 403


def test_sweeper_thread_fails_exports_whose_gateway_died(
    client: TestClient, platform: Platform, tmp_path: Path
) -> None:
    from catalog.exports import SourceRef

    _provider, consumer, dataset = shared_dataset(client, platform)
    bucket = platform.lake.export_bucket("HK")
    store = platform.lake.store("HK")
    platform.exports.ensure_bucket(store, bucket)
    abandoned = platform.exports.store.create(
        consumer_org_id=consumer.org.id,
        client_id=consumer.client_id,
        query_sha256="0" * 64,
        region="HK",
        bucket=bucket,
        expires_at=datetime.now(UTC) + timedelta(hours=24),
        sources=[SourceRef(dataset["id"], 1, dataset["grant_id"])],
    )
    half = tmp_path / "part.parquet"
    half.write_bytes(b"PAR1 half a part")
    store.put_file(bucket, f"exports/{abandoned.id}/part-0000.parquet", half, "x/y")
    assert _objects_left(platform, abandoned.id)
    _age(platform, abandoned.id, created_at=datetime.now(UTC) - timedelta(hours=2))

    platform.exports.stop_sweeper()  # the app's own (every 300 s) makes way for a quick one
    platform.exports.start_sweeper(platform, 0.05)
    try:
        deadline = time.monotonic() + 10
        while platform.exports.store.get(abandoned.id).status == "running":
            assert time.monotonic() < deadline, "the sweeper thread did not run"
            time.sleep(0.05)
    finally:
        platform.exports.stop_sweeper()
    record = platform.exports.store.get(abandoned.id)
    assert record.status == "failed" and record.error["code"] == "export_abandoned"
    assert not _objects_left(platform, abandoned.id)
