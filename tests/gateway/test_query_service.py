"""Per-client query limits, the explain view (obligations, redaction) and 429s over HTTP."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from catalog.errors import QueryRateLimited
from gateway.query_limits import ClientLimits
from gateway.query_service import (
    REDACTED_KEY,
    explained_sql,
    governed,
    obligations,
    open_stream,
)
from policies.model import GovernedQuery, GovernedSource, Mask
from tests.factories import load, make_caller, make_dataset

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from gateway.services import Platform


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_client_limits_rate_refills_over_time() -> None:
    clock = Clock()
    limits = ClientLimits(max_concurrent=10, per_minute=3, clock=clock)
    for _ in range(3):
        limits.check_rate("a")
    with pytest.raises(QueryRateLimited) as refused:
        limits.check_rate("a")
    assert refused.value.attrs() == {"retry_after_s": 20, "limit": "per_minute"}
    limits.check_rate("b")  # another client has its own bucket
    clock.now += 20
    limits.check_rate("a")
    with pytest.raises(QueryRateLimited):
        limits.check_rate("a")


def test_client_limits_concurrency_released_once() -> None:
    limits = ClientLimits(max_concurrent=2, per_minute=100, clock=Clock())
    first, _second = limits.admit("a"), limits.admit("a")
    with pytest.raises(QueryRateLimited) as refused:
        limits.admit("a")
    assert refused.value.attrs()["limit"] == "concurrent"
    first()
    first()  # a second release must not free a slot it does not hold
    assert limits.running("a") == 1
    limits.admit("a")
    with pytest.raises(QueryRateLimited):
        limits.admit("a")


def source(**overrides: object) -> GovernedSource:
    fields: dict[str, object] = {
        "dataset_id": "d1",
        "org": "prov_dg",
        "name": "patients",
        "version": 3,
        "files": ("s3://curated-dg/prov/patients/v3/part-0.parquet",),
        "columns": ("id", "ssn", "region"),
    }
    fields.update(overrides)
    return GovernedSource(**fields)  # type: ignore[arg-type]


def test_explained_sql_redacts_mask_keys_and_storage_paths() -> None:
    key = "5c" * 64
    sql = (
        "SELECT patients.id, SHA256(UNHEX('" + key + "') || UNHEX(SHA256(UNHEX('ab12') || "
        "ENCODE(CAST(ssn AS TEXT))))) AS ssn FROM READ_PARQUET("
        "['s3://curated-dg/prov/patients/v3/part-0.parquet']) AS patients "
        "WHERE region = 'EU' LIMIT 11"
    )
    shown = explained_sql(GovernedQuery(sql=sql, sources=(source(),), max_rows=10))
    assert key not in shown and "ab12" not in shown and "curated-dg" not in shown
    assert shown.count(REDACTED_KEY) == 2
    assert "<prov_dg.patients@3/part-0>" in shown
    assert "'EU'" in shown  # ordinary literals stay readable


def test_obligations_lists_masks_filters_and_group_size() -> None:
    masked = source(
        masks=(Mask("ssn", "hmac"), Mask("region", "partial", {"keep_prefix": 1})),
        row_filter="region = 'EU'",
        aggregate_only=True,
        min_group_size=10,
        subject_column="id",
    )
    assert obligations(masked) == {
        "sql_name": "prov_dg.patients",
        "version": 3,
        "columns": ["id", "ssn", "region"],
        "masks": [
            {"column": "ssn", "kind": "hmac", "params": {}},
            {"column": "region", "kind": "partial", "params": {"keep_prefix": 1}},
        ],
        "row_filter": "region = 'EU'",
        "aggregate_only": True,
        "min_group_size": 10,
        "subject_column": "id",
    }


def test_query_rate_limit_answers_429_with_retry_after(
    client: TestClient, platform: Platform
) -> None:
    platform.client_limits = ClientLimits(max_concurrent=1, per_minute=2)
    provider = make_caller(platform, client)
    dataset = make_dataset(client, provider)
    load(client, provider, dataset["id"])
    body = {"sql": f"SELECT count(*) AS n FROM {dataset['sql_name']}"}
    explain = client.post("/v1/query/explain", headers=provider.headers, json=body)
    assert explain.status_code == 200, explain.text
    assert explain.json()["datasets"][0]["masks"] == []
    assert "<" + dataset["sql_name"] + "@1/part-0>" in explain.json()["governed_sql"]
    assert client.post("/v1/query", headers=provider.headers, json=body).json()["rows"] == [[3]]
    refused = client.post("/v1/query", headers=provider.headers, json=body)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 30  # the bucket refills meanwhile
    error = refused.json()["error"]
    assert error["code"] == "query_rate_limited" and "per_client_per_minute" in error["message"]
    assert platform.client_limits.running(provider.client_id) == 0  # the first one released


def test_query_concurrency_limit_per_client(client: TestClient, platform: Platform) -> None:
    platform.client_limits = ClientLimits(max_concurrent=1, per_minute=100)
    provider = make_caller(platform, client)
    other = make_caller(platform, client)
    dataset = make_dataset(client, provider)
    load(client, provider, dataset["id"])
    body = {"sql": f"SELECT * FROM {dataset['sql_name']}", "format": "arrow"}
    principal = platform.oauth.authenticate(provider.token)
    query = governed(platform, principal, body["sql"], action="query.run")
    with open_stream(platform, query, principal):
        audited = len(_allowed_queries(platform, provider.client_id))
        busy = client.post("/v1/query", headers=provider.headers, json=body)
        assert busy.status_code == 429 and busy.json()["error"]["detail"]["limit"] == "concurrent"
        # allowed by policy, refused by the limit: the decision is still in the audit log
        assert len(_allowed_queries(platform, provider.client_id)) == audited + 1
        other_org = {"sql": "SELECT 1 AS x", "format": "json"}
        assert client.post("/v1/query", headers=other.headers, json=other_org).status_code == 200
    assert client.post("/v1/query", headers=provider.headers, json=body).status_code == 200


def _allowed_queries(platform: Platform, client_id: str) -> list[object]:
    events = platform.audit.recent(limit=1000, actor=client_id)
    return [e for e in events if e.action == "query.run" and e.outcome == "allowed"]


def test_worker_error_details_are_logged_without_mask_keys() -> None:
    from gateway.query_runner import redact_keys

    key = "36" * 64
    sql = f"SELECT SHA256(UNHEX('{key}') || x) FROM t"
    detail = f"Binder Error: ... SHA256(UNHEX('{key}') || x) ..."
    assert key not in redact_keys(detail, sql) and "<mask key redacted>" in redact_keys(detail, sql)
