"""OAuth clients and access-token signing keys: persistence only (no HTTP).

Client secrets are 256-bit random strings returned once at creation; the
catalog stores only an argon2id hash. Signing keys are ES256 (P-256) or RS256
key pairs whose private half is stored as a Fernet token under a key derived
(HKDF-SHA256) from the platform key secret; the public half is a JWK.

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
from datetime import UTC, datetime, timedelta
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
from catalog.models import OAuthClient, Organisation, SigningKey, utcnow

SigningAlgorithm = Literal["ES256", "RS256"]
SIGNING_ALGORITHMS: Final[tuple[str, ...]] = get_args(SigningAlgorithm)

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
) -> SigningKeyMaterial:
    """The newest unretired key of ``algorithm``; a new one if none exists or it is too old.

    Creating a key commits ``session``; pass a session with no other pending work.
    """
    fernet = _fernet(key_secret)
    for attempt in range(_CREATE_ATTEMPTS):
        try:
            row = _newest_active(session, algorithm)
            if row is not None and utcnow() - _aware(row.created_at) < rotate_after:
                return _material(row, fernet)
            return _insert_key(session, fernet, algorithm)
        except (IntegrityError, OperationalError):
            # Another process wrote first (SQLite answers "database is locked" when a read
            # snapshot is upgraded after a concurrent commit): re-read and use its key.
            session.rollback()
            if attempt == _CREATE_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def rotate_signing_key(
    session: Session, key_secret: bytes, *, algorithm: SigningAlgorithm = "ES256"
) -> SigningKeyMaterial:
    """Create a key now and retire every older active key (they stay published for overlap)."""
    return _insert_key(session, _fernet(key_secret), algorithm)


def published_keys(session: Session, *, overlap: timedelta) -> list[dict[str, Any]]:
    """Public JWKs of active keys and keys retired less than ``overlap`` ago, newest first."""
    cutoff = utcnow() - overlap
    rows = session.scalars(
        select(SigningKey)
        .where(or_(SigningKey.retired_at.is_(None), SigningKey.retired_at > cutoff))
        .order_by(SigningKey.created_at.desc(), SigningKey.kid)
    ).all()
    return [_public_jwk(row.public_jwk, kid=row.kid, algorithm=row.algorithm) for row in rows]


def _newest_active(session: Session, algorithm: str) -> SigningKey | None:
    return session.scalars(
        select(SigningKey)
        .where(SigningKey.retired_at.is_(None), SigningKey.algorithm == algorithm)
        .order_by(SigningKey.created_at.desc(), SigningKey.kid)
        .limit(1)
    ).first()


def _insert_key(
    session: Session, fernet: Fernet, algorithm: SigningAlgorithm
) -> SigningKeyMaterial:
    key = _generate(algorithm)
    kid = str(key.kid)
    now = utcnow()
    public = _public_jwk(key.as_dict(private=False), kid=kid, algorithm=algorithm)
    session.add(
        SigningKey(
            kid=kid,
            algorithm=algorithm,
            private_key=fernet.encrypt(key.as_pem(private=True)).decode("ascii"),
            public_jwk=public,
            created_at=now,
        )
    )
    session.flush()
    session.execute(
        update(SigningKey)
        .where(SigningKey.retired_at.is_(None), SigningKey.created_at < now)
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
    return SigningKeyMaterial(row.kid, algorithm, key, public, _aware(row.created_at))


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


def _aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; the catalog stores UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
