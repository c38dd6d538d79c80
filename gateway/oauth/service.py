"""``OAuthService``: what the app factory puts in ``app.state.oauth``.

It owns the authorization server, the in-memory key cache and the resource-server
check. Several gateway processes share one catalog, so keys are re-read every
``key_refresh_seconds``: a key another process created is used for validation at
the latest after that interval, or at once when a token names an unknown kid
(at most one such refresh per ``unknown_kid_cooldown_seconds``, so forged kids
cannot hammer the catalog). Retired keys stay published for ``key_overlap``,
which is longer than a token can live after its key was replaced elsewhere.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from joserfc.jwk import Key, KeySet
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from catalog.audit import AuditLog
from catalog.clients import (
    KeyPurpose,
    SigningAlgorithm,
    SigningKeyMaterial,
    active_signing_key,
    check_key_secret,
    published_keys,
    rotate_signing_key,
)
from catalog.oauth_state import is_revoked, purge_expired
from gateway.oauth.authorize import AuthorizeFlow
from gateway.oauth.client_auth import ASSERTION_ALGORITHMS
from gateway.oauth.endpoints import Introspection, Revocation
from gateway.oauth.errors import InvalidToken
from gateway.oauth.form_requests import TokenRequest, read_token_request
from gateway.oauth.login import SessionCookies
from gateway.oauth.rate_limit import RateLimiter
from gateway.oauth.server import (
    GRANT_TYPES,
    TOKEN_ENDPOINT_AUTH_METHODS,
    AccessTokenGenerator,
    GatewayAuthorizationServer,
    Lifetimes,
)
from gateway.oauth.tokens import VerifiedTokens, read_signed_token, validate_access_token
from policies.model import Principal

if TYPE_CHECKING:
    from gateway.oauth.external import ExternalIssuers

log = logging.getLogger(__name__)

TOKEN_PATH = "/oauth/token"
JWKS_PATH = "/oauth/jwks"
REVOKE_PATH = "/oauth/revoke"
PURGE_INTERVAL_SECONDS = 3600
INTROSPECT_PATH = "/oauth/introspect"


class SigningKeyCache:
    """Signing and verification keys of one purpose (access or ID tokens), cached in memory
    and re-read from the catalog."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        key_secret: bytes,
        rotate_after: timedelta,
        overlap: timedelta,
        algorithm: SigningAlgorithm,
        refresh_seconds: float,
        unknown_kid_cooldown_seconds: float,
        purpose: KeyPurpose = "access",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self.purpose: KeyPurpose = purpose
        self._key_secret = key_secret
        self._rotate_after = rotate_after
        self._overlap = overlap
        self._algorithm: SigningAlgorithm = algorithm
        self._refresh = refresh_seconds
        self._cooldown = unknown_kid_cooldown_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._signing: SigningKeyMaterial | None = None
        self._signing_loaded = float("-inf")
        self._published: list[dict[str, Any]] = []
        self._key_set = KeySet([])
        self._published_loaded = float("-inf")
        self._last_forced = float("-inf")

    @property
    def algorithm(self) -> SigningAlgorithm:
        return self._algorithm

    def signing_key(self) -> Key:
        with self._lock:
            if self._signing is None or self._signing_stale():
                self._load_signing()
            assert self._signing is not None
            return self._signing.private_key

    def verification_keys(self) -> KeySet:
        with self._lock:
            if self._clock() - self._published_loaded >= self._refresh:
                self._load_published()
            return self._key_set

    def published(self) -> list[dict[str, Any]]:
        self.verification_keys()
        return [dict(jwk) for jwk in self._published]

    def rotate(self) -> str:
        """Create a new signing key now (older keys stay published for the overlap); its kid."""
        with self._lock, self._sessions() as session:
            self._signing = rotate_signing_key(
                session, self._key_secret, algorithm=self._algorithm, purpose=self.purpose
            )
            self._signing_loaded = self._clock()
            self._load_published()
            return self._signing.kid

    def refresh_after_unknown_kid(self) -> bool:
        """Re-read the published keys unless that happened within the cooldown."""
        with self._lock:
            if self._clock() - self._last_forced < self._cooldown:
                return False
            self._last_forced = self._clock()
            self._load_published()
            return True

    def _signing_stale(self) -> bool:
        assert self._signing is not None
        too_old = datetime.now(UTC) - self._signing.created_at >= self._rotate_after
        return too_old or self._clock() - self._signing_loaded >= self._refresh

    def _load_signing(self) -> None:
        with self._sessions() as session:
            self._signing = active_signing_key(
                session,
                self._key_secret,
                rotate_after=self._rotate_after,
                algorithm=self._algorithm,
                purpose=self.purpose,
            )
        self._signing_loaded = self._clock()
        if self._signing.kid not in {jwk["kid"] for jwk in self._published}:
            self._load_published()  # our own new key must validate at once

    def _load_published(self) -> None:
        with self._sessions() as session:
            self._published = published_keys(session, overlap=self._overlap, purpose=self.purpose)
        # no key yet (nothing issued so far): an empty set, so tokens fail as unknown_key
        published = KeySet.import_key_set({"keys": self._published}) if self._published else None
        self._key_set = published or KeySet([])
        self._published_loaded = self._clock()


@dataclass(frozen=True)
class AbuseLimits:
    """Attempts per minute, per gateway process (see ``gateway.oauth.rate_limit``)."""

    token_per_client: int = 60
    token_per_ip: int = 120
    login_per_ip: int = 20
    login_per_user: int = 10


class OAuthService:
    """Token issuance, authorization, JWKS, metadata and bearer-token authentication."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        issuer: str,
        audience: str,
        access_token_ttl: int = 900,
        key_secret: bytes,
        key_rotate_after: timedelta = timedelta(days=30),
        scopes_supported: list[str],
        signing_algorithm: SigningAlgorithm = "ES256",
        leeway_seconds: int = 30,
        key_refresh_seconds: float = 30.0,
        unknown_kid_cooldown_seconds: float = 10.0,
        lifetimes: Lifetimes | None = None,
        limits: AbuseLimits | None = None,
        login_session_seconds: int = 8 * 3600,
        audit: AuditLog | None = None,
        external: ExternalIssuers | None = None,
        resources: tuple[str, ...] = (),
    ) -> None:
        _check_config(issuer, access_token_ttl, key_rotate_after, key_secret)
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self.scopes_supported = list(scopes_supported)
        self._leeway = leeway_seconds
        self._verified = VerifiedTokens()  # tokens seen before skip the signature check
        self._sessions = sessions
        self._audit_log = audit
        self.external = external
        self._last_purge = time.monotonic()
        key_options: dict[str, Any] = {
            "key_secret": key_secret,
            "rotate_after": key_rotate_after,
            "overlap": _key_overlap(access_token_ttl, key_refresh_seconds, leeway_seconds),
            "algorithm": signing_algorithm,
            "refresh_seconds": key_refresh_seconds,
            "unknown_kid_cooldown_seconds": unknown_kid_cooldown_seconds,
        }
        # Access tokens verify only against access keys; ID tokens have keys of their own
        self.keys = SigningKeyCache(sessions, purpose="access", **key_options)
        self.id_keys = SigningKeyCache(sessions, purpose="id", **key_options)
        generator = AccessTokenGenerator(
            issuer=self.issuer,
            audience=audience,
            algorithm=signing_algorithm,
            ttl_seconds=access_token_ttl,
            signing_key=self.keys.signing_key,
        )
        self.server = GatewayAuthorizationServer(
            sessions,
            issuer=self.issuer,
            token_endpoint=self.issuer + TOKEN_PATH,
            scopes_supported=self.scopes_supported,
            token_generator=generator,
            id_token_key=self.id_keys.signing_key,
            lifetimes=lifetimes or Lifetimes(),
            audit=self._record,
            resources=(audience, *resources),
        )
        self.server.register_endpoint(Revocation(self.server, self._read_own_token))
        self.server.register_endpoint(Introspection(self.server, self._read_own_token))
        limits = limits or AbuseLimits()
        self._token_per_client = RateLimiter(limits.token_per_client, 60)
        self._token_per_ip = RateLimiter(limits.token_per_ip, 60)
        self.flow = AuthorizeFlow(
            self.server,
            SessionCookies(
                key_secret,
                max_age=login_session_seconds,
                secure=self.issuer.startswith("https://"),
            ),
            login_per_ip=RateLimiter(limits.login_per_ip, 60),
            login_per_user=RateLimiter(limits.login_per_user, 60),
            audit=self._record_login,
        )

    # -- endpoints --

    async def issue_token(self, request: Request) -> Response:
        """The token endpoint: RFC 6749 JSON on success and on error, never cached."""
        try:
            token_request = await read_token_request(request)
        except OAuth2Error as error:
            return self.server.error_response(error)
        limited = self._rate_limited(request, token_request)
        if limited is not None:
            return limited
        response: Response = await run_in_threadpool(
            self.server.create_token_response, token_request
        )
        if time.monotonic() - self._last_purge > PURGE_INTERVAL_SECONDS:
            self._last_purge = time.monotonic()
            await run_in_threadpool(self._purge)
        return response

    def _purge(self) -> None:
        """Forget codes, revocations and assertion ids that can no longer matter."""
        try:
            with self._sessions() as session:
                purge_expired(session, grace=timedelta(hours=1))
        except Exception:  # housekeeping must never fail a token request
            log.exception("could not purge expired OAuth state")

    async def revoke(self, request: Request) -> Response:
        return await self._endpoint(request, Revocation.ENDPOINT_NAME)

    async def introspect(self, request: Request) -> Response:
        return await self._endpoint(request, Introspection.ENDPOINT_NAME)

    async def _endpoint(self, request: Request, name: str) -> Response:
        try:
            token_request = await read_token_request(request, grant=False)
        except OAuth2Error as error:
            return self.server.error_response(error)
        limited = self._rate_limited(request, token_request)
        if limited is not None:
            return limited
        response: Response = await run_in_threadpool(
            self.server.create_endpoint_response, name, token_request
        )
        return response

    def _rate_limited(self, request: Request, token_request: TokenRequest) -> Response | None:
        address = request.client.host if request.client is not None else "unknown"
        client_id = _claimed_client_id(token_request)
        wait = self._token_per_ip.hit("token-ip", address)
        if wait is None and client_id:
            wait = self._token_per_client.hit("token-client", client_id)
        if wait is None:
            return None
        self._record("token.refused", None, "rate_limited", {"address": address})
        error = OAuth2Error("Too many requests; retry later.", status_code=429)
        error.error = "temporarily_unavailable"
        response = self.server.error_response(error)
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response

    def jwks(self) -> dict[str, Any]:
        """Public keys of both purposes: clients verify ID tokens, resource servers access
        tokens, all against this one ``jwks_uri``."""
        return {"keys": self.keys.published() + self.id_keys.published()}

    def rotate_keys(self) -> dict[str, str]:
        """New access-token and ID-token signing keys; the kid of each."""
        return {"kid": self.keys.rotate(), "id_token_kid": self.id_keys.rotate()}

    def metadata(self) -> dict[str, Any]:
        """RFC 8414 authorization server metadata."""
        methods = list(TOKEN_ENDPOINT_AUTH_METHODS)
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.issuer + "/oauth/authorize",
            "token_endpoint": self.issuer + TOKEN_PATH,
            "jwks_uri": self.issuer + JWKS_PATH,
            "revocation_endpoint": self.issuer + REVOKE_PATH,
            "introspection_endpoint": self.issuer + INTROSPECT_PATH,
            "grant_types_supported": list(GRANT_TYPES),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": methods,
            "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
            "revocation_endpoint_auth_methods_supported": methods,
            "revocation_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
            "introspection_endpoint_auth_methods_supported": [m for m in methods if m != "none"],
            "introspection_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
            "scopes_supported": list(self.scopes_supported),
            "ui_locales_supported": ["en", "zh-Hans", "zh-Hant"],
            "authorization_response_iss_parameter_supported": True,
        }

    def openid_configuration(self) -> dict[str, Any]:
        """OpenID Connect Discovery 1.0 §3 (ID tokens for console sign-in)."""
        return {
            **self.metadata(),
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [self.keys.algorithm],
            "claims_supported": [
                "iss",
                "sub",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "at_hash",
                "preferred_username",
                "name",
                "org",
                "org_slug",
                "region",
                "jurisdiction",
                "roles",
                "steward_regions",
            ],
            "prompt_values_supported": ["none", "login"],
        }

    # -- resource server --

    def authenticate(self, bearer_token: str) -> Principal:
        """Validate an access token from this issuer or a trusted external one; raises
        ``InvalidToken``.

        Synchronous and reads the catalog (revocation list, key refresh): call it from a
        sync dependency or through ``run_in_threadpool``.
        """
        if self.external is not None:
            issuer = self.external.issuer_of(bearer_token)
            if issuer is not None and issuer != self.issuer:
                return self.external.authenticate(bearer_token, issuer)
        try:
            return self._validate(bearer_token, self.keys.verification_keys())
        except InvalidToken as error:
            if error.reason != "unknown_key" or not self.keys.refresh_after_unknown_kid():
                raise
        return self._validate(bearer_token, self.keys.verification_keys())

    def _validate(self, token: str, keys: KeySet) -> Principal:
        return validate_access_token(
            token,
            keys=keys,
            issuer=self.issuer,
            audience=self.audience,
            leeway_seconds=self._leeway,
            is_revoked=self._is_revoked,
            verified=self._verified,
        )

    def _is_revoked(self, jti: str) -> bool:
        with self._sessions() as session:
            return is_revoked(session, jti)

    def _read_own_token(self, token: str) -> dict[str, Any] | None:
        claims = read_signed_token(token, keys=self.keys.verification_keys(), issuer=self.issuer)
        if claims is None and self.keys.refresh_after_unknown_kid():
            claims = read_signed_token(
                token, keys=self.keys.verification_keys(), issuer=self.issuer
            )
        return claims

    # -- audit --

    def _record(
        self, action: str, client_id: str | None, outcome: str, detail: dict[str, Any]
    ) -> None:
        if self._audit_log is None:
            return
        self._audit_log.append(
            actor=f"client:{client_id}" if client_id else "oauth",
            action=action,
            resource=f"client:{client_id}" if client_id else "oauth:token",
            outcome=outcome,
            detail={name: value for name, value in detail.items() if value is not None},
        )

    def _record_login(self, action: str, who: str, outcome: str, **detail: Any) -> None:
        if self._audit_log is None:
            return
        try:
            self._audit_log.append(
                actor=f"user:{who}" if who else "anonymous",
                action=action,
                resource="oauth:login",
                outcome=outcome,
                detail=detail,
            )
        except Exception:
            log.exception("could not write the audit event %s", action)


def _claimed_client_id(request: TokenRequest) -> str | None:
    """Whom the request claims to be (for rate limiting only; nothing is trusted)."""
    basic_id, _ = extract_basic_authorization(request.headers)
    if basic_id:
        return str(basic_id)
    data = dict(request.form)
    if data.get("client_id"):
        return data["client_id"]
    assertion = data.get("client_assertion", "")
    return assertion[:64] or None


def _check_config(
    issuer: str, access_token_ttl: int, key_rotate_after: timedelta, key_secret: bytes
) -> None:
    """Fail at startup, not on the first request."""
    try:
        AuthorizationServerMetadata({"issuer": issuer.rstrip("/")}).validate_issuer()
    except ValueError as error:
        raise ValueError(
            f"OAuth issuer {issuer!r} must be an https URL without query or fragment "
            "(http is allowed only for localhost/loopback); set the issuer or public URL"
        ) from error
    if not 60 <= access_token_ttl <= 86_400:
        raise ValueError("access_token_ttl must be between 60 and 86400 seconds")
    if key_rotate_after <= timedelta(seconds=access_token_ttl):
        raise ValueError("key_rotate_after must be longer than access_token_ttl")
    check_key_secret(key_secret)


def _key_overlap(ttl: int, refresh: float, leeway: int) -> timedelta:
    """Another process may sign with a retired key until its next refresh; then ttl runs."""
    return timedelta(seconds=ttl + 2 * refresh + leeway + 60)
