"""The access workflow through the real app: request → steward decision → grant → query,
expiry on an injected clock, revocation, region-scoped stewardship, provider usage."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, text

from catalog.models import utcnow
from policies.errors import AccessDenied, UnknownDataset
from policies.evaluate import QueryDecisions, QueryPolicy
from tests.factories import make_caller, make_dataset, suffix
from tests.gateway.access_helpers import (
    PERSONAL_CONTRACT,
    audit_actions,
    personal_dataset,
    query,
    request_access,
)
from tests.gateway.test_api import assert_error_envelope


@pytest.fixture
def backend() -> str:
    return "local"  # the workflow does not touch object storage beyond loading one file


@pytest.fixture
def world(client, platform) -> dict[str, Any]:
    provider = make_caller(platform, client, region="DG", role="provider")
    return {
        "provider": provider,
        "consumer": make_caller(platform, client, region="HK", role="consumer"),
        "steward": make_caller(platform, client, region="DG", role="steward"),
        "other_steward": make_caller(platform, client, region="SZ", role="steward"),
        "dataset": personal_dataset(client, provider),
    }


def test_request_narrow_approve_query_expire_revoke(client, platform, world) -> None:
    consumer, steward, dataset = world["consumer"], world["steward"], world["dataset"]
    created = request_access(
        client,
        consumer,
        dataset["id"],
        columns=["meter_id", "operator_id", "kwh"],
        justification="train a load forecaster",
        accept_no_onward_transfer=True,
    )
    assert created.status_code == 201, created.text
    request = created.json()
    assert request["status"] == "pending"
    # the consumer sees what the rules will deliver before a steward looks at it
    preview = {c["column"]: c["outcome"] for c in request["preview"]["columns"]}
    assert preview == {"meter_id": "clear", "operator_id": "mask", "kwh": "clear"}
    assert request["preview"]["rule_set"] == "gba-cross-boundary@2"

    queue = client.get("/v1/access-requests?status=pending", headers=steward.headers).json()
    assert request["id"] in [r["id"] for r in queue]

    approved = client.post(
        f"/v1/access-requests/{request['id']}/approve",
        headers=steward.headers,
        json={
            "columns": ["meter_id", "operator_id"],
            "row_filter": "meter_id <> 'M3'",
            "duration_days": 10,
            "note": "kwh is not needed for the stated purpose",
        },
    )
    assert approved.status_code == 200, approved.text
    grant = approved.json()["grant"]
    assert approved.json()["request"]["status"] == "approved"
    assert grant["columns"] == ["meter_id", "operator_id"]
    assert grant["row_filter"] == "\"meter_id\" <> 'M3'"
    assert grant["no_onward_transfer"] is True

    # the query sees only the approved shape: the granted columns, the steward's row filter,
    # the PI column as the consumer's keyed token (no instrument covers it for HK)
    result = query(client, consumer, f"SELECT * FROM {dataset['sql_name']} ORDER BY meter_id")
    assert result.status_code == 200, result.text
    assert [c["name"] for c in result.json()["columns"]] == ["meter_id", "operator_id"]
    rows = result.json()["rows"]
    assert [r[0] for r in rows] == ["M1", "M2", "M4"]
    tokens = [r[1] for r in rows]
    assert not set(tokens) & {"E001", "E002", "E003"}
    assert tokens[0] == tokens[2]  # E001 twice: the same token, joinable within this consumer
    refused = query(client, consumer, f"SELECT kwh FROM {dataset['sql_name']}")
    assert 400 <= refused.status_code < 500
    source = _resolve(platform, consumer, dataset)
    assert source.row_filter == "\"meter_id\" <> 'M3'"
    assert [(m.column, m.kind) for m in source.masks] == [("operator_id", "hmac")]
    assert source.grant_id == grant["id"] and source.rule_set == "gba-cross-boundary@2"

    # expiry passes on the policy clock: the next query is refused
    real_clock = platform.query_policy.clock
    platform.query_policy.clock = lambda: utcnow() + timedelta(days=11)
    try:
        expired = query(client, consumer, f"SELECT meter_id FROM {dataset['sql_name']}")
        assert_error_envelope(expired, 403, "access_denied")
    finally:
        platform.query_policy.clock = real_clock
    assert query(client, consumer, f"SELECT meter_id FROM {dataset['sql_name']}").status_code == 200

    # revocation stops the next query at once, also one whose rewrite the gateway remembers
    hits = platform.govern_cache.hits
    assert query(client, consumer, f"SELECT meter_id FROM {dataset['sql_name']}").status_code == 200
    assert platform.govern_cache.hits == hits + 1
    revoked = client.delete(f"/v1/grants/{grant['id']}", headers=steward.headers)
    assert revoked.status_code == 200, revoked.text
    after = query(client, consumer, f"SELECT meter_id FROM {dataset['sql_name']}")
    assert_error_envelope(after, 403, "access_denied")

    actions = audit_actions(client, steward)
    for expected in (
        "access_request.created:pending",
        "access_request.approved:granted",
        "query.run:allowed",
        "query.run:refused",
        "grant.revoke:revoked",
    ):
        assert expected in actions, (expected, actions)


def _resolve(platform, caller, dataset):
    principal = _principal(caller)
    org, name = dataset["sql_name"].split(".")
    return platform.query_policy.resolver(principal, QueryDecisions())(org, name)


def _steward_of_another_region_neither_sees_nor_decides(client, world) -> None:
    consumer, other = world["consumer"], world["other_steward"]
    request = request_access(client, consumer, world["dataset"]["id"]).json()
    assert request["id"] not in [
        r["id"] for r in client.get("/v1/access-requests", headers=other.headers).json()
    ]
    assert_error_envelope(
        client.get(f"/v1/access-requests/{request['id']}", headers=other.headers), 404
    )
    assert_error_envelope(
        client.post(f"/v1/access-requests/{request['id']}/approve", headers=other.headers, json={}),
        404,
    )
    assert_error_envelope(
        client.post(
            f"/v1/access-requests/{request['id']}/deny",
            headers=other.headers,
            json={"reason": "not mine"},
        ),
        404,
    )


def _consumer_cannot_approve_its_own_request(client, platform, world) -> None:
    consumer = world["consumer"]
    request = request_access(client, consumer, world["dataset"]["id"]).json()
    assert_error_envelope(
        client.post(
            f"/v1/access-requests/{request['id']}/approve", headers=consumer.headers, json={}
        ),
        403,
        "insufficient_scope",  # a consumer's token never carries access:approve
    )
    # nor can a steward client of the requesting organisation, even in the right region
    dg_consumer = make_caller(platform, client, region="DG", role="consumer")
    own = request_access(client, dg_consumer, world["dataset"]["id"]).json()
    same_org_steward = make_caller(platform, client, role="steward", org=dg_consumer.org)
    assert_error_envelope(
        client.post(
            f"/v1/access-requests/{own['id']}/approve", headers=same_org_steward.headers, json={}
        ),
        403,
        "access_denied",
    )
    assert client.get(f"/v1/access-requests/{request['id']}", headers=consumer.headers).json()[
        "status"
    ] == ("pending")


def _deny_needs_a_reason_and_the_consumer_reads_it(client, world) -> None:
    consumer, steward = world["consumer"], world["steward"]
    request = request_access(client, consumer, world["dataset"]["id"]).json()
    assert_error_envelope(
        client.post(f"/v1/access-requests/{request['id']}/deny", headers=steward.headers, json={}),
        422,
    )
    denied = client.post(
        f"/v1/access-requests/{request['id']}/deny",
        headers=steward.headers,
        json={"reason": "biometric templates are not shared for training"},
    )
    assert denied.status_code == 200, denied.text
    seen = client.get(f"/v1/access-requests/{request['id']}", headers=consumer.headers).json()
    assert (seen["status"], seen["reason"]) == (
        "denied",
        "biometric templates are not shared for training",
    )
    again = client.post(
        f"/v1/access-requests/{request['id']}/approve", headers=steward.headers, json={}
    )
    assert_error_envelope(again, 409, "conflict")


NARROWING_REFUSED: list[tuple[dict[str, Any], str]] = [
    ({"columns": ["meter_id", "face_template"]}, "columns"),  # wider than asked
    ({"row_filter": "meter_id IN (SELECT 1)"}, "row_filter"),
    ({"row_filter": "read_csv('/etc/passwd') IS NULL"}, "row_filter"),
    ({"row_filter": "kwh > 1; DROP TABLE x"}, "row_filter"),
    ({"row_filter": "other_table.kwh > 1"}, "row_filter"),
    ({"row_filter": "salary > 1"}, "row_filter"),
    ({"masks": [{"column": "kwh", "kind": "partial"}]}, "masks"),
    ({"masks": [{"column": "meter_id", "kind": "generalise", "bucket": 10}]}, "masks"),
    ({"aggregate_only": True, "min_group_size": 5}, "subject_column"),
    ({"version": 9}, "version"),
    ({"duration_days": 60}, "duration_days"),
]


def _approval_may_only_narrow_and_is_checked_when_written(client, world) -> None:
    request = request_access(
        client, world["consumer"], world["dataset"]["id"], columns=["meter_id", "kwh"]
    ).json()
    for approval, field in NARROWING_REFUSED:
        response = client.post(
            f"/v1/access-requests/{request['id']}/approve",
            headers=world["steward"].headers,
            json=approval,
        )
        error = assert_error_envelope(response, 422)
        if error["code"] == "invalid_input":
            assert error["detail"]["field"] == field, (approval, error)
        else:  # refused by the request schema before the policy saw it
            assert error["code"] == "invalid_request", (approval, error)
    still = client.get(f"/v1/access-requests/{request['id']}", headers=world["consumer"].headers)
    assert still.json()["status"] == "pending"


def _transfer_instrument_changes_the_preview_and_the_decision(client, world) -> None:
    provider, consumer, dataset = world["provider"], world["consumer"], world["dataset"]
    instrument = {
        "type": "GBA_SC_HK",
        "reference": "粤网信备〔2026〕0042号",
        "authority": "Guangdong Provincial CAC",
        "effective_from": "2026-01-01T00:00:00Z",
        "columns": ["meter_id", "operator_id"],
        "purposes": ["model_training"],
    }
    added = client.post(
        f"/v1/datasets/{dataset['id']}/transfer-instruments",
        headers=provider.headers,
        json=instrument,
    )
    assert added.status_code == 201, added.text
    body = {"dataset_id": dataset["id"], "purpose": "model_training", "duration_days": 30}
    preview = client.post(
        "/v1/access-requests/preview",
        headers=consumer.headers,
        json={**body, "accept_no_onward_transfer": True},
    ).json()
    outcomes = {c["column"]: c["outcome"] for c in preview["columns"]}
    assert outcomes == {
        "meter_id": "clear",
        "operator_id": "clear",
        "kwh": "clear",
        "face_template": "mask",
    }
    assert "GBA_SC_HK:粤网信备〔2026〕0042号" in preview["instruments"]
    # without accepting "no onward transfer" the GBA SC path is closed
    closed = client.post("/v1/access-requests/preview", headers=consumer.headers, json=body)
    assert {c["column"]: c["outcome"] for c in closed.json()["columns"]}["operator_id"] == "mask"
    # a request beyond the filed scope flags the re-filing (rule 14)
    wide = request_access(
        client,
        consumer,
        dataset["id"],
        purpose="analytics",
        accept_no_onward_transfer=True,
    ).json()
    assert any("scope change" in note for note in wide["preview"]["notes"])
    # bad instruments are refused when written
    for bad, field in (
        ({**instrument, "type": "CN_MAGIC"}, "type"),
        ({**instrument, "type": "MO_AUTH"}, "type"),  # a Macao instrument on mainland data
        ({**instrument, "purposes": ["espionage"]}, "purposes"),
        ({**instrument, "columns": ["nope"]}, "columns"),
    ):
        response = client.post(
            f"/v1/datasets/{dataset['id']}/transfer-instruments",
            headers=provider.headers,
            json=bad,
        )
        assert assert_error_envelope(response, 422)["detail"]["field"] == field
    assert_error_envelope(
        client.post(
            f"/v1/datasets/{dataset['id']}/transfer-instruments",
            headers=consumer.headers,
            json=instrument,
        ),
        403,
        "insufficient_scope",
    )
    other_provider = make_caller(client.app.state.platform, client, region="DG", role="provider")
    assert_error_envelope(
        client.post(
            f"/v1/datasets/{dataset['id']}/transfer-instruments",
            headers=other_provider.headers,
            json=instrument,
        ),
        403,
        "access_denied",
    )


def _governance_metadata_is_checked_and_core_data_refused(client, world) -> None:
    provider, dataset = world["provider"], world["dataset"]
    rules = client.get("/v1/policies/rule-set", headers=world["consumer"].headers).json()
    assert rules["ref"] == "gba-cross-boundary@2"
    assert {"cells", "dataset_rules", "column_rules", "masks"} <= set(rules["document"])
    default = client.get(f"/v1/datasets/{dataset['id']}/governance", headers=provider.headers)
    assert default.json()["recorded"] is False
    assert default.json()["origin_jurisdiction"] == "CN-GBA9"
    assert default.json()["contains_pi"] is True
    assert default.json()["contains_sensitive_pi"] is True
    core = client.put(
        f"/v1/datasets/{dataset['id']}/governance",
        headers=provider.headers,
        json={"dsl_level": "core"},
    )
    assert "rule 1" in assert_error_envelope(core, 422, "invalid_input")["message"]
    wrong_origin = client.put(
        f"/v1/datasets/{dataset['id']}/governance",
        headers=provider.headers,
        json={"origin_jurisdiction": "HK"},
    )
    assert_error_envelope(wrong_origin, 422, "invalid_input")
    no_pipia = client.put(
        f"/v1/datasets/{dataset['id']}/governance",
        headers=provider.headers,
        json={"spi_release": True},
    )
    assert assert_error_envelope(no_pipia, 422)["detail"]["field"] == "pipia_ref"
    stored = client.put(
        f"/v1/datasets/{dataset['id']}/governance",
        headers=provider.headers,
        json={
            "dsl_level": "important",
            "important_notice_ref": "粤工信〔2026〕7号",
            "collection_purposes": ["analytics"],
        },
    )
    assert stored.status_code == 200, stored.text
    assert stored.json()["recorded"] is True
    # important data: nothing leaves the mainland without a security assessment
    preview = client.post(
        "/v1/access-requests/preview",
        headers=world["consumer"].headers,
        json={"dataset_id": dataset["id"], "purpose": "analytics"},
    ).json()
    assert preview["allowed"] is False
    assert {c["outcome"] for c in preview["columns"]} == {"deny"}


def test_pinned_grant_and_time_travel(client, platform, world) -> None:
    from tests.gateway.access_helpers import load

    consumer, steward, dataset = world["consumer"], world["steward"], world["dataset"]
    load(
        client,
        world["provider"],
        dataset["id"],
        b"meter_id,operator_id,kwh,face_template\nM9,E9,9.0,\n",
    )
    request = request_access(client, consumer, dataset["id"], columns=["meter_id"]).json()
    grant = client.post(
        f"/v1/access-requests/{request['id']}/approve",
        headers=steward.headers,
        json={"version": 1},
    ).json()["grant"]
    assert grant["version_pin"] == 1
    resolve = platform.query_policy.resolver
    principal = _principal(consumer)
    org, name = dataset["sql_name"].split(".")
    assert resolve(principal, QueryDecisions())(org, name).version == 1  # the pin, not current 2
    assert resolve(principal, QueryDecisions())(org, name, 1).version == 1
    from policies.errors import AccessDenied, UnknownDataset

    with pytest.raises(AccessDenied, match="pinned to version 1"):
        resolve(principal, QueryDecisions())(org, name, 2)
    owner = _principal(world["provider"], jurisdiction="mainland", roles={"provider"})
    assert resolve(owner, QueryDecisions())(org, name).version == 2
    assert resolve(owner, QueryDecisions())(org, name, 1).version == 1
    with pytest.raises(UnknownDataset, match="has no version 7"):
        resolve(owner, QueryDecisions())(org, name, 7)
    rows = query(client, consumer, f"SELECT meter_id FROM {dataset['sql_name']}").json()["rows"]
    assert sorted(r[0] for r in rows) == ["M1", "M2", "M3", "M4"]  # version 1's rows
    other = query(client, consumer, f"SELECT meter_id FROM {dataset['sql_name']} AT (VERSION => 2)")
    assert "pinned to version 1" in assert_error_envelope(other, 403, "access_denied")["message"]
    missing = query(
        client, world["provider"], f"SELECT * FROM {dataset['sql_name']} AT (VERSION => 7)"
    )
    assert "has no version 7" in assert_error_envelope(missing, 404)["message"]
    latest = query(client, world["provider"], f"SELECT meter_id FROM {dataset['sql_name']}")
    assert [r[0] for r in latest.json()["rows"]] == ["M9"]


def _principal(caller, *, jurisdiction: str = "HK", roles: set[str] | None = None):
    from policies.model import Principal

    return Principal(
        subject=caller.client_id,
        client_id=caller.client_id,
        org_id=caller.org.id,
        org_slug=caller.org.slug,
        region=caller.org.region,
        jurisdiction=jurisdiction,
        roles=frozenset(roles or {"consumer"}),
    )


def test_provider_sees_who_uses_its_data_and_why(client, world) -> None:
    provider, consumer, steward, dataset = (
        world["provider"],
        world["consumer"],
        world["steward"],
        world["dataset"],
    )
    request = request_access(
        client,
        consumer,
        dataset["id"],
        columns=["meter_id", "operator_id", "kwh"],
        purpose="analytics",
    ).json()
    client.post(
        f"/v1/access-requests/{request['id']}/approve", headers=steward.headers, json={}
    ).raise_for_status()
    # earlier this year the provider already delivered 79,998 subjects out of the mainland
    _earlier_deliveries(client.app.state.platform, dataset, provider, consumer, 79_998)
    sql = f"SELECT meter_id, operator_id, kwh FROM {dataset['sql_name']}"
    result = query(client, consumer, sql)
    assert result.status_code == 200, result.text
    usage = client.get("/v1/usage", headers=provider.headers).json()
    (grant,) = usage["grants"]
    assert (grant["consumer"], grant["purpose"], grant["live"]) == (
        consumer.org.slug,
        "analytics",
        True,
    )
    notified = {n["action"] for n in usage["notifications"]}
    assert {"access_request.created", "access_request.approved"} <= notified
    delivery = usage["deliveries"][0]
    assert delivery["row_count"] == 4
    assert delivery["consumer_jurisdiction"] == "HK"
    assert delivery["consumer_entity"] == consumer.org.registration_id
    assert delivery["cross_boundary"] is True
    assert delivery["columns"] == ["meter_id", "operator_id", "kwh"]
    assert delivery["masks"] == [{"column": "operator_id", "kind": "hmac"}]
    assert delivery["pi_subjects"] == 3  # E001, E002, E003: tokens are still PI (rule 10)
    assert delivery["rule_set"] == "gba-cross-boundary@2"
    assert provider.org.slug not in [g["consumer"] for g in usage["grants"]]
    # the provider's own queries are not deliveries
    own = query(client, provider, f"SELECT * FROM {dataset['sql_name']}")
    assert own.status_code == 200
    assert len(client.get("/v1/deliveries", headers=provider.headers).json()) == 2
    # rule 6: 79,998 + 3 subjects crossed 80% of the 100k threshold: counter and an alert
    (counter,) = [
        c
        for c in client.get("/v1/deliveries/counters", headers=steward.headers).json()
        if c["provider_org_id"] == provider.org.id
    ]
    assert counter["pi_subjects"] == 80_001
    assert counter["alerts"] == ["non-sensitive PI: 80001 subjects ≥ 80% of threshold 100000"]
    alerts = client.get(
        "/v1/audit", headers=steward.headers, params={"action": "ledger.threshold"}
    ).json()["events"]
    assert [a["resource"] for a in alerts] == [f"org:{provider.org.id}"]


def _earlier_deliveries(platform, dataset, provider, consumer, subjects: int) -> None:
    from catalog.governance_models import Delivery

    platform.query_policy.ledger.add(
        [
            Delivery(
                year=utcnow().year,
                action="query.run",
                dataset_id=dataset["id"],
                dataset_version=1,
                provider_org_id=provider.org.id,
                consumer_org_id=consumer.org.id,
                consumer_entity=consumer.org.registration_id,
                consumer_jurisdiction="HK",
                origin_jurisdiction="CN-GBA9",
                cross_boundary=True,
                purpose="analytics",
                columns=["operator_id"],
                masks=[],
                instruments=[],
                rule_set="gba-cross-boundary@2",
                row_count=subjects,
                pi_subjects=subjects,
                spi_subjects=0,
            )
        ]
    )


# One world (organisations, clients, a loaded dataset) serves several checks: each check
# files its own requests, so they do not interfere; sharing keeps the suite's time down.


def test_who_sees_and_decides_a_request_and_how_far_an_approval_goes(client, platform, world):
    _steward_of_another_region_neither_sees_nor_decides(client, world)
    _consumer_cannot_approve_its_own_request(client, platform, world)
    _deny_needs_a_reason_and_the_consumer_reads_it(client, world)
    _approval_may_only_narrow_and_is_checked_when_written(client, world)


def test_governance_metadata_and_transfer_instruments(client, world) -> None:
    _transfer_instrument_changes_the_preview_and_the_decision(client, world)
    _governance_metadata_is_checked_and_core_data_refused(client, world)


def test_requests_and_grants_name_the_consumer_organisation(client, platform, world) -> None:
    """Requests and grants carry the consumer organisation's slug, name and home region
    next to ``org_id`` (added fields: older clients see what they saw), resolved in one
    query for a whole list."""
    consumer, steward, provider = world["consumer"], world["steward"], world["provider"]
    second = make_caller(platform, client, region="MO", role="consumer")
    dataset_id = world["dataset"]["id"]
    named = {
        caller.org.id: (caller.org.slug, caller.org.name, caller.org.region)
        for caller in (consumer, second)
    }

    def names(item: dict[str, Any]) -> tuple[str, str, str]:
        assert named[item["org_id"]] == (item["org_slug"], item["org_name"], item["org_region"])
        return item["org_slug"], item["org_name"], item["org_region"]

    first = request_access(client, consumer, dataset_id, columns=["meter_id"]).json()
    assert names(first) == (consumer.org.slug, consumer.org.name, "HK")
    assert first["region"] == "DG"  # the dataset's region is unchanged beside the org's
    other = request_access(client, second, dataset_id, columns=["kwh"]).json()
    third = request_access(client, second, dataset_id, columns=["meter_id"]).json()

    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    event.listen(platform.engine, "before_cursor_execute", record)
    try:
        queue = client.get("/v1/access-requests?status=pending", headers=steward.headers)
    finally:
        event.remove(platform.engine, "before_cursor_execute", record)
    assert queue.status_code == 200, queue.text
    assert {r["id"]: names(r)[2] for r in queue.json()} == {
        first["id"]: "HK",
        other["id"]: "MO",
        third["id"]: "MO",
    }
    org_reads = [s for s in statements if "FROM organisations" in s]
    assert len(org_reads) == 1, org_reads  # one query for three rows, not one per row

    fetched = client.get(f"/v1/access-requests/{other['id']}", headers=second.headers).json()
    assert names(fetched)[1] == second.org.name
    approved = client.post(
        f"/v1/access-requests/{first['id']}/approve", headers=steward.headers, json={}
    ).json()
    assert names(approved["request"])[0] == consumer.org.slug
    assert names(approved["grant"])[0] == consumer.org.slug
    denied = client.post(
        f"/v1/access-requests/{other['id']}/deny", headers=steward.headers, json={"reason": "no"}
    ).json()
    assert names(denied)[2] == "MO"
    withdrawn = client.post(
        f"/v1/access-requests/{third['id']}/withdraw", headers=second.headers
    ).json()
    assert names(withdrawn)[2] == "MO"

    for caller in (steward, provider, consumer):
        grants = client.get("/v1/grants", headers=caller.headers).json()
        assert [names(g) for g in grants] == [(consumer.org.slug, consumer.org.name, "HK")]
    (usage,) = client.get("/v1/usage", headers=provider.headers).json()["grants"]
    assert (usage["consumer"], usage["consumer_name"], usage["consumer_region"]) == (
        consumer.org.slug,
        consumer.org.name,
        "HK",
    )
    revoked = client.delete(f"/v1/grants/{approved['grant']['id']}", headers=steward.headers)
    assert names(revoked.json())[1] == consumer.org.name


def uncached(platform) -> QueryPolicy:
    """The platform's policy without its catalog cache: every resolver reads the catalog."""
    policy = platform.query_policy
    return QueryPolicy(policy.registry, policy.grants, policy.lake, clock=policy.clock)


@contextmanager
def all_reads(engine: Any, *, thread: int | None = None) -> Iterator[list[str]]:
    """Every SQL statement sent to ``engine`` meanwhile; with ``thread``, only that thread's."""
    statements: list[str] = []

    def count(*args: Any) -> None:
        if thread is None or threading.get_ident() == thread:
            statements.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def own_reads(engine: Any) -> Any:
    """The SQL statements this thread sends to ``engine`` meanwhile (not the job poller's)."""
    return all_reads(engine, thread=threading.get_ident())


def test_a_prefetching_resolver_decides_exactly_as_one_that_reads_per_dataset(
    client, platform, world
) -> None:
    """``prefetch`` (used when a cached rewrite is replayed) reads the datasets, versions and
    governance rows of every reference at once; each reference is then decided as before:
    the same sources, the same grants and decisions, the same refusals."""
    provider, consumer, steward = world["provider"], world["consumer"], world["steward"]
    datasets = [world["dataset"], personal_dataset(client, provider)]
    datasets.append(personal_dataset(client, provider))
    created = request_access(
        client, consumer, datasets[0]["id"], columns=["meter_id", "operator_id"],
        justification="forecasting", accept_no_onward_transfer=True,
    )  # fmt: skip
    approved = client.post(
        f"/v1/access-requests/{created.json()['id']}/approve",
        headers=steward.headers,
        json={"columns": ["meter_id", "operator_id"], "row_filter": "meter_id <> 'M3'"},
    )
    assert approved.status_code == 200, approved.text
    refs = [(*d["sql_name"].split("."), None) for d in datasets]
    refs += [refs[0], (refs[1][0], refs[1][1], 1), (refs[0][0], "no_such_dataset", None)]

    policy = uncached(platform)  # what is read, not what a cache keeps

    def outcomes(principal, prefetch: bool) -> tuple[list[Any], QueryDecisions, int]:
        decisions = QueryDecisions()
        resolve = policy.resolver(principal, decisions)
        with own_reads(platform.engine) as statements:
            if prefetch:
                resolve.prefetch(refs)
            answers: list[Any] = []
            for org, name, version in refs:
                try:
                    answers.append(resolve(org, name, version=version))
                except (AccessDenied, UnknownDataset) as refused:  # compared as answers
                    answers.append((type(refused).__name__, str(refused)))
        return answers, decisions, len(statements)

    owner = _principal(provider, jurisdiction="mainland", roles={"provider"})
    outsider = _principal(consumer, jurisdiction="HK")
    reads = {}
    for principal in (owner, outsider):
        plain, plain_decisions, reads["plain"] = outcomes(principal, prefetch=False)
        fetched, fetched_decisions, reads["prefetched"] = outcomes(principal, prefetch=True)
        assert fetched == plain
        assert fetched_decisions == plain_decisions
        assert reads["prefetched"] < reads["plain"], reads
        assert plain[-1][0] == "UnknownDataset"
    # the consumer: a grant on the first dataset only
    assert plain[0].columns == ("meter_id", "operator_id") and plain[0].row_filter
    assert plain[1][0] == "AccessDenied"
    # the owner: three reads for all its datasets, then only the unknown name is read
    *_, owner_reads = outcomes(owner, prefetch=True)
    assert owner_reads == 3 + 1
    # a dataset the prefetch did not see (created since) is decided on its own rows: here a
    # governance row saying its data is "important", which stops it leaving the mainland
    late = personal_dataset(client, provider)
    late_request = request_access(
        client, consumer, late["id"], columns=["meter_id"], justification="forecasting",
        accept_no_onward_transfer=True,
    )  # fmt: skip
    late_grant = client.post(
        f"/v1/access-requests/{late_request.json()['id']}/approve",
        headers=steward.headers,
        json={"columns": ["meter_id"]},
    )
    assert late_grant.status_code == 200, late_grant.text
    resolve = platform.query_policy.resolver(outsider, QueryDecisions())
    resolve.prefetch(refs[:1])
    org, name = late["sql_name"].split(".")
    granted = platform.query_policy.resolver(outsider, QueryDecisions())(org, name)
    assert granted.columns == ("meter_id",)
    platform.query_policy.governance.put(
        late["id"], origin_jurisdiction="CN-GBA9", provider_entity_id="x",
        dsl_level="important", updated_by="test",
    )  # fmt: skip
    with pytest.raises(AccessDenied) as fresh:
        platform.query_policy.resolver(outsider, QueryDecisions())(org, name)
    with pytest.raises(AccessDenied) as prefetched:
        resolve(org, name)
    assert str(prefetched.value) == str(fresh.value)


def test_a_dataset_named_twice_in_one_query_is_decided_once(client, platform, world) -> None:
    """One resolver is one query at one moment: the second reference reads nothing more."""
    provider, dataset = world["provider"], world["dataset"]
    principal = _principal(provider, jurisdiction="mainland", roles={"provider"})
    org, name = dataset["sql_name"].split(".")
    decisions = QueryDecisions()
    resolve = uncached(platform).resolver(principal, decisions)
    with own_reads(platform.engine) as statements:
        first = resolve(org, name)
        read_first = len(statements)
        second = resolve(org, name)
    assert read_first > 0 and len(statements) == read_first
    assert second == first and decisions.sources == [first, first]
    # the query path loads a version without its statistics and GX result
    assert not any("gx_result" in s for s in statements)
    self_join = query(
        client,
        provider,
        f"SELECT a.meter_id FROM {dataset['sql_name']} a JOIN {dataset['sql_name']} b "
        "ON a.meter_id = b.meter_id",
    )
    assert self_join.status_code == 200, self_join.text
    empty = make_dataset(client, provider, name=f"empty_{suffix()}", contract=PERSONAL_CONTRACT)
    before_upload = query(client, provider, f"SELECT meter_id FROM {org}.{empty['name']}")
    assert "has no committed version yet" in assert_error_envelope(before_upload, 404)["message"]


def test_decisions_read_the_catalog_once_per_change_and_see_every_change(
    client, platform, world
) -> None:
    """The platform's policy keeps the rows its decisions read until the catalog changes
    (``catalog.generation``): a repeated query reads only the generation, and a change made
    with plain SQL, past every code path of the application, is decided on at once."""
    consumer, steward, dataset = world["consumer"], world["steward"], world["dataset"]
    created = request_access(
        client, consumer, dataset["id"], columns=["meter_id", "operator_id"],
        justification="forecasting", accept_no_onward_transfer=True,
    )  # fmt: skip
    approved = client.post(
        f"/v1/access-requests/{created.json()['id']}/approve",
        headers=steward.headers,
        json={"columns": ["meter_id", "operator_id"]},
    )
    assert approved.status_code == 200, approved.text
    sql = f"SELECT meter_id, operator_id FROM {dataset['sql_name']}"
    assert query(client, consumer, sql).status_code == 200  # the rows are read and kept
    catalog_tables = ("grants", "datasets", "dataset_versions", "dataset_governance")
    with all_reads(platform.engine) as statements:  # the app runs in threads of its own
        again = query(client, consumer, sql)
    assert again.status_code == 200, again.text
    governing = statements[: next(i for i, s in enumerate(statements) if "audit_events (" in s)]
    assert any("catalog_generation" in s for s in governing)
    read = [t for s in governing for t in catalog_tables if f"FROM {t}" in s]
    assert read == [], "\n".join(s[:150].replace("\n", " ") for s in governing)
    # revoked by hand in the database: the next query is refused
    with platform.engine.begin() as connection:
        connection.execute(
            text("UPDATE grants SET revoked_at = :now WHERE dataset_id = :d"),
            {"now": utcnow(), "d": dataset["id"]},
        )
    refused = query(client, consumer, sql)
    assert refused.status_code == 403, refused.text
    assert _resolve_fails(platform, consumer, dataset)


def _resolve_fails(platform, caller, dataset) -> bool:
    try:
        _resolve(platform, caller, dataset)
    except AccessDenied:
        return True
    return False
