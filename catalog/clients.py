"""OAuth clients and token signing keys: persistence only (no HTTP).

Client secrets are 256-bit random strings returned once at creation; the
catalog stores only an argon2id hash. Signing keys are ES256 (P-256) or RS256
key pairs whose private half is stored as a Fernet token under a key derived
(HKDF-SHA256) from the platform key secret; the public half is a JWK. Each key has
one purpose: ``access`` keys sign access tokens, ``id`` keys sign OIDC ID tokens
(SECURITY.md §4: separate keys, so an ID token can never verify as an access token
even if a ``typ`` check were lost). Rotation and retirement are per purpose.

Several gateway processes share one catalog, so key creation is race-tolerant:
each process may insert a key (the kid is the RFC 7638 thumbprint, so kids never
collide), a new key retires only keys created *before* it, and every key that is
active or retired within the overlap window is published. Whichever of two
racing keys a process ends up signing with, the other processes accept it.
"""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import Any, Final, Literal, get_args

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from joserfc.jwk import ECKey, KeyParameters, RSAKey
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from catalog.errors import CatalogError, InvalidInput, NotFound, Terminal
from catalog.models import OAuthClient, Organisation, SigningKey, aware, utcnow

SigningAlgorithm = Literal["ES256", "RS256"]
SIGNING_ALGORITHMS: Final[tuple[str, ...]] = get_args(SigningAlgorithm)
KeyPurpose = Literal["access", "id"]
KEY_PURPOSES: Final[tuple[str, ...]] = get_args(KeyPurpose)

CLIENT_ID_PREFIX: Final = "dsc_"
MAX_SECRET_CHARS: Final = 256
MIN_KEY_SECRET_BYTES: Final = 16

_CLIENT_ID_SHAPE = re.compile(r"[A-Za-z0-9._~-]{1,64}")
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,64}")  # RFC 6749 §3.3 scope-token
_ROLE = re.compile(r"[a-z][a-z0-9_]{0,31}")
_PUBLIC_JWK_MEMBERS: Final = frozenset({"kty", "crv", "x", "y", "n", "e"})
_FERNET_INFO: Final = b"gba-datashare/catalog/signing-keys/v1"
_CREATE_ATTEMPTS: Final = 3

# OWASP's argon2id baseline (19 MiB, t=2, p=1). Secrets carry 256 bits of entropy, so the
# hash guards a stolen table rather than weak passwords; a heavier profile would mostly
# make the token endpoint easier to exhaust. Parameters live in each hash, so they can rise.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, type=Type.ID)


class SigningKeyUnreadable(CatalogError, Terminal):
    """A stored signing key cannot be decrypted or does not match its public JWK."""

    code = "signing_key_unreadable"

    def __init__(self, kid: str) -> None:
        super().__init__(
            f"signing key {kid} cannot be decrypted with the configured key secret; "
            "check DATASHARE key secret settings or retire the key",
            kid=kid,
        )
        self.kid = kid


@dataclass(frozen=True)
class SigningKeyMaterial:
    """A usable signing key: the private joserfc key carries ``kid``, ``alg`` and ``use``."""

    kid: str
    algorithm: SigningAlgorithm
    private_key: ECKey | RSAKey = field(repr=False)
    public_jwk: dict[str, Any]
    created_at: datetime


# --- clients -----------------------------------------------------------------------------


def split_scope(scope: str) -> list[str]:
    """Split a space-separated scope string into unique RFC 6749 scope tokens (order kept)."""
    tokens = list(dict.fromkeys(scope.split()))
    bad = [token for token in tokens if not _SCOPE_TOKEN.fullmatch(token)]
    if bad:
        raise InvalidInput("scope tokens must be 1-64 printable ASCII characters", field="scope")
    return tokens


def create_client(
    session: Session, *, org_id: str, name: str, roles: Sequence[str], scope: str
) -> tuple[OAuthClient, str]:
    """Register a confidential client and return it with its secret (shown only this once).

    The row is flushed, not committed: the caller owns the transaction.
    """
    if session.get(Organisation, org_id) is None:
        raise NotFound("organisation", org_id, hint="create the organisation before its clients")
    secret = secrets.token_urlsafe(32)
    client = OAuthClient(
        client_id=CLIENT_ID_PREFIX + secrets.token_urlsafe(18),
        secret_hash=_HASHER.hash(secret),
        name=_client_name(name),
        org_id=org_id,
        roles=_roles(roles),
        scope=" ".join(split_scope(scope)),
    )
    session.add(client)
    session.flush()
    return client, secret


def get_client(session: Session, client_id: str) -> OAuthClient | None:
    """The client row (disabled ones included), or None for unknown or malformed ids."""
    if not _CLIENT_ID_SHAPE.fullmatch(client_id):
        return None
    return session.get(OAuthClient, client_id)


def disable_client(session: Session, client_id: str) -> OAuthClient:
    """Stop a client from obtaining new tokens (flushed; the caller commits)."""
    client = get_client(session, client_id)
    if client is None:
        raise NotFound("client", client_id)
    if client.disabled_at is None:
        client.disabled_at = utcnow()
        session.flush()
    return client


def verify_client_secret(client: OAuthClient | None, secret: str) -> bool:
    """Check ``secret`` in constant time; unknown and disabled clients cost the same."""
    stored = client.secret_hash if client is not None else _dummy_hash()
    matches = _argon2_verify(stored, secret[:MAX_SECRET_CHARS])
    return (
        matches
        and client is not None
        and client.disabled_at is None
        and len(secret) <= MAX_SECRET_CHARS
    )


def _argon2_verify(stored: str, secret: str) -> bool:
    try:
        return _HASHER.verify(stored, secret)
    except (VerificationError, InvalidHashError):
        return False


@cache
def _dummy_hash() -> str:
    return _HASHER.hash(secrets.token_urlsafe(32))


def _client_name(name: str) -> str:
    cleaned = name.strip()
    if not 1 <= len(cleaned) <= 200:
        raise InvalidInput("client name must be 1-200 characters", field="name")
    return cleaned


def _roles(roles: Sequence[str]) -> list[str]:
    if isinstance(roles, str):
        raise InvalidInput("roles must be a list of role names, not a string", field="roles")
    unique = list(dict.fromkeys(roles))
    if not all(isinstance(role, str) and _ROLE.fullmatch(role) for role in unique):
        raise InvalidInput("role names are lower-case identifiers", field="roles")
    return unique


# --- signing keys ------------------------------------------------------------------------


def active_signing_key(
    session: Session,
    key_secret: bytes,
    *,
    rotate_after: timedelta,
    algorithm: SigningAlgorithm = "ES256",
    purpose: KeyPurpose = "access",
) -> SigningKeyMaterial:
    """The newest unretired ``purpose`` key of ``algorithm``; a new one if none exists or it
    is too old.

    Creating a key commits ``session``; pass a session with no other pending work.
    """
    fernet = _fernet(key_secret)
    for attempt in range(_CREATE_ATTEMPTS):
        try:
            row = _newest_active(session, algorithm, purpose)
            if row is not None and utcnow() - aware(row.created_at) < rotate_after:
                return _material(row, fernet)
            return _insert_key(session, fernet, algorithm, purpose)
        except (IntegrityError, OperationalError):
            # Another process wrote first (SQLite answers "database is locked" when a read
            # snapshot is upgraded after a concurrent commit): re-read and use its key.
            session.rollback()
            if attempt == _CREATE_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def rotate_signing_key(
    session: Session,
    key_secret: bytes,
    *,
    algorithm: SigningAlgorithm = "ES256",
    purpose: KeyPurpose = "access",
) -> SigningKeyMaterial:
    """Create a ``purpose`` key now and retire every older active key of that purpose (they
    stay published for the overlap)."""
    return _insert_key(session, _fernet(key_secret), algorithm, purpose)


def published_keys(
    session: Session, *, overlap: timedelta, purpose: KeyPurpose | None = None
) -> list[dict[str, Any]]:
    """Public JWKs of active keys and keys retired less than ``overlap`` ago, newest first;
    only ``purpose`` keys when given (the JWKS endpoint publishes every purpose)."""
    cutoff = utcnow() - overlap
    query = select(SigningKey).where(
        or_(SigningKey.retired_at.is_(None), SigningKey.retired_at > cutoff)
    )
    if purpose is not None:
        query = query.where(SigningKey.purpose == purpose)
    rows = session.scalars(query.order_by(SigningKey.created_at.desc(), SigningKey.kid)).all()
    return [_public_jwk(row.public_jwk, kid=row.kid, algorithm=row.algorithm) for row in rows]


def _newest_active(session: Session, algorithm: str, purpose: KeyPurpose) -> SigningKey | None:
    return session.scalars(
        select(SigningKey)
        .where(
            SigningKey.retired_at.is_(None),
            SigningKey.algorithm == algorithm,
            SigningKey.purpose == purpose,
        )
        .order_by(SigningKey.created_at.desc(), SigningKey.kid)
        .limit(1)
    ).first()


def _insert_key(
    session: Session, fernet: Fernet, algorithm: SigningAlgorithm, purpose: KeyPurpose
) -> SigningKeyMaterial:
    key = _generate(algorithm)
    kid = str(key.kid)
    now = utcnow()
    public = _public_jwk(key.as_dict(private=False), kid=kid, algorithm=algorithm)
    session.add(
        SigningKey(
            kid=kid,
            purpose=purpose,
            algorithm=algorithm,
            private_key=fernet.encrypt(key.as_pem(private=True)).decode("ascii"),
            public_jwk=public,
            created_at=now,
        )
    )
    session.flush()
    session.execute(
        update(SigningKey)
        .where(
            SigningKey.retired_at.is_(None),
            SigningKey.purpose == purpose,
            SigningKey.created_at < now,
        )
        .values(retired_at=now)
        .execution_options(synchronize_session="fetch")  # SQLite rows are naive: no evaluate
    )
    session.commit()
    return SigningKeyMaterial(kid, algorithm, key, public, now)


def _generate(algorithm: SigningAlgorithm) -> ECKey | RSAKey:
    parameters: KeyParameters = {"alg": algorithm, "use": "sig"}
    if algorithm == "ES256":
        return ECKey.generate_key("P-256", parameters, private=True, auto_kid=True)
    if algorithm == "RS256":
        return RSAKey.generate_key(2048, parameters, private=True, auto_kid=True)
    raise ValueError(f"unsupported signing algorithm {algorithm!r}; use {SIGNING_ALGORITHMS}")


def _material(row: SigningKey, fernet: Fernet) -> SigningKeyMaterial:
    try:
        pem = fernet.decrypt(row.private_key.encode("ascii"))
    except (InvalidToken, ValueError) as error:
        raise SigningKeyUnreadable(row.kid) from error
    parameters: KeyParameters = {"kid": row.kid, "alg": row.algorithm, "use": "sig"}
    key: ECKey | RSAKey = (
        ECKey.import_key(pem, parameters)
        if row.algorithm == "ES256"
        else RSAKey.import_key(pem, parameters)
    )
    public = _public_jwk(row.public_jwk, kid=row.kid, algorithm=row.algorithm)
    if _public_jwk(key.as_dict(private=False), kid=row.kid, algorithm=row.algorithm) != public:
        raise SigningKeyUnreadable(row.kid)
    algorithm: SigningAlgorithm = "ES256" if row.algorithm == "ES256" else "RS256"
    return SigningKeyMaterial(row.kid, algorithm, key, public, aware(row.created_at))


def _public_jwk(jwk: dict[str, Any], *, kid: str, algorithm: str) -> dict[str, Any]:
    """Only public members survive, whatever the stored JSON holds."""
    public = {name: value for name, value in jwk.items() if name in _PUBLIC_JWK_MEMBERS}
    return {**public, "kid": kid, "alg": algorithm, "use": "sig"}


def check_key_secret(key_secret: bytes) -> None:
    """Raise ValueError unless ``key_secret`` can protect signing keys (call at startup)."""
    if len(key_secret) < MIN_KEY_SECRET_BYTES:
        raise ValueError(f"the signing-key secret must be at least {MIN_KEY_SECRET_BYTES} bytes")


def _fernet(key_secret: bytes) -> Fernet:
    check_key_secret(key_secret)
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_FERNET_INFO)
    return Fernet(base64.urlsafe_b64encode(hkdf.derive(key_secret)))


# --- registrations (public clients, redirect URIs, private_key_jwt, resource servers) ----

ClientType = Literal["confidential", "public"]
AuthMethod = Literal["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
GrantType = Literal["client_credentials", "authorization_code", "refresh_token"]
AUTH_METHODS: Final[tuple[str, ...]] = get_args(AuthMethod)
GRANT_TYPES: Final[tuple[str, ...]] = get_args(GrantType)
MAX_REDIRECT_URIS: Final = 10
_LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "[::1]", "localhost"})


@dataclass(frozen=True)
class ClientProfile:
    """A client's registration as the authorization server reads it."""

    client_type: ClientType
    auth_method: AuthMethod
    grant_types: tuple[str, ...]
    redirect_uris: tuple[str, ...]
    jwks: dict[str, Any] | None
    resource_server: bool


SPINE_PROFILE: Final = ClientProfile(
    "confidential", "client_secret_basic", ("client_credentials",), (), None, False
)


def register_client(
    session: Session,
    *,
    org_id: str,
    name: str,
    roles: Sequence[str],
    scope: str,
    client_type: ClientType = "confidential",
    auth_method: AuthMethod = "client_secret_basic",
    grant_types: Sequence[str] = ("client_credentials",),
    redirect_uris: Sequence[str] = (),
    jwks: dict[str, Any] | None = None,
    resource_server: bool = False,
) -> tuple[OAuthClient, str | None]:
    """Create a client with its registration; the secret (None when the client authenticates
    without one) is shown only this once. Flushed, not committed."""
    from catalog.users import ClientRegistration

    grants = _grant_types(grant_types)
    uris = [check_redirect_uri(uri) for uri in dict.fromkeys(redirect_uris)]
    _check_profile(client_type, auth_method, grants, uris, jwks)
    client, secret = create_client(session, org_id=org_id, name=name, roles=roles, scope=scope)
    session.add(
        ClientRegistration(
            client_id=client.client_id,
            client_type=client_type,
            auth_method=auth_method,
            grant_types=grants,
            redirect_uris=uris,
            jwks=_public_key_set(jwks) if jwks is not None else None,
            resource_server=resource_server,
        )
    )
    session.flush()
    if auth_method in ("none", "private_key_jwt"):
        client.secret_hash = _HASHER.hash(secrets.token_urlsafe(32))  # unknowable: never usable
        return client, None
    return client, secret


def client_profile(session: Session, client_id: str) -> ClientProfile:
    from catalog.users import ClientRegistration

    row = session.get(ClientRegistration, client_id)
    if row is None:
        return SPINE_PROFILE
    return ClientProfile(
        client_type="public" if row.client_type == "public" else "confidential",
        auth_method=_auth_method(row.auth_method),
        grant_types=tuple(row.grant_types),
        redirect_uris=tuple(row.redirect_uris),
        jwks=row.jwks,
        resource_server=bool(row.resource_server),
    )


def check_redirect_uri(uri: str) -> str:
    """An absolute https URI (http only on loopback), no fragment, no user info, no wildcard.

    Matching at /oauth/authorize is exact string comparison (RFC 9700 §2.1), so the value
    is kept as registered."""
    problem = _redirect_uri_problem(uri)
    if problem:
        raise InvalidInput(f"redirect URI {uri!r} {problem}", field="redirect_uris")
    return uri


def _redirect_uri_problem(uri: str) -> str | None:
    from urllib.parse import urlsplit

    if len(uri) > 512 or not uri.isascii() or any(c in uri for c in " *\\\x00"):
        return "must be a plain absolute URI of at most 512 characters"
    try:
        parts = urlsplit(uri)
        host = parts.hostname or ""
    except ValueError:
        return "must be a plain absolute URI"
    if parts.fragment or "@" in parts.netloc:
        return "must not carry a fragment or user info"
    if "/../" in parts.path + "/" or "/./" in parts.path + "/":
        return "must not contain '.' or '..' path segments"
    netloc_host = parts.netloc.rsplit(":", 1)[0] if not parts.netloc.endswith("]") else parts.netloc
    if parts.scheme == "https" and host:
        return None
    if parts.scheme == "http" and netloc_host in _LOOPBACK_HOSTS:
        return None
    return "must use https (http only for 127.0.0.1, [::1] or localhost)"


def _grant_types(grant_types: Sequence[str]) -> list[str]:
    unique = list(dict.fromkeys(grant_types))
    unknown = [grant for grant in unique if grant not in GRANT_TYPES]
    if unknown or not unique:
        raise InvalidInput(
            f"grant types must be some of {', '.join(GRANT_TYPES)}", field="grant_types"
        )
    return unique


def _check_profile(
    client_type: str,
    auth_method: str,
    grants: list[str],
    uris: list[str],
    jwks: dict[str, Any] | None,
) -> None:
    if auth_method not in AUTH_METHODS:
        raise InvalidInput(f"auth method must be one of {', '.join(AUTH_METHODS)}", field="auth")
    if (client_type == "public") != (auth_method == "none"):
        raise InvalidInput("public clients, and only they, authenticate with 'none'", field="auth")
    if client_type == "public" and "client_credentials" in grants:
        raise InvalidInput("a public client cannot use client_credentials", field="grant_types")
    if "authorization_code" in grants and not uris:
        raise InvalidInput(
            "authorization_code needs at least one redirect URI", field="redirect_uris"
        )
    if len(uris) > MAX_REDIRECT_URIS:
        raise InvalidInput(f"at most {MAX_REDIRECT_URIS} redirect URIs", field="redirect_uris")
    if "refresh_token" in grants and "authorization_code" not in grants:
        raise InvalidInput("refresh_token comes with authorization_code", field="grant_types")
    if (auth_method == "private_key_jwt") != (jwks is not None):
        raise InvalidInput("private_key_jwt clients, and only they, register a JWKS", field="jwks")


def _public_key_set(jwks: dict[str, Any]) -> dict[str, Any]:
    """Only public EC/RSA signing keys with a kid are kept (never a secret or private member)."""
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list) or not 1 <= len(keys) <= 5:
        raise InvalidInput("jwks must be {'keys': [1-5 public keys]}", field="jwks")
    public = []
    for key in keys:
        if not isinstance(key, dict) or key.get("kty") not in ("EC", "RSA") or not key.get("kid"):
            raise InvalidInput("each JWK needs kty EC or RSA and a kid", field="jwks")
        if "d" in key:
            raise InvalidInput("register public keys only (a JWK carries 'd')", field="jwks")
        member = {k: v for k, v in key.items() if k in _PUBLIC_JWK_MEMBERS | {"kid", "alg"}}
        try:
            (ECKey if key["kty"] == "EC" else RSAKey).import_key(member)
        except Exception as error:
            raise InvalidInput(f"JWK {key['kid']!r} is not a valid key", field="jwks") from error
        public.append(member)
    return {"keys": public}


def _auth_method(value: str) -> AuthMethod:
    for method in get_args(AuthMethod):
        if method == value:
            return method  # type: ignore[no-any-return]
    raise ValueError(f"unknown auth method {value!r}")
