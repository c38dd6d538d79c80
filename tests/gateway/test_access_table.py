"""DOMAIN.md §6.3 through the real query path: real uploads in GZ, HK and MO, real grants,
governance records and transfer instruments through the API, real governed queries.

Each step sets up what is on record, runs ``SELECT *`` as a consumer of one jurisdiction
and reads each column's outcome from what the query path did: a denied column is not in
the result (and a dataset with nothing deliverable is refused), a clear column returns
the stored values, a masked column is recorded with its mask in the query's audit entry
and the values that come back are not the stored ones (keyed HMAC tokens for PI, NULL
for sensitive PI). The steps are cumulative, in order.
"""

# ruff: noqa: E501 - the steps below are kept one per line, as a table reads
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from catalog.models import Grant
from tests.conftest import make_settings
from tests.factories import Caller, make_caller
from tests.gateway.access_helpers import PERSONAL_ROWS, personal_dataset, query

CLEAR, MASK, DENY = "clear", "mask", "deny"
COLUMNS = {"non_pi": "meter_id", "pi": "operator_id", "spi": "face_template"}
RAW = {
    "meter_id": sorted(r[0] for r in PERSONAL_ROWS),
    "operator_id": sorted(r[1] for r in PERSONAL_ROWS),
    "face_template": sorted(r[3] for r in PERSONAL_ROWS),
}


@pytest.fixture
def settings(tmp_path: Path) -> Any:
    from gateway.settings import QuerySettings

    # two pre-forked query workers: each query uses a fresh one, the next is ready meanwhile
    query = QuerySettings(pool_size=2, timeout_seconds=20, memory_mb=1024)
    return make_settings(tmp_path / "data", backend="local", seaweed=None, query=query)


class World:
    def __init__(self, client: Any, platform: Any) -> None:
        self.client, self.platform = client, platform
        self.providers = {r: make_caller(platform, client, region=r) for r in ("GZ", "HK", "MO")}
        self.consumers = {
            "mainland": make_caller(platform, client, region="SZ", role="consumer"),
            "HK": make_caller(platform, client, region="HK", role="consumer"),
            "MO": make_caller(platform, client, region="MO", role="consumer"),
        }
        self.datasets = {r: personal_dataset(client, p) for r, p in self.providers.items()}
        self.instruments: dict[str, list[str]] = {r: [] for r in self.providers}
        for dataset in self.datasets.values():
            for consumer in self.consumers.values():
                self._grant(dataset["id"], consumer)

    def _grant(self, dataset_id: str, consumer: Caller) -> None:
        with self.platform.sessions.begin() as session:
            session.add(
                Grant(
                    dataset_id=dataset_id,
                    org_id=consumer.org.id,
                    purpose="model_training",
                    created_by="table-test",
                    no_onward_transfer=True,
                )
            )

    def governance(self, origin: str, **fields: Any) -> None:
        response = self.client.put(
            f"/v1/datasets/{self.datasets[origin]['id']}/governance",
            headers=self.providers[origin].headers,
            json=fields,
        )
        assert response.status_code == 200, response.text

    def instrument(self, origin: str, kind: str) -> None:
        response = self.client.post(
            f"/v1/datasets/{self.datasets[origin]['id']}/transfer-instruments",
            headers=self.providers[origin].headers,
            json={
                "type": kind,
                "reference": f"{kind}-2026-001",
                "authority": "the regulator",
                "effective_from": "2026-01-01T00:00:00Z",
                "purposes": ["model_training"],
            },
        )
        assert response.status_code == 201, response.text
        self.instruments[origin].append(response.json()["id"])

    def clear_instruments(self, origin: str) -> None:
        for instrument_id in self.instruments[origin]:
            response = self.client.delete(
                f"/v1/transfer-instruments/{instrument_id}",
                headers=self.providers[origin].headers,
            )
            assert response.status_code == 200, response.text
        self.instruments[origin] = []

    def outcomes(self, origin: str, consumer: str) -> dict[str, str] | str:
        """Per column: what the real query path delivered; "refused" if nothing could go."""
        caller = self.consumers[consumer]
        response = query(self.client, caller, f"SELECT * FROM {self.datasets[origin]['sql_name']}")
        if response.status_code == 403:
            return "refused"
        assert response.status_code == 200, response.text
        body = response.json()
        names = [c["name"] for c in body["columns"]]
        (event,) = self.platform.audit.page(limit=1, actor=caller.client_id, action="query.run")
        (decided,) = event.detail["datasets"]
        assert decided["rule_set"] == "gba-cross-boundary@2"
        out = {}
        for cls, column in COLUMNS.items():
            if column not in names:
                out[cls] = DENY
                continue
            values = [row[names.index(column)] for row in body["rows"]]
            if column in decided["masks"]:
                assert not set(values) & set(RAW[column]), (origin, consumer, column, values)
                out[cls] = MASK
            else:
                assert sorted(values) == RAW[column], (origin, consumer, column, values)
                out[cls] = CLEAR
        return out


Step = tuple[str, Callable[[World], None], str, str, dict[str, str] | str]
SPI_RELEASE = {"spi_release": True, "pipia_ref": "PIPIA-2026-3", "separate_consent": True}
PURPOSE_OK = {"collection_purposes": ["model_training"]}


def nothing(_w: World) -> None:
    return None


STEPS: list[Step] = [
    # mainland origin (GZ): same jurisdiction, purpose check
    ("CN same, purpose not recorded", nothing, "GZ", "mainland", {"non_pi": CLEAR, "pi": MASK, "spi": MASK}),
    ("CN same, purpose + consent", lambda w: w.governance("GZ", **PURPOSE_OK, separate_consent=True), "GZ", "mainland", {"non_pi": CLEAR, "pi": CLEAR, "spi": CLEAR}),
    # mainland → HK / MO: none, GBA SC, national instrument
    ("CN→HK none", nothing, "GZ", "HK", {"non_pi": CLEAR, "pi": MASK, "spi": MASK}),
    ("CN→HK GBA SC", lambda w: w.instrument("GZ", "GBA_SC_HK"), "GZ", "HK", {"non_pi": CLEAR, "pi": CLEAR, "spi": MASK}),
    ("CN→HK GBA SC + SPI release", lambda w: w.governance("GZ", **PURPOSE_OK, **SPI_RELEASE), "GZ", "HK", {"non_pi": CLEAR, "pi": CLEAR, "spi": CLEAR}),
    ("CN→MO national (CN_SC) + SPI release", lambda w: w.instrument("GZ", "CN_SC"), "GZ", "MO", {"non_pi": CLEAR, "pi": CLEAR, "spi": CLEAR}),
    # mainland important data: GBA SC does not carry it; only a security assessment
    ("CN important → HK, GBA SC + CN_SC", lambda w: w.governance("GZ", dsl_level="important", **PURPOSE_OK, **SPI_RELEASE), "GZ", "HK", "refused"),
    ("CN important, same jurisdiction", nothing, "GZ", "mainland", {"non_pi": CLEAR, "pi": CLEAR, "spi": CLEAR}),
    ("CN important → HK, CN_SEC_ASSESS", lambda w: (w.clear_instruments("GZ"), w.instrument("GZ", "CN_SEC_ASSESS")), "GZ", "HK", {"non_pi": CLEAR, "pi": CLEAR, "spi": CLEAR}),
    # HK origin
    ("HK→CN purpose not recorded", nothing, "HK", "mainland", {"non_pi": CLEAR, "pi": MASK, "spi": MASK}),
    ("HK same, purpose ok", lambda w: w.governance("HK", **PURPOSE_OK), "HK", "HK", {"non_pi": CLEAR, "pi": CLEAR, "spi": MASK}),
    ("HK→MO purpose ok (not in §6.3: as HK→CN)", nothing, "HK", "MO", {"non_pi": CLEAR, "pi": CLEAR, "spi": MASK}),
    ("HK→CN purpose + explicit consent", lambda w: w.governance("HK", **PURPOSE_OK, separate_consent=True), "HK", "mainland", {"non_pi": CLEAR, "pi": CLEAR, "spi": CLEAR}),
    # MO origin
    ("MO same, purpose not recorded", nothing, "MO", "MO", {"non_pi": CLEAR, "pi": MASK, "spi": MASK}),
    ("MO→CN none", nothing, "MO", "mainland", {"non_pi": CLEAR, "pi": MASK, "spi": DENY}),
    ("MO→HK none", nothing, "MO", "HK", {"non_pi": CLEAR, "pi": MASK, "spi": DENY}),
    ("MO→CN GBA_SC_MO", lambda w: w.instrument("MO", "GBA_SC_MO"), "MO", "mainland", {"non_pi": CLEAR, "pi": CLEAR, "spi": DENY}),
    ("MO→HK Art. 20 notification", lambda w: w.instrument("MO", "MO_ART20_NOTIF"), "MO", "HK", {"non_pi": CLEAR, "pi": CLEAR, "spi": DENY}),
    ("MO→HK Art. 7 gate met", lambda w: w.governance("MO", **SPI_RELEASE), "MO", "HK", {"non_pi": CLEAR, "pi": CLEAR, "spi": CLEAR}),
    ("MO→CN Art. 7 gate met", nothing, "MO", "mainland", {"non_pi": CLEAR, "pi": CLEAR, "spi": CLEAR}),
]  # fmt: skip


def test_every_cell_of_the_decision_table_on_the_real_query_path(client, platform) -> None:
    world = World(client, platform)
    results = []
    for label, setup, origin, consumer, expected in STEPS:
        setup(world)
        results.append((label, world.outcomes(origin, consumer), expected))
    wrong = [(label, got, want) for label, got, want in results if got != want]
    assert not wrong, wrong
