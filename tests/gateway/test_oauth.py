"""OAuth: token endpoint, JWKS, metadata and access-token validation.

A tiny FastAPI app with only the OAuth router, over a real SQLite catalog.
Forged tokens are built by hand (or with joserfc) to hit each validation step.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from joserfc import jws
from joserfc.jwk import ECKey, Key, RSAKey
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import StarletteDeprecationWarning

from catalog.clients import create_client, disable_client, rotate_signing_key
from catalog.database import make_engine, session_factory, upgrade_to_head
from catalog.models import Organisation
from catalog.oauth_state import revoke_jti
from gateway.oauth.errors import InvalidToken
from gateway.oauth.routes import router
from gateway.oauth.service import OAuthService
from gateway.oauth.tokens import validate_access_token
from policies.model import Principal

with warnings.catch_warnings():  # starlette's TestClient warns about httpx at import
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

ISSUER = "https://gateway.test"
AUDIENCE = "https://gateway.test/api"
SCOPES = ["datasets:read", "datasets:write", "query", "admin"]
CLIENT_SCOPE = "datasets:read query"
KEY_SECRET = b"oauth-test-secret-" + secrets.token_bytes(16)
PRIVATE_JWK_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
REQUIRED_CLAIMS = [
    "iss",
    "aud",
    "exp",
    "iat",
    "nbf",
    "sub",
    "client_id",
    "jti",
    "org",
    "org_slug",
    "region",
    "jurisdiction",
    "roles",
]


@dataclass(frozen=True)
class Org:
    id: str
    slug: str


@dataclass(frozen=True)
class Registered:
    client_id: str
    secret: str


# --- fixtures ----------------------------------------------------------------------------


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    upgrade_to_head(engine)
    yield session_factory(engine)
    engine.dispose()


@pytest.fixture
def org(sessions: sessionmaker[Session]) -> Org:
    tag = secrets.token_hex(3)
    with sessions.begin() as session:
        row = Organisation(
            slug=f"sz_{tag}",
            name=f"Shenzhen Org {tag}",
            kind="consumer",
            region="SZ",
            registration_id="91440300MA5G7K3P7P",
            registration_scheme="uscc",
        )
        session.add(row)
        session.flush()
        return Org(row.id, row.slug)


@pytest.fixture
def registered(sessions: sessionmaker[Session], org: Org) -> Registered:
    with sessions.begin() as session:
        client, secret = create_client(
            session, org_id=org.id, name="svc", roles=["consumer"], scope=CLIENT_SCOPE
        )
        return Registered(client.client_id, secret)


@pytest.fixture
def make_service(sessions: sessionmaker[Session]) -> Callable[..., OAuthService]:
    def make(**overrides: Any) -> OAuthService:
        options: dict[str, Any] = {
            "issuer": ISSUER,
            "audience": AUDIENCE,
            "access_token_ttl": 900,
            "key_secret": KEY_SECRET,
            "key_rotate_after": timedelta(days=30),
            "scopes_supported": SCOPES,
            **overrides,
        }
        return OAuthService(sessions, **options)

    return make


@pytest.fixture
def service(make_service: Callable[..., OAuthService]) -> OAuthService:
    return make_service()


def http_for(service: OAuthService) -> TestClient:
    app = FastAPI()
    app.state.oauth = service
    app.include_router(router)
    return TestClient(app, base_url=ISSUER)


@pytest.fixture
def http(service: OAuthService) -> TestClient:
    return http_for(service)


def request_token(http: TestClient, who: Registered, **form: str) -> Any:
    return http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", **form},
        auth=(who.client_id, who.secret),
    )


def issue(http: TestClient, who: Registered, **form: str) -> str:
    response = request_token(http, who, **form)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


# --- token helpers -----------------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segments(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, payload, _ = token.split(".")
    return json.loads(unb64(header)), json.loads(unb64(payload))


def unb64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def claims_for(org: Org, who: Registered, /, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": who.client_id,
        "client_id": who.client_id,
        "exp": now + 300,
        "iat": now,
        "nbf": now,
        "jti": secrets.token_urlsafe(16),
        "scope": "query",
        "org": org.id,
        "org_slug": org.slug,
        "region": "SZ",
        "jurisdiction": "mainland",
        "roles": ["consumer"],
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


def sign(key: Key, claims: dict[str, Any], **header: Any) -> str:
    protected = {"alg": key.alg, "typ": "at+jwt", "kid": key.kid, **header}
    protected = {name: value for name, value in protected.items() if value is not None}
    return jws.serialize_compact(protected, json.dumps(claims), key, algorithms=[protected["alg"]])


def unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    signing_input = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    return signing_input + "." + b64(signature)


@pytest.fixture
def our_key(service: OAuthService, http: TestClient, registered: Registered) -> Key:
    issue(http, registered)  # creates the signing key
    return service.keys.signing_key()


def rejection(service: OAuthService, token: str) -> str:
    with pytest.raises(InvalidToken) as caught:
        validate_access_token(
            token, keys=service.keys.verification_keys(), issuer=ISSUER, audience=AUDIENCE
        )
    return caught.value.reason


# --- token endpoint ----------------------------------------------------------------------


def test_token_client_secret_basic_issues_bearer_token(http, registered):
    response = request_token(http, registered)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert body["scope"] == CLIENT_SCOPE
    assert "refresh_token" not in body
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"


def test_token_client_secret_post_issues_bearer_token(http, registered):
    response = http.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": registered.client_id,
            "client_secret": registered.secret,
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "Bearer"


@pytest.mark.parametrize("method", ["basic", "post"])
def test_token_wrong_secret_invalid_client(http, registered, method):
    wrong = Registered(registered.client_id, registered.secret[:-2] + "xx")
    if method == "basic":
        response = request_token(http, wrong)
    else:
        response = http.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": wrong.client_id,
                "client_secret": wrong.secret,
            },
        )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert "error_description" in response.json()
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["www-authenticate"].startswith("Basic ")


def test_token_unknown_client_same_answer_as_wrong_secret(http, registered):
    unknown = request_token(http, Registered("dsc_doesnotexist000000", registered.secret))
    wrong = request_token(http, Registered(registered.client_id, "not-the-secret"))
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json()


def test_token_disabled_client_invalid_client(http, registered, sessions):
    with sessions.begin() as session:
        disable_client(session, registered.client_id)
    assert request_token(http, registered).status_code == 401


@pytest.mark.parametrize("grant", ["password", "implicit", 'x"y'])
def test_token_other_grant_types_unsupported(http, registered, grant):
    response = request_token(http, registered, grant_type=grant)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "unsupported_grant_type"
    assert body["error_description"]


@pytest.mark.parametrize("grant", ["authorization_code", "refresh_token"])
def test_token_user_grants_refused_for_machine_client(http, registered, grant):
    response = request_token(http, registered, grant_type=grant)
    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"


def test_token_missing_grant_type_invalid_request(http, registered):
    response = http.post("/oauth/token", data={}, auth=(registered.client_id, registered.secret))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_token_scope_intersected_with_client_registration(http, registered):
    response = request_token(http, registered, scope="query admin")
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "query"
    _, claims = segments(response.json()["access_token"])
    assert claims["scope"] == "query"


@pytest.mark.parametrize("scope", ["nope", "query nope", "admin", 'bad"scope'])
def test_token_unknown_or_ungranted_scope_invalid_scope(http, registered, scope):
    response = request_token(http, registered, scope=scope)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


def test_token_credentials_in_url_refused(http, registered):
    response = http.post(
        f"/oauth/token?client_id={registered.client_id}&client_secret={registered.secret}",
        data={"grant_type": "client_credentials"},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_token_two_authentication_methods_refused(http, registered):
    response = request_token(http, registered, client_secret=registered.secret)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_token_repeated_parameter_refused(http, registered):
    response = http.post(
        "/oauth/token",
        content="grant_type=client_credentials&grant_type=client_credentials",
        headers={"content-type": "application/x-www-form-urlencoded"},
        auth=(registered.client_id, registered.secret),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_token_json_body_refused(http, registered):
    response = http.post(
        "/oauth/token",
        json={"grant_type": "client_credentials"},
        auth=(registered.client_id, registered.secret),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert response.headers["cache-control"] == "no-store"


def test_token_header_and_claims_follow_rfc_9068(http, registered, org):
    token = issue(http, registered)
    header, claims = segments(token)
    jwks_kids = {jwk["kid"] for jwk in http.get("/oauth/jwks").json()["keys"]}
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "ES256"
    assert header["kid"] in jwks_kids
    assert set(REQUIRED_CLAIMS) | {"scope"} <= claims.keys()
    assert claims["iss"] == ISSUER and claims["aud"] == AUDIENCE
    assert claims["sub"] == claims["client_id"] == registered.client_id
    assert claims["exp"] - claims["iat"] == 900
    assert claims["iat"] <= claims["nbf"] < claims["exp"]
    assert claims["org"] == org.id and claims["org_slug"] == org.slug
    assert (claims["region"], claims["jurisdiction"]) == ("SZ", "mainland")
    assert claims["roles"] == ["consumer"]
    assert claims["jti"] != segments(issue(http, registered))[1]["jti"]


def test_token_rs256_service_issues_verifiable_tokens(make_service, registered):
    service = make_service(signing_algorithm="RS256")
    token = issue(http_for(service), registered)
    assert segments(token)[0]["alg"] == "RS256"
    assert service.authenticate(token).client_id == registered.client_id


# --- JWKS and metadata -------------------------------------------------------------------


def test_jwks_publishes_public_keys_only(http, registered):
    issue(http, registered)
    response = http.get("/oauth/jwks")
    assert response.status_code == 200
    assert response.headers["cache-control"].startswith("public, max-age=")
    keys = response.json()["keys"]
    assert keys
    for jwk in keys:
        assert not PRIVATE_JWK_MEMBERS & jwk.keys()
        assert jwk["use"] == "sig" and jwk["kty"] == "EC" and jwk["crv"] == "P-256"


def test_metadata_lists_rfc_8414_fields(http):
    metadata = http.get("/.well-known/oauth-authorization-server").json()
    assert metadata["issuer"] == ISSUER
    assert metadata["token_endpoint"] == f"{ISSUER}/oauth/token"
    assert metadata["authorization_endpoint"] == f"{ISSUER}/oauth/authorize"
    assert metadata["jwks_uri"] == f"{ISSUER}/oauth/jwks"
    assert metadata["revocation_endpoint"] == f"{ISSUER}/oauth/revoke"
    assert metadata["introspection_endpoint"] == f"{ISSUER}/oauth/introspect"
    assert metadata["grant_types_supported"] == [
        "client_credentials",
        "authorization_code",
        "refresh_token",
    ]
    assert metadata["response_types_supported"] == ["code"]
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert "private_key_jwt" in metadata["token_endpoint_auth_methods_supported"]
    assert "none" not in metadata["introspection_endpoint_auth_methods_supported"]
    assert metadata["scopes_supported"] == SCOPES
    # RFC 8414 §3: validated by authlib's own metadata model
    from authlib.oauth2.rfc8414 import AuthorizationServerMetadata

    AuthorizationServerMetadata(metadata).validate()


# --- resource-server validation ----------------------------------------------------------


def test_authenticate_fresh_token_returns_principal(service, http, registered, org):
    principal = service.authenticate(issue(http, registered))
    assert principal == Principal(
        subject=registered.client_id,
        client_id=registered.client_id,
        org_id=org.id,
        org_slug=org.slug,
        region="SZ",
        jurisdiction="mainland",
        roles=frozenset({"consumer"}),
        scopes=frozenset({"datasets:read", "query"}),
    )


def test_validate_accepts_application_at_jwt_and_audience_list(service, our_key, org, registered):
    claims = claims_for(org, registered, aud=["https://other.example", AUDIENCE])
    token = sign(our_key, claims, typ="application/at+jwt")
    keys = service.keys.verification_keys()
    principal = validate_access_token(token, keys=keys, issuer=ISSUER, audience=AUDIENCE)
    assert principal.scopes == frozenset({"query"})


def test_validate_rejects_same_kid_signed_by_another_key(service, our_key, org, registered):
    forger = ECKey.generate_key("P-256", {"kid": str(our_key.kid), "alg": "ES256"})
    assert rejection(service, sign(forger, claims_for(org, registered))) == "bad_signature"


def test_validate_rejects_unknown_kid(service, our_key, org, registered):
    forger = ECKey.generate_key("P-256", {"kid": "attacker", "alg": "ES256"})
    assert rejection(service, sign(forger, claims_for(org, registered))) == "unknown_key"


def test_validate_rejects_missing_kid(service, our_key, org, registered):
    token = sign(our_key, claims_for(org, registered), kid=None)
    assert rejection(service, token) == "unknown_key"


def test_validate_ignores_jku_and_embedded_jwk(service, our_key, org, registered):
    forger = ECKey.generate_key("P-256", {"kid": "attacker", "alg": "ES256"})
    claims = claims_for(org, registered)
    with_jku = sign(forger, claims, jku="https://evil.example/jwks.json")
    assert rejection(service, with_jku) == "unknown_key"
    with_jwk = sign(forger, claims, kid=our_key.kid, jwk=forger.as_dict(private=False))
    assert rejection(service, with_jwk) == "bad_signature"
    with_x5u = sign(forger, claims, kid=our_key.kid, x5u="https://evil.example/cert.pem")
    assert rejection(service, with_x5u) == "bad_signature"
    with_x5u_only = sign(forger, claims, x5u="https://evil.example/cert.pem")
    assert rejection(service, with_x5u_only) == "unknown_key"


def test_validate_rejects_rs256_token_naming_an_es256_kid(service, our_key, org, registered):
    forger = RSAKey.generate_key(2048, {"kid": str(our_key.kid), "alg": "RS256"})
    assert rejection(service, sign(forger, claims_for(org, registered))) == "unknown_key"


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"exp": int(time.time()) - 120}, "expired"),
        ({"aud": "https://other.example"}, "wrong_audience"),
        ({"iss": "https://evil.example"}, "wrong_issuer"),
        ({"nbf": int(time.time()) + 600}, "not_yet_valid"),
        ({"iat": int(time.time()) + 600}, "issued_in_future"),
        ({"roles": "admin"}, "invalid_claim"),
        ({"jurisdiction": "HK"}, "invalid_claim"),
        ({"region": "XX"}, "invalid_claim"),
        ({"client_id": 42}, "invalid_claim"),
    ],
)
def test_validate_rejects_bad_claims(service, our_key, org, registered, overrides, reason):
    token = sign(our_key, claims_for(org, registered, **overrides))
    assert rejection(service, token) == reason


@pytest.mark.parametrize("claim", REQUIRED_CLAIMS)
def test_validate_rejects_missing_required_claim(service, our_key, org, registered, claim):
    token = sign(our_key, claims_for(org, registered, **{claim: None}))
    assert rejection(service, token) == "missing_claim"


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ({"typ": None}, "wrong_type"),
        ({"typ": "JWT"}, "wrong_type"),
        ({"crit": ["kid"]}, "unsupported_header"),
    ],
)
def test_validate_rejects_bad_headers(service, our_key, org, registered, header, reason):
    assert rejection(service, sign(our_key, claims_for(org, registered), **header)) == reason


def test_validate_rejects_alg_none(service, our_key, org, registered):
    header = {"alg": "none", "typ": "at+jwt", "kid": our_key.kid}
    token = unsigned(header, claims_for(org, registered))
    assert rejection(service, token) == "unsupported_algorithm"


def test_validate_rejects_hs256_signed_with_public_key(service, our_key, org, registered):
    header = {"alg": "HS256", "typ": "at+jwt", "kid": our_key.kid}
    signing_input = unsigned(header, claims_for(org, registered)).rsplit(".", 1)[0]
    public_pem = our_key.as_pem(private=False)
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    assert rejection(service, signing_input + "." + b64(mac)) == "unsupported_algorithm"


def test_validate_rejects_oversized_token(service, our_key, org, registered):
    token = sign(our_key, claims_for(org, registered, pad="x" * 9000))
    assert rejection(service, token) == "oversized"


@pytest.mark.parametrize("token", ["", "not-a-jwt", "a.b", "a.b.c.d.e", "ey.ey.ey", "é.é.é"])
def test_validate_rejects_malformed_token(service, our_key, token):
    assert rejection(service, token) in {"missing", "malformed"}


def test_validate_leeway_above_sixty_seconds_refused(service, our_key):
    with pytest.raises(ValueError, match="leeway"):
        validate_access_token(
            "x",
            keys=service.keys.verification_keys(),
            issuer=ISSUER,
            audience=AUDIENCE,
            leeway_seconds=600,
        )


def test_invalid_token_challenge_follows_rfc_6750():
    assert InvalidToken("missing").www_authenticate == "Bearer"
    expired = InvalidToken("expired").www_authenticate
    assert expired.startswith('Bearer error="invalid_token"') and "expired" in expired
    assert "bad_signature" not in InvalidToken("bad_signature").www_authenticate


# --- key rotation and several processes --------------------------------------------------


def test_key_rotation_old_tokens_valid_during_overlap(make_service, sessions, registered):
    service = make_service(key_refresh_seconds=0)
    http = http_for(service)
    old_token = issue(http, registered)
    with sessions() as session:
        rotate_signing_key(session, KEY_SECRET)
    new_token = issue(http, registered)
    old_kid, new_kid = segments(old_token)[0]["kid"], segments(new_token)[0]["kid"]
    assert old_kid != new_kid
    assert service.authenticate(old_token).client_id == registered.client_id
    assert service.authenticate(new_token).client_id == registered.client_id
    assert {old_kid, new_kid} <= {jwk["kid"] for jwk in http.get("/oauth/jwks").json()["keys"]}


def test_key_from_another_process_accepted_via_unknown_kid_refresh(
    make_service, sessions, registered
):
    process_a = make_service(key_refresh_seconds=3600)
    issue(http_for(process_a), registered)  # A caches its keys for an hour
    with sessions() as session:
        rotate_signing_key(session, KEY_SECRET)  # process B rotates
    process_b = make_service(key_refresh_seconds=3600)
    token_b = issue(http_for(process_b), registered)
    assert process_a.authenticate(token_b).client_id == registered.client_id
    assert not process_a.keys.refresh_after_unknown_kid()  # cooldown: no second refresh


def test_unknown_kid_refresh_limited_by_cooldown(service, our_key, org, registered):
    forger = ECKey.generate_key("P-256", {"kid": "attacker", "alg": "ES256"})
    token = sign(forger, claims_for(org, registered))
    with pytest.raises(InvalidToken):
        service.authenticate(token)  # spends the one refresh
    assert not service.keys.refresh_after_unknown_kid()


# --- configuration -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {"issuer": "http://gateway.example"},
        {"issuer": "https://gateway.example/?x=1"},
        {"key_secret": b"short"},
        {"access_token_ttl": 10},
        {"key_rotate_after": timedelta(seconds=60)},
    ],
)
def test_service_refuses_unsafe_configuration(make_service, overrides):
    with pytest.raises(ValueError):
        make_service(**overrides)


def test_service_allows_http_issuer_on_loopback(make_service):
    assert make_service(issuer="http://127.0.0.1:8000").metadata()["issuer"].startswith("http://")


def test_authenticate_before_any_key_exists_is_invalid_token_not_error(service, org, registered):
    forger = ECKey.generate_key("P-256", {"kid": "early", "alg": "ES256"}, private=True)
    with pytest.raises(InvalidToken) as refused:
        service.authenticate(sign(forger, claims_for(org, registered)))
    assert refused.value.reason == "unknown_key"


# --- tokens seen before ------------------------------------------------------------------


def test_a_repeated_token_skips_the_signature_check_not_expiry_revocation_or_key_retirement(
    make_service, sessions, registered, org, monkeypatch
):
    """``VerifiedTokens``: the second request with a token does not verify its signature
    again, but an expired, revoked or forged token, or one whose key left the key set, is
    still refused."""
    import gateway.oauth.tokens as tokens

    service = make_service(leeway_seconds=0, key_refresh_seconds=3600)
    key = _signing_key(service, registered)
    checked: list[str] = []
    verify = tokens._verify_signature

    def counted(compact: Any, used: Key) -> None:
        checked.append(str(used.kid))
        verify(compact, used)

    monkeypatch.setattr(tokens, "_verify_signature", counted)
    token = sign(key, claims_for(org, registered))
    first = service.authenticate(token)
    assert service.authenticate(token) == first and len(checked) == 1

    header, payload, signature = token.split(".")
    flipped = signature[:5] + ("A" if signature[5] != "A" else "B") + signature[6:]
    with pytest.raises(InvalidToken) as forged:
        service.authenticate(f"{header}.{payload}.{flipped}")
    assert forged.value.reason == "bad_signature" and len(checked) == 2

    revoked = sign(key, claims_for(org, registered, jti="revoke-me"))
    service.authenticate(revoked)
    with sessions.begin() as session:
        expires = datetime.now(UTC) + timedelta(minutes=5)
        revoke_jti(session, "revoke-me", expires_at=expires, reason="test")
    with pytest.raises(InvalidToken) as refused:
        service.authenticate(revoked)
    assert refused.value.reason == "revoked"

    short = sign(key, claims_for(org, registered, exp=int(time.time()) + 1))
    service.authenticate(short)
    time.sleep(2.1)
    with pytest.raises(InvalidToken) as expired:
        service.authenticate(short)
    assert expired.value.reason == "expired"

    # the key set is re-read (a refresh builds new key objects): the token is checked in
    # full once more, against the keys now published
    before = len(checked)
    service.keys.refresh_after_unknown_kid()
    assert service.authenticate(token) == first and len(checked) == before + 1


def test_tokens_seen_before_are_bounded_least_recently_used_first(
    service, our_key, org, registered
):
    from gateway.oauth.tokens import VerifiedTokens

    seen = VerifiedTokens(max_entries=2)
    keys = service.keys.verification_keys()
    tokens = [sign(our_key, claims_for(org, registered)) for _ in range(3)]

    def check(token: str) -> Principal:
        return validate_access_token(
            token, keys=keys, issuer=ISSUER, audience=AUDIENCE, verified=seen
        )

    check(tokens[0])
    check(tokens[1])
    check(tokens[0])  # now the most recently used
    check(tokens[2])
    assert len(seen) == 2
    assert seen.lookup(tokens[1], keys, ISSUER, AUDIENCE) is None
    assert seen.lookup(tokens[0], keys, ISSUER, AUDIENCE) is not None
    assert seen.lookup(tokens[0], keys, ISSUER, "https://other.test") is None


def _signing_key(service: OAuthService, who: Registered) -> Key:
    issue(http_for(service), who)  # creates the signing key
    return service.keys.signing_key()
