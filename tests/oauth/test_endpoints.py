"""Revocation, introspection, private_key_jwt, the login page, rate limits and the audit log."""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jws
from joserfc.jwk import ECKey

from catalog.audit import AuditLog
from gateway.oauth.errors import InvalidToken
from gateway.oauth.service import AbuseLimits
from tests.oauth.conftest import REPORTS_RESOURCE, browser, csrf_from, start_issuer
from tests.oauth.test_authorization_code import tokens_for


def machine(make_client, **registration: Any):
    options: dict[str, Any] = {
        "client_type": "confidential",
        "auth_method": "client_secret_basic",
        "grant_types": ["client_credentials"],
        "redirect_uris": [],
        "scope": "datasets:read query",
        **registration,
    }
    return make_client(**options)


def client_token(issuer, who) -> str:
    with browser(issuer) as http:
        response = http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(who.client_id, who.secret),
        )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def events(audit: AuditLog, action: str) -> list[Any]:
    return [event for event in audit.recent(limit=1000) if event.action == action]


# --- revocation (RFC 7009) ---------------------------------------------------------------


def test_revoked_access_token_refused_by_the_validator(issuer, make_client):
    program = machine(make_client)
    token = client_token(issuer, program)
    issuer.service.authenticate(token)
    with browser(issuer) as http:
        response = http.post(
            "/oauth/revoke", data={"token": token}, auth=(program.client_id, program.secret)
        )
        assert response.status_code == 200
        assert http.get("/whoami", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    with pytest.raises(InvalidToken) as refused:
        issuer.service.authenticate(token)
    assert refused.value.reason == "revoked"
    assert any(e.detail.get("jti") for e in events(issuer.audit, "token.revoked"))


def test_revoke_refresh_token_revokes_its_family(issuer, console, person):
    tokens = tokens_for(issuer, console, person)
    with browser(issuer) as http:
        response = http.post(
            "/oauth/revoke",
            data={
                "token": tokens["refresh_token"],
                "token_type_hint": "refresh_token",
                "client_id": console.client_id,
            },
        )
        assert response.status_code == 200
        again = http.post(
            "/oauth/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": tokens["refresh_token"],
                "client_id": console.client_id,
            },
        )
    assert again.json()["error"] == "invalid_grant"
    with pytest.raises(InvalidToken):
        issuer.service.authenticate(tokens["access_token"])


def test_revoke_someone_elses_token_refused(issuer, make_client):
    owner, other = machine(make_client), machine(make_client)
    token = client_token(issuer, owner)
    with browser(issuer) as http:
        response = http.post(
            "/oauth/revoke", data={"token": token}, auth=(other.client_id, other.secret)
        )
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    issuer.service.authenticate(token)  # still valid


def test_revoke_unknown_token_answers_200(issuer, make_client):
    program = machine(make_client)
    with browser(issuer) as http:
        response = http.post(
            "/oauth/revoke", data={"token": "nonsense"}, auth=(program.client_id, program.secret)
        )
    assert response.status_code == 200


def test_revoke_requires_client_authentication(issuer, make_client):
    program = machine(make_client)
    token = client_token(issuer, program)
    with browser(issuer) as http:
        response = http.post(
            "/oauth/revoke", data={"token": token}, auth=(program.client_id, "wrong")
        )
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


# --- audience per resource (RFC 8707) ----------------------------------------------------


def test_token_for_another_resource_is_refused_by_the_gateway(issuer, make_client):
    program = machine(make_client)
    resource_server = machine(make_client, resource_server=True)
    with browser(issuer) as http:
        response = http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials", "resource": REPORTS_RESOURCE},
            auth=(program.client_id, program.secret),
        )
        assert response.status_code == 200, response.text
        token = response.json()["access_token"]
        introspected = http.post(
            "/oauth/introspect",
            data={"token": token},
            auth=(resource_server.client_id, resource_server.secret),
        ).json()
        unknown = http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials", "resource": "https://evil.example/"},
            auth=(program.client_id, program.secret),
        )
    assert introspected["active"] is True and introspected["aud"] == REPORTS_RESOURCE
    with pytest.raises(InvalidToken) as refused:
        issuer.service.authenticate(token)
    assert refused.value.reason == "wrong_audience"
    assert unknown.status_code == 400 and unknown.json()["error"] == "invalid_target"


# --- introspection (RFC 7662) ------------------------------------------------------------


def test_introspection_for_resource_servers(issuer, make_client):
    program = machine(make_client)
    resource_server = machine(make_client, resource_server=True)
    token = client_token(issuer, program)
    with browser(issuer) as http:
        ask = lambda value: http.post(  # noqa: E731
            "/oauth/introspect",
            data={"token": value},
            auth=(resource_server.client_id, resource_server.secret),
        ).json()
        body = ask(token)
        assert body["active"] is True
        assert body["client_id"] == program.client_id and body["scope"] == "datasets:read query"
        assert body["jurisdiction"] == "mainland" and body["token_type"] == "Bearer"
        http.post("/oauth/revoke", data={"token": token}, auth=(program.client_id, program.secret))
        assert ask(token) == {"active": False}
        assert ask("not-a-token") == {"active": False}


def test_introspection_refused_for_other_clients(issuer, make_client):
    program = machine(make_client)
    token = client_token(issuer, program)
    with browser(issuer) as http:
        response = http.post(
            "/oauth/introspect", data={"token": token}, auth=(program.client_id, program.secret)
        )
    assert response.status_code == 403 and response.json()["error"] == "unauthorized_client"


def test_introspection_of_refresh_token(issuer, make_client, console, person):
    resource_server = machine(make_client, resource_server=True)
    tokens = tokens_for(issuer, console, person)
    with browser(issuer) as http:
        body = http.post(
            "/oauth/introspect",
            data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token"},
            auth=(resource_server.client_id, resource_server.secret),
        ).json()
    assert body["active"] is True and body["sub"] == person.id
    assert body["token_type"] == "refresh_token"


# --- private_key_jwt (RFC 7523) ----------------------------------------------------------


def assertion(key: ECKey, client_id: str, audience: str, **overrides: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": now,
        "exp": now + 60,
        "jti": secrets.token_urlsafe(12),
        **overrides,
    }
    return jws.serialize_compact(
        {"alg": "ES256", "kid": key.kid}, json.dumps(claims), key, algorithms=["ES256"]
    )


def assertion_request(http: httpx.Client, client_id: str, signed: str) -> httpx.Response:
    return http.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": signed,
        },
    )


@pytest.fixture
def signer(issuer, make_client):
    key = ECKey.generate_key("P-256", {"alg": "ES256", "use": "sig"}, private=True, auto_kid=True)
    jwks = {"keys": [key.as_dict(private=False)]}
    program = machine(make_client, auth_method="private_key_jwt", jwks=jwks)
    assert program.secret is None
    return key, program


def test_private_key_jwt_issues_token_and_refuses_replay(issuer, signer):
    key, program = signer
    signed = assertion(key, program.client_id, f"{issuer.url}/oauth/token")
    with browser(issuer) as http:
        first = assertion_request(http, program.client_id, signed)
        assert first.status_code == 200, first.text
        assert (
            issuer.service.authenticate(first.json()["access_token"]).client_id == program.client_id
        )
        replay = assertion_request(http, program.client_id, signed)
    assert replay.status_code == 401 and replay.json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    "overrides",
    [
        {"aud": "https://elsewhere.example/token"},
        {"exp": int(time.time()) - 120},
        {"exp": int(time.time()) + 3600},  # longer than five minutes
        {"iss": "someone-else"},
    ],
)
def test_private_key_jwt_bad_assertions_refused(issuer, signer, overrides):
    key, program = signer
    signed = assertion(key, program.client_id, f"{issuer.url}/oauth/token", **overrides)
    with browser(issuer) as http:
        response = assertion_request(http, program.client_id, signed)
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


def test_private_key_jwt_signed_by_another_key_refused(issuer, signer):
    _, program = signer
    stranger = ECKey.generate_key("P-256", {"alg": "ES256"}, private=True, auto_kid=True)
    signed = assertion(stranger, program.client_id, f"{issuer.url}/oauth/token")
    with browser(issuer) as http:
        response = assertion_request(http, program.client_id, signed)
    assert response.status_code == 401


def test_private_key_jwt_client_cannot_use_a_secret(issuer, signer):
    _, program = signer
    with browser(issuer) as http:
        response = http.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=(program.client_id, "x")
        )
    assert response.status_code == 401


# --- login page --------------------------------------------------------------------------


def login_form(http: httpx.Client, **headers: str) -> httpx.Response:
    return http.get("/oauth/login", headers=headers)


def post_login(http: httpx.Client, username: str, password: str) -> httpx.Response:
    page = login_form(http)
    return http.post(
        "/oauth/login",
        data={
            "username": username,
            "password": password,
            "csrf_token": csrf_from(page.text),
            "authorize": "",
        },
    )


@pytest.mark.parametrize(
    ("header", "lang", "word"),
    [
        ("en-GB,en;q=0.9", "en", "Sign in"),
        ("zh-CN,zh;q=0.9", "zh-Hans", "登录"),
        ("zh-HK", "zh-Hant", "登入"),
    ],
)
def test_login_page_language_from_accept_language(issuer, header, lang, word):
    with browser(issuer) as http:
        page = login_form(http, **{"Accept-Language": header})
    assert page.status_code == 200 and f'<html lang="{lang}">' in page.text and word in page.text
    assert "http://" not in page.text.replace(issuer.url, "") and "https://" not in page.text
    assert page.headers["x-frame-options"] == "DENY"


def test_login_page_ui_locales_wins(issuer):
    with browser(issuer) as http:
        page = http.get("/oauth/login?ui_locales=zh-Hant", headers={"Accept-Language": "en"})
    assert '<html lang="zh-Hant">' in page.text


def test_login_wrong_password_and_unknown_user_read_the_same(issuer, person):
    with browser(issuer) as http:
        wrong = post_login(http, person.username, "not the password at all")
        unknown = post_login(http, "nobody_" + secrets.token_hex(3), "not the password at all")
    assert wrong.status_code == unknown.status_code == 401
    assert "incorrect" in wrong.text
    assert wrong.text.replace(person.username, "X").count("incorrect") == unknown.text.count(
        "incorrect"
    )
    assert "datashare_login=" not in wrong.headers.get("set-cookie", "")


def test_login_redirect_stays_on_the_authorization_endpoint(issuer, person):
    with browser(issuer) as http:
        page = login_form(http)
        response = http.post(
            "/oauth/login",
            data={
                "username": person.username,
                "password": person.password,
                "csrf_token": csrf_from(page.text),
                "authorize": "client_id=x\r\nSet-Cookie: evil=1&redirect_uri=https://evil.example",
            },
        )
    assert response.status_code == 303
    location = response.headers["location"]
    assert (
        location.startswith("/oauth/authorize?") and "\r" not in location and "\n" not in location
    )
    assert "evil=1" not in response.headers.get("set-cookie", "")


def test_login_without_csrf_token_refused(issuer, person):
    with browser(issuer) as http:
        response = http.post(
            "/oauth/login",
            data={"username": person.username, "password": person.password, "csrf_token": "x" * 32},
        )
    assert response.status_code == 400 and "datashare_login=" not in response.headers.get(
        "set-cookie", ""
    )


def test_login_success_sets_http_only_session_cookie(issuer, person):
    with browser(issuer) as http:
        response = post_login(http, person.username, person.password)
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    assert (
        "datashare_login=" in cookie and "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
    )
    assert any(e.detail.get("address") for e in events(issuer.audit, "login.succeeded"))


# --- rate limits and audit ---------------------------------------------------------------


@pytest.fixture(scope="module")
def strict_issuer(tmp_path_factory: pytest.TempPathFactory):
    limits = AbuseLimits(token_per_client=3, token_per_ip=1000, login_per_ip=1000, login_per_user=2)
    yield from start_issuer(Path(tmp_path_factory.mktemp("strict")), name="strict", limits=limits)


def test_token_endpoint_rate_limited_per_client(strict_issuer):
    from catalog.clients import register_client
    from tests.oauth.conftest import make_org

    org = make_org(strict_issuer.sessions, region="SZ")
    with strict_issuer.sessions.begin() as session:
        client, secret = register_client(
            session, org_id=org.id, name="p", roles=["consumer"], scope="query"
        )
        client_id = client.client_id
    with browser(strict_issuer) as http:
        answers = [
            http.post(
                "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
            )
            for _ in range(4)
        ]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[-1].json()["error"] == "temporarily_unavailable"
    assert int(answers[-1].headers["retry-after"]) >= 1
    assert events(strict_issuer.audit, "token.refused")
    assert len(events(strict_issuer.audit, "token.issued")) >= 3


def test_login_rate_limited_per_user_name(strict_issuer):
    with browser(strict_issuer) as http:
        answers = [post_login(http, "victim_user", f"guess number {n}!") for n in range(3)]
    assert [a.status_code for a in answers] == [401, 401, 429]
    assert "retry-after" in answers[-1].headers


def test_refused_token_request_audited_without_the_secret(issuer, make_client):
    program = machine(make_client)
    with browser(issuer) as http:
        response = http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(program.client_id, "guessed-secret-value"),
        )
    assert response.status_code == 401
    refused = [
        e
        for e in events(issuer.audit, "token.refused")
        if e.detail.get("error") == "invalid_client"
    ]
    assert refused
    assert all("guessed-secret-value" not in json.dumps(e.detail) for e in refused)
