"""The /v1 API through the real app (ASGI in-process), on the local store and on S3."""

from __future__ import annotations

from typing import Any

import pytest

from catalog.clients import create_client
from tests.factories import ENERGY_CSV, ENERGY_VALID_ROWS, make_caller, make_dataset, wait_job


def assert_error_envelope(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "detail"}
    assert body["error"]["message"]
    assert "Traceback" not in response.text
    if code is not None:
        assert body["error"]["code"] == code
    return dict(body["error"])


def upload(client: Any, caller: Any, dataset_id: str, content: bytes, **params: str) -> Any:
    return client.post(
        f"/v1/datasets/{dataset_id}/uploads",
        headers=caller.headers,
        content=content,
        params={"filename": "meters.csv", **params},
    )


def test_every_v1_route_requires_a_bearer_token(client) -> None:
    for method, path in [
        ("GET", "/v1/me"),
        ("GET", "/v1/datasets"),
        ("POST", "/v1/query"),
        ("GET", "/v1/grants"),
        ("GET", "/v1/audit"),
        ("GET", "/v1/jobs/x"),
    ]:
        response = client.request(method, path)
        error = assert_error_envelope(response, 401, "authentication_required")
        assert "Bearer" in error["message"]
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_token_in_query_string_is_refused(client, platform) -> None:
    caller = make_caller(platform, client)
    response = client.get("/v1/me", params={"access_token": caller.token})
    assert_error_envelope(response, 401, "authentication_required")


def test_me_reflects_the_token_claims(client, platform) -> None:
    caller = make_caller(platform, client, region="HK", role="consumer")
    me = client.get("/v1/me", headers=caller.headers).json()
    assert (me["org_id"], me["region"], me["jurisdiction"], me["roles"]) == (
        caller.org.id,
        "HK",
        "HK",
        ["consumer"],
    )


def test_roles_are_enforced_per_route(client, platform) -> None:
    consumer = make_caller(platform, client, role="consumer")
    response = client.post(
        "/v1/datasets",
        headers=consumer.headers,
        json={"name": "x", "contract": {"columns": [{"name": "a"}]}},
    )
    error = assert_error_envelope(response, 403, "insufficient_scope")
    assert "datasets:write" in error["message"]
    assert response.headers["www-authenticate"] == (
        'Bearer error="insufficient_scope", scope="datasets:write"'
    )
    audit = client.get("/v1/audit", headers=consumer.headers)
    assert_error_envelope(audit, 403, "insufficient_scope")


def test_upload_validates_and_commits_exactly_the_valid_rows(client, platform) -> None:
    provider = make_caller(platform, client)
    dataset = make_dataset(client, provider)
    response = upload(client, provider, dataset["id"], ENERGY_CSV)
    assert response.status_code == 202, response.text
    job = wait_job(client, provider, response.json()["id"])
    assert (job["status"], job["rows_read"], job["rows_valid"], job["rows_rejected"]) == (
        "succeeded",
        5,
        3,
        2,
    )
    assert job["version"] == 1
    rejected = client.get(f"/v1/jobs/{job['id']}/quarantine", headers=provider.headers).json()[
        "rows"
    ]
    reasons = {
        (r["row"], reason["column"], reason["rule"]) for r in rejected for reason in r["reasons"]
    }
    assert {row for row, _, _ in reasons} == {2, 4}
    assert {col for _, col, _ in reasons} == {"用电量(度)", "设备编号"}  # the partner's own headers
    versions = client.get(f"/v1/datasets/{dataset['id']}/versions", headers=provider.headers).json()
    assert [(v["version"], v["row_count"], v["rejected_count"]) for v in versions] == [(1, 3, 2)]
    rows = client.post(
        "/v1/query",
        headers=provider.headers,
        json={"sql": f"SELECT meter_id, kwh, tariff FROM {dataset['sql_name']} ORDER BY meter_id"},
    ).json()
    assert [tuple(r) for r in rows["rows"]] == ENERGY_VALID_ROWS


def test_batch_past_the_error_ratio_fails_whole_and_keeps_the_quarantine(client, platform) -> None:
    platform.ingest.settings = platform.ingest.settings.model_copy(update={"max_error_ratio": 0.2})
    provider = make_caller(platform, client)
    dataset = make_dataset(client, provider)
    job = wait_job(
        client, provider, upload(client, provider, dataset["id"], ENERGY_CSV).json()["id"]
    )
    assert (job["status"], job["version"], job["error"]["code"]) == (
        "failed",
        None,
        "too_many_rejected_rows",
    )
    assert "40" in job["error"]["message"] or "0.4" in job["error"]["message"]
    rejected = client.get(f"/v1/jobs/{job['id']}/quarantine", headers=provider.headers).json()[
        "rows"
    ]
    assert [r["row"] for r in rejected] == [2, 4]
    assert (
        client.get(f"/v1/datasets/{dataset['id']}/versions", headers=provider.headers).json() == []
    )


def test_identical_reupload_is_detected_by_hash(client, platform) -> None:
    provider = make_caller(platform, client)
    dataset = make_dataset(client, provider)
    first = wait_job(
        client, provider, upload(client, provider, dataset["id"], ENERGY_CSV).json()["id"]
    )
    again = upload(client, provider, dataset["id"], ENERGY_CSV).json()
    assert first["status"] == "succeeded"
    assert (again["status"], again["version"]) == ("duplicate", 1)
    versions = client.get(f"/v1/datasets/{dataset['id']}/versions", headers=provider.headers).json()
    assert len(versions) == 1


@pytest.mark.parametrize(
    ("content", "params", "status", "code", "needle"),
    [
        (b"", {}, 422, "file_empty", "empty"),
        ("设备编号,时间\n".encode("gbk"), {}, 422, "encoding_invalid", "utf-8"),
        (ENERGY_CSV, {"encoding": "latin-9"}, 422, "encoding_unsupported", "gbk"),
    ],
)
def test_bad_uploads_get_a_4xx_naming_the_problem(
    client, platform, content, params, status, code, needle
) -> None:
    provider = make_caller(platform, client)
    dataset = make_dataset(client, provider)
    error = assert_error_envelope(
        upload(client, provider, dataset["id"], content, **params), status
    )
    assert error["code"] == code
    assert needle in error["message"].lower()
    versions = client.get(f"/v1/datasets/{dataset['id']}/versions", headers=provider.headers).json()
    assert versions == []


def test_dataset_bad_input_is_rejected_with_the_envelope(client, platform) -> None:
    provider = make_caller(platform, client)
    make_dataset(client, provider, name="meters")
    error = assert_error_envelope(
        client.post(
            "/v1/datasets",
            headers=provider.headers,
            json={"name": "meters", "contract": {"columns": [{"name": "a"}]}},
        ),
        409,
        "conflict",
    )
    assert "meters" in error["message"]
    error = assert_error_envelope(
        client.post(
            "/v1/datasets",
            headers=provider.headers,
            json={"name": "Bad Name", "contract": {"columns": [{"name": "a"}]}},
        ),
        422,
        "invalid_input",
    )
    assert error["detail"]["field"] == "name"
    error = assert_error_envelope(
        client.post(
            "/v1/datasets",
            headers=provider.headers,
            json={"name": "x", "contract": {"columns": [{"name": "Bad Col"}]}},
        ),
        422,
        "invalid_request",
    )
    assert "column name" in str(error["detail"])
    assert_error_envelope(
        client.get("/v1/datasets/nope", headers=provider.headers), 404, "not_found"
    )


def test_upload_to_another_orgs_dataset_is_forbidden(client, platform) -> None:
    owner, other = make_caller(platform, client), make_caller(platform, client, region="SZ")
    dataset = make_dataset(client, owner)
    assert_error_envelope(upload(client, other, dataset["id"], ENERGY_CSV), 403, "forbidden")


def test_health_readiness_and_metrics(client, platform) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert set(ready.json()["checks"]) == {"catalog", "storage", "lake"}
    metrics = client.get("/metrics").text
    assert "datashare_http_requests_total" in metrics
    response = client.get("/healthz", headers={"x-request-id": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"


def test_readyz_names_the_failing_part(client, platform) -> None:
    from catalog.lake import Lake
    from catalog.regions import Region
    from catalog.storage.s3 import S3Store

    dead = S3Store(
        "http://127.0.0.1:9", access_key="k", secret_key="s"
    )  # discard port: nothing listens
    healthy = platform.lake
    platform.lake = Lake(dict.fromkeys(Region, dead), healthy.buckets)
    try:
        response = client.get("/readyz")
    finally:
        platform.lake = healthy
    error = assert_error_envelope(response, 503, "not_ready")
    assert "storage" in error["message"]
    assert error["detail"]["checks"]["catalog"] == "ok"


def test_download_links_work_and_tampering_is_refused(client, platform, tmp_path) -> None:
    import httpx

    bucket = platform.lake.bucket("HK")
    store = platform.lake.store("HK")
    source = tmp_path / "export.csv"
    source.write_bytes("shipment_id,直通\nS-1,是\n".encode())
    store.put_file(bucket, "exports/test/data.csv", source)
    url = store.presigned_get(bucket, "exports/test/data.csv", 60)
    if url.startswith(platform.settings.public_url):  # local store: the gateway signs and serves
        path = url[len(platform.settings.public_url) :]
        assert client.get(path).content == source.read_bytes()
        tampered = path.replace("signature=", "signature=0")
        assert_error_envelope(client.get(tampered), 403, "forbidden")
        other = path.replace("exports/test/data.csv", "exports/test/other.csv")
        assert_error_envelope(client.get(other), 403, "forbidden")
    else:  # S3: a presigned URL straight to the object store
        assert httpx.get(url, timeout=10).content == source.read_bytes()
        assert (
            httpx.get(url.replace("X-Amz-Signature=", "X-Amz-Signature=0"), timeout=10).status_code
            == 403
        )


def test_oversized_json_bodies_are_refused_before_parsing(client, platform) -> None:
    consumer = make_caller(platform, client, role="consumer")
    huge = "SELECT 1 " + "-- padding\n" * 200_000  # ~2.2 MB, over the 1 MiB default
    response = client.post("/v1/query", headers=consumer.headers, json={"sql": huge})
    error = assert_error_envelope(response, 413, "request_too_large")
    assert "uploads" in error["message"]

    def chunked():
        yield b'{"sql": "'
        for _ in range(300):
            yield b"x" * 4096
        yield b'"}'

    headers = {**consumer.headers, "Content-Type": "application/json"}
    response = client.post("/v1/query", headers=headers, content=chunked())
    assert_error_envelope(response, 413, "request_too_large")


def energy_jsonl() -> bytes:
    import json

    rows = [
        {"设备编号": "DG-P2-MCC-07", "时间": "2025-07-11 08:15", "用电量(度)": 12.5, "时段": "峰"},
        {"设备编号": "DG-P2-MCC-07", "时间": "2025-07-11 08:30", "用电量(度)": -3.0, "时段": "峰"},
        {"设备编号": "DG-P2-MCC-08", "时间": "2025-07-11 08:15", "用电量(度)": 7.25, "时段": "谷"},
    ]
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()


def energy_xlsx(tmp_path) -> bytes:
    import openpyxl  # noqa: TID251 - the test writes the workbook the xlsx adapter reads

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "7月能耗"
    sheet.append(["东莞松湖精密 2025年7月 电能报表"])  # a title row above the header
    sheet.append(["设备编号", "时间", "用电量(度)", "时段"])
    sheet.append(["DG-P2-MCC-07", "2025-07-11 08:15", 12.5, "峰"])
    sheet.append(["DG-P2-MCC-08", "2025-07-11 08:15", 7.25, "谷"])
    sheet.append(["DG-P2-MCC-09", "2025-07-11 08:45", -1, "尖峰"])
    path = tmp_path / "energy.xlsx"
    book.save(path)
    return path.read_bytes()


@pytest.mark.parametrize("fmt", ["jsonl", "xlsx"])
def test_jsonl_and_xlsx_uploads_become_versions(client, platform, tmp_path, fmt) -> None:
    provider = make_caller(platform, client)
    dataset = make_dataset(client, provider)
    content = energy_jsonl() if fmt == "jsonl" else energy_xlsx(tmp_path)
    response = upload(client, provider, dataset["id"], content, filename=f"meters.{fmt}")
    assert response.status_code == 202, response.text
    job = wait_job(client, provider, response.json()["id"])
    assert (job["status"], job["format"], job["rows_valid"], job["rows_rejected"]) == (
        "succeeded",
        fmt,
        2,
        1,
    )
    rejected = client.get(f"/v1/jobs/{job['id']}/quarantine", headers=provider.headers).json()[
        "rows"
    ]
    assert [reason["rule"] for r in rejected for reason in r["reasons"]] == ["range"]
    rows = client.post(
        "/v1/query",
        headers=provider.headers,
        json={"sql": f"SELECT meter_id, kwh FROM {dataset['sql_name']} ORDER BY meter_id"},
    ).json()["rows"]
    assert [tuple(r) for r in rows] == [("DG-P2-MCC-07", 12.5), ("DG-P2-MCC-08", 7.25)]


def test_refused_formats_name_the_fix(client, platform) -> None:
    provider = make_caller(platform, client)
    dataset = make_dataset(client, provider)
    macro = upload(client, provider, dataset["id"], b"PK\x03\x04", filename="report.xlsm")
    assert "xlsx" in assert_error_envelope(macro, 422, "format_unsupported")["message"]
    unknown = upload(client, provider, dataset["id"], ENERGY_CSV, format="xml")
    assert "jsonl" in assert_error_envelope(unknown, 422, "format_unsupported")["message"]


def test_readyz_names_a_missing_bucket_without_creating_it(client, platform) -> None:
    from catalog.lake import Lake
    from catalog.regions import Region

    healthy = platform.lake
    gone = "absent-" + healthy.buckets[Region.MO]
    platform.lake = Lake(healthy.stores, {**healthy.buckets, Region.MO: gone})
    try:
        response = client.get("/readyz")
        error = assert_error_envelope(response, 503, "not_ready")
        assert gone in error["detail"]["checks"]["lake"]
        assert not healthy.stores[Region.MO].bucket_exists(gone)  # a probe must not create it
    finally:
        platform.lake = healthy


def test_query_route_checks_token_scope_and_role_like_every_route(client, platform) -> None:
    """``POST /v1/query`` checks its token in the query's worker thread (``authorize``), not
    in dependencies: the same answers as the routes that do."""
    body = {"sql": "SELECT 1 AS x", "format": "json"}
    steward = make_caller(platform, client, role="steward")  # no query scope
    refused = client.post("/v1/query", headers=steward.headers, json=body)
    assert_error_envelope(refused, 403, "insufficient_scope")
    assert refused.headers["www-authenticate"] == 'Bearer error="insufficient_scope", scope="query"'

    with platform.sessions.begin() as session:  # the scope, but neither consumer nor provider
        odd, secret = create_client(
            session, org_id=steward.org.id, name="odd", roles=["steward"], scope="query"
        )
        odd_id = odd.client_id
    issued = client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(odd_id, secret)
    )
    odd_headers = {"Authorization": f"Bearer {issued.json()['access_token']}"}
    forbidden = client.post("/v1/query", headers=odd_headers, json=body)
    assert "consumer or provider" in assert_error_envelope(forbidden, 403, "forbidden")["message"]

    consumer = make_caller(platform, client, role="consumer")
    allowed = client.post("/v1/query", headers=consumer.headers, json=body)
    assert allowed.status_code == 200 and allowed.json()["rows"] == [[1]]
    header, payload, signature = consumer.token.split(".")
    flipped = signature[:5] + ("A" if signature[5] != "A" else "B") + signature[6:]
    forged = {"Authorization": f"Bearer {header}.{payload}.{flipped}"}
    assert_error_envelope(client.post("/v1/query", headers=forged, json=body), 401, "invalid_token")
    revoked = client.post(
        "/oauth/revoke",
        data={"token": consumer.token},
        auth=(consumer.client_id, consumer.client_secret),
    )
    assert revoked.status_code == 200
    gone = client.post("/v1/query", headers=consumer.headers, json=body)
    assert_error_envelope(gone, 401, "invalid_token")
