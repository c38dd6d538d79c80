"""The contract API through the real app: read, version history, edit, PI confirmation."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from tests.factories import ENERGY_CONTRACT, load, make_caller, make_dataset

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from gateway.services import Platform

ENERGY_NAMES = [c["name"] for c in ENERGY_CONTRACT["columns"]]


def assert_error_envelope(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """The one error shape (as in test_api.py, typed here so mypy --strict passes)."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "detail"}
    assert body["error"]["message"]
    assert "Traceback" not in response.text
    if code is not None:
        assert body["error"]["code"] == code
    return dict(body["error"])


def edited_contract() -> dict[str, Any]:
    contract = copy.deepcopy(ENERGY_CONTRACT)
    contract["columns"][2]["max"] = 6000
    contract["columns"].append({"name": "site_contact", "source": "联系人", "pi": "pi_direct_id"})
    return contract


def put_contract(client: Any, caller: Any, dataset_id: str, contract: Any, **extra: Any) -> Any:
    return client.put(
        f"/v1/datasets/{dataset_id}/contract",
        headers=caller.headers,
        json={"contract": contract, **extra},
    )


def confirm_pi(client: Any, caller: Any, dataset_id: str, columns: Any, **extra: Any) -> Any:
    return client.post(
        f"/v1/datasets/{dataset_id}/contract/pi",
        headers=caller.headers,
        json={"columns": columns, **extra},
    )


def contract_events(platform: Any, dataset_id: str) -> list[Any]:
    return [
        e
        for e in platform.audit.recent(limit=1000)
        if e.action == "contract.updated" and e.resource == f"dataset:{dataset_id}"
    ]


def test_contract_read_by_any_caller_shows_the_current_version(
    client: TestClient, platform: Platform
) -> None:
    provider = make_caller(platform, client)
    dataset = make_dataset(client, provider)
    consumer = make_caller(platform, client, region="HK", role="consumer")
    response = client.get(f"/v1/datasets/{dataset['id']}/contract", headers=consumer.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["dataset_id"], body["version"], body["current"]) == (dataset["id"], 1, True)
    assert body["contract"] == dataset["contract"]
    assert body["note"] == "created with the dataset"
    assert body["unclassified"] == ENERGY_NAMES


def test_contract_put_stores_a_new_version_and_keeps_the_history(
    client: TestClient, platform: Platform
) -> None:
    provider = make_caller(platform, client)
    dataset = make_dataset(client, provider)
    response = put_contract(client, provider, dataset["id"], edited_contract(), note="add contact")
    assert response.status_code == 201, response.text
    stored = response.json()
    assert (stored["version"], stored["current"], stored["note"]) == (2, True, "add contact")
    assert stored["created_by"] == provider.client_id
    assert stored["contract"]["columns"][-1]["name"] == "site_contact"
    assert "site_contact" not in stored["unclassified"]

    base = f"/v1/datasets/{dataset['id']}"
    current = client.get(f"{base}/contract", headers=provider.headers).json()
    assert (current["version"], current["contract"]) == (2, stored["contract"])
    history = client.get(f"{base}/contracts", headers=provider.headers).json()
    assert [(h["version"], h["current"], h["note"]) for h in history] == [
        (1, False, "created with the dataset"),
        (2, True, "add contact"),
    ]
    first = client.get(f"{base}/contracts/1", headers=provider.headers).json()
    assert (first["version"], first["current"], first["contract"]) == (
        1,
        False,
        dataset["contract"],
    )
    assert client.get(base, headers=provider.headers).json()["contract"] == stored["contract"]
    assert_error_envelope(client.get(f"{base}/contracts/3", headers=provider.headers), 404)


def test_contract_put_is_audited_with_both_version_numbers(
    client: TestClient, platform: Platform
) -> None:
    provider = make_caller(platform, client)
    dataset = make_dataset(client, provider)
    put_contract(client, provider, dataset["id"], edited_contract(), note="add contact")
    [event] = contract_events(platform, dataset["id"])
    assert event.actor == provider.client_id
    assert event.outcome == "updated"
    assert event.detail["old_version"] == 1
    assert event.detail["new_version"] == 2
    assert event.detail["change"] == "replace"
    assert event.detail["columns_added"] == ["site_contact"]
    assert event.detail["columns_removed"] == []
    assert event.detail["pi_changes"] == {"site_contact": {"from": None, "to": "pi_direct_id"}}


def test_contract_edit_is_refused_to_other_organisations_and_roles(
    client: TestClient, platform: Platform
) -> None:
    provider = make_caller(platform, client)
    dataset = make_dataset(client, provider)
    other = make_caller(platform, client, region="GZ")
    error = assert_error_envelope(
        put_contract(client, other, dataset["id"], edited_contract()), 403, "forbidden"
    )
    assert "own organisation" in error["message"]
    # a stranger's invalid body is refused for who they are, not for what they sent
    assert_error_envelope(put_contract(client, other, dataset["id"], {"columns": []}), 403)
    assert_error_envelope(confirm_pi(client, other, dataset["id"], {"kwh": "non_pi"}), 403)
    consumer = make_caller(platform, client, role="consumer", org=provider.org)
    # a consumer's token does not carry the scope contract edits need
    error = assert_error_envelope(
        put_contract(client, consumer, dataset["id"], edited_contract()), 403, "insufficient_scope"
    )
    assert "datasets:write" in error["message"]
    assert_error_envelope(confirm_pi(client, consumer, dataset["id"], {"kwh": "non_pi"}), 403)
    current = client.get(f"/v1/datasets/{dataset['id']}/contract", headers=provider.headers)
    assert current.json()["version"] == 1
    assert contract_events(platform, dataset["id"]) == []


def test_contract_put_invalid_contract_is_a_422_naming_the_field(
    client: TestClient, platform: Platform
) -> None:
    provider = make_caller(platform, client)
    dataset = make_dataset(client, provider)
    bad_name = copy.deepcopy(ENERGY_CONTRACT)
    bad_name["columns"][0]["name"] = "Meter ID"
    error = assert_error_envelope(
        put_contract(client, provider, dataset["id"], bad_name), 422, "invalid_request"
    )
    [problem] = error["detail"]["errors"]
    assert problem["location"] == "body.contract.columns.0.name"
    assert "Meter ID" in problem["message"]

    duplicate = copy.deepcopy(ENERGY_CONTRACT)
    duplicate["columns"].append(dict(duplicate["columns"][0], source="编号2"))
    error = assert_error_envelope(put_contract(client, provider, dataset["id"], duplicate), 422)
    assert error["detail"]["errors"][0]["location"] == "body.contract"
    assert "duplicate column names: meter_id" in error["detail"]["errors"][0]["message"]

    bad_class = copy.deepcopy(ENERGY_CONTRACT)
    bad_class["columns"][1]["pi"] = "secret"
    error = assert_error_envelope(put_contract(client, provider, dataset["id"], bad_class), 422)
    assert error["detail"]["errors"][0]["location"] == "body.contract.columns.1.pi"

    unknown_field = put_contract(client, provider, dataset["id"], ENERGY_CONTRACT, colour="red")
    error = assert_error_envelope(unknown_field, 422)
    assert error["detail"]["errors"][0]["location"] == "body.colour"
    current = client.get(f"/v1/datasets/{dataset['id']}/contract", headers=provider.headers)
    assert current.json()["version"] == 1


def test_contract_edit_keeps_committed_versions_unchanged(
    client: TestClient, platform: Platform
) -> None:
    provider = make_caller(platform, client)
    dataset = make_dataset(client, provider)
    load(client, provider, dataset["id"])
    versions_url = f"/v1/datasets/{dataset['id']}/versions"
    before = client.get(versions_url, headers=provider.headers).json()

    assert put_contract(client, provider, dataset["id"], edited_contract()).status_code == 201
    assert confirm_pi(client, provider, dataset["id"], {"kwh": "non_pi"}).status_code == 201

    assert client.get(versions_url, headers=provider.headers).json() == before
    [version] = platform.registry.versions(dataset["id"])
    assert version.contract_version == 1
    assert platform.registry.get_dataset(dataset["id"]).current_version == 1
    rows = client.post(
        "/v1/query",
        headers=provider.headers,
        json={"sql": f"SELECT count(*) AS n FROM {dataset['sql_name']}"},
    ).json()["rows"]
    assert rows == [[3]]


def test_pi_confirmation_sets_the_named_classes_as_a_new_version(
    client: TestClient, platform: Platform
) -> None:
    provider = make_caller(platform, client)
    dataset = make_dataset(client, provider)
    response = confirm_pi(
        client,
        provider,
        dataset["id"],
        {"meter_id": "non_pi", "tariff": "non_pi"},
        note="confirmed the scan's suggestions",
    )
    assert response.status_code == 201, response.text
    stored = response.json()
    assert (stored["version"], stored["note"]) == (2, "confirmed the scan's suggestions")
    pi = {c["name"]: c.get("pi") for c in stored["contract"]["columns"]}
    assert pi == {"meter_id": "non_pi", "ts": None, "kwh": None, "tariff": "non_pi"}
    assert stored["unclassified"] == ["ts", "kwh"]
    # every other rule of the contract is kept as it was
    for old, new in zip(dataset["contract"]["columns"], stored["contract"]["columns"], strict=True):
        assert {k: v for k, v in new.items() if k != "pi"} == old

    corrected = confirm_pi(client, provider, dataset["id"], {"meter_id": "pi_quasi_id"})
    assert corrected.json()["version"] == 3
    events = contract_events(platform, dataset["id"])
    assert [(e.detail["old_version"], e.detail["new_version"]) for e in events] == [(2, 3), (1, 2)]
    assert events[0].detail["change"] == "pi"
    assert events[0].detail["pi_changes"] == {"meter_id": {"from": "non_pi", "to": "pi_quasi_id"}}


def test_pi_confirmation_validates_column_names_and_classes(
    client: TestClient, platform: Platform
) -> None:
    provider = make_caller(platform, client)
    dataset = make_dataset(client, provider)
    error = assert_error_envelope(
        confirm_pi(client, provider, dataset["id"], {"kwh": "non_pi", "nope": "spi"}),
        422,
        "invalid_input",
    )
    assert error["detail"]["field"] == "columns.nope"
    assert "meter_id" in error["message"]  # names the columns that exist

    error = assert_error_envelope(
        confirm_pi(client, provider, dataset["id"], {"kwh": "secret"}), 422, "invalid_request"
    )
    assert error["detail"]["errors"][0]["location"] == "body.columns.kwh"
    assert_error_envelope(confirm_pi(client, provider, dataset["id"], {}), 422, "invalid_request")
    assert_error_envelope(
        confirm_pi(client, provider, dataset["id"], {"kwh": None}), 422, "invalid_request"
    )
    current = client.get(f"/v1/datasets/{dataset['id']}/contract", headers=provider.headers)
    assert current.json()["version"] == 1


def test_contract_edit_from_a_stale_base_version_is_a_conflict(
    client: TestClient, platform: Platform
) -> None:
    provider = make_caller(platform, client)
    dataset = make_dataset(client, provider)
    first = put_contract(client, provider, dataset["id"], edited_contract(), base_version=1)
    assert first.status_code == 201, first.text
    error = assert_error_envelope(
        put_contract(client, provider, dataset["id"], ENERGY_CONTRACT, base_version=1),
        409,
        "conflict",
    )
    assert error["detail"]["current_version"] == 2
    assert_error_envelope(
        confirm_pi(client, provider, dataset["id"], {"kwh": "non_pi"}, base_version=1), 409
    )
    ok = confirm_pi(client, provider, dataset["id"], {"kwh": "non_pi"}, base_version=2)
    assert ok.json()["version"] == 3


def test_contract_routes_need_a_token_and_a_known_dataset(
    client: TestClient, platform: Platform
) -> None:
    provider = make_caller(platform, client)
    for method, path in [
        ("GET", "/v1/datasets/x/contract"),
        ("GET", "/v1/datasets/x/contracts"),
        ("GET", "/v1/datasets/x/contracts/1"),
        ("PUT", "/v1/datasets/x/contract"),
        ("POST", "/v1/datasets/x/contract/pi"),
    ]:
        assert_error_envelope(client.request(method, path), 401, "authentication_required")
    for path in ("contract", "contracts", "contracts/1"):
        response = client.get(f"/v1/datasets/missing/{path}", headers=provider.headers)
        assert_error_envelope(response, 404, "not_found")
    missing = put_contract(client, provider, "missing", ENERGY_CONTRACT)
    assert_error_envelope(missing, 404, "not_found")
    dataset = make_dataset(client, provider)
    response = client.get(f"/v1/datasets/{dataset['id']}/contracts/0", headers=provider.headers)
    assert_error_envelope(response, 422, "invalid_request")


def test_contract_routes_are_in_the_openapi_document(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths["/v1/datasets/{dataset_id}/contract"]) == {"get", "put"}
    assert "get" in paths["/v1/datasets/{dataset_id}/contracts"]
    assert "get" in paths["/v1/datasets/{dataset_id}/contracts/{version}"]
    assert "post" in paths["/v1/datasets/{dataset_id}/contract/pi"]
