"""docker-compose.yml, docs and the Makefile stay true to the code (no Docker engine runs here)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from gateway.settings import PlatformSettings
from gateway.settings_doc import render

ROOT = Path(__file__).resolve().parents[1]


def settings_env_names() -> set[str]:
    return set(re.findall(r"`(DATASHARE_[A-Z0-9_<>]+)`", render()))


def env_known(name: str, known: set[str]) -> bool:
    generic = re.sub(r"__REGIONS__(GZ|SZ|DG|HK|MO)__", "__REGIONS__<REGION>__", name)
    return generic in known


def test_every_compose_datashare_variable_is_a_settings_field() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    known = settings_env_names()
    seen = 0
    for name, service in compose["services"].items():
        for key in service.get("environment") or {}:
            if key.startswith("DATASHARE_"):
                seen += 1
                assert env_known(key, known), f"{name}: {key} is not a PlatformSettings field"
    assert seen >= 10


def test_compose_images_are_pinned_and_the_stack_is_complete() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "minio", "buckets", "migrate", "gateway"} <= set(services)
    for name, service in services.items():
        image = service.get("image", "")
        tag = image.rpartition(":")[2] if ":" in image else ""
        assert tag and tag != "latest" and re.search(r"\d", tag), (
            f"{name}: image {image!r} is not pinned"
        )
    assert services["gateway"]["environment"]["DATASHARE_ENVIRONMENT"] == "prod"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:\d+\.\d+\.\d+-", dockerfile, re.M)


def test_configuration_reference_is_generated_from_the_settings() -> None:
    committed = (ROOT / "docs" / "configuration.md").read_text()
    assert committed == render(), (
        "docs/configuration.md is stale: python -m gateway.settings_doc > docs/configuration.md"
    )


def test_every_settings_field_is_documented_with_a_description() -> None:
    missing = [
        line
        for line in render().splitlines()
        if line.startswith("| `DATASHARE_") and line.endswith("|  |")
    ]
    assert missing == []


def test_env_example_lists_only_real_settings() -> None:
    known = settings_env_names()
    names = re.findall(r"^#?\s*(DATASHARE_[A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M)
    assert names
    assert [n for n in names if not env_known(n, known)] == []


def test_prod_refuses_placeholder_secrets() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="DATASHARE_OAUTH__KEY_SECRET"):
        PlatformSettings(environment="prod", _env_file=None)


def test_readme_shows_the_two_commands_and_the_tour_routes() -> None:
    readme = (ROOT / "README.md").read_text()
    for needle in (
        "make demo",
        "make test",
        "/oauth/token",
        "/v1/datasets",
        "/uploads",
        "/v1/jobs/",
        "/v1/query",
    ):
        assert needle in readme, needle
    assert "make test" in (ROOT / ".ci" / "run").read_text()
