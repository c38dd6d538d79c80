"""Administration over HTTP (organisations, users, clients, key rotation) through the real
app, and a person signing in with the authorization code flow against it."""

from __future__ import annotations

import re
import secrets
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt as pyjwt
import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from tests.factories import make_caller, suffix
from tests.gateway.test_api import assert_error_envelope

REDIRECT = "https://console.example/callback"


@pytest.fixture
def backend() -> str:
    return "local"  # object storage plays no part here


def admin_headers(platform, client) -> dict[str, str]:
    return make_caller(platform, client, role="admin").headers


def sign_in(client, client_id: str, username: str, password: str) -> dict[str, Any]:
    verifier = secrets.token_urlsafe(48)
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": REDIRECT,
            "scope": "openid datasets:read query access:request",
            "state": "s1",
            "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256",
        }
    )
    to_login = client.get(f"/oauth/authorize?{query}", follow_redirects=False)
    assert to_login.status_code == 303
    page = client.get(to_login.headers["location"])
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    back = client.post(
        "/oauth/login",
        data={"username": username, "password": password, "csrf_token": csrf, "authorize": query},
        follow_redirects=False,
    )
    assert back.status_code == 303, back.text
    redirect = client.get(back.headers["location"], follow_redirects=False)
    params = parse_qs(urlsplit(redirect.headers["location"]).query)
    assert params["state"] == ["s1"]
    token = client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": params["code"][0],
            "redirect_uri": REDIRECT,
            "client_id": client_id,
            "code_verifier": verifier,
        },
    )
    assert token.status_code == 200, token.text
    return dict(token.json())


def test_admin_api_creates_org_user_and_app_and_the_user_signs_in(client, platform) -> None:
    headers = admin_headers(platform, client)
    slug = f"hk_lab_{suffix()}"
    org = client.post(
        "/v1/admin/orgs",
        headers=headers,
        json={
            "name": f"HK Lab {slug}",
            "slug": slug,
            "kind": "consumer",
            "region": "HK",
            "registration_id": "7123 4567",
        },
    )
    assert org.status_code == 201, org.text
    assert org.json()["jurisdiction"] == "HK" and org.json()["registration_id"] == "71234567"
    user = client.post(
        "/v1/admin/users",
        headers=headers,
        json={"org": slug, "username": f"amy_{suffix()}", "roles": ["consumer"]},
    )
    assert user.status_code == 201, user.text
    created = user.json()
    assert len(created["password"]) >= 12 and "password_hash" not in created
    app = client.post(
        "/v1/admin/clients",
        headers=headers,
        json={"org": slug, "name": "console", "redirect_uris": [REDIRECT]},
    )
    assert app.status_code == 201 and app.json()["client_secret"] is None
    tokens = sign_in(client, app.json()["client_id"], created["username"], created["password"])
    me = client.get("/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.status_code == 200, me.text
    assert (me.json()["subject"], me.json()["org_slug"]) == (created["id"], slug)
    assert me.json()["roles"] == ["consumer"]
    listed = client.get("/v1/admin/users", headers=headers, params={"org": slug}).json()
    assert [u["username"] for u in listed] == [created["username"]]
    disabled = client.post(f"/v1/admin/users/{created['id']}/disable", headers=headers)
    assert disabled.json()["disabled"] is True
    # disabling revokes what the user holds: the access token at once, the refresh token too
    gone = client.get("/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert gone.status_code == 401
    refreshed = client.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": app.json()["client_id"],
        },
    )
    assert refreshed.json()["error"] == "invalid_grant"


def test_admin_api_refuses_invalid_registration_id(client, platform) -> None:
    response = client.post(
        "/v1/admin/orgs",
        headers=admin_headers(platform, client),
        json={
            "name": "Bad",
            "slug": f"gz_bad_{suffix()}",
            "kind": "provider",
            "region": "GZ",
            "registration_id": "91440101MA9Y1T6H6X",  # wrong check character
        },
    )
    error = assert_error_envelope(response, 422, "invalid_input")
    assert "Unified Social Credit Code" in error["message"]


def test_admin_api_needs_admin_scope(client, platform) -> None:
    steward = make_caller(platform, client, role="steward")
    response = client.get("/v1/admin/users", headers=steward.headers)
    assert_error_envelope(response, 403, "insufficient_scope")


def test_key_rotation_old_tokens_valid_new_tokens_use_new_key(client, platform) -> None:
    headers = admin_headers(platform, client)
    before = make_caller(platform, client, role="consumer")
    old_kid = pyjwt.get_unverified_header(before.token)["kid"]
    rotated = client.post("/v1/admin/keys/rotate", headers=headers)
    assert rotated.status_code == 200 and rotated.json()["kid"] != old_kid
    assert rotated.json()["id_token_kid"] not in (old_kid, rotated.json()["kid"])
    after = make_caller(platform, client, role="consumer")
    assert pyjwt.get_unverified_header(after.token)["kid"] == rotated.json()["kid"]
    jwks = client.get("/oauth/jwks").json()
    assert {old_kid, rotated.json()["kid"]} <= {key["kid"] for key in jwks["keys"]}
    keys = pyjwt.PyJWKSet.from_dict(jwks)
    for token in (before.token, after.token):
        kid = pyjwt.get_unverified_header(token)["kid"]
        key = next(k for k in keys.keys if k.key_id == kid)
        claims = pyjwt.decode(
            token, key.key, algorithms=["ES256"], audience=platform.settings.oauth.audience
        )
        assert claims["iss"] == platform.settings.issuer
        assert client.get("/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
