"""The rewrite's obligations through the real gateway: masks, row filter, aggregate-only, keys.

A Dongguan provider uploads meter readings through the API; a Hong Kong consumer holds
a grant (created directly, as a steward's decision would record it) whose obligations
mask ``meter_id`` with the consumer organisation's HMAC key and filter out the ``谷``
tariff. The consumer's queries over HTTP (real OAuth token, real worker process) see
tokens equal to ``hmac_token(derive_mask_key(<platform mask secret>, <consumer org id>))``,
cannot use the clear value as an oracle, and EXPLAIN shows no key material.

Storage plays no part in the rewrite, so these run on the local backend only (the
storage backends are covered by the gateway's own query tests).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gateway.services import Platform
from policies.masking import derive_mask_key, hmac_token
from tests.factories import ENERGY_CONTRACT, load, make_caller, make_dataset


def _published(client: TestClient, platform: Platform) -> tuple[dict[str, Any], Any]:
    provider = make_caller(platform, client, region="DG")
    contract = copy.deepcopy(ENERGY_CONTRACT)
    for column in contract["columns"]:
        column["pi"] = "non_pi"
    dataset = make_dataset(client, provider, contract=contract)
    load(client, provider, dataset["id"])
    return dataset, provider


@pytest.mark.parametrize("backend", ["local"])
def test_gateway_query_applies_grant_masks_row_filter_and_consumer_key(
    client: TestClient, platform: Platform
) -> None:
    dataset, _provider = _published(client, platform)
    consumer = make_caller(platform, client, region="HK", role="consumer")
    platform.grants.create(
        dataset_id=dataset["id"],
        org_id=consumer.org.id,
        columns=None,
        purpose="analytics",
        created_by="steward-test",
        masks=[{"column": "meter_id", "kind": "hmac"}],
        row_filter="tariff <> '谷'",
    )
    key = derive_mask_key(platform.settings.mask_secret(), consumer.org.id)

    def query(sql: str) -> list[list[Any]]:
        response = client.post("/v1/query", headers=consumer.headers, json={"sql": sql})
        assert response.status_code == 200, response.text
        return [list(row) for row in response.json()["rows"]]

    name = dataset["sql_name"]
    rows = query(f"SELECT meter_id, kwh, tariff FROM {name} ORDER BY kwh DESC")
    assert rows == [
        [hmac_token(key, "DG-P2-MCC-07"), 12.5, "峰"],
        [hmac_token(key, "DG-P2-MCC-09"), 0.0, "尖峰"],
    ]  # DG-P2-MCC-08 (谷) is outside the row filter
    assert query(f"SELECT kwh FROM {name} WHERE meter_id = 'DG-P2-MCC-07'") == []
    assert query(f"SELECT count(*) FROM {name} WHERE tariff = '谷' OR 1 = 1") == [[2]]

    explain = client.post(
        "/v1/query/explain", headers=consumer.headers, json={"sql": f"FROM {name}"}
    )
    assert explain.status_code == 200, explain.text
    text = explain.text
    padded = key.secret.ljust(64, b"\0")
    assert bytes(b ^ 0x36 for b in padded).hex() not in text
    assert bytes(b ^ 0x5C for b in padded).hex() not in text
    assert "mask key redacted" in text


@pytest.mark.parametrize("backend", ["local"])
def test_gateway_aggregate_only_grant_refuses_raw_rows_and_suppresses_small_groups(
    client: TestClient, platform: Platform
) -> None:
    dataset, _provider = _published(client, platform)
    consumer = make_caller(platform, client, region="HK", role="consumer")
    platform.grants.create(
        dataset_id=dataset["id"],
        org_id=consumer.org.id,
        columns=None,
        purpose="analytics",
        created_by="steward-test",
        aggregate_only=True,
        min_group_size=2,
        subject_column="meter_id",
    )
    name = dataset["sql_name"]
    refused = client.post(
        "/v1/query", headers=consumer.headers, json={"sql": f"SELECT meter_id FROM {name}"}
    )
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["code"] == "query_refused" and "aggregate-only" in error["message"]
    response = client.post(
        "/v1/query",
        headers=consumer.headers,
        json={"sql": f"SELECT tariff, count(*) AS n FROM {name} GROUP BY tariff"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["rows"] == []  # every tariff group holds one meter: suppressed
    total = client.post(
        "/v1/query", headers=consumer.headers, json={"sql": f"SELECT count(*) AS n FROM {name}"}
    )
    assert total.json()["rows"] == [[3]]  # three distinct meters >= 2
