"""How clients authenticate and what the grants know about clients and people.

``RegisteredClient`` and ``UserAccount`` are snapshots of catalog rows as authlib sees
them. Client authentication: ``client_secret_basic``/``client_secret_post`` (argon2id;
unknown clients cost the same as wrong secrets), ``none`` for public clients, and
``private_key_jwt`` (RFC 7523) with keys the client registered. Every failure reads the
same to the caller: one generic ``invalid_client``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from authlib.oauth2.rfc6749 import ClientMixin, InvalidClientError, OAuth2Request
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy.orm import Session, sessionmaker
from typing_extensions import override

from catalog.clients import SPINE_PROFILE, ClientProfile, verify_client_secret
from catalog.models import OAuthClient
from catalog.oauth_state import remember_assertion
from catalog.regions import Region

SECRET_METHODS: Final = frozenset({"client_secret_basic", "client_secret_post"})
ASSERTION_ALGORITHMS: Final = ("ES256", "RS256")
MAX_ASSERTION_LIFETIME: Final = 300


@dataclass(frozen=True, eq=False)
class RegisteredClient(ClientMixin):  # type: ignore[misc]  # authlib ships no type information
    """A client as authlib sees it (a snapshot of catalog rows)."""

    record: OAuthClient = field(repr=False)
    org_slug: str
    region: Region
    scopes: tuple[str, ...]  # registered scopes that the server still supports
    profile: ClientProfile = SPINE_PROFILE

    @override
    def get_client_id(self) -> str:
        return self.record.client_id

    @override
    def get_default_redirect_uri(self) -> None:
        return None  # the redirect URI must always be sent (and match exactly)

    @override
    def get_allowed_scope(self, scope: str | None) -> str | None:
        """Omitted scope → every registered scope; otherwise the intersection (None if empty)."""
        if not scope:
            return " ".join(self.scopes)
        granted = [token for token in scope.split() if token in self.scopes]
        return " ".join(dict.fromkeys(granted)) if granted else None

    @override
    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return any(
            secrets.compare_digest(redirect_uri.encode(), uri.encode())
            for uri in self.profile.redirect_uris
        )

    @override
    def check_client_secret(self, client_secret: str) -> bool:
        return verify_client_secret(self.record, client_secret)

    @override
    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.profile.auth_method in SECRET_METHODS:
            return method in SECRET_METHODS
        return method == self.profile.auth_method

    @override
    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.profile.grant_types

    @override
    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.profile.grant_types

    def identity_claims(self) -> dict[str, Any]:
        return {
            "org": self.record.org_id,
            "org_slug": self.org_slug,
            "region": self.region.value,
            "jurisdiction": self.region.jurisdiction,
            "roles": [str(role) for role in self.record.roles],
        }


@dataclass(frozen=True)
class UserAccount:
    """A person as the grants see them (a snapshot of catalog rows)."""

    id: str
    username: str
    display_name: str
    org_id: str
    org_slug: str
    region: Region
    roles: tuple[str, ...]
    steward_regions: tuple[str, ...]
    auth_time: datetime | None = None

    def get_user_id(self) -> str:
        return self.id

    def identity_claims(self) -> dict[str, Any]:
        claims: dict[str, Any] = {
            "org": self.org_id,
            "org_slug": self.org_slug,
            "region": self.region.value,
            "jurisdiction": self.region.jurisdiction,
            "roles": list(self.roles),
        }
        if self.steward_regions:
            claims["steward_regions"] = list(self.steward_regions)
        return claims


QueryClient = Callable[[str], RegisteredClient | None]


def _authenticate_basic(query_client: QueryClient, request: OAuth2Request) -> Any:
    client_id, secret = extract_basic_authorization(request.headers)
    return _authenticate(query_client, client_id, secret)


def _authenticate_post(query_client: QueryClient, request: OAuth2Request) -> Any:
    data = request.payload.data
    return _authenticate(query_client, data.get("client_id"), data.get("client_secret"))


def _authenticate(
    query_client: QueryClient, client_id: str | None, secret: str | None
) -> RegisteredClient | None:
    if not client_id or not secret:
        return None
    client = query_client(client_id)
    if client is None:
        verify_client_secret(None, secret)  # same cost as a real check: no existence oracle
        return None
    return client if client.check_client_secret(secret) else None


def _authenticate_none(query_client: QueryClient, request: OAuth2Request) -> Any:
    """A public client names itself and proves nothing (PKCE binds its codes)."""
    data = request.payload.data
    client_id = data.get("client_id")
    basic_id, _ = extract_basic_authorization(request.headers)
    if not client_id or basic_id or "client_secret" in data or "client_assertion" in data:
        return None
    client = query_client(client_id)
    return client if client is not None and client.profile.auth_method == "none" else None


class PrivateKeyJWT(JWTBearerClientAssertion):  # type: ignore[misc]  # authlib ships no types
    """``private_key_jwt`` (RFC 7523 §2.2, OIDC Core §9): an assertion signed with a key the
    client registered. The audience is our issuer or token endpoint; each ``jti`` works once;
    assertions may live five minutes at most; only asymmetric algorithms are accepted."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, sessions: sessionmaker[Session], audiences: list[str]) -> None:
        super().__init__(validate_jti=True, leeway=30)
        self._sessions = sessions
        self._audiences = audiences

    @override
    def __call__(self, query_client: QueryClient, request: OAuth2Request) -> Any:
        try:
            return super().__call__(query_client, request)
        except InvalidClientError:
            return None  # the caller answers with one generic invalid_client

    @override
    def get_audiences(self) -> list[str]:
        return self._audiences

    @override
    def resolve_client_public_key(self, client: RegisteredClient) -> KeySet:
        if client.profile.jwks is None:
            raise InvalidClientError()
        return KeySet.import_key_set(client.profile.jwks)  # type: ignore[arg-type]

    @override
    def process_assertion_claims(self, assertion: str, resolve_key: Any) -> dict[str, Any]:
        try:
            token = jwt.decode(assertion, resolve_key, algorithms=list(ASSERTION_ALGORITHMS))
        except (JoseError, ValueError) as error:
            raise InvalidClientError() from error
        self.verify_claims(token.claims)
        claims: dict[str, Any] = token.claims
        return claims

    @override
    def validate_jti(self, claims: dict[str, Any], jti: Any) -> bool:
        exp = claims.get("exp")
        if not isinstance(jti, str) or not 1 <= len(jti) <= 256 or not isinstance(exp, int):
            return False
        if exp > time.time() + MAX_ASSERTION_LIFETIME + self.leeway:
            return False
        with self._sessions() as session:
            return remember_assertion(
                session, str(claims["sub"]), jti, datetime.fromtimestamp(exp, UTC)
            )
