"""Access tokens from partner identity providers, trusted by configuration.

A partner organisation that runs its own OAuth/OIDC server can have its tokens
accepted here. Each external issuer is configured with its exact issuer URL,
the audience its tokens must carry, the claims that name the organisation and
the roles, and the organisations it may speak for. Validation is the one
validator of ``gateway.oauth.tokens`` (algorithm allowlist, ``typ: at+jwt``,
``kid`` from the issuer's own JWKS, issuer, audience, expiry), then:
- the organisation claim must name one of the issuer's configured organisations
  (our organisation slugs): a partner can never assert someone else's organisation;
- a jurisdiction claim, if present, must equal that organisation's jurisdiction
  (which always comes from our catalog, never from the token);
- roles and scopes are cut down to what the issuer is allowed to grant.

Keys come only from the issuer's metadata (OIDC discovery, else RFC 8414), whose
``issuer`` must equal the configured one and whose ``jwks_uri`` must be on the
issuer's own origin. The JWKS is cached and refreshed when a token names an
unknown ``kid`` (at most once per cooldown). Nothing a token says (``jku``,
``x5u``, ``jwk``) is ever fetched.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
from joserfc.jwk import KeySet
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from catalog.models import Organisation
from catalog.regions import Region
from gateway.oauth.errors import InvalidToken
from gateway.oauth.scopes import API_SCOPES
from gateway.oauth.tokens import MAX_TOKEN_BYTES, verify_access_token
from policies.model import Principal

log = logging.getLogger(__name__)

DISCOVERY_PATHS: Final = (
    "/.well-known/openid-configuration",
    "/.well-known/oauth-authorization-server",
)
MAX_DOCUMENT_BYTES: Final = 256 * 1024
_LOOPBACK: Final = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class ExternalIssuer:
    """One trusted partner issuer (see ``gateway.settings.ExternalIssuerSettings``)."""

    name: str
    issuer: str
    audience: str
    organisations: tuple[str, ...]
    org_claim: str = "org_slug"
    roles_claim: str = "roles"
    jurisdiction_claim: str = "jurisdiction"
    allowed_roles: tuple[str, ...] = ("provider", "consumer")
    allowed_scopes: tuple[str, ...] = tuple(scope for scope in API_SCOPES if scope != "admin")
    jwks_cache_seconds: float = 300.0
    unknown_kid_cooldown_seconds: float = 10.0


class ExternalIssuerUnavailable(Exception):
    """The issuer's metadata or keys could not be fetched or were not acceptable."""


@dataclass
class _KeyCache:
    keys: KeySet | None = None
    loaded: float = float("-inf")
    forced: float = float("-inf")
    jwks_uri: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class ExternalIssuers:
    """The configured external issuers, keyed by their exact ``iss``."""

    def __init__(
        self,
        issuers: Sequence[ExternalIssuer],
        sessions: sessionmaker[Session],
        *,
        leeway_seconds: int = 30,
        http: Callable[[str], httpx.Response] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._issuers = {config.issuer.rstrip("/"): config for config in issuers}
        self._sessions = sessions
        self._leeway = leeway_seconds
        self._get = http or _fetch
        self._clock = clock
        self._caches = {issuer: _KeyCache() for issuer in self._issuers}

    def issuer_of(self, token: str) -> str | None:
        """The ``iss`` of a configured external issuer named by ``token`` (unverified: it only
        picks which keys to verify with), or None."""
        if len(token) > MAX_TOKEN_BYTES or token.count(".") != 2:
            return None
        payload = token.split(".")[1]
        try:
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except ValueError:
            return None
        issuer = claims.get("iss") if isinstance(claims, dict) else None
        return issuer if isinstance(issuer, str) and issuer in self._issuers else None

    def authenticate(self, token: str, issuer: str) -> Principal:
        config = self._issuers[issuer]
        try:
            claims = self._verify(token, config, self._keys(config, force=False))
        except InvalidToken as error:
            if error.reason != "unknown_key":
                raise
            refreshed = self._keys(config, force=True)
            claims = self._verify(token, config, refreshed)
        return self._principal(claims, config)

    # -- validation --

    def _verify(self, token: str, config: ExternalIssuer, keys: KeySet) -> dict[str, Any]:
        return verify_access_token(
            token,
            keys=keys,
            issuer=config.issuer,
            audience=config.audience,
            leeway_seconds=self._leeway,
            required=(config.org_claim,),
        )

    def _principal(self, claims: dict[str, Any], config: ExternalIssuer) -> Principal:
        org_slug = claims[config.org_claim]
        if not isinstance(org_slug, str) or org_slug not in config.organisations:
            log.warning(
                "external issuer %s asserted an organisation it is not configured for",
                config.name,
            )
            raise InvalidToken("organisation_not_allowed", claim=config.org_claim)
        with self._sessions() as session:
            org = session.scalar(select(Organisation).where(Organisation.slug == org_slug))
        if org is None:
            raise InvalidToken("organisation_not_allowed", claim=config.org_claim)
        region = Region(org.region)
        asserted = claims.get(config.jurisdiction_claim)
        if asserted is not None and asserted != region.jurisdiction:
            raise InvalidToken("invalid_claim", claim=config.jurisdiction_claim)
        roles = claims.get(config.roles_claim, [])
        if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
            raise InvalidToken("invalid_claim", claim=config.roles_claim)
        scope = claims.get("scope", "")
        if not isinstance(scope, str) or not isinstance(claims["client_id"], str):
            raise InvalidToken("invalid_claim", claim="scope")
        return Principal(
            subject=f"{config.name}:{claims['sub']}",
            client_id=f"{config.name}:{claims['client_id']}",
            org_id=org.id,
            org_slug=org.slug,
            region=region.value,
            jurisdiction=region.jurisdiction,
            roles=frozenset(role for role in roles if role in config.allowed_roles),
            scopes=frozenset(s for s in scope.split() if s in config.allowed_scopes),
        )

    # -- keys --

    def _keys(self, config: ExternalIssuer, *, force: bool) -> KeySet:
        cache = self._caches[config.issuer.rstrip("/")]
        with cache.lock:
            now = self._clock()
            stale = now - cache.loaded >= config.jwks_cache_seconds
            may_force = force and now - cache.forced >= config.unknown_kid_cooldown_seconds
            if cache.keys is None or stale or may_force:
                if force:
                    cache.forced = now
                try:
                    cache.keys = self._load(config, cache)
                    cache.loaded = now
                except ExternalIssuerUnavailable as error:
                    log.warning("external issuer %s unavailable: %s", config.name, error)
                    if cache.keys is None:
                        raise InvalidToken("unknown_key") from error
            assert cache.keys is not None
            return cache.keys

    def _load(self, config: ExternalIssuer, cache: _KeyCache) -> KeySet:
        if cache.jwks_uri is None:
            cache.jwks_uri = self._discover(config)
        document = self._json(cache.jwks_uri)
        keys = document.get("keys")
        if not isinstance(keys, list):
            raise ExternalIssuerUnavailable("the JWKS has no keys")
        public = [
            key
            for key in keys
            if isinstance(key, dict) and key.get("kty") in ("EC", "RSA") and "d" not in key
        ]
        try:
            return KeySet.import_key_set({"keys": public})
        except Exception as error:
            raise ExternalIssuerUnavailable("the JWKS holds an unusable key") from error

    def _discover(self, config: ExternalIssuer) -> str:
        issuer = config.issuer.rstrip("/")
        for path in DISCOVERY_PATHS:
            try:
                metadata = self._json(issuer + path)
            except ExternalIssuerUnavailable:
                continue
            if metadata.get("issuer") != config.issuer:
                raise ExternalIssuerUnavailable("the metadata names another issuer")
            jwks_uri = metadata.get("jwks_uri")
            if not isinstance(jwks_uri, str) or _origin(jwks_uri) != _origin(issuer):
                raise ExternalIssuerUnavailable("jwks_uri must be on the issuer's own origin")
            return jwks_uri
        raise ExternalIssuerUnavailable("no OIDC or RFC 8414 metadata")

    def _json(self, url: str) -> dict[str, Any]:
        try:
            response = self._get(url)
        except (httpx.HTTPError, ValueError) as error:
            raise ExternalIssuerUnavailable(
                f"cannot fetch {url}: {type(error).__name__}"
            ) from error
        if response.status_code != 200 or len(response.content) > MAX_DOCUMENT_BYTES:
            raise ExternalIssuerUnavailable(f"{url} answered {response.status_code}")
        try:
            document = response.json()
        except ValueError as error:
            raise ExternalIssuerUnavailable(f"{url} is not JSON") from error
        if not isinstance(document, dict):
            raise ExternalIssuerUnavailable(f"{url} is not a JSON object")
        return document


def check_issuer_url(url: str) -> str:
    """https, or http on loopback only (tests and local partner stand-ins)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname in _LOOPBACK:
        return url
    raise ValueError(f"external issuer {url!r} must be an https URL (http only on loopback)")


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname or "", parts.port


def _fetch(url: str) -> httpx.Response:
    check_issuer_url(url)
    return httpx.get(url, timeout=5.0, follow_redirects=False)
