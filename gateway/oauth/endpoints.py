"""Revocation (RFC 7009) and introspection (RFC 7662) on authlib's endpoint classes.

Access tokens are self-contained JWTs, so revoking one records its ``jti`` until it
would have expired; the one validator (``gateway.oauth.tokens``) refuses it from then
on. Revoking a refresh token revokes its whole family (RFC 7009 §2.1: the access
tokens of the same grant go too). A client may revoke only its own tokens; an unknown
or foreign-signed token is answered with 200 as the RFC asks.

Introspection answers only clients registered as resource servers; anyone else gets
``unauthorized_client``. Unknown, expired and revoked tokens are ``{"active": false}``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from authlib.oauth2.rfc6749 import OAuth2Request, UnauthorizedClientError
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from typing_extensions import override

from catalog.oauth_state import (
    RefreshView,
    is_revoked,
    peek_refresh_token,
    revoke_family,
    revoke_jti,
)

if TYPE_CHECKING:
    from gateway.oauth.client_auth import RegisteredClient
    from gateway.oauth.server import GatewayAuthorizationServer

ENDPOINT_AUTH_METHODS: list[str] = [
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
    "none",
]
ReadAccessToken = Callable[[str], dict[str, Any] | None]


@dataclass(frozen=True)
class AccessTokenRecord:
    claims: dict[str, Any]
    revoked: bool

    def check_client(self, client: RegisteredClient) -> bool:
        return bool(self.claims.get("client_id") == client.get_client_id())

    def is_expired(self) -> bool:
        return bool(self.claims["exp"] <= datetime.now(UTC).timestamp())

    def is_revoked(self) -> bool:
        return self.revoked


@dataclass(frozen=True)
class RefreshTokenRecord:
    view: RefreshView

    def check_client(self, client: RegisteredClient) -> bool:
        return bool(self.view.family.client_id == client.get_client_id())

    def is_expired(self) -> bool:
        return self.view.expires_at <= datetime.now(UTC)

    def is_revoked(self) -> bool:
        return not self.view.active


TokenRecord = AccessTokenRecord | RefreshTokenRecord


class _TokenLookup:
    server: GatewayAuthorizationServer
    read_access_token: ReadAccessToken

    def find(self, token: str, hint: str | None) -> TokenRecord | None:
        order = (
            ("refresh_token", "access_token")
            if hint == "refresh_token"
            else ("access_token", "refresh_token")
        )
        for kind in order:
            record = self._access(token) if kind == "access_token" else self._refresh(token)
            if record is not None:
                return record
        return None

    def _access(self, token: str) -> AccessTokenRecord | None:
        if token.count(".") != 2:
            return None
        claims = self.read_access_token(token)
        if claims is None:
            return None
        with self.server.sessions() as session:
            return AccessTokenRecord(claims, is_revoked(session, claims["jti"]))

    def _refresh(self, token: str) -> RefreshTokenRecord | None:
        if not 20 <= len(token) <= 256:
            return None
        with self.server.sessions() as session:
            view = peek_refresh_token(session, token)
        return RefreshTokenRecord(view) if view is not None else None


class Revocation(_TokenLookup, RevocationEndpoint):  # type: ignore[misc]  # untyped authlib
    CLIENT_AUTH_METHODS: ClassVar[list[str]] = ENDPOINT_AUTH_METHODS

    def __init__(self, server: GatewayAuthorizationServer, read_access_token: ReadAccessToken):
        super().__init__(server)
        self.read_access_token = read_access_token

    @override
    def query_token(self, token_string: str, token_type_hint: str | None) -> TokenRecord | None:
        return self.find(token_string, token_type_hint)

    @override
    def revoke_token(self, token: TokenRecord, request: OAuth2Request) -> None:
        client_id = request.client.get_client_id()
        with self.server.sessions() as session:
            if isinstance(token, AccessTokenRecord):
                claims = token.claims
                expires = datetime.fromtimestamp(claims["exp"], UTC)
                revoke_jti(session, claims["jti"], expires_at=expires, reason="revoked_by_client")
                detail = {"jti": claims["jti"], "type": "access_token"}
            else:
                revoke_family(session, token.view.family.id, reason="revoked_by_client")
                session.commit()
                detail = {"family": token.view.family.id, "type": "refresh_token"}
        self.server.record("token.revoked", client_id, "revoked", **detail)


class Introspection(_TokenLookup, IntrospectionEndpoint):  # type: ignore[misc]  # untyped authlib
    CLIENT_AUTH_METHODS: ClassVar[list[str]] = [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
    ]

    def __init__(self, server: GatewayAuthorizationServer, read_access_token: ReadAccessToken):
        super().__init__(server)
        self.read_access_token = read_access_token

    @override
    def authenticate_endpoint_client(self, request: OAuth2Request) -> Any:
        client = super().authenticate_endpoint_client(request)
        if not client.profile.resource_server:
            error = UnauthorizedClientError(
                "Only clients registered as resource servers may introspect tokens."
            )
            error.status_code = 403
            raise error
        return client

    @override
    def query_token(self, token_string: str, token_type_hint: str | None) -> TokenRecord | None:
        return self.find(token_string, token_type_hint)

    @override
    def check_permission(self, token: TokenRecord, client: Any, request: OAuth2Request) -> bool:
        return True  # every registered resource server may introspect every token

    @override
    def introspect_token(self, token: TokenRecord) -> dict[str, Any]:
        if isinstance(token, AccessTokenRecord):
            claims = token.claims
            names = ("scope", "client_id", "sub", "aud", "iss", "exp", "iat", "nbf", "jti")
            identity = ("org", "org_slug", "region", "jurisdiction", "roles")
            body = {name: claims[name] for name in (*names, *identity) if name in claims}
            return {"active": True, "token_type": "Bearer", **body}
        family = token.view.family
        return {
            "active": True,
            "token_type": "refresh_token",
            "client_id": family.client_id,
            "sub": family.user_id,
            "scope": family.scope,
            "exp": int(token.view.expires_at.timestamp()),
            "iss": self.server.issuer,
        }
