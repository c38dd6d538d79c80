"""Small factories for tests: organisations, OAuth clients, tokens, datasets.

Names are randomised so tests never collide on a shared catalog or store.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from catalog.clients import create_client
from catalog.models import Organisation

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from gateway.services import Platform

# Valid registration ids per region (USCC check characters verified in DOMAIN.md §4).
REGISTRATION = {
    "GZ": "91440101MA9Y1T6H6L",
    "SZ": "91440300MA5G7K3P7P",
    "DG": "91441900MA4W2R8N7U",
    "HK": "71234567",
    "MO": "12345(SO)",
}


def suffix() -> str:
    return secrets.token_hex(3)


def make_org(platform: Platform, *, region: str = "DG", kind: str = "provider") -> Organisation:
    tag = suffix()
    return platform.registry.create_org(
        name=f"{kind.title()} {region} {tag}",
        slug=f"{kind[:4]}_{region.lower()}_{tag}",
        kind=kind,
        region=region,
        registration_id=REGISTRATION[region],
    )


@dataclass
class Caller:
    org: Organisation
    client_id: str
    client_secret: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def make_caller(
    platform: Platform,
    http: Any,
    *,
    region: str = "DG",
    role: str = "provider",
    org: Organisation | None = None,
) -> Caller:
    """An org (unless given), an OAuth client with ``role`` and a token from POST /oauth/token."""
    org = org or make_org(
        platform,
        region=region,
        kind="steward" if role == "steward" else ("consumer" if role == "consumer" else "provider"),
    )
    from gateway.admin import ROLE_SCOPES

    with platform.sessions.begin() as session:
        client, secret = create_client(
            session,
            org_id=org.id,
            name=f"{role} client",
            roles=[role],
            scope=" ".join(ROLE_SCOPES[role]),
        )
        client_id = client.client_id
    response = http.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )
    assert response.status_code == 200, response.text
    return Caller(org, client_id, secret, response.json()["access_token"])


ENERGY_CONTRACT: dict[str, Any] = {
    "columns": [
        {
            "name": "meter_id",
            "source": "设备编号",
            "type": "string",
            "nullable": False,
            "pattern": "^DG-[A-Z0-9-]+$",
        },
        {
            "name": "ts",
            "source": "时间",
            "type": "timestamp",
            "nullable": False,
            "format": "%Y-%m-%d %H:%M",
        },
        {
            "name": "kwh",
            "source": "用电量(度)",
            "type": "double",
            "nullable": False,
            "min": 0,
            "max": 5000,
            "unit": "kWh",
        },
        {
            "name": "tariff",
            "source": "时段",
            "type": "string",
            "allowed": ["尖峰", "峰", "平", "谷"],
        },
    ]
}
ENERGY_CSV = (
    "设备编号,时间,用电量(度),时段\n"
    "DG-P2-MCC-07,2025-07-11 08:15,12.5,峰\n"
    "DG-P2-MCC-07,2025-07-11 08:30,-3.0,峰\n"  # negative: rejected
    "DG-P2-MCC-08,2025-07-11 08:15,7.25,谷\n"
    "bad id,2025-07-11 08:15,1.0,平\n"  # pattern: rejected
    "DG-P2-MCC-09,2025-07-11 08:45,0,尖峰\n"
).encode()
ENERGY_VALID_ROWS = [
    ("DG-P2-MCC-07", 12.5, "峰"),
    ("DG-P2-MCC-08", 7.25, "谷"),
    ("DG-P2-MCC-09", 0.0, "尖峰"),
]


def make_dataset(
    http: TestClient | Any,
    caller: Caller,
    *,
    name: str | None = None,
    contract: dict[str, Any] | None = None,
) -> dict[str, Any]:
    response = http.post(
        "/v1/datasets",
        headers=caller.headers,
        json={
            "name": name or f"energy_{suffix()}",
            "title": "Energy meters 能耗",
            "classification": "internal",
            "contract": contract or ENERGY_CONTRACT,
        },
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def wait_job(http: Any, caller: Caller, job_id: str, timeout: float = 60.0) -> dict[str, Any]:
    import time

    deadline = time.monotonic() + timeout
    while True:
        job = http.get(f"/v1/jobs/{job_id}", headers=caller.headers).json()
        if job["status"] in ("succeeded", "failed", "duplicate") or time.monotonic() > deadline:
            return dict(job)
        time.sleep(0.1)


def load(
    http: Any,
    caller: Caller,
    dataset_id: str,
    content: bytes | None = None,
    *,
    filename: str = "meters.csv",
) -> dict[str, Any]:
    """Upload ``content`` (default: the energy sample file) through the API and wait for its
    job to succeed; returns the finished job."""
    response = http.post(
        f"/v1/datasets/{dataset_id}/uploads",
        headers=caller.headers,
        content=ENERGY_CSV if content is None else content,
        params={"filename": filename},
    )
    assert response.status_code == 202, response.text
    job = wait_job(http, caller, response.json()["id"])
    assert job["status"] == "succeeded", job
    return job
