"""Grants for people: authorization code with PKCE (S256 only) and rotating refresh tokens.

authlib supplies the protocol steps; this module supplies storage and what authlib
leaves permissive (SECURITY.md §4.2):
- PKCE is required for every client, public or confidential, and only ``S256`` is
  accepted (authlib's ``CodeChallenge`` defaults to ``plain`` and requires a verifier
  only from public clients);
- the redirect URI must be sent and must equal a registered one exactly;
- a code works once; a second use revokes every token issued from it;
- a refresh token works once; presenting a used one revokes its whole family, and a
  refresh can narrow but never widen the scope (nor exceed the user's current roles);
- ``openid`` in the scope adds an ID token for the console (OpenID Connect Core §3.1.3.3).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError, OAuth2Request
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant, RefreshTokenGrant
from authlib.oauth2.rfc7636 import CodeChallenge
from typing_extensions import override

from catalog.oauth_state import (
    CodeGrant,
    FamilyView,
    find_refresh_token,
    redeem_code,
    save_code,
    use_refresh_token,
)
from gateway.oauth.scopes import OPENID, scopes_for_roles

if TYPE_CHECKING:
    from gateway.oauth.client_auth import RegisteredClient, UserAccount
    from gateway.oauth.server import GatewayAuthorizationServer

MAX_NONCE_CHARS = 255
USER_GRANT_AUTH_METHODS: tuple[str, ...] = (
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
    "none",
)


def allowed_user_scope(scope: str, user: UserAccount) -> str:
    """``scope`` narrowed to what the user's roles allow (``openid`` passes through)."""
    allowed = set(scopes_for_roles(user.roles)) | {OPENID}
    return " ".join(token for token in scope.split() if token in allowed)


class S256CodeChallenge(CodeChallenge):  # type: ignore[misc]  # authlib ships no types
    """PKCE for every client, S256 only (RFC 9700 §2.1.1; RFC 7636 §4.2)."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = ["S256"]

    @override
    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send code_challenge (S256).")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256.")
        super().validate_code_challenge(grant, redirect_uri)

    @override
    def validate_code_verifier(self, grant: Any, result: Any) -> None:
        if not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("Missing 'code_verifier'.")
        super().validate_code_verifier(grant, result)


@dataclass(frozen=True)
class RedeemedCode:
    grant: CodeGrant
    code_challenge: str
    code_challenge_method: str

    def get_redirect_uri(self) -> str:
        return self.grant.redirect_uri

    def get_scope(self) -> str:
        return self.grant.scope


class CodeGrantFlow(AuthorizationCodeGrant):  # type: ignore[misc]  # authlib ships no types
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = list(USER_GRANT_AUTH_METHODS)
    AUTHORIZATION_CODE_LENGTH = 43  # 256 bits of base64url

    server: GatewayAuthorizationServer

    @override
    def validate_authorization_request(self) -> str:
        if not self.request.payload.redirect_uri:
            raise InvalidRequestError("Send redirect_uri; it must equal a registered one.")
        redirect_uri: str = super().validate_authorization_request()
        if len(self.request.payload.data.get("nonce") or "") > MAX_NONCE_CHARS:
            raise InvalidRequestError(
                f"nonce is longer than {MAX_NONCE_CHARS} characters.",
                redirect_uri=redirect_uri,
                state=self.request.payload.state,
            )
        return redirect_uri

    @override
    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        user: UserAccount = request.user
        data = request.payload.data
        with self.server.sessions() as session:
            save_code(
                session,
                code,
                client_id=request.client.get_client_id(),
                user_id=user.id,
                redirect_uri=request.payload.redirect_uri,
                scope=allowed_user_scope(request.scope or "", user),
                nonce=(data.get("nonce") or None),
                code_challenge=data["code_challenge"],
                code_challenge_method=data["code_challenge_method"],
                auth_time=user.auth_time or datetime.now().astimezone(),
                ttl=self.server.code_ttl,
            )

    @override
    def query_authorization_code(self, code: str, client: RegisteredClient) -> RedeemedCode | None:
        with self.server.sessions() as session:
            outcome, grant = redeem_code(session, code, client.get_client_id())
        if outcome == "replayed":
            self.server.record(
                "token.refused", client.get_client_id(), "refused", reason="code_replayed"
            )
        if grant is None:
            return None
        return RedeemedCode(grant, grant.code_challenge, grant.code_challenge_method)

    @override
    def delete_authorization_code(self, authorization_code: RedeemedCode) -> None:
        """Nothing to do: redeeming marked it used (kept to detect a replay)."""

    @override
    def authenticate_user(self, authorization_code: RedeemedCode) -> UserAccount | None:
        grant = authorization_code.grant
        return self.server.load_user(grant.user_id, auth_time=grant.auth_time)

    @override
    def generate_token(self, user: Any = None, scope: Any = None, **kwargs: Any) -> Any:
        token = super().generate_token(user=user, scope=scope, **kwargs)
        code: RedeemedCode = self.request.authorization_code
        if user is not None and OPENID in (scope or "").split():
            token["id_token"] = self.server.id_token(
                self.request.client, user, nonce=code.grant.nonce, access_token=token
            )
        return token


@dataclass(frozen=True)
class RefreshCredential:
    token: str
    family: FamilyView

    def check_client(self, client: RegisteredClient) -> bool:
        return bool(self.family.client_id == client.get_client_id())

    def get_scope(self) -> str:
        return self.family.scope


class RefreshFlow(RefreshTokenGrant):  # type: ignore[misc]  # authlib ships no types
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = list(USER_GRANT_AUTH_METHODS)
    INCLUDE_NEW_REFRESH_TOKEN = True

    server: GatewayAuthorizationServer

    @override
    def authenticate_refresh_token(self, refresh_token: str) -> RefreshCredential | None:
        with self.server.sessions() as session:
            outcome, family = find_refresh_token(session, refresh_token)
        if outcome in ("replayed", "revoked"):
            self.server.record("token.refused", None, "refused", reason=f"refresh_token_{outcome}")
        return RefreshCredential(refresh_token, family) if family is not None else None

    @override
    def authenticate_user(self, refresh_token: RefreshCredential) -> UserAccount | None:
        family = refresh_token.family
        if family.user_id is None:
            return None
        user = self.server.load_user(family.user_id, auth_time=family.auth_time)
        if user is None:
            raise InvalidGrantError("The refresh token is no longer valid.")
        return user

    @override
    def issue_token(self, user: UserAccount, refresh_token: RefreshCredential) -> Any:
        scope = self.request.payload.scope or refresh_token.get_scope()
        return self.generate_token(
            user=user,
            scope=allowed_user_scope(scope, user),
            include_refresh_token=True,
        )

    @override
    def revoke_old_credential(self, refresh_token: RefreshCredential) -> None:
        with self.server.sessions() as session:
            first = use_refresh_token(session, refresh_token.token)
        if not first:  # a concurrent request rotated it: one of the two is an attacker
            self.server.record("token.refused", None, "refused", reason="refresh_token_reused")
            raise InvalidGrantError("The refresh token was already used.")
