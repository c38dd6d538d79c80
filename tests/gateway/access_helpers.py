"""Shared setup for the access-workflow tests: a dataset with a non-PI, a PI and a
sensitive-PI column, loaded through the real upload path, and small API helpers."""

from __future__ import annotations

from typing import Any

from tests.factories import Caller, load, make_dataset, suffix

PERSONAL_CONTRACT: dict[str, Any] = {
    "columns": [
        {"name": "meter_id", "type": "string", "nullable": False, "pi": "non_pi"},
        {"name": "operator_id", "type": "string", "nullable": False, "pi": "pi_direct_id"},
        {"name": "kwh", "type": "double", "nullable": False, "pi": "non_pi"},
        {"name": "face_template", "type": "string", "nullable": True, "pi": "spi"},
    ]
}
PERSONAL_ROWS = [
    ("M1", "E001", 12.5, "FT-01"),
    ("M2", "E002", 7.25, "FT-02"),
    ("M3", "E003", 30.0, "FT-03"),
    ("M4", "E001", 1.5, "FT-01"),
]
PERSONAL_CSV = (
    "meter_id,operator_id,kwh,face_template\n"
    + "".join(f"{m},{o},{k},{f}\n" for m, o, k, f in PERSONAL_ROWS)
).encode()


def personal_dataset(http: Any, provider: Caller, content: bytes = PERSONAL_CSV) -> dict[str, Any]:
    """Register and load the dataset (version 1); returns the dataset plus ``sql_name``."""
    dataset = make_dataset(http, provider, name=f"shift_{suffix()}", contract=PERSONAL_CONTRACT)
    load(http, provider, dataset["id"], content, filename="shift.csv")
    dataset["sql_name"] = f"{provider.org.slug}.{dataset['name']}"
    return dataset


def request_access(http: Any, consumer: Caller, dataset_id: str, **fields: Any) -> Any:
    body = {"dataset_id": dataset_id, "purpose": "model_training", "duration_days": 30, **fields}
    return http.post("/v1/access-requests", headers=consumer.headers, json=body)


def query(http: Any, caller: Caller, sql: str) -> Any:
    return http.post("/v1/query", headers=caller.headers, json={"sql": sql})


def audit_actions(http: Any, auditor: Caller) -> list[str]:
    response = http.get("/v1/audit", headers=auditor.headers, params={"limit": 1000})
    assert response.status_code == 200, response.text
    return [e["action"] + ":" + e["outcome"] for e in response.json()["events"]]
