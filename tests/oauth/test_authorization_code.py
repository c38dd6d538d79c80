"""Authorization code + PKCE, the login page, ID tokens and refresh-token rotation,
exercised with independent clients: authlib's httpx OAuth2Client and PyJWT."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from urllib.parse import urlencode

import jwt as pyjwt
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jws

from gateway.oauth.errors import InvalidToken
from tests.oauth.conftest import (
    AUDIENCE,
    REDIRECT,
    authorize_code,
    browser,
    redirect_params,
    sign_in,
)


def authorize_url(client_id: str, verifier: str, **extra: str) -> str:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "scope": "openid datasets:read query",
        "state": secrets.token_urlsafe(8),
        "code_challenge": create_s256_code_challenge(verifier),
        "code_challenge_method": "S256",
        **extra,
    }
    return "/oauth/authorize?" + urlencode({k: v for k, v in params.items() if v != ""})


def redeem(http, client_id: str, code: str, verifier: str, **extra: str):
    return http.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": client_id,
            "code_verifier": verifier,
            **extra,
        },
    )


def tokens_for(issuer, console, person, scope: str = "openid datasets:read query") -> dict:
    verifier = secrets.token_urlsafe(48)
    with browser(issuer) as http:
        params = authorize_code(
            http, authorize_url(console.client_id, verifier, scope=scope), person
        )
        response = redeem(http, console.client_id, params["code"], verifier)
    assert response.status_code == 200, response.text
    return dict(response.json())


def verify_with_pyjwt(issuer, token: str, audience: str) -> dict:
    jwks = pyjwt.PyJWKClient(f"{issuer.url}/oauth/jwks")
    key = jwks.get_signing_key_from_jwt(token)
    return dict(
        pyjwt.decode(token, key.key, algorithms=["ES256"], audience=audience, issuer=issuer.url)
    )


# --- the flow with independent clients ---------------------------------------------------


def test_authorization_code_flow_with_authlib_httpx_client(issuer, console, person):
    oauth = OAuth2Client(
        client_id=console.client_id,
        redirect_uri=REDIRECT,
        scope="openid datasets:read query",
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    )
    verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(8)
    url, state = oauth.create_authorization_url(
        f"{issuer.url}/oauth/authorize", code_verifier=verifier, nonce=nonce
    )
    with browser(issuer) as http:
        after_login = sign_in(http, url.removeprefix(issuer.url), person)
        back = http.get(after_login.headers["location"])
    callback = back.headers["location"]
    assert redirect_params(back)["state"] == state
    assert redirect_params(back)["iss"] == issuer.url  # RFC 9207
    token = oauth.fetch_token(
        f"{issuer.url}/oauth/token", authorization_response=callback, code_verifier=verifier
    )
    assert token["token_type"] == "Bearer" and token["refresh_token"]
    assert token["scope"] == "openid datasets:read query"

    access = verify_with_pyjwt(issuer, token["access_token"], AUDIENCE)
    assert pyjwt.get_unverified_header(token["access_token"])["typ"] == "at+jwt"
    assert access["sub"] == person.id and access["client_id"] == console.client_id
    assert access["org_slug"] == person.org_slug and access["jurisdiction"] == "HK"
    assert access["roles"] == ["consumer"] and access["scope"] == "openid datasets:read query"

    id_token = verify_with_pyjwt(issuer, token["id_token"], console.client_id)
    assert id_token["nonce"] == nonce and id_token["sub"] == person.id
    assert id_token["preferred_username"] == person.username
    digest = hashlib.sha256(token["access_token"].encode()).digest()[:16]
    assert id_token["at_hash"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    whoami = oauth.get(f"{issuer.url}/whoami")
    assert whoami.status_code == 200
    assert whoami.json()["sub"] == person.id


def test_id_token_is_not_accepted_as_access_token(issuer, console, person):
    token = tokens_for(issuer, console, person)
    with pytest.raises(InvalidToken) as refused:
        issuer.service.authenticate(token["id_token"])
    assert refused.value.reason == "wrong_type"


def test_id_tokens_have_a_key_of_their_own(issuer, console, person):
    """SECURITY.md §4: separate keys. The ID token's kid is published in the JWKS (clients
    verify it there) but an access token signed with the ID-token key is refused even with a
    perfect ``at+jwt`` header and claims: the access-token validator knows only access keys."""
    token = tokens_for(issuer, console, person)
    access_kid = pyjwt.get_unverified_header(token["access_token"])["kid"]
    id_kid = pyjwt.get_unverified_header(token["id_token"])["kid"]
    assert id_kid != access_kid
    published = {key["kid"] for key in issuer.service.jwks()["keys"]}
    assert {access_kid, id_kid} <= published

    claims = pyjwt.decode(token["access_token"], options={"verify_signature": False})
    id_key = issuer.service.id_keys.signing_key()
    header = {"alg": "ES256", "typ": "at+jwt", "kid": id_kid}
    forged = jws.serialize_compact(header, json.dumps(claims), id_key, algorithms=["ES256"])
    with pytest.raises(InvalidToken) as refused:
        issuer.service.authenticate(forged)
    assert refused.value.reason == "unknown_key"
    assert issuer.service.authenticate(token["access_token"]).subject == person.id


def test_scope_narrowed_to_user_roles(issuer, console, make_person):
    steward = make_person(roles=("steward",), regions=("HK",))
    token = tokens_for(issuer, console, steward, scope="openid datasets:read query audit:read")
    assert token["scope"] == "openid datasets:read audit:read"  # no query for a steward
    principal = issuer.service.authenticate(token["access_token"])
    assert principal.steward_regions == frozenset({"HK"})
    assert principal.roles == frozenset({"steward"})


def test_session_cookie_skips_the_login_page_second_time(issuer, console, person):
    verifier = secrets.token_urlsafe(48)
    with browser(issuer) as http:
        authorize_code(http, authorize_url(console.client_id, verifier), person)
        again = http.get(authorize_url(console.client_id, verifier))
        assert again.status_code == 302 and "code=" in again.headers["location"]
        forced = http.get(authorize_url(console.client_id, verifier, prompt="login"))
        assert forced.status_code == 303 and forced.headers["location"].startswith("/oauth/login")


def test_password_change_ends_the_login_session(issuer, console, person):
    from catalog.users import get_user, set_password

    verifier = secrets.token_urlsafe(48)
    with browser(issuer) as http:
        authorize_code(http, authorize_url(console.client_id, verifier), person)
        time.sleep(1.05)  # session times have one-second resolution
        with issuer.sessions.begin() as session:
            set_password(session, get_user(session, person.id), person.password)
        again = http.get(authorize_url(console.client_id, verifier))
    assert again.status_code == 303 and again.headers["location"].startswith("/oauth/login")


def test_prompt_none_without_session_redirects_login_required(issuer, console):
    with browser(issuer) as http:
        response = http.get(authorize_url(console.client_id, "v" * 43, prompt="none"))
    assert response.status_code == 302
    assert redirect_params(response)["error"] == "login_required"


# --- PKCE --------------------------------------------------------------------------------


def test_pkce_verifier_mismatch_refused(issuer, console, person):
    verifier = secrets.token_urlsafe(48)
    with browser(issuer) as http:
        params = authorize_code(http, authorize_url(console.client_id, verifier), person)
        response = redeem(http, console.client_id, params["code"], secrets.token_urlsafe(48))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_pkce_missing_verifier_refused(issuer, console, person):
    verifier = secrets.token_urlsafe(48)
    with browser(issuer) as http:
        params = authorize_code(http, authorize_url(console.client_id, verifier), person)
        response = redeem(http, console.client_id, params["code"], "")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    "challenge",
    [
        {"code_challenge_method": "plain"},
        {"code_challenge_method": ""},  # RFC 7636 defaults an absent method to plain
        {"code_challenge": "", "code_challenge_method": ""},  # no PKCE at all
    ],
)
def test_pkce_plain_or_absent_refused(issuer, console, challenge):
    url = authorize_url(console.client_id, secrets.token_urlsafe(48), **challenge)
    with browser(issuer) as http:
        response = http.get(url)
    assert response.status_code == 302  # the redirect URI is valid: the error goes back
    assert redirect_params(response)["error"] == "invalid_request"


def test_overlong_nonce_refused(issuer, console):
    url = authorize_url(console.client_id, secrets.token_urlsafe(48), nonce="n" * 256)
    with browser(issuer) as http:
        response = http.get(url)
    assert redirect_params(response)["error"] == "invalid_request"


def test_pkce_required_for_confidential_clients_too(issuer, make_client, person):
    web = make_client(client_type="confidential", auth_method="client_secret_basic")
    url = authorize_url(web.client_id, "x", code_challenge="", code_challenge_method="")
    with browser(issuer) as http:
        response = http.get(url)
    assert redirect_params(response)["error"] == "invalid_request"


# --- redirect URIs -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://127.0.0.1:8765/callback/",
        "http://127.0.0.1:8765/callback?x=1",
        "http://127.0.0.1:8765/callback#frag",
        "http://127.0.0.1:8765/callback/../evil",
        "http://127.0.0.1:8765/CALLBACK",
        "http://127.0.0.1:8765/%63allback",
        "http://127.0.0.1:8766/callback",
        "http://127.0.0.1:8765@evil.example/callback",
        "http://127.0.0.1:8765.evil.example/callback",
        "https://evil.example/callback",
        "javascript:alert(1)",
        "datashare://callback",
    ],
)
def test_redirect_uri_not_exactly_registered_refused_without_redirect(
    issuer, console, redirect_uri
):
    url = authorize_url(console.client_id, secrets.token_urlsafe(48), redirect_uri=redirect_uri)
    with browser(issuer) as http:
        response = http.get(url)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "not valid" in response.text


def test_redirect_uri_required_even_when_one_is_registered(issuer, console):
    url = authorize_url(console.client_id, secrets.token_urlsafe(48), redirect_uri="")
    with browser(issuer) as http:
        response = http.get(url)
    assert response.status_code == 400 and "location" not in response.headers


def test_redirect_uri_mismatch_at_token_endpoint_refused(issuer, make_client, person):
    other = "http://127.0.0.1:8765/other"
    console = make_client(redirect_uris=[REDIRECT, other])
    verifier = secrets.token_urlsafe(48)
    with browser(issuer) as http:
        params = authorize_code(http, authorize_url(console.client_id, verifier), person)
        response = redeem(http, console.client_id, params["code"], verifier, redirect_uri=other)
    assert response.json()["error"] == "invalid_grant"


# --- codes -------------------------------------------------------------------------------


def test_code_replay_refused_and_revokes_tokens_issued_from_it(issuer, console, person):
    verifier = secrets.token_urlsafe(48)
    with browser(issuer) as http:
        params = authorize_code(http, authorize_url(console.client_id, verifier), person)
        first = redeem(http, console.client_id, params["code"], verifier)
        assert first.status_code == 200
        issuer.service.authenticate(first.json()["access_token"])  # valid before the replay
        replay = redeem(http, console.client_id, params["code"], verifier)
        assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
        refresh = http.post(
            "/oauth/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": first.json()["refresh_token"],
                "client_id": console.client_id,
            },
        )
    assert refresh.json()["error"] == "invalid_grant"
    with pytest.raises(InvalidToken) as refused:
        issuer.service.authenticate(first.json()["access_token"])
    assert refused.value.reason == "revoked"


def test_code_bound_to_its_client(issuer, console, make_client, person):
    other = make_client()
    verifier = secrets.token_urlsafe(48)
    with browser(issuer) as http:
        params = authorize_code(http, authorize_url(console.client_id, verifier), person)
        response = redeem(http, other.client_id, params["code"], verifier)
    assert response.json()["error"] == "invalid_grant"


# --- refresh tokens ----------------------------------------------------------------------


def refresh(issuer, console, token: str, **extra: str):
    with browser(issuer) as http:
        return http.post(
            "/oauth/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": token,
                "client_id": console.client_id,
                **extra,
            },
        )


def test_refresh_rotates_the_refresh_token(issuer, console, person):
    first = tokens_for(issuer, console, person)
    second = refresh(issuer, console, first["refresh_token"])
    assert second.status_code == 200, second.text
    body = second.json()
    assert body["refresh_token"] != first["refresh_token"]
    assert body["scope"] == first["scope"]
    assert issuer.service.authenticate(body["access_token"]).subject == person.id
    third = refresh(issuer, console, body["refresh_token"])
    assert third.status_code == 200


def test_refresh_token_reuse_revokes_the_whole_family(issuer, console, person):
    first = tokens_for(issuer, console, person)
    rotated = refresh(issuer, console, first["refresh_token"]).json()
    reused = refresh(issuer, console, first["refresh_token"])
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    # the legitimate holder's newer tokens die with the family
    assert refresh(issuer, console, rotated["refresh_token"]).json()["error"] == "invalid_grant"
    for access in (first["access_token"], rotated["access_token"]):
        with pytest.raises(InvalidToken) as refused:
            issuer.service.authenticate(access)
        assert refused.value.reason == "revoked"


def test_refresh_cannot_escalate_scope(issuer, console, person):
    first = tokens_for(issuer, console, person, scope="openid datasets:read")
    escalated = refresh(issuer, console, first["refresh_token"], scope="datasets:read query")
    assert escalated.status_code == 400 and escalated.json()["error"] == "invalid_scope"
    narrowed = refresh(issuer, console, first["refresh_token"], scope="datasets:read")
    assert narrowed.status_code == 200 and narrowed.json()["scope"] == "datasets:read"


def test_refresh_bound_to_its_client(issuer, console, make_client, person):
    other = make_client()
    first = tokens_for(issuer, console, person)
    response = refresh(issuer, other, first["refresh_token"])
    assert response.json()["error"] == "invalid_grant"
