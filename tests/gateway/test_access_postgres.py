"""The access workflow's PostgreSQL path: request, approval, a governed query, the delivery
ledger and its yearly sums (numeric on PostgreSQL) and the threshold alert, on the embedded
server. The other access tests run on SQLite; this one re-runs the ledger-heavy test here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import fresh_postgres_url, make_settings
from tests.gateway.test_access_workflow import (  # the test and its fixture, re-used
    test_provider_sees_who_uses_its_data_and_why as _usage_check,
)
from tests.gateway.test_access_workflow import world  # noqa: F401 - a fixture, used by name


@pytest.fixture
def settings(tmp_path: Path, postgres_server: str) -> Any:
    url = fresh_postgres_url(postgres_server)
    return make_settings(tmp_path / "data", backend="local", seaweed=None, catalog_url=url)


def test_usage_ledger_and_counters_on_postgres(client, world) -> None:  # noqa: F811
    _usage_check(client, world)
