"""The ``datashare`` command: serve, demo, ingest, query, admin."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from gateway.settings import PlatformSettings

app = typer.Typer(help="GBA Industrial Data Exchange.", no_args_is_help=True, add_completion=False)
admin = typer.Typer(
    help="Administer organisations, OAuth clients and grants.", no_args_is_help=True
)
app.add_typer(admin, name="admin")
out = Console()
err = Console(stderr=True)

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="Data directory (default ./.datashare).")
]
Host = Annotated[str | None, typer.Option(help="Interface to bind (default 127.0.0.1).")]
Port = Annotated[int | None, typer.Option(help="Port to bind (default 8000).")]


@contextmanager
def reported(*also: type[Exception]) -> Iterator[None]:
    """Print a platform (or configuration) error as one readable line and exit 1."""
    from catalog.errors import PlatformError

    try:
        yield
    except PlatformError as exc:
        err.print(f"[red]{exc.code}:[/red] {exc.message}")
        raise typer.Exit(1) from None
    except also as exc:
        err.print(f"[red]cannot start:[/red] {exc}")
        raise typer.Exit(1) from None


def load_settings(
    data_dir: Path | None = None, host: str | None = None, port: int | None = None
) -> PlatformSettings:
    overrides: dict[str, Any] = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    try:
        return PlatformSettings(**overrides)
    except ValueError as exc:
        err.print(f"[red]configuration error:[/red] {exc}")
        err.print(
            "Settings come from DATASHARE_* environment variables and .env; "
            "see docs/configuration.md"
        )
        raise typer.Exit(2) from None


@app.command()
def serve(data_dir: DataDir = None, host: Host = None, port: Port = None) -> None:
    """Run the gateway (starts an embedded S3 server when none is configured)."""
    from gateway.server import run_server

    with reported(ValueError):
        run_server(load_settings(data_dir, host, port))


@app.command()
def demo(
    data_dir: DataDir = None,
    host: Host = None,
    port: Port = None,
    exit_after_load: Annotated[bool, typer.Option(help="Stop once the data is loaded.")] = False,
) -> None:
    """Start the stack, load sample datasets from all five regions, print credentials."""
    from gateway.demo import run_demo

    with reported(ValueError):
        run_demo(load_settings(data_dir, host, port), exit_after_load=exit_after_load)


def _client(gateway: str | None, client_id: str | None, client_secret: str | None) -> Any:
    from gateway.client import DatashareClient

    url = gateway or os.environ.get("DATASHARE_GATEWAY", "http://127.0.0.1:8000")
    cid = client_id or os.environ.get("DATASHARE_CLIENT_ID")
    secret = client_secret or os.environ.get("DATASHARE_CLIENT_SECRET")
    if not cid or not secret:
        err.print(
            "[red]need client credentials:[/red] --client-id/--client-secret or "
            "DATASHARE_CLIENT_ID/DATASHARE_CLIENT_SECRET (see demo-credentials.json)"
        )
        raise typer.Exit(2)
    return DatashareClient(url, cid, secret)


Gateway = Annotated[str | None, typer.Option(help="Gateway URL (env DATASHARE_GATEWAY).")]
ClientId = Annotated[str | None, typer.Option(help="OAuth client id (env DATASHARE_CLIENT_ID).")]
ClientSecret = Annotated[
    str | None, typer.Option(help="OAuth client secret (env DATASHARE_CLIENT_SECRET).")
]


@app.command()
def ingest(
    dataset_id: str,
    file: Path,
    encoding: str = "utf-8",
    gateway: Gateway = None,
    client_id: ClientId = None,
    client_secret: ClientSecret = None,
) -> None:
    """Upload FILE to a dataset through the gateway and wait for the job."""
    from gateway.client import GatewayError

    with _client(gateway, client_id, client_secret) as client:
        try:
            job = client.upload(dataset_id, file, encoding=encoding)
            with out.status(f"job {job['id']}: validating…"):
                job = client.wait_job(job["id"])
        except GatewayError as exc:
            err.print(f"[red]{exc.code}:[/red] {exc.message}")
            raise typer.Exit(1) from None
    out.print_json(json.dumps(job))
    if job["status"] == "failed":
        raise typer.Exit(1)


@app.command()
def query(
    sql: str,
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json")] = "table",
    gateway: Gateway = None,
    client_id: ClientId = None,
    client_secret: ClientSecret = None,
) -> None:
    """Run a governed SQL query through the gateway."""
    from gateway.client import GatewayError

    with _client(gateway, client_id, client_secret) as client:
        try:
            table = client.query(sql)
        except GatewayError as exc:
            err.print(f"[red]{exc.code}:[/red] {exc.message}")
            raise typer.Exit(1) from None
    if fmt == "csv":
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, sys.stdout.buffer)
    elif fmt == "json":
        out.print_json(json.dumps(table.to_pylist(), default=str, ensure_ascii=False))
    else:
        out.print(table.to_pandas().to_string(max_rows=50))


@admin.command("create-org")
def create_org(
    name: str, slug: str, kind: str, region: str, registration_id: str, data_dir: DataDir = None
) -> None:
    """Register an organisation.

    KIND: provider, consumer, steward or operator. REGION: GZ, SZ, DG, HK or MO.
    """
    from gateway.admin import admin_session

    with reported(), admin_session(load_settings(data_dir)) as ctx:
        org = ctx.registry.create_org(
            name=name, slug=slug, kind=kind, region=region, registration_id=registration_id
        )
        ctx.audit.append(
            actor="cli",
            action="org.create",
            resource=f"org:{org.id}",
            outcome="created",
            detail={"slug": slug, "region": org.region},
        )
    out.print_json(
        json.dumps(
            {
                "id": org.id,
                "slug": org.slug,
                "region": org.region,
                "registration_id": org.registration_id,
            }
        )
    )


@admin.command("list-orgs")
def list_orgs(data_dir: DataDir = None) -> None:
    """List organisations."""
    from gateway.admin import admin_session

    with reported(), admin_session(load_settings(data_dir)) as ctx:
        orgs = [
            {"id": o.id, "slug": o.slug, "name": o.name, "kind": o.kind, "region": o.region}
            for o in ctx.registry.list_orgs()
        ]
    out.print_json(json.dumps(orgs, ensure_ascii=False))


@admin.command("create-client")
def create_client(
    org: str,
    name: str,
    role: Annotated[list[str], typer.Option(help="provider, consumer, steward, admin")],
    data_dir: DataDir = None,
) -> None:
    """Create an OAuth client for an organisation; prints {"client_id", "client_secret"} once."""
    from gateway.admin import admin_session

    with reported(), admin_session(load_settings(data_dir)) as ctx:
        client_id, secret = ctx.create_client(org, name, role)
    sys.stdout.write(json.dumps({"client_id": client_id, "client_secret": secret}) + "\n")


@admin.command("grant")
def grant(
    dataset: str,
    org: str,
    column: Annotated[list[str] | None, typer.Option()] = None,
    purpose: str = "analytics",
    data_dir: DataDir = None,
) -> None:
    """Grant organisation ORG read access to DATASET (id or org.name), or to some columns."""
    from gateway.admin import admin_session

    with reported(), admin_session(load_settings(data_dir)) as ctx:
        record = ctx.grant(dataset, org, column or None, purpose)
    out.print_json(
        json.dumps(
            {
                "grant_id": record.id,
                "dataset_id": record.dataset_id,
                "org_id": record.org_id,
                "columns": record.columns,
            }
        )
    )


if __name__ == "__main__":  # python -m gateway.cli
    app()
