"""OAuth fixtures: a real SQLite catalog, the OAuth routes of the real app served by uvicorn
on a loopback port (so independent HTTP clients talk to it), users and registered clients."""

from __future__ import annotations

import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import uvicorn
from fastapi import Depends, FastAPI, Request
from sqlalchemy.orm import Session, sessionmaker

from catalog.audit import AuditLog
from catalog.clients import register_client
from catalog.database import make_engine, session_factory, upgrade_to_head
from catalog.models import Organisation
from catalog.users import create_user
from gateway.errors import install_error_handlers
from gateway.oauth.routes import router
from gateway.oauth.scopes import SCOPES_SUPPORTED
from gateway.oauth.server import Lifetimes
from gateway.oauth.service import AbuseLimits, OAuthService
from policies.model import Principal

KEY_SECRET = b"oauth-flow-tests-" + secrets.token_bytes(16)
AUDIENCE = "datashare-gateway"
REDIRECT = "http://127.0.0.1:8765/callback"
PASSWORD = "correct horse battery"
REPORTS_RESOURCE = "https://reports.example/api"  # another resource server (RFC 8707)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveIssuer:
    url: str
    service: OAuthService
    sessions: sessionmaker[Session]
    audit: AuditLog
    server: uvicorn.Server


@dataclass(frozen=True)
class Person:
    id: str
    username: str
    password: str
    org_id: str
    org_slug: str


@dataclass(frozen=True)
class Client:
    client_id: str
    secret: str | None


def make_org(sessions: sessionmaker[Session], region: str = "HK", slug: str | None = None) -> Any:
    tag = secrets.token_hex(3)
    registration = {"HK": ("71234567", "hk_brn"), "SZ": ("91440300MA5G7K3P7P", "uscc")}[region]
    with sessions.begin() as session:
        org = Organisation(
            slug=slug or f"org_{tag}",
            name=f"Org {tag}",
            kind="provider",
            region=region,
            registration_id=registration[0],
            registration_scheme=registration[1],
        )
        session.add(org)
        session.flush()
        return org


def build_app(service: OAuthService) -> FastAPI:
    """The OAuth router plus one protected route, as the gateway serves them."""
    app = FastAPI()
    app.state.oauth = service
    install_error_handlers(app)
    app.include_router(router)

    def principal(request: Request) -> Principal:
        _scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return service.authenticate(token.strip())

    @app.get("/whoami")
    def whoami(caller: Principal = Depends(principal)) -> dict[str, Any]:  # noqa: B008
        return {"sub": caller.subject, "org": caller.org_slug, "scopes": sorted(caller.scopes)}

    return app


def start_issuer(tmp_path: Path, name: str = "issuer", **overrides: Any) -> Iterator[LiveIssuer]:
    engine = make_engine(f"sqlite:///{tmp_path / f'{name}.db'}")
    upgrade_to_head(engine)
    sessions = session_factory(engine)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    audit = AuditLog(sessions)
    options: dict[str, Any] = {
        "issuer": url,
        "audience": AUDIENCE,
        "key_secret": KEY_SECRET,
        "scopes_supported": list(SCOPES_SUPPORTED),
        "audit": audit,
        "lifetimes": Lifetimes(),
        **overrides,
    }
    service = OAuthService(sessions, **options)
    config = uvicorn.Config(
        build_app(service), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the test issuer did not start")
        time.sleep(0.02)
    try:
        yield LiveIssuer(url, service, sessions, audit, server)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        engine.dispose()


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveIssuer]:
    """One live issuer per module (tests register their own clients and users); limits high
    enough for a module's logins from one address (the rate-limit tests start their own)."""
    limits = AbuseLimits(token_per_client=1000, token_per_ip=1000, login_per_ip=1000)
    yield from start_issuer(
        tmp_path_factory.mktemp("issuer"), limits=limits, resources=(REPORTS_RESOURCE,)
    )


@pytest.fixture
def make_person(issuer: LiveIssuer) -> Callable[..., Person]:
    def make(roles: tuple[str, ...] = ("consumer",), regions: tuple[str, ...] = ()) -> Person:
        org = make_org(issuer.sessions)
        username = f"user_{secrets.token_hex(3)}"
        with issuer.sessions.begin() as session:
            user = create_user(
                session,
                org_id=org.id,
                username=username,
                password=PASSWORD,
                display_name="陳大文 Chan Tai Man",
                roles=list(roles),
                steward_regions=list(regions),
            )
            return Person(user.id, username, PASSWORD, org.id, org.slug)

    return make


@pytest.fixture
def person(make_person: Callable[..., Person]) -> Person:
    return make_person()


@pytest.fixture
def make_client(issuer: LiveIssuer) -> Callable[..., Client]:
    def make(**registration: Any) -> Client:
        org = make_org(issuer.sessions, region="SZ")
        options: dict[str, Any] = {
            "client_type": "public",
            "auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "redirect_uris": [REDIRECT],
            "roles": ["consumer"],
            "scope": " ".join(SCOPES_SUPPORTED),
            **registration,
        }
        with issuer.sessions.begin() as session:
            client, secret = register_client(session, org_id=org.id, name="console", **options)
            return Client(client.client_id, secret)

    return make


@pytest.fixture
def console(make_client: Callable[..., Client]) -> Client:
    return make_client()


# --- browser steps -----------------------------------------------------------------------


def browser(issuer: LiveIssuer) -> httpx.Client:
    return httpx.Client(base_url=issuer.url, follow_redirects=False, timeout=10)


def csrf_from(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def sign_in(
    http: httpx.Client, authorize_url: str, who: Person, password: str | None = None
) -> httpx.Response:
    """Follow /oauth/authorize → /oauth/login, post the form; the response after login."""
    first = http.get(authorize_url)
    assert first.status_code == 303, first.text
    login_url = first.headers["location"]
    assert login_url.startswith("/oauth/login?")
    page = http.get(login_url)
    assert page.status_code == 200
    authorize = urlsplit(login_url).query
    return http.post(
        "/oauth/login",
        data={
            "username": who.username,
            "password": password or who.password,
            "csrf_token": csrf_from(page.text),
            "authorize": authorize,
        },
    )


def authorize_code(http: httpx.Client, authorize_url: str, who: Person) -> dict[str, str]:
    """Sign in and return the redirect's query parameters (code, state or error)."""
    after_login = sign_in(http, authorize_url, who)
    assert after_login.status_code == 303, after_login.text
    back = http.get(after_login.headers["location"])
    assert back.status_code == 302, back.text
    return redirect_params(back)


def redirect_params(response: httpx.Response) -> dict[str, str]:
    location = response.headers["location"]
    assert location.startswith(REDIRECT), location
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}
