"""External issuers at their HTTP boundary (a fake fetcher, T5): what their metadata and keys
must look like, and the jurisdiction a partner may not assert."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jws
from joserfc.jwk import ECKey
from sqlalchemy.orm import Session, sessionmaker

from catalog.database import make_engine, session_factory, upgrade_to_head
from gateway.oauth.errors import InvalidToken
from gateway.oauth.external import ExternalIssuer, ExternalIssuers, check_issuer_url
from tests.oauth.conftest import make_org

ISSUER = "https://idp.partner.example"


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    upgrade_to_head(engine)
    yield session_factory(engine)
    engine.dispose()


class FakeIdP:
    def __init__(self, metadata: dict[str, Any]) -> None:
        self.key = ECKey.generate_key(
            "P-256", {"alg": "ES256", "use": "sig"}, private=True, auto_kid=True
        )
        self.metadata = metadata
        self.fetched: list[str] = []

    def __call__(self, url: str) -> httpx.Response:
        self.fetched.append(url)
        if url.endswith("/.well-known/openid-configuration"):
            return httpx.Response(200, json=self.metadata)
        if url == self.metadata.get("jwks_uri"):
            return httpx.Response(200, json={"keys": [self.key.as_dict(private=False)]})
        return httpx.Response(404)

    def token(self, **overrides: Any) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": "datashare-gateway",
            "sub": "u1",
            "client_id": "app",
            "iat": now,
            "exp": now + 300,
            "jti": secrets.token_urlsafe(8),
            "org_slug": "hk_partner",
            "roles": ["consumer"],
            "scope": "query",
            **overrides,
        }
        header = {"alg": "ES256", "typ": "at+jwt", "kid": self.key.kid}
        return jws.serialize_compact(header, json.dumps(claims), self.key, algorithms=["ES256"])


def trust(sessions, idp: FakeIdP) -> ExternalIssuers:
    make_org(sessions, region="HK", slug="hk_partner")
    config = ExternalIssuer(
        name="p", issuer=ISSUER, audience="datashare-gateway", organisations=("hk_partner",)
    )
    return ExternalIssuers([config], sessions, http=idp)


def test_external_token_mapped_with_keys_from_metadata(sessions):
    idp = FakeIdP({"issuer": ISSUER, "jwks_uri": f"{ISSUER}/jwks"})
    external = trust(sessions, idp)
    token = idp.token(jku="https://evil.example/jwks")
    assert external.issuer_of(token) == ISSUER
    principal = external.authenticate(token, ISSUER)
    assert principal.org_slug == "hk_partner" and principal.jurisdiction == "HK"
    assert "https://evil.example/jwks" not in idp.fetched


@pytest.mark.parametrize(
    "metadata",
    [
        {"issuer": "https://other.example", "jwks_uri": f"{ISSUER}/jwks"},  # another issuer
        {"issuer": ISSUER, "jwks_uri": "https://cdn.elsewhere.example/jwks"},  # off-origin keys
        {"issuer": ISSUER, "jwks_uri": "http://idp.partner.example/jwks"},  # downgraded scheme
    ],
)
def test_external_metadata_not_trusted(sessions, metadata):
    idp = FakeIdP(metadata)
    external = trust(sessions, idp)
    with pytest.raises(InvalidToken) as refused:
        external.authenticate(idp.token(), ISSUER)
    assert refused.value.reason == "unknown_key"


def test_external_jurisdiction_claim_must_match_the_organisation(sessions):
    idp = FakeIdP({"issuer": ISSUER, "jwks_uri": f"{ISSUER}/jwks"})
    external = trust(sessions, idp)
    with pytest.raises(InvalidToken) as refused:
        external.authenticate(idp.token(jurisdiction="mainland"), ISSUER)
    assert refused.value.claim == "jurisdiction"


def test_external_token_without_at_jwt_type_refused(sessions):
    idp = FakeIdP({"issuer": ISSUER, "jwks_uri": f"{ISSUER}/jwks"})
    external = trust(sessions, idp)
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": "datashare-gateway",
        "sub": "u",
        "client_id": "a",
        "iat": now,
        "exp": now + 60,
        "jti": "j",
        "org_slug": "hk_partner",
    }
    id_token = jws.serialize_compact(
        {"alg": "ES256", "typ": "JWT", "kid": idp.key.kid},
        json.dumps(claims),
        idp.key,
        algorithms=["ES256"],
    )
    with pytest.raises(InvalidToken) as refused:
        external.authenticate(id_token, ISSUER)
    assert refused.value.reason == "wrong_type"


@pytest.mark.parametrize("url", ["http://idp.partner.example", "ftp://x", "https://"])
def test_external_issuer_url_must_be_https(url):
    with pytest.raises(ValueError):
        check_issuer_url(url)


def test_external_issuers_from_settings():
    from pydantic import ValidationError

    from gateway.settings import OAuthSettings

    parsed = OAuthSettings.model_validate(
        {
            "external_issuers": [
                {"name": "partner", "issuer": ISSUER, "organisations": ["hk_partner"]}
            ]
        }
    )
    assert parsed.external_issuers[0].allowed_roles == ["provider", "consumer"]
    for bad in (
        {"name": "partner", "issuer": "http://idp.partner.example", "organisations": ["x"]},
        {"name": "partner", "issuer": ISSUER, "organisations": []},
    ):
        with pytest.raises(ValidationError):
            OAuthSettings.model_validate({"external_issuers": [bad]})
