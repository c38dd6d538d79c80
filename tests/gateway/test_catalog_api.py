"""The catalog API through the real app: metadata editing, search and discovery, versions
with quality and diffs, lineage from raw uploads to the queries that read them."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.factories import ENERGY_CSV, make_caller, make_dataset, wait_job
from tests.gateway.test_api import assert_error_envelope

# ENERGY_CSV with one more valid row and one more rejected row (a second, appended upload)
MORE_ROWS = (
    "设备编号,时间,用电量(度),时段\n"
    "DG-P3-MCC-01,2025-07-12 08:15,40.5,平\n"
    "DG-P3-MCC-02,2025-07-12 08:15,9999,平\n"  # over the contract's max: rejected
).encode()

METADATA = {
    "title": {
        "en": "Dongguan factory electricity use",
        "zh-Hans": "东莞工厂用电量",
        "zh-Hant": "東莞工廠用電量",
    },
    "description": {"en": "15-minute readings of the main switchboards."},
    "keywords": {"zh-Hans": ["电表", "能耗"], "en": ["meter"]},
    "publisher": {"en": "Dongguan Precision Parts", "zh-Hans": "东莞精密零件"},
    "tags": ["Manufacturing", "utilities"],
    "update_frequency": "daily",
    "contact": {
        "name": "Data desk",
        "email": "data-desk@example.com",
        "phone": "+86 769 1234 5678",
    },
    "columns": {"kwh": {"en": "Active energy in the interval", "zh-Hans": "区间有功电量"}},
}


@pytest.fixture
def backend() -> str:
    return "local"  # the object store plays no part here; test_api covers both backends


def upload_and_wait(client: Any, caller: Any, dataset_id: str, content: bytes, **params: str):
    response = client.post(
        f"/v1/datasets/{dataset_id}/uploads",
        headers=caller.headers,
        content=content,
        params={"filename": "meters.csv", **params},
    )
    assert response.status_code == 202, response.text
    job = wait_job(client, caller, response.json()["id"])
    assert job["status"] == "succeeded", job
    return job


def patch(client: Any, caller: Any, dataset_id: str, body: dict[str, Any]) -> Any:
    return client.patch(f"/v1/datasets/{dataset_id}/metadata", headers=caller.headers, json=body)


def test_metadata_is_edited_by_its_provider_and_validated(client, platform) -> None:
    provider = make_caller(platform, client)
    dataset = make_dataset(client, provider)
    response = patch(client, provider, dataset["id"], METADATA)
    assert response.status_code == 200, response.text
    card = response.json()
    assert card["title"]["zh-Hant"] == "東莞工廠用電量"
    assert card["tags"] == ["manufacturing", "utilities"]
    assert card["revision"] == 1
    docs = {c["name"]: c for c in card["columns"]}
    assert docs["kwh"]["doc"]["zh-Hans"] == "区间有功电量"
    assert docs["kwh"]["unit"] == "kWh" and docs["kwh"]["source"] == "用电量(度)"

    # partial edits; per-column merge; optimistic locking
    response = patch(client, provider, dataset["id"], {"tags": ["energy"], "base_revision": 1})
    assert response.json()["tags"] == ["energy"] and response.json()["title"] == card["title"]
    stale = patch(client, provider, dataset["id"], {"tags": ["x"], "base_revision": 1})
    assert "revision 2" in assert_error_envelope(stale, 409, "conflict")["message"]

    bad = [
        ({"title": {"fr": "Énergie"}}, 422),
        ({"tags": ["no|pipes"]}, 422),
        ({"update_frequency": "fortnightly"}, 422),
        ({"contact": {"email": "not-an-email"}}, 422),
        ({"contact": {"url": "http://plain.example.com"}}, 422),
        ({"columns": {"no_such_column": {"en": "x"}}}, 422),
        ({"title": {"en": "x" * 301}}, 422),
        ({"owner": "someone"}, 422),
    ]
    for body, status in bad:
        error = assert_error_envelope(patch(client, provider, dataset["id"], body), status)
        assert error["message"], body
    column_error = assert_error_envelope(
        patch(client, provider, dataset["id"], {"columns": {"no_such_column": {"en": "x"}}}), 422
    )
    assert "kwh" in column_error["message"]  # names the columns that do exist

    other = make_caller(platform, client)
    consumer = make_caller(platform, client, role="consumer")
    for caller in (other, consumer):
        assert_error_envelope(patch(client, caller, dataset["id"], {"tags": ["x"]}), 403)
    seen = client.get(f"/v1/datasets/{dataset['id']}/metadata", headers=consumer.headers)
    assert seen.json()["revision"] == 2

    # licence: the provider's; classification: the region's stewards' (it drives the rules)
    licensed = patch(client, provider, dataset["id"], {"licence": "CC-BY-4.0"})
    assert licensed.json()["licence"] == "CC-BY-4.0"
    refused = patch(client, provider, dataset["id"], {"classification": "personal"})
    assert "steward" in assert_error_envelope(refused, 403, "forbidden")["message"]
    far_steward = make_caller(platform, client, region="HK", role="steward")
    steward = make_caller(platform, client, region="DG", role="steward")
    assert_error_envelope(
        patch(client, far_steward, dataset["id"], {"classification": "personal"}), 403
    )
    assert_error_envelope(patch(client, steward, dataset["id"], {"tags": ["x"]}), 403)
    raised = patch(client, steward, dataset["id"], {"classification": "personal"})
    assert raised.status_code == 200, raised.text
    assert raised.json()["classification"] == "personal"
    assert (
        client.get(f"/v1/datasets/{dataset['id']}", headers=consumer.headers).json()[
            "classification"
        ]
        == "personal"
    )
    event = next(e for e in platform.audit.recent(limit=5) if e.action == "dataset.metadata")
    assert event.detail["classification"] == {"from": "internal", "to": "personal"}


def test_search_finds_datasets_without_a_grant_across_scripts(client, platform) -> None:
    provider = make_caller(platform, client)
    dataset = make_dataset(client, provider)
    assert patch(client, provider, dataset["id"], METADATA).status_code == 200
    consumer = make_caller(platform, client, region="HK", role="consumer")

    def search(**params: Any) -> dict[str, Any]:
        response = client.get("/v1/catalog/search", headers=consumer.headers, params=params)
        assert response.status_code == 200, response.text
        return dict(response.json())

    for query in ("用電量", "能耗", "energy", "electricity", "東莞", "有功电量"):
        hits = search(q=query)["hits"]
        assert hits and hits[0]["dataset_id"] == dataset["id"], query
    hit = search(q="用電量")["hits"][0]
    assert hit["access"] == "none"  # metadata only: the consumer holds no grant
    assert hit["matched"][0] == "title"
    assert hit["titles"]["zh-Hans"] == "东莞工厂用电量"
    page = search(q="", region="DG", tag="manufacturing")
    assert dataset["id"] in {h["dataset_id"] for h in page["hits"]}
    assert {"region", "tag", "classification", "org", "pi", "quality"} <= set(page["facets"])
    assert search(q="用電量", region="HK")["total"] == 0
    bad = client.get("/v1/catalog/search", headers=consumer.headers, params={"limit": 1000})
    assert_error_envelope(bad, 422, "invalid_request")
    unknown = client.get("/v1/catalog/search", headers=consumer.headers, params={"region": "XX"})
    assert "GZ, SZ, DG, HK, MO" in assert_error_envelope(unknown, 422, "invalid_input")["message"]
    assert search(q="", region="", quality="")["total"] >= 1  # empty filters are no filters
    assert client.get("/v1/catalog/search", params={"q": "x"}).status_code == 401


def test_unlisted_datasets_are_hidden_from_everyone_but_owner_grantees_and_stewards(
    client, platform
) -> None:
    provider = make_caller(platform, client)
    dataset = make_dataset(client, provider)
    patch(client, provider, dataset["id"], {**METADATA, "discoverable": False})
    stranger = make_caller(platform, client, region="HK", role="consumer")
    grantee = make_caller(platform, client, region="HK", role="consumer")
    steward = make_caller(platform, client, region="DG", role="steward")
    other_steward = make_caller(platform, client, region="GZ", role="steward")
    granted = client.post(
        "/v1/grants",
        headers=steward.headers,
        json={"dataset_id": dataset["id"], "org": grantee.org.id},
    )
    assert granted.status_code == 201, granted.text

    def sees(caller: Any) -> dict[str, bool]:
        listed = client.get("/v1/datasets", headers=caller.headers).json()
        found = client.get("/v1/catalog/search", headers=caller.headers, params={"q": "用电量"})
        direct = client.get(f"/v1/datasets/{dataset['id']}", headers=caller.headers)
        return {
            "list": dataset["id"] in {d["id"] for d in listed},
            "search": dataset["id"] in {h["dataset_id"] for h in found.json()["hits"]},
            "get": direct.status_code == 200,
        }

    everywhere = {"list": True, "search": True, "get": True}
    nowhere = {"list": False, "search": False, "get": False}
    assert sees(provider) == everywhere
    assert sees(grantee) == everywhere
    assert sees(steward) == everywhere
    assert sees(stranger) == nowhere
    assert sees(other_steward) == nowhere
    hidden = client.get(f"/v1/datasets/{dataset['id']}/metadata", headers=stranger.headers)
    assert_error_envelope(hidden, 404, "not_found")  # the same answer as for no dataset at all
    query = {"sql": f"SELECT count(*) FROM {dataset['sql_name']}"}
    unknown = client.post("/v1/query", headers=stranger.headers, json=query)
    assert_error_envelope(unknown, 404, "unknown_dataset")  # no existence oracle in SQL either
    listed_elsewhere = make_caller(platform, client, region="HK", role="consumer")
    patch(client, provider, dataset["id"], {"discoverable": True})
    known = client.post("/v1/query", headers=listed_elsewhere.headers, json=query)
    assert_error_envelope(known, 403, "access_denied")  # discoverable: the usual answer
    patch(client, provider, dataset["id"], {"discoverable": False})
    for path in ("contract", "contracts", "versions", "quality", "lineage"):
        url = f"/v1/datasets/{dataset['id']}/{path}"
        assert_error_envelope(client.get(url, headers=stranger.headers), 404, "not_found")
        assert client.get(url, headers=grantee.headers).status_code == 200, path


def test_versions_quality_and_diff(client, platform) -> None:
    provider = make_caller(platform, client)
    dataset = make_dataset(client, provider)
    upload_and_wait(client, provider, dataset["id"], ENERGY_CSV)
    upload_and_wait(client, provider, dataset["id"], MORE_ROWS, mode="append")
    url = f"/v1/datasets/{dataset['id']}"

    versions = client.get(f"{url}/versions", headers=provider.headers).json()
    assert [(v["version"], v["mode"], v["row_count"]) for v in versions] == [
        (1, "replace", 3),
        (2, "append", 4),
    ]
    first = versions[0]["quality"]
    assert (first["score"], first["bucket"], first["rows_rejected"]) == (60.0, "low", 2)
    failed = {(f["expectation"], f["column"]) for f in first["failed_expectations"]}
    assert ("expect_column_values_to_be_between", "kwh") in failed
    assert all("partial_unexpected_list" not in f for f in first["failed_expectations"])
    assert versions[1]["source_name"] == "meters.csv" and versions[1]["parent_version"] == 1

    trend = client.get(f"{url}/quality", headers=provider.headers).json()
    assert [p["score"] for p in trend["points"]] == [60.0, 50.0]
    assert trend["direction"] == "declining" and trend["current"]["score"] == 50.0

    diff = client.get(f"{url}/versions/diff", headers=provider.headers, params={"from": 1})
    assert diff.status_code == 200, diff.text
    body = diff.json()
    assert (body["from_version"], body["to_version"]) == (1, 2)
    assert body["row_count"] == {"from": 3, "to": 4, "delta": 1.0}
    assert body["schema"] == {"added": [], "removed": [], "changed": []}
    assert body["columns"]["kwh"]["max"] == {"from": 12.5, "to": 40.5, "delta": 28.0}
    missing = client.get(f"{url}/versions/diff", headers=provider.headers, params={"from": 9})
    assert_error_envelope(missing, 404, "not_found")

    # a consumer without a grant sees counts, never values (min/max would leak cells)
    consumer = make_caller(platform, client, role="consumer")
    seen = client.get(f"{url}/versions/2", headers=consumer.headers).json()
    assert seen["stats"]["kwh"]["values_hidden"] is True
    assert "max" not in seen["stats"]["kwh"] and seen["stats"]["kwh"]["count"] == 4
    consumer_diff = client.get(
        f"{url}/versions/diff", headers=consumer.headers, params={"from": 1, "to": 2}
    ).json()
    assert "max" not in consumer_diff["columns"]["kwh"]
    assert consumer_diff["columns"]["kwh"]["count"] == {"from": 3, "to": 4, "delta": 1.0}


def test_lineage_reaches_raw_uploads_from_a_dataset_and_from_a_query(client, platform) -> None:
    provider = make_caller(platform, client)
    dataset = make_dataset(client, provider)
    first = upload_and_wait(client, provider, dataset["id"], ENERGY_CSV)
    second = upload_and_wait(client, provider, dataset["id"], MORE_ROWS, mode="append")
    jobs = {j["id"]: platform.jobs.get(j["id"]) for j in (first, second)}
    uploads = {f"upload:{j.source_bucket}/{j.source_key}" for j in jobs.values()}

    consumer = make_caller(platform, client, region="HK", role="consumer")
    steward = make_caller(platform, client, region="DG", role="steward")
    client.post(
        "/v1/grants",
        headers=steward.headers,
        json={"dataset_id": dataset["id"], "org": consumer.org.id},
    )
    ran = client.post(
        "/v1/query",
        headers=consumer.headers,
        json={"sql": f"SELECT count(*) AS n FROM {dataset['sql_name']}"},
    )
    assert ran.status_code == 200, ran.text
    audit = [e for e in platform.audit.recent(limit=20) if e.action == "query.run"]
    seq = audit[0].seq

    graph = client.get(f"/v1/catalog/lineage/queries/{seq}", headers=consumer.headers).json()
    assert upstream_uploads(graph, graph["root"]) == uploads  # v2 appended to v1: both files
    kinds = {n["kind"] for n in graph["nodes"]}
    assert kinds == {"query", "version", "job", "upload_object"}

    owner_view = client.get(
        f"/v1/datasets/{dataset['id']}/lineage", headers=provider.headers
    ).json()
    assert f"query:{seq}" in {n["id"] for n in owner_view["nodes"]}  # who reads my data
    assert upstream_uploads(owner_view, f"query:{seq}") == uploads
    stranger = make_caller(platform, client, region="HK", role="consumer")
    stranger_view = client.get(
        f"/v1/datasets/{dataset['id']}/lineage", headers=stranger.headers
    ).json()
    assert f"query:{seq}" not in {n["id"] for n in stranger_view["nodes"]}
    hidden = client.get(f"/v1/catalog/lineage/queries/{seq}", headers=stranger.headers)
    assert_error_envelope(hidden, 404, "not_found")
    no_export = client.get("/v1/catalog/lineage/exports/nope", headers=consumer.headers)
    assert_error_envelope(no_export, 404, "not_found")

    # an export's lineage reaches the raw upload objects of the versions it read
    started = client.post(
        "/v1/exports",
        headers=consumer.headers,
        json={"sql": f"SELECT meter_id, kwh FROM {dataset['sql_name']}"},
    )
    assert started.status_code == 202, started.text
    export = wait_export(client, consumer, started.json()["id"])
    assert export["status"] == "succeeded", export
    url = f"/v1/catalog/lineage/exports/{export['id']}"
    graph = client.get(url, headers=consumer.headers).json()
    assert graph["root"] == f"export:{export['id']}"
    assert upstream_uploads(graph, graph["root"]) == uploads
    written = {n["key"] for n in graph["nodes"] if n["kind"] == "export_object"}
    assert written == {f["key"] for f in export["files"]}
    owner_view = client.get(f"/v1/datasets/{dataset['id']}/lineage", headers=provider.headers)
    assert graph["root"] in {n["id"] for n in owner_view.json()["nodes"]}
    assert_error_envelope(client.get(url, headers=stranger.headers), 404, "not_found")


def wait_export(client: Any, caller: Any, export_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        export = client.get(f"/v1/exports/{export_id}", headers=caller.headers).json()
        if export["status"] != "running" or time.monotonic() > deadline:
            return dict(export)
        time.sleep(0.1)


def upstream_uploads(graph: dict[str, Any], start: str) -> set[str]:
    """Walk edges backwards from ``start``; the upload objects reached."""
    parents: dict[str, set[str]] = {}
    for edge in graph["edges"]:
        parents.setdefault(edge["to"], set()).add(edge["from"])
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        for parent in parents.get(node, ()):
            if parent not in seen:
                seen.add(parent)
                todo.append(parent)
    return {n for n in seen if n.startswith("upload:")}


def test_glossary_is_edited_by_stewards_only(client, platform) -> None:
    consumer = make_caller(platform, client, role="consumer")
    steward = make_caller(platform, client, role="steward")
    listed = client.get("/v1/catalog/glossary", headers=consumer.headers).json()
    energy = next(c for c in listed if c["concept"] == "energy")
    assert {"能耗", "energy", "用电量"} <= {t["term"] for t in energy["terms"]}
    body = {"terms": [{"term": "冷链", "lang": "zh-Hans"}, {"term": "reefer", "lang": "en"}]}
    refused = client.put("/v1/catalog/glossary/reefer", headers=consumer.headers, json=body)
    assert_error_envelope(refused, 403, "insufficient_scope")
    saved = client.put("/v1/catalog/glossary/reefer", headers=steward.headers, json=body)
    assert saved.status_code == 200, saved.text
    bad = client.put("/v1/catalog/glossary/Bad-Name", headers=steward.headers, json=body)
    assert_error_envelope(bad, 422, "invalid_input")
    one = client.put(
        "/v1/catalog/glossary/reefer", headers=steward.headers, json={"terms": body["terms"][:1]}
    )
    assert_error_envelope(one, 422, "invalid_request")
    assert client.delete("/v1/catalog/glossary/reefer", headers=steward.headers).status_code == 204
    gone = client.delete("/v1/catalog/glossary/reefer", headers=steward.headers)
    assert_error_envelope(gone, 404, "not_found")
