"""How a query result leaves the gateway: small results as one body once the worker is free,
larger ones streamed after the first chunks, errors in those first chunks as error answers."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

import pytest

import gateway.routes.query as query_route
from tests.factories import ENERGY_VALID_ROWS, load, make_caller, make_dataset

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from gateway.services import Platform
    from tests.factories import Caller


def test_small_result_is_one_body_and_a_larger_one_streams(
    client: TestClient,
    platform: Platform,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider, dataset = _loaded_energy(client, platform)
    sql = f"SELECT meter_id, kwh, tariff FROM {dataset['sql_name']} ORDER BY meter_id"
    headers = {**provider.headers, "x-request-id": "small-1"}

    with caplog.at_level(logging.INFO, logger="datashare.access"):
        small = client.post("/v1/query", headers=headers, json={"sql": sql, "format": "ndjson"})
    assert small.status_code == 200, small.text
    # read to the end before answering: a content-length, no chunked transfer
    assert small.headers["content-length"] == str(len(small.content))
    assert small.headers["x-request-id"] == "small-1"
    assert small.headers["cache-control"] == "no-store"
    rows = [json.loads(line) for line in small.text.splitlines()]
    assert [(r["meter_id"], r["kwh"], r["tariff"]) for r in rows] == ENERGY_VALID_ROWS
    access = [r for r in caplog.records if r.name == "datashare.access"]
    assert (access[-1].route, access[-1].status) == ("/v1/query", 200)

    monkeypatch.setattr(query_route, "PREFETCH_BYTES", 8)  # past the first chunk: streamed
    streamed = client.post(
        "/v1/query",
        headers={**provider.headers, "x-request-id": "big-1"},
        json={"sql": sql, "format": "json"},
    )
    assert streamed.status_code == 200, streamed.text
    assert "content-length" not in streamed.headers
    assert streamed.headers["x-request-id"] == "big-1"
    doc = streamed.json()
    assert [tuple(row) for row in doc["rows"]] == ENERGY_VALID_ROWS
    assert doc["row_count"] == 3 and doc["truncated"] is False
    # either way the worker and the client's concurrency slot were given back
    assert platform.runner.busy_pids() == []
    assert platform.client_limits.running(provider.client_id) == 0


def test_engine_error_in_the_first_chunks_is_an_error_answer(
    client: TestClient, platform: Platform
) -> None:
    """DuckDB fails a cast while running the query: the answer is the sanitised error with
    its status, and the worker and the client's slot are released."""
    provider, dataset = _loaded_energy(client, platform)
    sql = f"SELECT CAST(meter_id AS INTEGER) AS n FROM {dataset['sql_name']}"
    response = client.post("/v1/query", headers=provider.headers, json={"sql": sql})
    assert response.status_code >= 400, response.text
    error = response.json()["error"]
    assert error["code"] == "query_failed"
    assert "DG-P2" not in response.text  # DuckDB's message (with the value) stays in the log
    assert platform.runner.busy_pids() == []
    assert platform.client_limits.running(provider.client_id) == 0


def test_a_query_answer_says_where_its_time_went(client: TestClient, platform: Platform) -> None:
    """``Server-Timing``: governing in the gateway, then the worker's sandbox set-up and
    statement, all inside the time from sending the job to its first result."""
    provider, dataset = _loaded_energy(client, platform)
    for fmt in ("json", "arrow", "parquet"):
        answer = client.post(
            "/v1/query",
            headers=provider.headers,
            json={"sql": f"SELECT meter_id, kwh FROM {dataset['sql_name']}", "format": fmt},
        )
        assert answer.status_code == 200, answer.text
        entries = [part.strip().split(";") for part in answer.headers["server-timing"].split(",")]
        durations = {name: float(dur.removeprefix("dur=")) for name, dur, _desc in entries}
        assert list(durations) == ["govern", "audit", "worker", "setup", "execute"], fmt
        assert all(value >= 0 for value in durations.values())
        # each figure is rounded to 0.1 ms in the header
        assert durations["worker"] + 0.15 >= durations["setup"] + durations["execute"]
    refused = client.post(
        "/v1/query", headers=provider.headers, json={"sql": "SELECT * FROM read_csv('/etc/x')"}
    )
    assert refused.status_code == 400 and "server-timing" not in refused.headers


def test_the_decision_is_audited_while_the_worker_runs_and_before_any_row_leaves(
    client: TestClient, platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The audit append of an allowed query overlaps the worker's set-up: the worker already
    has the job when it runs. If it fails, the query is stopped and no row is sent."""
    provider, dataset = _loaded_energy(client, platform)
    body = {"sql": f"SELECT meter_id FROM {dataset['sql_name']}", "format": "json"}
    append = platform.audit.append
    busy_while_auditing: list[int] = []

    def watched(**event: Any) -> str:
        if event["action"] == "query.run" and event["outcome"] == "allowed":
            busy_while_auditing.append(len(platform.runner.busy_pids()))
        return append(**event)

    monkeypatch.setattr(platform.audit, "append", watched)
    assert client.post("/v1/query", headers=provider.headers, json=body).status_code == 200
    assert busy_while_auditing == [1]  # a worker held the job while the event was written

    taken: list[int] = []

    def failing(**event: Any) -> str:
        if event["action"] == "query.run" and event["outcome"] == "allowed":
            taken.extend(platform.runner.busy_pids())
            raise RuntimeError("audit store unavailable")
        return append(**event)

    monkeypatch.setattr(platform.audit, "append", failing)
    with pytest.raises(RuntimeError, match="audit store unavailable"):  # a 500, no body sent
        client.post("/v1/query", headers=provider.headers, json=body)
    assert len(taken) == 1 and platform.runner.busy_pids() == []
    # the worker that had the job was stopped, not given back to the pool
    assert taken[0] not in platform.runner.worker_pids()


def _loaded_energy(client: TestClient, platform: Platform) -> tuple[Caller, dict[str, Any]]:
    """A provider and its energy dataset with the sample file loaded as version 1."""
    provider = make_caller(platform, client)
    dataset = make_dataset(client, provider)
    load(client, provider, dataset["id"])
    return provider, dataset
