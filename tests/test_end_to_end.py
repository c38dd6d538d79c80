"""The spine end to end over real HTTP: uvicorn on a free port, real S3, the real CLI.

token → create dataset → upload CSV → job succeeds → a consumer without a grant
gets 403 → `datashare admin grant` → the same query returns exactly the valid
rows, as JSON and as Arrow IPC. Then: forged, expired and wrong-audience tokens
are 401; hostile SQL is refused with the error envelope and audited.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyarrow as pa
import pytest

from catalog.storage.seaweed import free_ports
from tests.conftest import make_settings
from tests.factories import ENERGY_CONTRACT, ENERGY_CSV, ENERGY_VALID_ROWS, REGISTRATION, suffix

pytestmark = pytest.mark.integration
DATASHARE = [sys.executable, "-m", "gateway.cli"]


def cli(
    data_dir: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {
        **os.environ,
        "DATASHARE_DATA_DIR": str(data_dir),
        "DATASHARE_ENVIRONMENT": "test",
        **(env or {}),
    }
    return subprocess.run(
        [*DATASHARE, *args], capture_output=True, text=True, env=full_env, timeout=120, check=False
    )


@pytest.fixture
def gateway(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, Path]]:
    from gateway.server import BackgroundServer
    from gateway.services import build_platform

    backend = "s3" if "s3" in os.environ.get("ACTIVE_BACKENDS", "local,s3") else "local"
    weed = request.getfixturevalue("seaweed") if backend == "s3" else None
    data_dir = tmp_path / "data"
    settings = make_settings(data_dir, backend=backend, seaweed=weed, port=free_ports(1)[0])
    platform = build_platform(settings)
    server = BackgroundServer(settings, platform)
    server.start()
    yield settings.public_url, data_dir
    server.stop()
    platform.close()


def org_and_client(data_dir: Path, kind: str, region: str, role: str) -> tuple[str, str, str]:
    slug = f"{kind[:4]}_{region.lower()}_{suffix()}"
    created = cli(
        data_dir, "admin", "create-org", f"{kind} {slug}", slug, kind, region, REGISTRATION[region]
    )
    assert created.returncode == 0, created.stderr
    made = cli(data_dir, "admin", "create-client", slug, f"{slug} client", "--role", role)
    assert made.returncode == 0, made.stderr
    credentials = json.loads(made.stdout)
    assert set(credentials) == {"client_id", "client_secret"}
    return slug, credentials["client_id"], credentials["client_secret"]


def token(url: str, client_id: str, secret: str) -> str:
    response = httpx.post(
        f"{url}/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def test_spine_end_to_end_over_real_http(gateway: tuple[str, Path]) -> None:
    url, data_dir = gateway
    provider_org, pid, psecret = org_and_client(data_dir, "provider", "DG", "provider")
    consumer_org, cid, csecret = org_and_client(data_dir, "consumer", "HK", "consumer")
    provider = {"Authorization": f"Bearer {token(url, pid, psecret)}"}
    consumer = {"Authorization": f"Bearer {token(url, cid, csecret)}"}
    with httpx.Client(base_url=url, timeout=60) as http:
        dataset = http.post(
            "/v1/datasets",
            headers=provider,
            json={"name": "energy_meter", "title": "Energy", "contract": ENERGY_CONTRACT},
        ).json()
        job = http.post(
            f"/v1/datasets/{dataset['id']}/uploads", headers=provider, content=ENERGY_CSV
        ).json()
        deadline = time.monotonic() + 60
        while job["status"] in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(0.2)
            job = http.get(f"/v1/jobs/{job['id']}", headers=provider).json()
        assert (job["status"], job["rows_valid"], job["rows_rejected"]) == ("succeeded", 3, 2)

        sql = f"SELECT meter_id, kwh, tariff FROM {provider_org}.energy_meter ORDER BY meter_id"
        denied = http.post("/v1/query", headers=consumer, json={"sql": sql})
        assert denied.status_code == 403
        assert denied.json()["error"]["code"] == "access_denied"
        assert "request access" in denied.json()["error"]["message"]

        granted = cli(data_dir, "admin", "grant", f"{provider_org}.energy_meter", consumer_org)
        assert granted.returncode == 0, granted.stderr

        as_json = http.post("/v1/query", headers=consumer, json={"sql": sql, "format": "json"})
        assert as_json.status_code == 200, as_json.text
        assert [tuple(r) for r in as_json.json()["rows"]] == ENERGY_VALID_ROWS
        assert as_json.json()["truncated"] is False
        as_arrow = http.post("/v1/query", headers=consumer, json={"sql": sql, "format": "arrow"})
        assert as_arrow.headers["content-type"] == "application/vnd.apache.arrow.stream"
        table = pa.ipc.open_stream(as_arrow.content).read_all()
        assert table.column_names == ["meter_id", "kwh", "tariff"]
        assert [tuple(r.values()) for r in table.to_pylist()] == ENERGY_VALID_ROWS

    # the same through the CLI, which talks to the gateway with client credentials
    creds = {
        "DATASHARE_GATEWAY": url,
        "DATASHARE_CLIENT_ID": cid,
        "DATASHARE_CLIENT_SECRET": csecret,
    }
    queried = cli(data_dir, "query", sql, "--format", "json", env=creds)
    assert queried.returncode == 0, queried.stderr
    assert [
        (r["meter_id"], r["kwh"], r["tariff"]) for r in json.loads(queried.stdout)
    ] == ENERGY_VALID_ROWS
    hostile = f"SELECT '=HYPERLINK(\"x\")' AS note, -kwh AS minus FROM {provider_org}.energy_meter"
    as_csv = cli(
        data_dir, "query", hostile + " ORDER BY minus LIMIT 1", "--format", "csv", env=creds
    )
    assert as_csv.returncode == 0, as_csv.stderr
    assert as_csv.stdout.splitlines()[1] == '"\'=HYPERLINK(""x"")",-12.5'  # text only
    refused = cli(data_dir, "query", "SELECT * FROM read_csv('/etc/passwd')", env=creds)
    assert refused.returncode == 1 and "query_refused" in refused.stderr
    source = data_dir / "more.csv"
    source.write_bytes(ENERGY_CSV.replace(b"12.5", b"13.5"))
    provider_env = {
        "DATASHARE_GATEWAY": url,
        "DATASHARE_CLIENT_ID": pid,
        "DATASHARE_CLIENT_SECRET": psecret,
    }
    ingested = cli(data_dir, "ingest", dataset["id"], str(source), env=provider_env)
    assert ingested.returncode == 0, ingested.stderr
    assert (json.loads(ingested.stdout)["status"], json.loads(ingested.stdout)["version"]) == (
        "succeeded",
        2,
    )


def test_forged_expired_and_wrong_audience_tokens_are_401(gateway: tuple[str, Path]) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec
    from joserfc import jwt
    from joserfc.jwk import ECKey

    url, data_dir = gateway
    _, cid, csecret = org_and_client(data_dir, "consumer", "MO", "consumer")
    good = token(url, cid, csecret)
    header = jwt.decode(
        good, ECKey.import_key(httpx.get(f"{url}/oauth/jwks").json()["keys"][0])
    ).header
    claims = jwt.decode(
        good, ECKey.import_key(httpx.get(f"{url}/oauth/jwks").json()["keys"][0])
    ).claims
    other_key = ECKey.import_key(ec.generate_private_key(ec.SECP256R1()))
    now = int(time.time())
    forged = jwt.encode(header, claims, other_key)
    expired = jwt.encode(
        header, {**claims, "iat": now - 7200, "nbf": now - 7200, "exp": now - 3600}, other_key
    )
    wrong_aud = jwt.encode(header, {**claims, "aud": "someone-else"}, other_key)
    for bad in (forged, expired, wrong_aud, good[:-4] + "AAAA"):
        response = httpx.get(f"{url}/v1/me", headers={"Authorization": f"Bearer {bad}"})
        assert response.status_code == 401, response.text
        assert response.json()["error"]["code"] == "invalid_token"
    assert httpx.get(f"{url}/v1/me", headers={"Authorization": f"Bearer {good}"}).status_code == 200


HOSTILE = [
    ("SELECT * FROM read_csv('/etc/passwd')", "read_csv"),
    ("COPY (SELECT 1) TO '{target}'", "COPY"),
    ("ATTACH '{target}' AS x", "ATTACH"),
    ("INSTALL httpfs", "INSTALL"),
    ("SELECT 1; SELECT 2", "statement"),
]


def test_hostile_sql_is_refused_audited_and_writes_nothing(
    gateway: tuple[str, Path], tmp_path: Path
) -> None:
    url, data_dir = gateway
    _, cid, csecret = org_and_client(data_dir, "consumer", "HK", "consumer")
    headers = {"Authorization": f"Bearer {token(url, cid, csecret)}"}
    target = tmp_path / "written_by_attacker"
    before = sorted(
        p.relative_to(data_dir) for p in data_dir.rglob("*") if "catalog.db" not in p.name
    )
    for sql, needle in HOSTILE:
        response = httpx.post(
            f"{url}/v1/query", headers=headers, json={"sql": sql.format(target=target)}
        )
        assert response.status_code == 400, (sql, response.text)
        error = response.json()["error"]
        assert error["code"] == "query_refused"
        assert needle.lower() in (error["message"] + str(error["detail"])).lower(), (sql, error)
    assert not target.exists()
    after = sorted(
        p.relative_to(data_dir) for p in data_dir.rglob("*") if "catalog.db" not in p.name
    )
    assert [p for p in after if p not in before and "scratch" not in str(p)] == []
    from catalog.audit import AuditLog
    from catalog.database import make_engine, session_factory

    engine = make_engine(f"sqlite:///{data_dir / 'catalog.db'}")
    events = AuditLog(session_factory(engine)).recent(limit=50, actor=cid)
    engine.dispose()
    refused = [e for e in events if e.action == "query.run" and e.outcome == "refused"]
    assert len(refused) == len(HOSTILE)
    assert all(e.detail["sql"] for e in refused)


def test_cli_bad_input_is_one_clear_line_and_writes_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "cli"
    cases = [
        (["TW", "71234567"], "unknown region 'TW'"),
        (["SZ", "91440300MA5G7K3P7Q"], "not a valid Unified Social Credit Code"),
        (["HK", "7123456"], "old Companies Registry number"),
    ]
    for (region, registration), needle in cases:
        result = cli(
            data_dir, "admin", "create-org", "Bad Org", "bad_org", "provider", region, registration
        )
        assert result.returncode == 1, result.stdout
        assert needle in result.stderr and "Traceback" not in result.stderr
    listed = cli(data_dir, "admin", "list-orgs")
    assert listed.returncode == 0 and json.loads(listed.stdout) == []
