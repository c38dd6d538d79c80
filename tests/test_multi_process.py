"""Several gateway processes share one PostgreSQL catalog and one S3 store.

Two independently built platforms (as two processes would build them) with the
same configuration: a token issued by one is accepted by the other, an upload
received by one is visible and queryable through the other.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from gateway.settings import GatewaySettings, OAuthSettings
from tests.conftest import fresh_postgres_url, make_settings
from tests.factories import ENERGY_CSV, ENERGY_VALID_ROWS, make_caller, make_dataset, wait_job

pytestmark = pytest.mark.integration


@pytest.fixture
def two_gateways(
    tmp_path: Path, seaweed, postgres_server
) -> Iterator[tuple[TestClient, TestClient, object]]:
    from gateway.app import create_app
    from gateway.services import build_platform

    shared = {
        "catalog_url": fresh_postgres_url(postgres_server),
        "oauth": OAuthSettings(key_secret=SecretStr("multi-node-test-key-secret-0123456789")),
        "gateway": GatewaySettings(url_signing_secret=SecretStr("multi-node-url-signing-secret")),
    }
    platforms = [
        build_platform(make_settings(tmp_path / name, backend="s3", seaweed=seaweed, **shared))
        for name in ("node-a", "node-b")
    ]
    clients = [TestClient(create_app(p.settings, p)) for p in platforms]
    for client in clients:
        client.__enter__()
    yield clients[0], clients[1], platforms[0]
    for client in clients:
        client.__exit__(None, None, None)
    for platform in platforms:
        platform.close()


def test_nodes_share_tokens_versions_and_queries(two_gateways) -> None:
    node_a, node_b, platform_a = two_gateways
    provider = make_caller(platform_a, node_a)  # token issued by node A
    assert node_b.get("/v1/me", headers=provider.headers).status_code == 200
    dataset = make_dataset(node_b, provider)  # created through node B
    job = node_a.post(
        f"/v1/datasets/{dataset['id']}/uploads", headers=provider.headers, content=ENERGY_CSV
    )
    assert job.status_code == 202, job.text
    finished = wait_job(node_b, provider, job.json()["id"])  # watched through node B
    assert (finished["status"], finished["rows_valid"]) == ("succeeded", 3)
    sql = f"SELECT meter_id, kwh, tariff FROM {dataset['sql_name']} ORDER BY meter_id"
    rows = node_b.post("/v1/query", headers=provider.headers, json={"sql": sql}).json()["rows"]
    assert [tuple(r) for r in rows] == ENERGY_VALID_ROWS
    audit_b = node_b.get(
        "/v1/audit", headers=make_caller(platform_a, node_a, role="steward").headers
    ).json()
    assert audit_b["chain_intact"] is True
    assert {"ingest.commit", "query.run"} <= {e["action"] for e in audit_b["events"]}
