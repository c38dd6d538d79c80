"""``datashare demo``: the whole stack with sample partner data from all five regions.

Starts the embedded S3 server and the gateway, registers one provider in each
region plus an AI-lab consumer and a steward, uploads the bundled sample files
(each in its region's real encoding, with a few realistic defects) through the
public API, grants the consumer the non-personal columns, and writes
``<data-dir>/demo-credentials.json`` once everything is loaded. Re-running it
reuses what is there: identical uploads are recognised by their hash.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from catalog.errors import NotFound
from catalog.regions import Region
from catalog.users import find_user
from gateway.admin import AdminContext
from gateway.client import DatashareClient, GatewayError
from gateway.demo_data import (
    SAMPLE_METADATA,
    SampleDataset,
    SampleOrg,
    sample_datasets,
    sample_orgs,
    write_samples,
)
from gateway.observability import configure_logging
from gateway.server import BackgroundServer
from gateway.services import Platform, build_platform
from gateway.settings import PlatformSettings
from policies.grants import record_grant

console = Console()
FIRST_QUERY = (
    "SELECT meter_id, ts_local, kwh_interval FROM dg_songhu_precision.dg_energy_metering LIMIT 5"
)
ROLE_BY_KIND = {"provider": "provider", "consumer": "consumer", "steward": "steward"}


def run_demo(settings: PlatformSettings, *, exit_after_load: bool = False) -> Path:
    configure_logging("WARNING", json_format=False)
    started = time.monotonic()
    with console.status("starting object storage and the catalog…"):
        platform = build_platform(settings)
    server = BackgroundServer(settings, platform)
    try:
        with console.status(f"starting the gateway on {settings.public_url}…"):
            server.start()
        path = load_demo(settings, platform)
        _print_welcome(settings, path, time.monotonic() - started)
        if not exit_after_load:
            console.print("Press Ctrl-C to stop.")
            _wait_for_signal()
        return path
    finally:
        with console.status("stopping…"):
            server.stop()
            platform.close()


def load_demo(settings: PlatformSettings, platform: Platform) -> Path:
    admin = AdminContext(platform.sessions, platform.registry, platform.grants, platform.audit)
    clients = _clients(settings, admin)
    ensure_console_app(settings, platform, admin, next(iter(clients))["org"])
    by_org = {c["org"]: c for c in clients}
    samples = sample_datasets()
    write_samples(settings.data_dir / "samples")
    for sample in samples:
        _load_sample(settings.public_url, by_org[sample.org.slug], sample)
    consumer = next(o for o in sample_orgs() if o.kind == "consumer")
    for sample in samples:
        _grant_open_columns(platform, admin, sample, consumer)
    path = settings.data_dir / "demo-credentials.json"
    users = _users(settings, admin)
    document = {"gateway": settings.public_url, "clients": clients, "users": users}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(document, handle, indent=2, ensure_ascii=False)
    return path


def _clients(settings: PlatformSettings, admin: AdminContext) -> list[dict[str, Any]]:
    """Reuse the clients of an earlier run when they still work, else create them."""
    path = settings.data_dir / "demo-credentials.json"
    if path.is_file():
        previous = json.loads(path.read_text())["clients"]
        if all(_works(settings.public_url, c) for c in previous):
            return list(previous)
    clients = []
    for org in sample_orgs():
        record = _ensure_org(admin, org)
        role = ROLE_BY_KIND[org.kind]
        client_id, secret = admin.create_client(record.slug, f"{org.name} demo client", [role])
        clients.append(
            {
                "name": org.name,
                "client_id": client_id,
                "client_secret": secret,
                "role": role,
                "org": org.slug,
                "region": org.region,
            }
        )
    return clients


def _users(settings: PlatformSettings, admin: AdminContext) -> list[dict[str, Any]]:
    """One console user per demo organisation (user name = the organisation's slug), with the
    organisation's role; the demo steward stewards every region. Passwords of an earlier run
    are kept while the user exists; otherwise a new one is generated."""
    path = settings.data_dir / "demo-credentials.json"
    previous: dict[str, dict[str, Any]] = {}
    if path.is_file():
        previous = {u["username"]: u for u in json.loads(path.read_text()).get("users", [])}
    users = []
    for org in sample_orgs():
        role = ROLE_BY_KIND[org.kind]
        with admin.sessions() as session:
            exists = find_user(session, org.slug) is not None
        if exists and org.slug in previous:
            users.append(previous[org.slug])
            continue
        if exists:
            _, password = admin.reset_password(org.slug)
        else:
            regions = [region.value for region in Region] if role == "steward" else []
            _, password = admin.create_user(
                org.slug, org.slug, [role], steward_regions=regions, display_name=org.name
            )
        users.append(
            {
                "username": org.slug,
                "password": password,
                "role": role,
                "org": org.slug,
                "region": org.region,
            }
        )
    return users


def _works(url: str, client: dict[str, Any]) -> bool:
    try:
        with DatashareClient(url, client["client_id"], client["client_secret"]) as probe:
            probe.token()
        return True
    except GatewayError:
        return False


def _ensure_org(admin: AdminContext, org: SampleOrg) -> Any:
    try:
        return admin.registry.find_org(org.slug)
    except NotFound:
        return admin.registry.create_org(
            name=org.name,
            slug=org.slug,
            kind=org.kind,
            region=org.region,
            registration_id=org.registration_id,
        )


def _describe(api: DatashareClient, dataset_id: str, sample: SampleDataset) -> None:
    """Give a sample dataset its trilingual catalog metadata (once: an edited card stays)."""
    metadata = SAMPLE_METADATA.get(sample.name)
    card = api.request("GET", f"/v1/datasets/{dataset_id}/metadata").json()
    if metadata is not None and card["revision"] == 0:
        api.request(
            "PATCH", f"/v1/datasets/{dataset_id}/metadata", json={**metadata, "base_revision": 0}
        )


def _load_sample(url: str, client: dict[str, Any], sample: SampleDataset) -> None:
    with DatashareClient(url, client["client_id"], client["client_secret"]) as api:
        existing = {d["sql_name"]: d for d in api.datasets()}
        dataset = existing.get(f"{sample.org.slug}.{sample.name}") or api.create_dataset(
            {
                "name": sample.name,
                "title": f"{sample.title} · {sample.title_zh}",
                "description": sample.description,
                "classification": sample.classification,
                "contract": sample.contract.model_dump(mode="json", exclude_none=True),
            }
        )
        _describe(api, dataset["id"], sample)
        staged = Path(os.environ.get("TMPDIR", "/tmp")) / f"datashare-demo-{sample.filename}"
        staged.write_bytes(sample.content)
        try:
            with console.status(f"loading {sample.org.region} {sample.name} ({sample.encoding})…"):
                job = api.wait_job(
                    api.upload(dataset["id"], staged, encoding=sample.encoding)["id"]
                )
        finally:
            staged.unlink(missing_ok=True)
    state = {"succeeded": "[green]loaded[/green]", "duplicate": "[cyan]already loaded[/cyan]"}
    console.print(
        f"  {sample.org.region}  {sample.org.slug}.{sample.name:<28} "
        f"{state.get(job['status'], '[red]' + job['status'] + '[/red]')}  "
        f"{job['rows_valid']} rows, {job['rows_rejected']} quarantined"
    )


def _grant_open_columns(
    platform: Platform, admin: AdminContext, sample: SampleDataset, consumer: SampleOrg
) -> None:
    dataset = admin.dataset(f"{sample.org.slug}.{sample.name}")
    org = admin.registry.find_org(consumer.slug)
    if any(g.dataset_id == dataset.id for g in platform.grants.live_for_org(org.id)):
        return
    columns = [c.name for c in sample.contract.columns if c.pi == "non_pi"]
    record_grant(
        platform.grants,
        platform.audit,
        actor="demo",
        dataset=dataset,
        consumer=org,
        columns=columns,
        purpose="model_training",
    )


def _print_welcome(settings: PlatformSettings, path: Path, seconds: float) -> None:
    clients = json.loads(path.read_text())["clients"]
    table = Table(title="Demo clients (also in " + str(path) + ")")
    for column in ("role", "org", "region", "client_id", "client_secret"):
        table.add_column(column, overflow="fold")
    for c in clients:
        table.add_row(c["role"], c["org"], c["region"], c["client_id"], c["client_secret"])
    console.print(table)
    users = Table(title=f"Console users (sign in at {settings.public_url}/oauth/login)")
    for column in ("role", "org", "username", "password"):
        users.add_column(column, overflow="fold")
    for u in json.loads(path.read_text()).get("users", []):
        users.add_row(u["role"], u["org"], u["username"], u["password"])
    console.print(users)
    consumer = next(c for c in clients if c["role"] == "consumer")
    url = settings.public_url
    console.print(
        f"\n[bold]Gateway ready at {url}[/bold] (loaded in {seconds:.0f} s). Try, as the AI team:\n"
    )
    console.print(
        f"  TOKEN=$(curl -s -u '{consumer['client_id']}:{consumer['client_secret']}' "
        f"-d grant_type=client_credentials {url}/oauth/token | python3 -c 'import json,sys; "
        'print(json.load(sys.stdin)["access_token"])\')\n'
        f'  curl -s -H "Authorization: Bearer $TOKEN" {url}/v1/datasets\n'
        f"  curl -s -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' "
        f'-d \'{{"sql": "{FIRST_QUERY}"}}\' {url}/v1/query\n',
        soft_wrap=True,
    )


def _wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass


def ensure_console_app(
    settings: PlatformSettings, platform: Platform, admin: AdminContext, org: str
) -> None:
    """Register the web console as a public app (authorization code + PKCE) once."""
    from gateway.console.auth import CALLBACK_PATH
    from gateway.console.registration import find_console_client

    callback = f"{settings.public_url}{CALLBACK_PATH}"
    if find_console_client(platform.sessions, callback) is None:
        admin.register_app(org, "Web console", [callback])
