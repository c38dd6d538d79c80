"""`datashare admin` commands for organisations, users, apps and keys."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from gateway.cli import app


def run(*args: str, env: dict[str, str] | None = None) -> str:
    result = CliRunner().invoke(app, ["admin", *args], env=env)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_admin_cli_users_apps_and_keys(tmp_path) -> None:
    data = ["--data-dir", str(tmp_path / "data")]
    run("create-org", "Macao Cold Chain", "mo_cold", "provider", "MO", "12345(SO)", *data)
    created = json.loads(run("create-user", "mo_cold", "ana", "--role", "provider", *data))
    assert created["username"] == "ana" and len(created["password"]) >= 12
    chosen = "a chosen passphrase 123"
    steward = json.loads(
        run(
            "create-user",
            "mo_cold",
            "wong",
            "--role",
            "steward",
            "--region",
            "MO",
            *data,
            env={"DATASHARE_NEW_PASSWORD": chosen},
        )
    )
    assert steward["password"] == chosen
    listed = json.loads(run("list-users", *data))
    assert {u["username"]: u["steward_regions"] for u in listed} == {"ana": [], "wong": ["MO"]}
    assert all("password" not in json.dumps(u) for u in listed)
    appl = json.loads(
        run("register-app", "mo_cold", "Console", "--redirect-uri", "https://c.example/cb", *data)
    )
    assert appl["client_id"].startswith("dsc_") and appl["client_secret"] is None
    first = json.loads(run("rotate-keys", *data))
    second = json.loads(run("rotate-keys", *data))
    assert len({first["kid"], first["id_token_kid"], second["kid"], second["id_token_kid"]}) == 4
    reset = json.loads(run("reset-password", "ana", *data))
    assert reset["password"] != created["password"]
    run("disable-user", "ana", *data)
    assert next(u for u in json.loads(run("list-users", *data)) if u["username"] == "ana")[
        "disabled"
    ]


def test_admin_cli_refuses_bad_input_with_one_line(tmp_path) -> None:
    data = ["--data-dir", str(tmp_path / "data")]
    run("create-org", "HK Lab", "hk_lab", "consumer", "HK", "71234567", *data)
    result = CliRunner().invoke(
        app, ["admin", "create-user", "hk_lab", "x y", "--role", "consumer", *data]
    )
    assert result.exit_code == 1 and "invalid_input" in result.output
    result = CliRunner().invoke(
        app,
        [
            "admin",
            "register-app",
            "hk_lab",
            "App",
            "--redirect-uri",
            "http://evil.example/cb",
            *data,
        ],
    )
    assert result.exit_code == 1 and "https" in result.output
