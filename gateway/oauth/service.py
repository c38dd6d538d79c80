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

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from joserfc.jwk import Key, KeySet
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from catalog.clients import (
    SigningAlgorithm,
    SigningKeyMaterial,
    active_signing_key,
    check_key_secret,
    published_keys,
)
from gateway.oauth.errors import InvalidToken
from gateway.oauth.server import (
    GRANT_TYPES,
    TOKEN_ENDPOINT_AUTH_METHODS,
    AccessTokenGenerator,
    GatewayAuthorizationServer,
    read_token_request,
)
from gateway.oauth.tokens import validate_access_token
from policies.model import Principal

TOKEN_PATH = "/oauth/token"
JWKS_PATH = "/oauth/jwks"


class SigningKeyCache:
    """Signing and verification keys, cached in memory and re-read from the catalog."""

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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
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
            )
        self._signing_loaded = self._clock()
        if self._signing.kid not in {jwk["kid"] for jwk in self._published}:
            self._load_published()  # our own new key must validate at once

    def _load_published(self) -> None:
        with self._sessions() as session:
            self._published = published_keys(session, overlap=self._overlap)
        self._key_set = KeySet.import_key_set({"keys": self._published})
        self._published_loaded = self._clock()


class OAuthService:
    """Token issuance, JWKS, RFC 8414 metadata and bearer-token authentication."""

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
    ) -> None:
        _check_config(issuer, access_token_ttl, key_rotate_after, key_secret)
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self.scopes_supported = list(scopes_supported)
        self._leeway = leeway_seconds
        self.keys = SigningKeyCache(
            sessions,
            key_secret=key_secret,
            rotate_after=key_rotate_after,
            overlap=_key_overlap(access_token_ttl, key_refresh_seconds, leeway_seconds),
            algorithm=signing_algorithm,
            refresh_seconds=key_refresh_seconds,
            unknown_kid_cooldown_seconds=unknown_kid_cooldown_seconds,
        )
        generator = AccessTokenGenerator(
            issuer=self.issuer,
            audience=audience,
            algorithm=signing_algorithm,
            ttl_seconds=access_token_ttl,
            signing_key=self.keys.signing_key,
        )
        self.server = GatewayAuthorizationServer(
            sessions,
            token_endpoint=self.issuer + TOKEN_PATH,
            scopes_supported=self.scopes_supported,
            token_generator=generator,
        )

    async def issue_token(self, request: Request) -> Response:
        """The token endpoint: RFC 6749 JSON on success and on error, never cached."""
        try:
            token_request = await read_token_request(request)
        except OAuth2Error as error:
            return self.server.error_response(error)
        response: Response = await run_in_threadpool(
            self.server.create_token_response, token_request
        )
        return response

    def jwks(self) -> dict[str, Any]:
        return {"keys": self.keys.published()}

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "token_endpoint": self.issuer + TOKEN_PATH,
            "jwks_uri": self.issuer + JWKS_PATH,
            "grant_types_supported": list(GRANT_TYPES),
            "token_endpoint_auth_methods_supported": list(TOKEN_ENDPOINT_AUTH_METHODS),
            "scopes_supported": list(self.scopes_supported),
            "response_types_supported": [],
        }

    def authenticate(self, bearer_token: str) -> Principal:
        """Validate an access token from this issuer; raises ``InvalidToken``.

        Synchronous and occasionally reads the catalog (key refresh): call it from a
        sync dependency or through ``run_in_threadpool``.
        """
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
        )


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
