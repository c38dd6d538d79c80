"""POST /v1/contracts/proposals: a contract proposed from a sample file, over real HTTP."""

from __future__ import annotations

from typing import Any

from ingest.validators import get_validator
from tests.factories import make_caller, make_dataset, wait_job


def _mop(amount: float) -> str:
    """``MOP 1.234,50``: Macao writes thousands with dots and decimals with a comma."""
    return "MOP " + f"{amount:,.2f}".replace(",", " ").replace(".", ",").replace(" ", ".")


PHONES = [f"66{(123456 + i * 7919) % 10**6:06d}" for i in range(300)]
PHONE = get_validator("phone")
MACAO_CSV = (
    "維修單號,報修日期,費用,技術員電話,備註\n"
    + "".join(
        f'MO-{i:05d},{1 + i % 28:02d}/{1 + i % 12:02d}/2025,"{_mop(1000 + i * 37.5)}",'
        f"{PHONES[i]},冷凍機壓縮機更換\n"
        for i in range(300)
    )
).encode("utf-8")


def test_proposal_reads_the_sample_like_ingest_and_the_proposal_ingests_cleanly(
    client: Any, platform: Any
) -> None:
    caller = make_caller(platform, client, region="MO")
    response = client.post(
        "/v1/contracts/proposals",
        params={"filename": "repairs.csv"},
        content=MACAO_CSV,
        headers=caller.headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    columns = {c["source"]: c for c in body["contract"]["columns"]}
    assert columns["報修日期"]["type"] == "date" and columns["報修日期"]["format"] == ["%d/%m/%Y"]
    cost = columns["費用"]
    assert (cost["type"], cost["thousands"], cost["decimal"], cost["currency"]) == (
        "double",
        ".",
        ",",
        "MOP",
    )
    phone = columns["技術員電話"]
    assert phone.get("validator") == "phone"
    assert body["contract"]["primary_key"] == [columns["維修單號"]["name"]]
    assert body["notes"][cost["name"]]  # every inference says why
    assert "pi" not in cost  # left to the first upload's PII scan

    dataset = make_dataset(client, caller, name="repairs", contract=body["contract"])
    job = client.post(
        f"/v1/datasets/{dataset['id']}/uploads",
        params={"filename": "repairs.csv"},
        content=MACAO_CSV,
        headers=caller.headers,
    ).json()
    done = wait_job(client, caller, job["id"])
    # 10 of the 300 phones are outside Macao's numbering plan: the proposal still names the
    # phone validator (>= 95% pass) and says so in its notes; ingest quarantines exactly those
    invalid = sum(not PHONE.check(p, region="MO").ok for p in PHONES)
    assert invalid == 10
    assert any("would be rejected" in n or "fail" in n for n in body["notes"][phone["name"]])
    assert (done["status"], done["rows_valid"], done["rows_rejected"]) == (
        "succeeded",
        300 - invalid,
        invalid,
    )


def test_proposal_needs_the_provider_role_and_a_readable_file(client: Any, platform: Any) -> None:
    consumer = make_caller(platform, client, region="HK", role="consumer")
    refused = client.post(
        "/v1/contracts/proposals", content=b"a,b\n1,2\n", headers=consumer.headers
    )
    assert refused.status_code == 403
    provider = make_caller(platform, client, region="HK")
    empty = client.post("/v1/contracts/proposals", content=b"", headers=provider.headers)
    assert empty.status_code == 422 and empty.json()["error"]["code"] == "file_empty"
    wrong = client.post(
        "/v1/contracts/proposals",
        params={"encoding": "utf-8"},
        content="貨物,數量\n電腦,1\n".encode("big5hkscs"),
        headers=provider.headers,
    )
    assert wrong.status_code == 422 and "encoding" in wrong.json()["error"]["code"]
