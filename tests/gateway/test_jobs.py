"""/v1/jobs through the real app: progress and pace, retry, upload modes, quarantine pages.

Jobs run on the in-process worker the app starts for a platform handed to it (the same
``ingest.worker.Worker`` code that `datashare worker` runs), on the local store and S3.
"""

from __future__ import annotations

import io
import time
from typing import Any

import pyarrow.parquet as pq
import pytest

from catalog.models import utcnow
from tests.factories import (
    ENERGY_CONTRACT,
    ENERGY_CSV,
    Caller,
    make_caller,
    make_dataset,
    make_org,
    wait_job,
)


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "detail"}
    assert body["error"]["code"] == code, body
    return dict(body["error"])


def upload(client: Any, caller: Caller, dataset_id: str, content: bytes, **params: str) -> Any:
    response = client.post(
        f"/v1/datasets/{dataset_id}/uploads",
        headers=caller.headers,
        content=content,
        params={"filename": "meters.csv", **params},
    )
    assert response.status_code == 202, response.text
    return response.json()


def energy_csv(rows: int, *, start: int = 0, bad_every: int = 0) -> bytes:
    """Rows ``start`` … ``start + rows - 1``; with ``bad_every``, every n-th kWh is negative."""
    lines = ["设备编号,时间,用电量(度),时段"]
    for i in range(start, start + rows):
        kwh = -1.5 if bad_every and i % bad_every == 0 else (i % 4000) + 0.5
        lines.append(f"DG-P{i % 9}-MCC-{i:07d},2025-07-11 {i % 24:02d}:{i % 60:02d},{kwh},峰")
    return ("\n".join(lines) + "\n").encode()


def test_a_running_job_reports_phase_progress_pace_and_its_worker(client, platform) -> None:
    provider = make_caller(platform, client)
    dataset = make_dataset(client, provider)
    job = upload(client, provider, dataset["id"], energy_csv(600_000))
    assert (job["status"], job["phase"], job["mode"], job["worker"]) == (
        "queued",
        "queued",
        "replace",
        None,
    )
    seen = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        state = client.get(f"/v1/jobs/{job['id']}", headers=provider.headers).json()
        if state["status"] == "running" and state["phase"] == "reading" and state["rows_read"]:
            seen = state
            break
        assert state["status"] in ("queued", "running"), state
        time.sleep(0.02)
    assert seen is not None, "never saw the job reading"
    assert 0 < seen["progress"] < 1  # a share of the bytes read (the reader reads ahead)
    assert seen["rows_per_second"] > 0 and seen["eta_seconds"] >= 0
    assert seen["worker"].count(":") == 1 and seen["attempts"] == 1
    done = wait_job(client, provider, job["id"], timeout=180)
    assert (done["status"], done["phase"], done["progress"], done["eta_seconds"]) == (
        "succeeded",
        "done",
        1.0,
        None,
    )
    assert done["rows_per_second"] > 0 and done["rows_valid"] == 600_000


def test_pace_is_rows_per_second_and_the_eta_follows_the_share_read() -> None:
    from datetime import timedelta

    from catalog.models import Job
    from gateway.routes.jobs import job_out

    now = utcnow()
    job = Job(
        id="j",
        dataset_id="d",
        status="running",
        phase="reading",
        mode="replace",
        filename="f.csv",
        encoding="utf-8",
        format="csv",
        source_sha256="0" * 64,
        source_bytes=100,
        rows_read=50_000,
        rows_valid=0,
        rows_rejected=0,
        progress=0.25,
        attempts=1,
        created_at=now - timedelta(seconds=11),
        started_at=now - timedelta(seconds=10),
    )
    out = job_out(job, now=now)
    assert (out.rows_per_second, out.eta_seconds) == (5000.0, 30.0)
    job.phase = "uploading"
    assert job_out(job, now=now).eta_seconds is None
    job.status, job.phase, job.finished_at = "succeeded", "done", now - timedelta(seconds=5)
    assert (job_out(job, now=now).rows_per_second, job_out(job, now=now).eta_seconds) == (
        10_000.0,
        None,
    )


# -- retry ------------------------------------------------------------------------------


def test_provider_retries_a_failed_job_after_fixing_the_contract(client, platform) -> None:
    platform.ingest.settings = platform.ingest.settings.model_copy(update={"max_error_ratio": 0.2})
    provider = make_caller(platform, client)
    dataset = make_dataset(client, provider)
    failed = wait_job(client, provider, upload(client, provider, dataset["id"], ENERGY_CSV)["id"])
    assert (failed["status"], failed["error"]["code"]) == ("failed", "too_many_rejected_rows")
    assert failed["links"]["retry"] == f"/v1/jobs/{failed['id']}/retry"

    relaxed = {
        "columns": [
            {**c, "pattern": "^.+$"} if c["name"] == "meter_id" else c
            for c in ENERGY_CONTRACT["columns"]
        ]
    }
    relaxed["columns"] = [
        {**c, "min": -10} if c["name"] == "kwh" else c for c in relaxed["columns"]
    ]
    platform.registry.update_contract(dataset["id"], relaxed, created_by="test", note="relax")
    response = client.post(f"/v1/jobs/{failed['id']}/retry", headers=provider.headers)
    assert response.status_code == 202, response.text
    assert (response.json()["status"], response.json()["attempts"]) == ("queued", 0)
    assert response.json()["error"] is None

    done = wait_job(client, provider, failed["id"])
    assert (done["status"], done["rows_valid"], done["rows_rejected"], done["version"]) == (
        "succeeded",
        5,
        0,
        1,
    )
    version = platform.registry.version(dataset["id"], 1)
    assert version.contract_version == 2  # validated with the contract the job started with
    events = [e for e in platform.audit.recent(limit=50) if e.action == "ingest.retry"]
    assert [(e.actor, e.detail["job"]) for e in events] == [(provider.client_id, failed["id"])]

    again = client.post(f"/v1/jobs/{failed['id']}/retry", headers=provider.headers)
    assert "succeeded" in assert_error(again, 409, "job_not_retryable")["message"]


def test_only_failed_jobs_can_be_retried(client, platform) -> None:
    provider = make_caller(platform, client)
    dataset = make_dataset(client, provider)
    first = wait_job(client, provider, upload(client, provider, dataset["id"], ENERGY_CSV)["id"])
    duplicate = upload(client, provider, dataset["id"], ENERGY_CSV)
    running = platform.jobs.create(
        dataset_id=dataset["id"],
        created_by=provider.client_id,
        status="running",
        phase="reading",
        worker="elsewhere:1",
        lease_until=utcnow().replace(year=2100),
        source_bucket="b",
        source_key="k",
        source_sha256="0" * 64,
        source_bytes=1,
    )
    for job_id, status in (
        (first["id"], "succeeded"),
        (duplicate["id"], "duplicate"),
        (running.id, "running"),
    ):
        response = client.post(f"/v1/jobs/{job_id}/retry", headers=provider.headers)
        error = assert_error(response, 409, "job_not_retryable")
        assert error["detail"] == {"job": job_id, "status": status}
    assert_error(client.post("/v1/jobs/nope/retry", headers=provider.headers), 404, "not_found")


def failed_job(client, platform, provider: Caller) -> dict[str, Any]:
    platform.ingest.settings = platform.ingest.settings.model_copy(update={"max_error_ratio": 0.2})
    dataset = make_dataset(client, provider)
    return wait_job(client, provider, upload(client, provider, dataset["id"], ENERGY_CSV)["id"])


@pytest.mark.parametrize("who", ["other provider", "consumer", "steward", "admin elsewhere"])
def test_retry_and_quarantine_are_the_datasets_provider_only(client, platform, who) -> None:
    provider = make_caller(platform, client)
    job = failed_job(client, platform, provider)
    assert job["rows_rejected"] == 2
    caller = {
        "other provider": lambda: make_caller(platform, client, region="SZ"),
        "consumer": lambda: make_caller(platform, client, role="consumer", region="HK"),
        "steward": lambda: make_caller(platform, client, role="steward"),
        "admin elsewhere": lambda: make_caller(platform, client, role="admin"),
    }[who]()
    for method, path in (
        ("POST", f"/v1/jobs/{job['id']}/retry"),
        ("GET", f"/v1/jobs/{job['id']}/quarantine"),
        ("GET", f"/v1/jobs/{job['id']}/quarantine?format=parquet"),
    ):
        # consumers and stewards lack the datasets:write scope; other providers and admins
        # hold it but are not the dataset's provider
        code = "insufficient_scope" if who in ("consumer", "steward") else "forbidden"
        assert_error(client.request(method, path, headers=caller.headers), 403, code)
    assert client.get(f"/v1/jobs/{job['id']}", headers=provider.headers).json()["status"] == (
        "failed"
    )


def test_an_admin_of_the_datasets_own_org_without_the_provider_role_cannot_read_rows(
    client, platform
) -> None:
    provider = make_caller(platform, client)
    job = failed_job(client, platform, provider)
    admin = make_caller(platform, client, role="admin", org=provider.org)
    assert client.get(f"/v1/jobs/{job['id']}", headers=admin.headers).status_code == 200
    quarantine = client.get(f"/v1/jobs/{job['id']}/quarantine", headers=admin.headers)
    assert_error(quarantine, 403, "forbidden")


# -- modes ------------------------------------------------------------------------------


def test_append_adds_rows_to_the_current_version_and_replace_starts_over(client, platform) -> None:
    provider = make_caller(platform, client)
    dataset = make_dataset(client, provider)
    sql = f"SELECT count(*) FROM {dataset['sql_name']}"

    def count() -> int:
        response = client.post("/v1/query", headers=provider.headers, json={"sql": sql})
        return int(response.json()["rows"][0][0])

    first = wait_job(client, provider, upload(client, provider, dataset["id"], ENERGY_CSV)["id"])
    more = energy_csv(4, start=100)
    job = upload(client, provider, dataset["id"], more, mode="append", filename="more.csv")
    assert job["mode"] == "append"
    second = wait_job(client, provider, job["id"])
    assert (second["status"], second["version"], second["rows_valid"]) == ("succeeded", 2, 4)
    assert count() == 3 + 4

    v1, v2 = platform.registry.versions(dataset["id"])
    assert (v1.mode, v1.parent_version, v1.row_count) == ("replace", None, 3)
    assert v1.job_id == first["id"]
    assert (v2.mode, v2.parent_version, v2.row_count, v2.rows_read) == ("append", 1, 7, 4)
    assert (v2.source_name, v2.source_bytes, v2.contract_version) == ("more.csv", len(more), 1)
    assert len(v2.files) == len(v1.files) + 1

    wait_job(client, provider, upload(client, provider, dataset["id"], energy_csv(2))["id"])
    assert count() == 2
    assert platform.registry.version(dataset["id"]).mode == "replace"


def test_an_appended_version_carries_statistics_of_all_its_rows(client, platform) -> None:
    provider = make_caller(platform, client)
    dataset = make_dataset(client, provider)
    first = energy_csv(50)  # kWh 0.5 … 49.5
    wait_job(client, provider, upload(client, provider, dataset["id"], first)["id"])
    more = energy_csv(30, start=1000)  # kWh 1000.5 … 1029.5
    job = upload(client, provider, dataset["id"], more, mode="append")
    assert wait_job(client, provider, job["id"])["status"] == "succeeded"

    response = client.get(f"/v1/datasets/{dataset['id']}/versions", headers=provider.headers)
    assert response.status_code == 200, response.text
    v1, v2 = sorted(response.json(), key=lambda v: v["version"])
    kwh, meters = v2["stats"]["kwh"], v2["stats"]["meter_id"]
    assert (kwh["count"], kwh["nulls"], kwh["min"], kwh["max"]) == (80, 0, 0.5, 1029.5)
    assert kwh["mean"] == pytest.approx((sum(range(50)) + sum(range(1000, 1030)) + 40) / 80)
    assert sum(kwh["histogram"]["counts"]) == 80
    assert kwh["histogram"]["edges"][0] == 0.5 and kwh["histogram"]["edges"][-1] == 1029.5
    assert meters["count"] == 80 and abs(meters["distinct_estimate"] - 80) <= 2
    assert v1["stats"]["kwh"]["count"] == 50  # the parent keeps its own
    assert "sketch" not in kwh and "sketch" not in v1["stats"]["kwh"]  # internal only


def test_append_rejects_rows_whose_key_is_already_in_the_dataset(client, platform) -> None:
    platform.ingest.settings = platform.ingest.settings.model_copy(update={"max_error_ratio": 0.9})
    provider = make_caller(platform, client)
    contract = {**ENERGY_CONTRACT, "primary_key": ["meter_id", "ts"]}
    dataset = make_dataset(client, provider, contract=contract)
    wait_job(client, provider, upload(client, provider, dataset["id"], energy_csv(5))["id"])
    overlapping = energy_csv(4, start=3)  # rows 3 and 4 are in version 1 already
    job = upload(client, provider, dataset["id"], overlapping, mode="append")
    done = wait_job(client, provider, job["id"])
    assert (done["status"], done["rows_valid"], done["rows_rejected"]) == ("succeeded", 2, 2)
    page = client.get(f"/v1/jobs/{job['id']}/quarantine", headers=provider.headers).json()
    assert [r["row"] for r in page["rows"]] == [1, 2]
    assert {reason["rule"] for r in page["rows"] for reason in r["reasons"]} == {"unique"}
    assert platform.registry.version(dataset["id"]).row_count == 7


def test_concurrent_appends_each_land_once(client, platform) -> None:
    provider = make_caller(platform, client)
    dataset = make_dataset(client, provider)
    wait_job(client, provider, upload(client, provider, dataset["id"], energy_csv(10))["id"])
    jobs = [
        upload(client, provider, dataset["id"], energy_csv(5, start=100 * i), mode="append")
        for i in range(1, 5)
    ]
    done = [wait_job(client, provider, job["id"]) for job in jobs]
    assert [d["status"] for d in done] == ["succeeded"] * 4
    versions = platform.registry.versions(dataset["id"])
    assert [v.version for v in versions] == [1, 2, 3, 4, 5]
    assert [v.parent_version for v in versions[1:]] == [1, 2, 3, 4]  # a chain: none lost
    assert versions[-1].row_count == 10 + 4 * 5


def test_an_unknown_mode_is_refused(client, platform) -> None:
    provider = make_caller(platform, client)
    dataset = make_dataset(client, provider)
    response = client.post(
        f"/v1/datasets/{dataset['id']}/uploads",
        headers=provider.headers,
        content=ENERGY_CSV,
        params={"mode": "merge"},
    )
    assert "replace" in str(assert_error(response, 422, "invalid_request")["detail"])


# -- quarantine ---------------------------------------------------------------------------


def test_quarantine_pages_and_the_parquet_download(client, platform) -> None:
    platform.ingest.settings = platform.ingest.settings.model_copy(update={"max_error_ratio": 0.5})
    provider = make_caller(platform, client)
    dataset = make_dataset(client, provider)
    job = upload(client, provider, dataset["id"], energy_csv(60_000, bad_every=2))
    done = wait_job(client, provider, job["id"], timeout=120)
    assert (done["status"], done["rows_rejected"]) == ("succeeded", 30_000)
    url = f"/v1/jobs/{job['id']}/quarantine"

    first = client.get(url, headers=provider.headers).json()
    assert (first["total"], first["offset"], first["limit"], len(first["rows"])) == (
        30_000,
        0,
        100,
        100,
    )
    assert [r["row"] for r in first["rows"][:3]] == [1, 3, 5]  # data rows 1, 3, 5: i = 0, 2, 4
    assert first["rows"][0]["values"]["用电量(度)"] == "-1.5"
    assert first["rows"][0]["reasons"][0]["rule"] == "range"

    deep = client.get(url, headers=provider.headers, params={"offset": 19_998, "limit": 4})
    assert [r["row"] for r in deep.json()["rows"]] == [39_997, 39_999, 40_001, 40_003]
    last = client.get(url, headers=provider.headers, params={"offset": 29_999, "limit": 1000})
    assert [r["row"] for r in last.json()["rows"]] == [59_999]
    too_big = client.get(url, headers=provider.headers, params={"limit": 1001})
    assert_error(too_big, 422, "invalid_request")

    download = client.get(url, headers=provider.headers, params={"format": "parquet"})
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/vnd.apache.parquet"
    assert "attachment" in download.headers["content-disposition"]
    report = pq.read_table(io.BytesIO(download.content))
    assert report.num_rows == 30_000
    assert report.column_names == ["row", "values", "reasons"]


def test_a_job_without_rejected_rows_has_an_empty_quarantine(client, platform) -> None:
    provider = make_caller(platform, client)
    dataset = make_dataset(client, provider)
    job = wait_job(client, provider, upload(client, provider, dataset["id"], energy_csv(3))["id"])
    assert "quarantine" not in job["links"]
    url = f"/v1/jobs/{job['id']}/quarantine"
    page = client.get(url, headers=provider.headers).json()
    assert page == {"rows": [], "total": 0, "offset": 0, "limit": 100}
    parquet = client.get(url, headers=provider.headers, params={"format": "parquet"})
    assert_error(parquet, 404, "not_found")


def test_job_of_another_org_is_forbidden_to_read(client, platform) -> None:
    provider = make_caller(platform, client)
    dataset = make_dataset(client, provider)
    job = upload(client, provider, dataset["id"], ENERGY_CSV)
    outsider = make_caller(platform, client, org=make_org(platform, region="HK"))
    assert_error(client.get(f"/v1/jobs/{job['id']}", headers=outsider.headers), 403, "forbidden")


def test_a_failed_job_names_the_partners_file_not_the_workers_copy(
    client: Any, platform: Any
) -> None:
    provider = make_caller(platform, client)
    dataset = make_dataset(client, provider)
    ragged = ENERGY_CSV + b"DG-P2-MCC-10,2025-07-11 09:00\n"
    job = upload(client, provider, dataset["id"], ragged, filename="../月报/meters-07.csv")
    done = wait_job(client, provider, job["id"])
    assert done["status"] == "failed"
    assert done["error"]["message"].startswith("meters-07.csv: "), done["error"]


# -- raw uploads --------------------------------------------------------------------------


def raw_objects(platform: Any, dataset: dict[str, Any]) -> int:
    """How many raw objects the dataset has (counted by deleting them: end of test only)."""
    region = dataset["region"]
    bucket = platform.lake.bucket(region)
    return int(platform.lake.store(region).delete_prefix(bucket, f"raw/{dataset['id']}/"))


def test_an_upload_failing_its_checks_midway_leaves_no_raw_object(client, platform) -> None:
    """The body streams into the raw object while it is checked; past 16 MiB the S3 store
    has begun a multipart upload, which the undecodable byte near the end aborts."""
    provider = make_caller(platform, client)
    dataset = make_dataset(client, provider)
    good = energy_csv(400_000)
    assert len(good) > 17 << 20
    response = client.post(
        f"/v1/datasets/{dataset['id']}/uploads",
        headers=provider.headers,
        content=good + b"DG-P1-MCC-9999999,2025-07-11 00:00,1.5,\xff\n",
        params={"filename": "meters.csv"},
    )
    error = assert_error(response, 422, "encoding_invalid")
    assert error["detail"]["offset"] == len(good) + len("DG-P1-MCC-9999999,2025-07-11 00:00,1.5,")
    assert raw_objects(platform, dataset) == 0


def test_a_duplicate_upload_keeps_no_second_raw_object(client, platform) -> None:
    provider = make_caller(platform, client)
    dataset = make_dataset(client, provider)
    first = wait_job(client, provider, upload(client, provider, dataset["id"], ENERGY_CSV)["id"])
    again = upload(client, provider, dataset["id"], ENERGY_CSV)
    assert (first["status"], again["status"]) == ("succeeded", "duplicate")
    assert raw_objects(platform, dataset) == 1
