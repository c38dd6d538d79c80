"""Resource-server validation of RFC 9068 JWT access tokens: one entry point.

Every check is explicit because the libraries are permissive by default (see
SECURITY.md §4.1): ``joserfc.jwt.decode`` validates no claims, authlib's RFC 9068
validator accepts a token without ``typ``, and a ``KeySet`` hands back its only
key when the token names no ``kid``. Order: size → compact JWS shape → header
(alg allowlist, ``typ``, no ``crit``/``b64``, ``kid`` in *our* key set, alg
matching that key) → signature with exactly that key → claims → Principal.
Header members that name keys (``jku``, ``x5u``, ``jwk``, ``x5c``) are never
used: the key always comes from the key set the caller passes in.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from joserfc import jws
from joserfc.errors import (
    ExceededSizeError,
    ExpiredTokenError,
    InvalidClaimError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import Key, KeySet
from joserfc.jws import CompactSignature, JWSRegistry
from joserfc.jwt import ClaimsOption, JWTClaimsRegistry

from catalog.regions import parse_region
from gateway.oauth.errors import InvalidToken, TokenRejection
from policies.model import Principal

ALLOWED_ALGORITHMS: Final[tuple[str, ...]] = ("ES256", "RS256")
ACCESS_TOKEN_TYPES: Final = frozenset({"at+jwt", "application/at+jwt"})
MAX_TOKEN_BYTES: Final = 8 * 1024
MAX_LEEWAY_SECONDS: Final = 60

_REJECTED_HEADERS: Final = frozenset({"crit", "b64", "enc", "zip"})
_REGISTRY: Final = JWSRegistry(algorithms=ALLOWED_ALGORITHMS)
_ESSENTIAL: Final[ClaimsOption] = {"essential": True}
_STRING_CLAIMS: Final = ("sub", "client_id", "jti", "org", "org_slug", "region", "jurisdiction")
_CLAIM_REASONS: Final[dict[str, TokenRejection]] = {
    "iss": "wrong_issuer",
    "aud": "wrong_audience",
    "nbf": "not_yet_valid",
    "iat": "issued_in_future",
}


def validate_access_token(
    token: str,
    *,
    keys: KeySet,
    issuer: str,
    audience: str,
    leeway_seconds: int = 30,
    is_revoked: Callable[[str], bool] | None = None,
    verified: VerifiedTokens | None = None,
) -> Principal:
    """Validate ``token`` against ``keys`` and return the caller; raise ``InvalidToken``.

    ``is_revoked(jti)`` is consulted last, once the token is otherwise valid (RFC 7009
    revocations and revoked refresh-token families), also for a token found in
    ``verified``, which skips the signature and claim checks of a token seen before."""
    seen = None if verified is None else verified.lookup(token, keys, issuer, audience)
    if seen is not None:
        if seen.exp <= int(time.time()) - leeway_seconds:  # joserfc's rule, same leeway
            raise InvalidToken("expired")
        principal, jti = seen.principal, seen.jti
    else:
        claims, key = _verified_claims(token, keys, issuer, audience, leeway_seconds, None)
        principal, jti = _principal(claims), claims["jti"]
        if verified is not None:
            verified.add(token, issuer, audience, _Seen(principal, jti, claims["exp"], key))
    if is_revoked is not None and is_revoked(jti):
        raise InvalidToken("revoked")
    return principal


@dataclass(frozen=True)
class _Seen:
    principal: Principal
    jti: str
    exp: float
    key: Key


class VerifiedTokens:
    """Access tokens that passed every check, so that the next request with the same token
    skips the signature check (ECDSA, ~0.4 ms) and the claim parsing: a client sends one
    token with each request for its whole lifetime.

    Keyed by SHA-256 over issuer, audience and the token's text (a token that differs in
    any byte is checked in full). A token found here is still refused once expired (the
    same leeway rule) or revoked (by the caller), and is checked in full again once its
    signing key is no longer in the key set in use. Bounded: the least recently used
    entry goes first. Thread-safe."""

    def __init__(self, max_entries: int = 4096) -> None:
        self._entries: OrderedDict[bytes, _Seen] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_entries

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def _digest(token: str, issuer: str, audience: str) -> bytes:
        text = f"{issuer}\n{audience}\n{token}".encode("utf-8", "replace")
        return hashlib.sha256(text).digest()

    def lookup(self, token: str, keys: KeySet, issuer: str, audience: str) -> _Seen | None:
        digest = self._digest(token, issuer, audience)
        with self._lock:
            seen = self._entries.get(digest)
            if seen is not None:
                self._entries.move_to_end(digest)
        if seen is None or not any(key is seen.key for key in keys.keys):
            return None
        return seen

    def add(self, token: str, issuer: str, audience: str, seen: _Seen) -> None:
        digest = self._digest(token, issuer, audience)
        with self._lock:
            self._entries[digest] = seen
            self._entries.move_to_end(digest)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)


def verify_access_token(
    token: str,
    *,
    keys: KeySet,
    issuer: str,
    audience: str,
    leeway_seconds: int = 30,
    required: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """Every check but the mapping to a Principal: the validated claims.

    ``required`` replaces the platform's identity claims for tokens of external issuers
    (which name the organisation in a claim of their own)."""
    return _verified_claims(token, keys, issuer, audience, leeway_seconds, required)[0]


def _verified_claims(
    token: str,
    keys: KeySet,
    issuer: str,
    audience: str,
    leeway_seconds: int,
    required: tuple[str, ...] | None,
) -> tuple[dict[str, Any], Key]:
    if not 0 <= leeway_seconds <= MAX_LEEWAY_SECONDS:
        raise ValueError(f"leeway_seconds must be between 0 and {MAX_LEEWAY_SECONDS}")
    compact = _parse(token)
    key = _select_key(compact.headers(), keys)
    _verify_signature(compact, key)
    claims = _claims(compact)
    _validate_claims(
        claims, issuer=issuer, audience=audience, leeway=leeway_seconds, required=required
    )
    return claims, key


def read_signed_token(token: str, *, keys: KeySet, issuer: str) -> dict[str, Any] | None:
    """Claims of an access token that we signed, whatever its age (revocation and
    introspection decide about expiry themselves); None if it is not ours."""
    try:
        compact = _parse(token)
        _verify_signature(compact, _select_key(compact.headers(), keys))
        claims = _claims(compact)
    except InvalidToken:
        return None
    if claims.get("iss") != issuer or not isinstance(claims.get("jti"), str):
        return None
    if not isinstance(claims.get("exp"), int):
        return None
    return claims


def _parse(token: str) -> CompactSignature:
    if not token:
        raise InvalidToken("missing")
    raw = token.encode("utf-8", errors="replace")
    if len(raw) > MAX_TOKEN_BYTES:
        raise InvalidToken("oversized")
    if not raw.isascii():
        raise InvalidToken("malformed")
    try:
        compact = jws.extract_compact(raw, registry=_REGISTRY)
        if not isinstance(compact.headers(), dict):
            raise InvalidToken("malformed")
    except ExceededSizeError as error:
        raise InvalidToken("oversized") from error
    except InvalidToken:
        raise
    except Exception as error:  # fail closed on anything the parser throws
        raise InvalidToken("malformed") from error
    return compact


def _select_key(header: dict[str, Any], keys: KeySet) -> Key:
    if header.get("alg") not in ALLOWED_ALGORITHMS:
        raise InvalidToken("unsupported_algorithm")
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
        raise InvalidToken("wrong_type")
    if _REJECTED_HEADERS & header.keys():
        raise InvalidToken("unsupported_header")
    try:
        _REGISTRY.check_header(header)
    except JoseError as error:
        raise InvalidToken("unsupported_header") from error
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise InvalidToken("unknown_key")
    matches = [key for key in keys.keys if key.kid == kid]
    if len(matches) != 1 or matches[0].alg != header["alg"]:
        raise InvalidToken("unknown_key")
    return matches[0]


def _verify_signature(compact: CompactSignature, key: Key) -> None:
    registry = JWSRegistry(algorithms=[str(key.alg)])
    try:
        valid = jws.validate_compact(compact, key, registry=registry)
    except JoseError as error:
        raise InvalidToken("bad_signature") from error
    if not valid:
        raise InvalidToken("bad_signature")


def _claims(compact: CompactSignature) -> dict[str, Any]:
    try:
        claims = json.loads(compact.payload)
    except (TypeError, ValueError) as error:
        raise InvalidToken("malformed") from error
    if not isinstance(claims, dict):
        raise InvalidToken("malformed")
    return claims


def _validate_claims(
    claims: dict[str, Any],
    *,
    issuer: str,
    audience: str,
    leeway: int,
    required: tuple[str, ...] | None = None,
) -> None:
    identity: dict[str, ClaimsOption] = dict.fromkeys(required or (), _ESSENTIAL)
    if required is None:
        identity = {
            "org": _ESSENTIAL,
            "org_slug": _ESSENTIAL,
            "region": _ESSENTIAL,
            "jurisdiction": _ESSENTIAL,
            "roles": {"essential": True, "allow_blank": True},  # a client may hold no role
        }
    if required is None:  # ours always carry nbf; an external issuer's may leave it out
        identity["nbf"] = _ESSENTIAL
    options: dict[str, ClaimsOption] = {
        "iss": {"essential": True, "value": issuer},
        "aud": {"essential": True, "value": audience},
        "exp": _ESSENTIAL,
        "iat": _ESSENTIAL,
        "sub": _ESSENTIAL,
        "client_id": _ESSENTIAL,
        "jti": _ESSENTIAL,
        **identity,
    }
    registry = JWTClaimsRegistry(leeway=leeway, **options)  # type: ignore[arg-type]
    try:
        registry.validate(claims)
    except ExpiredTokenError as error:
        raise InvalidToken("expired") from error
    except MissingClaimError as error:
        raise InvalidToken("missing_claim", claim=error.claim) from error
    except InvalidClaimError as error:
        reason = _CLAIM_REASONS.get(error.claim, "invalid_claim")
        raise InvalidToken(reason, claim=error.claim) from error
    except (JoseError, TypeError, ValueError, OverflowError) as error:
        raise InvalidToken("invalid_claim") from error


def _principal(claims: dict[str, Any]) -> Principal:
    for name in _STRING_CLAIMS:
        if not isinstance(claims[name], str):
            raise InvalidToken("invalid_claim", claim=name)
    roles, scope = claims["roles"], claims.get("scope", "")
    if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
        raise InvalidToken("invalid_claim", claim="roles")
    if not isinstance(scope, str):
        raise InvalidToken("invalid_claim", claim="scope")
    try:
        region = parse_region(claims["region"])
    except ValueError as error:
        raise InvalidToken("invalid_claim", claim="region") from error
    if region.value != claims["region"] or region.jurisdiction != claims["jurisdiction"]:
        raise InvalidToken("invalid_claim", claim="jurisdiction")
    return Principal(
        subject=claims["sub"],
        client_id=claims["client_id"],
        org_id=claims["org"],
        org_slug=claims["org_slug"],
        region=region.value,
        jurisdiction=region.jurisdiction,
        roles=frozenset(roles),
        scopes=frozenset(scope.split()),
        steward_regions=_steward_regions(claims.get("steward_regions", [])),
    )


def _steward_regions(value: Any) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidToken("invalid_claim", claim="steward_regions")
    try:
        return frozenset(parse_region(item).value for item in value)
    except ValueError as error:
        raise InvalidToken("invalid_claim", claim="steward_regions") from error
