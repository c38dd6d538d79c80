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

from gateway.schemas import UploadMode
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


@app.command()
def worker(
    data_dir: DataDir = None,
    slots: Annotated[
        int | None,
        typer.Option(min=1, max=32, help="Jobs at once (default DATASHARE_INGEST__WORKERS)."),
    ] = None,
    settings_stdin: Annotated[bool, typer.Option(hidden=True)] = False,
) -> None:
    """Run ingest jobs from the catalog's queue until SIGTERM (then hand back unfinished ones).

    Any number of workers, on any machines, may share one catalog and object store."""
    from gateway.server import run_worker

    settings = _settings_from_stdin() if settings_stdin else load_settings(data_dir)
    with reported(ValueError):
        run_worker(settings, slots=slots)


def _settings_from_stdin() -> PlatformSettings:
    """An embedded worker's settings, sent by its gateway process over stdin."""
    try:
        # verbatim: no environment or .env of this process may change what the gateway sent
        return PlatformSettings.model_validate(json.loads(sys.stdin.read()))
    except ValueError as exc:
        err.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from None


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


Wait = Annotated[
    bool, typer.Option("--wait/--no-wait", help="Follow the job to its end, or just queue it.")
]


@app.command()
def ingest(
    dataset_id: str,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    encoding: str = "utf-8",
    fmt: Annotated[
        str | None, typer.Option("--format", help="csv, tsv, jsonl, parquet or xlsx.")
    ] = None,
    mode: Annotated[
        UploadMode, typer.Option(help="replace the current version, or append to it.")
    ] = UploadMode.REPLACE,
    sheet: Annotated[str | None, typer.Option(help="xlsx: the sheet to read.")] = None,
    header_row: Annotated[int | None, typer.Option(help="xlsx: the header's row.")] = None,
    wait: Wait = True,
    gateway: Gateway = None,
    client_id: ClientId = None,
    client_secret: ClientSecret = None,
) -> None:
    """Upload FILE to a dataset and follow its job; exit code 1 if the job fails.

    Progress (bytes read, rows, rate, ETA, phase) goes to stderr, the final job as JSON to
    stdout."""
    from gateway.client import GatewayError

    with _client(gateway, client_id, client_secret) as client:
        try:
            job = client.upload(
                dataset_id,
                file,
                encoding=encoding,
                fmt=fmt,
                mode=mode.value,
                sheet=sheet,
                header_row=header_row,
            )
            job = _follow(client, job) if wait else job
        except GatewayError as exc:
            err.print(f"[red]{exc.code}:[/red] {exc.message}")
            raise typer.Exit(1) from None
    _report(job)


@app.command()
def retry(
    job_id: str,
    wait: Wait = True,
    gateway: Gateway = None,
    client_id: ClientId = None,
    client_secret: ClientSecret = None,
) -> None:
    """Queue a failed ingest job again (e.g. after fixing the dataset's contract)."""
    from gateway.client import GatewayError

    with _client(gateway, client_id, client_secret) as client:
        try:
            job = client.retry_job(job_id)
            job = _follow(client, job) if wait else job
        except GatewayError as exc:
            err.print(f"[red]{exc.code}:[/red] {exc.message}")
            raise typer.Exit(1) from None
    _report(job)


def _follow(client: Any, job: dict[str, Any]) -> dict[str, Any]:
    """Poll the job with a progress bar on stderr: bytes read, rows, rate, ETA, phase."""
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

    if job["status"] not in ("queued", "running"):
        return job
    columns = (
        TextColumn("{task.fields[phase]:<10}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rows]:>12} rows  {task.fields[rate]:>10}  ETA {task.fields[eta]}"),
    )
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task(job["id"], total=100, **_bar_fields(job))

        def update(state: dict[str, Any]) -> None:
            done = 100.0 if state["status"] == "succeeded" else 100 * state["progress"]
            bar.update(task, completed=done, **_bar_fields(state))

        return dict(client.wait_job(job["id"], on_update=update, timeout=24 * 3600))


def _bar_fields(job: dict[str, Any]) -> dict[str, Any]:
    rate, eta = job.get("rows_per_second"), job.get("eta_seconds")
    return {
        "phase": job["phase"] if job["status"] in ("queued", "running") else job["status"],
        "rows": f"{job['rows_read']:,}",
        "rate": f"{rate:,.0f}/s" if rate else "",
        "eta": f"{eta:.0f} s" if eta is not None else "–",
    }


def _report(job: dict[str, Any]) -> None:
    """The job as JSON on stdout; a sentence about it (and the fix, if it failed) on stderr."""
    out.print_json(json.dumps(job))
    status, job_id = job["status"], job["id"]
    if status == "succeeded":
        err.print(
            f"[green]version {job['version']} committed[/green] ({job['mode']}): "
            f"{job['rows_valid']:,} rows valid, {job['rows_rejected']:,} quarantined"
            + (f" (GET /v1/jobs/{job_id}/quarantine)" if job["rows_rejected"] else "")
        )
    elif status == "duplicate":
        err.print(f"[cyan]identical to version {job['version']}[/cyan]: nothing to ingest")
    elif status == "failed":
        error = job.get("error") or {}
        err.print(f"[red]{error.get('code', 'failed')}:[/red] {error.get('message', '')}")
        err.print(
            "a problem in the file: fix it and upload it again; in the dataset's contract or "
            f"the platform: fix that, then `datashare retry {job_id}` runs the same upload again"
        )
        raise typer.Exit(1)
    else:
        err.print(f"job {job_id} is {status}; follow it with GET /v1/jobs/{job_id}")


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
            table = client.query(sql).to_arrow()
        except GatewayError as exc:
            err.print(f"[red]{exc.code}:[/red] {exc.message}")
            raise typer.Exit(1) from None
    if fmt == "csv":  # the API's encoder: text cells starting with = + - @ are neutralised
        from gateway.result_formats import encode_csv

        sys.stdout.buffer.writelines(encode_csv(table.schema, table.to_batches()))
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
        org = ctx.create_org(
            name=name, slug=slug, kind=kind, region=region, registration_id=registration_id
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


@admin.command("create-user")
def create_user(
    org: str,
    username: str,
    role: Annotated[list[str], typer.Option(help="provider, consumer, steward, admin")],
    region: Annotated[
        list[str] | None, typer.Option(help="Regions a steward stewards (GZ, SZ, DG, HK, MO).")
    ] = None,
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    data_dir: DataDir = None,
) -> None:
    """Create a console user of ORG; prints {"user_id", "username", "password"} once.

    The password is generated; set DATASHARE_NEW_PASSWORD to choose it instead."""
    from gateway.admin import admin_session

    chosen = os.environ.get("DATASHARE_NEW_PASSWORD") or None
    with reported(), admin_session(load_settings(data_dir)) as ctx:
        user, password = ctx.create_user(
            org, username, role, steward_regions=region, password=chosen, display_name=name
        )
    sys.stdout.write(
        json.dumps({"user_id": user.id, "username": user.username, "password": password}) + "\n"
    )


@admin.command("list-users")
def list_users(
    org: Annotated[str | None, typer.Option(help="Only this organisation.")] = None,
    data_dir: DataDir = None,
) -> None:
    """List console users (never their password hashes)."""
    from gateway.admin import admin_session

    with reported(), admin_session(load_settings(data_dir)) as ctx:
        users = [
            {
                "id": u.id,
                "username": u.username,
                "org_id": u.org_id,
                "roles": u.roles,
                "steward_regions": u.steward_regions,
                "disabled": u.disabled_at is not None,
            }
            for u in ctx.list_users(org)
        ]
    out.print_json(json.dumps(users, ensure_ascii=False))


@admin.command("disable-user")
def disable_user(user: str, data_dir: DataDir = None) -> None:
    """Stop USER (id or user name) from signing in; tokens already issued expire."""
    from gateway.admin import admin_session

    with reported(), admin_session(load_settings(data_dir)) as ctx:
        ctx.disable_user(user)
    err.print(f"user {user} disabled")


@admin.command("reset-password")
def reset_password(user: str, data_dir: DataDir = None) -> None:
    """Give USER a new generated password (or DATASHARE_NEW_PASSWORD); prints it once."""
    from gateway.admin import admin_session

    chosen = os.environ.get("DATASHARE_NEW_PASSWORD") or None
    with reported(), admin_session(load_settings(data_dir)) as ctx:
        record, password = ctx.reset_password(user, chosen)
    sys.stdout.write(json.dumps({"username": record.username, "password": password}) + "\n")


@admin.command("register-app")
def register_app(
    org: str,
    name: str,
    redirect_uri: Annotated[list[str], typer.Option(help="Exact redirect URI (repeatable).")],
    confidential: Annotated[
        bool, typer.Option(help="A server-side app with a secret (default: public, PKCE only).")
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """Register an app people sign in to (authorization code + PKCE), e.g. the console."""
    from gateway.admin import admin_session

    with reported(), admin_session(load_settings(data_dir)) as ctx:
        client_id, secret = ctx.register_app(org, name, redirect_uri, public=not confidential)
    sys.stdout.write(json.dumps({"client_id": client_id, "client_secret": secret}) + "\n")


@admin.command("rotate-keys")
def rotate_keys(data_dir: DataDir = None) -> None:
    """Sign new access tokens and ID tokens with fresh keys now (one key each). Older keys
    stay in the JWKS until every token they signed has expired; running gateways switch
    within their key refresh interval."""
    from catalog.clients import KeyPurpose, rotate_signing_key
    from gateway.admin import admin_session

    settings = load_settings(data_dir)
    kids: dict[str, str] = {}
    with reported(), admin_session(settings) as ctx, ctx.sessions() as session:
        secret = settings.secret(settings.oauth.key_secret, "oauth_key_secret")
        purposes: tuple[tuple[str, KeyPurpose], ...] = (("kid", "access"), ("id_token_kid", "id"))
        for field_name, purpose in purposes:
            material = rotate_signing_key(session, secret, purpose=purpose)
            kids[field_name] = material.kid
            ctx.audit.append(
                actor="cli", action="key.rotate", resource=f"key:{material.kid}", outcome="rotated"
            )
    sys.stdout.write(json.dumps(kids) + "\n")


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
