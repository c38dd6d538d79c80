"""Console fixtures: one real gateway over HTTP for all console tests (uvicorn on a free port,
real S3 when active, real catalog, the real ingest worker), and signed-in console sessions.

``ConsoleStack.session_cookie`` seals a session cookie around a real access token (from
the real token endpoint) the same way ``/console/auth/callback`` does after the
authorization-code flow, so page tests need not repeat the login; the login flow has its
own tests.
"""

from __future__ import annotations

import html
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from catalog.storage.seaweed import free_ports
from gateway.admin import AdminContext
from gateway.console.session import SESSION_COOKIE, ConsoleSession, SessionCodec
from tests.conftest import make_settings
from tests.factories import ENERGY_CSV, Caller, make_caller, make_dataset, make_org, suffix

if TYPE_CHECKING:
    from catalog.models import Organisation
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

    def person(
        self, *, role: str, region: str, kind: str | None = None
    ) -> tuple[str, str, Organisation]:
        """A console user (username, password) with ``role`` in a new organisation;
        stewards steward their organisation's region."""
        admin = AdminContext(
            self.platform.sessions,
            self.platform.registry,
            self.platform.grants,
            self.platform.audit,
        )
        org = make_org(self.platform, region=region, kind=kind or role)
        username = f"{role}_{suffix()}"
        regions = [region] if role == "steward" else None
        _user, password = admin.create_user(
            org.slug, username, [role], steward_regions=regions, display_name=username
        )
        return username, password, org

    def sign_in(self, username: str, password: str, *, next_path: str = "/console") -> httpx.Client:
        """A client signed in through the real flow: /console/login → /oauth/authorize →
        the login form → the code → /console/auth/callback."""
        client = httpx.Client(base_url=self.url, timeout=60, follow_redirects=True)
        page = client.get("/console/login", params={"next": next_path})
        assert page.status_code == 200 and "/oauth/login" in str(page.url), page.text[:500]
        fields = dict(
            re.findall(r'name="(csrf_token|authorize|ui_locales)" value="([^"]*)"', page.text)
        )
        fields = {k: html.unescape(v) for k, v in fields.items()}
        done = client.post(
            "/oauth/login", data={**fields, "username": username, "password": password}
        )
        assert done.status_code == 200, done.text[:500]
        assert str(done.url).startswith(f"{self.url}{next_path}"), done.url
        return client

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
    _register_console(stack, _warm_up_ingest(stack))
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


def _register_console(stack: ConsoleStack, org: str) -> None:
    """What an operator does once (``datashare admin register-app``)."""
    admin = AdminContext(
        stack.platform.sessions,
        stack.platform.registry,
        stack.platform.grants,
        stack.platform.audit,
    )
    admin.register_app(org, "Web console", [f"{stack.url}/console/auth/callback"])


def _warm_up_ingest(stack: ConsoleStack) -> str:
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
    return provider.org.slug


def form(csrf: str, **values: Any) -> dict[str, Any]:
    return {"csrf": csrf, **values}


# the browser fixtures (playwright over /usr/bin/chromium), shared by the browser test modules
from tests.console.browsing import browser, visit  # noqa: E402, F401
