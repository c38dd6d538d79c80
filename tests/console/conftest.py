"""Console fixtures: one real gateway over HTTP for all console tests (uvicorn on a free port,
real S3 when active, real catalog, the real ingest worker), and signed-in console sessions.

``ConsoleStack.session_cookie`` seals a session cookie around a real access token (from
the real token endpoint) the same way ``/console/auth/callback`` does after the
authorization-code flow, so page tests need not repeat the login; the login flow has its
own tests.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from catalog.storage.seaweed import free_ports
from gateway.console.session import SESSION_COOKIE, ConsoleSession, SessionCodec
from tests.conftest import make_settings
from tests.factories import ENERGY_CSV, Caller, make_caller, make_dataset

if TYPE_CHECKING:
    from gateway.services import Platform
    from gateway.settings import PlatformSettings


@dataclass
class ConsoleStack:
    url: str
    settings: PlatformSettings
    platform: Platform
    codec: SessionCodec

    def http(self, caller: Caller | None = None, **headers: str) -> httpx.Client:
        """A plain HTTP client, signed in as ``caller`` when given (no redirects followed)."""
        client = httpx.Client(base_url=self.url, timeout=60, headers=headers)
        if caller is not None:
            client.cookies.set(SESSION_COOKIE, self.session_cookie(caller)[0])
        return client

    def session_cookie(self, caller: Caller) -> tuple[str, str]:
        """The sealed session of ``caller`` and its CSRF token."""
        session = ConsoleSession(access_token=caller.token, expires_at=time.time() + 600)
        return self.codec.seal(asdict(session)), session.csrf

    def caller(self, *, role: str, region: str) -> Caller:
        with httpx.Client(base_url=self.url, timeout=60) as http:
            return make_caller(self.platform, http, role=role, region=region)


def _backend() -> str:
    return "s3" if "s3" in os.environ.get("ACTIVE_BACKENDS", "local,s3") else "local"


@pytest.fixture(scope="session")
def console_stack(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[ConsoleStack]:
    from gateway.server import make_server
    from gateway.services import build_platform

    backend = _backend()
    weed = request.getfixturevalue("seaweed") if backend == "s3" else None
    data_dir = tmp_path_factory.mktemp("console") / "data"
    settings = make_settings(data_dir, backend=backend, seaweed=weed, port=free_ports(1)[0])
    platform = build_platform(settings)
    # uvicorn on a thread; ingest jobs run on the app's in-process worker thread (the same
    # worker code as `datashare worker`, without a process to boot per test session)
    server = make_server(settings, platform)
    thread = threading.Thread(target=server.run, name="console-uvicorn", daemon=True)
    thread.start()
    _wait_ready(settings.public_url, thread)
    secret = settings.secret(settings.gateway.url_signing_secret, "url_signing_secret")
    stack = ConsoleStack(settings.public_url, settings, platform, SessionCodec(secret))
    _warm_up_ingest(stack)
    try:
        yield stack
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        platform.close()


def _wait_ready(url: str, thread: threading.Thread, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if not thread.is_alive():
            raise RuntimeError(f"the console's gateway did not start on {url}")
        time.sleep(0.05)
    raise RuntimeError(f"the console's gateway was not ready within {timeout:.0f} s")


def _warm_up_ingest(stack: ConsoleStack) -> None:
    """Queue one small job at once: the ingest worker process boots and imports its
    libraries while the first tests run, instead of inside the first upload test."""
    provider = stack.caller(role="provider", region="GZ")
    with stack.http() as http:
        dataset = make_dataset(http, provider)
        response = http.post(
            f"/v1/datasets/{dataset['id']}/uploads?filename=warm-up.csv",
            content=ENERGY_CSV,
            headers=provider.headers,
        )
        assert response.status_code == 202, response.text


def form(csrf: str, **values: Any) -> dict[str, Any]:
    return {"csrf": csrf, **values}
