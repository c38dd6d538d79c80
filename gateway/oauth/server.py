"""The authorization server: authlib's framework-agnostic core wired to Starlette.

Grants: ``client_credentials`` (programs), ``authorization_code`` with PKCE and
``refresh_token`` (people in the console; ``gateway.oauth.grants``). Client
authentication: ``client_secret_basic``/``client_secret_post`` (argon2id hashes),
``private_key_jwt`` (RFC 7523, keys registered with the client) and ``none`` for
public clients. Endpoints: revocation and introspection (``gateway.oauth.endpoints``).

What authlib does not do for us, and this module does:
- secret checks spend the hash time for unknown clients too, and every
  authentication failure reads the same (authlib answers "client does not
  exist" before touching a secret);
- requested scopes must all be in ``scopes_supported`` (authlib skips the check
  when that list is empty) and are intersected with the client's registration;
- the access token carries ``kid`` (a one-key ``KeySet`` makes joserfc add it),
  ``nbf`` and the organisation claims of the user (or of the client's
  organisation), with ``aud`` = the resource audience (authlib's default is the
  client id);
- each issued, refused and revoked token is written to the audit log.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Final

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    InvalidScopeError,
    JsonRequest,
    OAuth2Request,
    UnsupportedGrantTypeError,
)
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator
from joserfc import jws
from joserfc.jwk import Key, KeySet
from sqlalchemy.orm import Session, sessionmaker
from starlette.responses import JSONResponse, Response
from typing_extensions import override  # typing.override needs 3.12; ruff/mypy honour both

from catalog.clients import (
    client_profile,
    get_client,
    split_scope,
)
from catalog.errors import InvalidInput
from catalog.models import Organisation, aware
from catalog.oauth_state import add_tokens, start_family
from catalog.regions import Region
from catalog.users import User
from gateway.oauth.client_auth import (
    PrivateKeyJWT,
    RegisteredClient,
    UserAccount,
    _authenticate_basic,
    _authenticate_none,
    _authenticate_post,
)
from gateway.oauth.form_requests import (
    FormRequest,
    JsonBodyRequest,
    QueryRequest,
    TokenRequest,
    _JsonPayload,
)
from gateway.oauth.grants import CodeGrantFlow, RedeemedCode, RefreshFlow, S256CodeChallenge

log = logging.getLogger(__name__)

GRANT_TYPES: Final = ("client_credentials", "authorization_code", "refresh_token")
TOKEN_ENDPOINT_AUTH_METHODS: Final = (
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
    "none",
)
NO_STORE_HEADERS: Final = {"Cache-Control": "no-store", "Pragma": "no-cache"}

_TARGET: ContextVar[str | None] = ContextVar("oauth_resource", default=None)
"""The resource (RFC 8707) of the token request being answered on this thread."""

AuditHook = Callable[[str, str | None, str, dict[str, Any]], None]
"""(action, client_id, outcome, detail) → append to the audit log."""


@dataclass(frozen=True)
class AuthorizeInput:
    """A GET /oauth/authorize request: its query parameters and headers."""

    headers: dict[str, str]
    pairs: tuple[tuple[str, str], ...]


# --- tokens ------------------------------------------------------------------------------


class AccessTokenGenerator(JWTBearerTokenGenerator):  # type: ignore[misc]  # untyped authlib
    """RFC 9068 access tokens signed with the current key; opaque rotating refresh tokens."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        algorithm: str,
        ttl_seconds: int,
        signing_key: Callable[[], Key],
    ) -> None:
        super().__init__(
            issuer,
            alg=algorithm,
            expires_generator=ttl_seconds,
            refresh_token_generator=lambda *_args, **_kw: secrets.token_urlsafe(32),
        )
        self._audience = audience
        self.signing_key = signing_key
        self.ttl_seconds = ttl_seconds

    @override
    def get_jwks(self) -> KeySet:
        return KeySet([self.signing_key()])  # one-key set: joserfc writes its kid in the header

    @override
    def get_audiences(self, client: RegisteredClient, user: object, scope: str) -> str:
        return _TARGET.get() or self._audience

    @override
    def get_jti(self, client: RegisteredClient, grant_type: str, user: object, scope: str) -> str:
        return secrets.token_urlsafe(16)

    @override
    def get_extra_claims(
        self, client: RegisteredClient, grant_type: str, user: UserAccount | None, scope: str
    ) -> dict[str, Any]:
        identity = user.identity_claims() if user is not None else client.identity_claims()
        return {"nbf": int(time.time()), **identity}


def unverified_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT we just signed ourselves (never use on tokens from outside)."""
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


def at_hash(access_token: str) -> str:
    """OIDC Core §3.1.3.6: left half of SHA-256 of the access token (ES256 and RS256)."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()


class _ClientCredentials(ClientCredentialsGrant):  # type: ignore[misc]  # untyped authlib
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
    ]


# --- server ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lifetimes:
    code: timedelta = timedelta(minutes=2)
    refresh: timedelta = timedelta(days=1)
    family: timedelta = timedelta(days=14)
    id_token_seconds: int = 300


class GatewayAuthorizationServer(AuthorizationServer):  # type: ignore[misc]  # untyped authlib
    """authlib ``AuthorizationServer`` for Starlette, backed by the catalog."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        issuer: str,
        token_endpoint: str,
        scopes_supported: list[str],
        token_generator: AccessTokenGenerator,
        id_token_key: Callable[[], Key],
        lifetimes: Lifetimes | None = None,
        audit: AuditHook | None = None,
        resources: tuple[str, ...] = (),
    ) -> None:
        super().__init__(scopes_supported=list(scopes_supported))
        self.resources = frozenset(resources)
        self.sessions = sessions
        self.issuer = issuer
        self._token_endpoint = token_endpoint
        self._generator = token_generator
        self._id_token_key = id_token_key
        self.lifetimes = lifetimes or Lifetimes()
        self.code_ttl = self.lifetimes.code
        self._audit = audit
        self.register_client_auth_method("client_secret_basic", _authenticate_basic)
        self.register_client_auth_method("client_secret_post", _authenticate_post)
        self.register_client_auth_method("none", _authenticate_none)
        self.register_client_auth_method(
            "private_key_jwt", PrivateKeyJWT(sessions, [issuer, token_endpoint])
        )
        self.register_grant(_ClientCredentials)
        self.register_grant(CodeGrantFlow, [S256CodeChallenge(required=True)])
        self.register_grant(RefreshFlow)
        self.register_token_generator("default", token_generator)

    # -- catalog lookups --

    @override
    def query_client(self, client_id: str) -> RegisteredClient | None:
        """An enabled client with its organisation and registration, or None."""
        if not isinstance(client_id, str):
            return None
        with self.sessions() as session:
            record = get_client(session, client_id)
            if record is None or record.disabled_at is not None:
                return None
            org = session.get(Organisation, record.org_id)
            if org is None:
                return None
            supported = set(self.scopes_supported)
            scopes = tuple(token for token in record.scope.split() if token in supported)
            profile = client_profile(session, client_id)
            return RegisteredClient(record, org.slug, Region(org.region), scopes, profile)

    def load_user(
        self, user_id: str, *, auth_time: datetime | None = None, session_login: bool = False
    ) -> UserAccount | None:
        """An enabled user with their organisation, or None. With ``session_login`` a sign-in
        older than the user's last password change no longer counts."""
        with self.sessions() as session:
            user = session.get(User, user_id)
            if user is None or user.disabled_at is not None:
                return None
            changed = aware(user.password_changed_at)
            if (
                session_login
                and auth_time is not None
                and aware(auth_time) < changed.replace(microsecond=0)
            ):
                return None
            org = session.get(Organisation, user.org_id)
            if org is None:
                return None
            return UserAccount(
                id=user.id,
                username=user.username,
                display_name=user.display_name,
                org_id=org.id,
                org_slug=org.slug,
                region=Region(org.region),
                roles=tuple(user.roles),
                steward_regions=tuple(user.steward_regions),
                auth_time=aware(auth_time) if auth_time is not None else None,
            )

    # -- tokens --

    @override
    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        """Client-credentials JWTs need no storage; user tokens join their family."""
        grant_type = request.payload.grant_type
        client_id = request.client.get_client_id()
        claims = unverified_claims(token["access_token"])
        if grant_type in ("authorization_code", "refresh_token"):
            self._save_family_tokens(token, request, claims)
        self.record(
            "token.issued",
            client_id,
            "issued",
            grant_type=grant_type,
            sub=claims.get("sub"),
            scope=claims.get("scope"),
            jti=claims.get("jti"),
            refresh=bool(token.get("refresh_token")),
        )

    def _save_family_tokens(
        self, token: dict[str, Any], request: OAuth2Request, claims: dict[str, Any]
    ) -> None:
        lifetimes = self.lifetimes
        with self.sessions() as session:
            if request.payload.grant_type == "authorization_code":
                code: RedeemedCode = request.authorization_code
                family = start_family(
                    session,
                    client_id=request.client.get_client_id(),
                    user_id=request.user.id,
                    scope=code.grant.scope,
                    auth_time=code.grant.auth_time,
                    lifetime=lifetimes.family,
                    code_hash=code.grant.code_hash,
                )
            else:
                family = request.refresh_token.family
            add_tokens(
                session,
                family.id,
                jti=claims["jti"],
                access_expires_at=datetime.fromtimestamp(claims["exp"], UTC),
                refresh_token=token.get("refresh_token"),
                refresh_ttl=lifetimes.refresh,
            )

    def id_token(
        self,
        client: RegisteredClient,
        user: UserAccount,
        *,
        nonce: str | None,
        access_token: dict[str, Any],
    ) -> str:
        """An OIDC ID token for the console (``typ: JWT``, ``aud`` = the client: it can never
        pass as an access token, whose validator demands ``at+jwt`` and the API audience)."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": user.id,
            "aud": client.get_client_id(),
            "azp": client.get_client_id(),
            "iat": now,
            "exp": now + self.lifetimes.id_token_seconds,
            "auth_time": int((user.auth_time or datetime.now(UTC)).timestamp()),
            "at_hash": at_hash(access_token["access_token"]),
            "preferred_username": user.username,
            "name": user.display_name,
            **user.identity_claims(),
        }
        if nonce:
            claims["nonce"] = nonce
        key = self._id_token_key()  # never the access-token key (SECURITY.md §4)
        header = {"alg": key.alg, "typ": "JWT", "kid": key.kid}
        return jws.serialize_compact(header, json.dumps(claims), key, algorithms=[str(key.alg)])

    # -- audit --

    def record(self, action: str, client_id: str | None, outcome: str, **detail: Any) -> None:
        if self._audit is None:
            return
        try:
            self._audit(action, client_id, outcome, detail)
        except Exception:  # the audit log must not turn a token answer into a 500
            log.exception("could not write the audit event %s", action)

    # -- authlib plumbing --

    @override
    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        log.debug("oauth signal %s", name)

    @override
    def create_oauth2_request(
        self, request: TokenRequest | AuthorizeInput | OAuth2Request
    ) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request
        if isinstance(request, AuthorizeInput):
            return QueryRequest(self.issuer + "/oauth/authorize", request.headers, request.pairs)
        return FormRequest(self._token_endpoint, request)

    @override
    def create_json_request(self, request: JsonBodyRequest) -> JsonRequest:
        json_request = JsonRequest(request.method, self._token_endpoint, request.headers)
        json_request.payload = _JsonPayload(request.data)
        return json_request

    @override
    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> Response:
        merged = {**dict(headers), **NO_STORE_HEADERS}
        if isinstance(body, dict):
            return JSONResponse(body, status_code=status, headers=merged)
        return Response(body, status_code=status, headers=merged)

    @override
    def handle_error_response(self, request: OAuth2Request | None, error: OAuth2Error) -> Response:
        if request is not None and error.error != "invalid_client":
            client = getattr(request, "client", None)
            client_id = client.get_client_id() if client is not None else None
        else:
            client_id = None
        self.record("token.refused", client_id, "refused", error=error.error)
        response: Response = super().handle_error_response(request, error)
        return response

    @override
    def create_token_response(self, request: TokenRequest | OAuth2Request | None = None) -> Any:
        """RFC 8707: ``resource`` picks the audience among the registered resource servers
        (default: this gateway's API); a token for one resource is refused by the others."""
        oauth_request = self.create_oauth2_request(request)
        resource = oauth_request.payload.data.get("resource")
        if resource is not None and resource not in self.resources:
            error = OAuth2Error("Unknown resource; ask for a registered resource server.")
            error.error = "invalid_target"
            return self.handle_error_response(oauth_request, error)
        target = _TARGET.set(resource)
        try:
            return super().create_token_response(oauth_request)
        finally:
            _TARGET.reset(target)

    @override
    def validate_requested_scope(self, scope: str | None) -> None:
        """Every requested scope must be one this server knows, even if the list is empty."""
        if not scope:
            return
        try:
            tokens = split_scope(scope)
        except InvalidInput as error:
            raise InvalidScopeError() from error
        if not set(tokens) <= set(self.scopes_supported):
            raise InvalidScopeError()

    @override
    def get_token_grant(self, request: OAuth2Request) -> Any:
        try:
            return super().get_token_grant(request)
        except UnsupportedGrantTypeError as error:
            error.description = (
                "Supported grant types: client_credentials, authorization_code, refresh_token."
            )
            raise

    def error_response(self, error: OAuth2Error) -> Response:
        """An RFC 6749 error response for failures found before authlib runs."""
        return self.handle_error_response(None, error)
