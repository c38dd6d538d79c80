"""People who log in to the console, and the OAuth state that outlives one request.

Users belong to exactly one organisation (whose region gives their jurisdiction)
and hold roles (provider, consumer, steward with the regions they steward,
admin). Passwords are argon2id hashes; a check for an unknown or disabled user
costs the same as a real one. This module also declares the tables of the
authorization server's state (client registrations, authorization codes,
refresh-token families, issued and revoked token ids); ``catalog.oauth_state``
holds the functions that use them. Persistence only: nothing here knows HTTP.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any, Final

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import JSON, Boolean, ForeignKey, Index, String, Text, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from catalog.errors import Conflict, InvalidInput, NotFound
from catalog.models import Base, Organisation, new_id, utcnow
from catalog.regions import parse_region

USER_ROLES: Final = ("provider", "consumer", "steward", "admin")
MIN_PASSWORD_CHARS: Final = 12
MAX_PASSWORD_CHARS: Final = 256
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._@-]{2,63}")

# Passwords are chosen by people, so they get a heavier argon2id profile than client secrets
# (OWASP's second option: 46 MiB, t=1, p=1 costs about the same time with more memory).
_HASHER = PasswordHasher(time_cost=2, memory_cost=46 * 1024, parallelism=1, type=Type.ID)


# --- tables ------------------------------------------------------------------------------


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))
    roles: Mapped[list[Any]] = mapped_column(JSON, default=list)
    steward_regions: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    password_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(default=None)


class ClientRegistration(Base):
    """How a client authenticates and which flows it may use (absent: a spine machine client,
    confidential, ``client_credentials`` with a client secret)."""

    __tablename__ = "oauth_client_registrations"

    client_id: Mapped[str] = mapped_column(ForeignKey("oauth_clients.client_id"), primary_key=True)
    client_type: Mapped[str] = mapped_column(String(16))  # confidential | public
    auth_method: Mapped[str] = mapped_column(String(32))  # token_endpoint_auth_method
    grant_types: Mapped[list[Any]] = mapped_column(JSON)
    redirect_uris: Mapped[list[Any]] = mapped_column(JSON, default=list)
    jwks: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)  # private_key_jwt
    resource_server: Mapped[bool] = mapped_column(Boolean, default=False)  # may introspect
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuthorizationCode(Base):
    __tablename__ = "oauth_authorization_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the code
    client_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    redirect_uri: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(String(500))
    nonce: Mapped[str | None] = mapped_column(String(255), default=None)
    code_challenge: Mapped[str] = mapped_column(String(128))
    code_challenge_method: Mapped[str] = mapped_column(String(8))
    auth_time: Mapped[datetime] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column(default=None)
    family_id: Mapped[str | None] = mapped_column(String(32), default=None)


class TokenFamily(Base):
    """Every token descended from one authorization code: revoked together on reuse."""

    __tablename__ = "oauth_token_families"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[str | None] = mapped_column(String(32), default=None, index=True)
    scope: Mapped[str] = mapped_column(String(500))
    auth_time: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()  # no refresh after this, however rotated
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_reason: Mapped[str | None] = mapped_column(String(64), default=None)


class RefreshToken(Base):
    __tablename__ = "oauth_refresh_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    family_id: Mapped[str] = mapped_column(ForeignKey("oauth_token_families.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column(default=None)  # rotated: never again
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class IssuedAccessToken(Base):
    """Access tokens of a family, so that revoking the family revokes them too."""

    __tablename__ = "oauth_access_tokens"
    __table_args__ = (Index("ix_oauth_access_tokens_family", "family_id"),)

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    family_id: Mapped[str] = mapped_column(String(32))
    expires_at: Mapped[datetime] = mapped_column()


class RevokedToken(Base):
    """Revoked access-token ids, kept until the token would have expired anyway."""

    __tablename__ = "oauth_revoked_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    revoked_at: Mapped[datetime] = mapped_column(default=utcnow)
    reason: Mapped[str] = mapped_column(String(64))


class UsedClientAssertion(Base):
    """``jti`` of private_key_jwt assertions already used (RFC 7523 §3: no replay)."""

    __tablename__ = "oauth_used_assertions"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256(client_id, jti)
    expires_at: Mapped[datetime] = mapped_column(index=True)


# --- users -------------------------------------------------------------------------------


def create_user(
    session: Session,
    *,
    org_id: str,
    username: str,
    password: str,
    display_name: str = "",
    roles: Sequence[str],
    steward_regions: Sequence[str] = (),
) -> User:
    """Add a user (flushed; the caller commits). The password is hashed, never stored."""
    if session.get(Organisation, org_id) is None:
        raise NotFound("organisation", org_id, hint="create the organisation before its users")
    name = normalise_username(username)
    clean_roles, regions = _roles(roles), _steward_regions(roles, steward_regions)
    user = User(
        org_id=org_id,
        username=name,
        display_name=(display_name.strip() or name)[:200],
        password_hash=_HASHER.hash(_checked_password(password)),
        roles=clean_roles,
        steward_regions=regions,
    )
    session.add(user)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict(f"a user named {name!r} already exists", username=name) from None
    return user


def normalise_username(username: str) -> str:
    name = unicodedata.normalize("NFKC", username).strip().lower()
    if not _USERNAME.fullmatch(name):
        raise InvalidInput(
            "username must be 3-64 characters: letters, digits, '.', '_', '@' or '-'",
            field="username",
        )
    return name


def find_user(session: Session, ident: str) -> User | None:
    """By id or username (any case); None if unknown."""
    user = session.get(User, ident) if len(ident) == 32 else None
    if user is not None:
        return user
    try:
        name = normalise_username(ident)
    except InvalidInput:
        return None
    return session.scalar(select(User).where(User.username == name))


def get_user(session: Session, ident: str) -> User:
    user = find_user(session, ident)
    if user is None:
        raise NotFound("user", ident, "list them with `datashare admin list-users`")
    return user


def list_users(session: Session, *, org_id: str | None = None) -> list[User]:
    query = select(User).order_by(User.username)
    if org_id is not None:
        query = query.where(User.org_id == org_id)
    return list(session.scalars(query))


def set_password(session: Session, user: User, password: str) -> None:
    user.password_hash = _HASHER.hash(_checked_password(password))
    user.password_changed_at = utcnow()
    session.flush()


def set_roles(
    session: Session, user: User, roles: Sequence[str], steward_regions: Sequence[str] = ()
) -> None:
    user.roles = _roles(roles)
    user.steward_regions = _steward_regions(roles, steward_regions)
    session.flush()


def disable_user(session: Session, user: User) -> None:
    if user.disabled_at is None:
        user.disabled_at = utcnow()
        session.flush()


def verify_password(user: User | None, password: str) -> bool:
    """Constant cost whether or not the user exists or is disabled (no existence oracle)."""
    stored = user.password_hash if user is not None else _dummy_hash()
    matches: bool
    try:
        matches = _HASHER.verify(stored, password[:MAX_PASSWORD_CHARS])
    except (VerificationError, InvalidHashError):
        matches = False
    return (
        matches
        and user is not None
        and user.disabled_at is None
        and len(password) <= MAX_PASSWORD_CHARS
    )


def generate_password() -> str:
    """A random password people can type (for the demo and `admin create-user`)."""
    return secrets.token_urlsafe(15)


@cache
def _dummy_hash() -> str:
    return _HASHER.hash(secrets.token_urlsafe(32))


def _checked_password(password: str) -> str:
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        raise InvalidInput(
            f"password must be {MIN_PASSWORD_CHARS}-{MAX_PASSWORD_CHARS} characters",
            field="password",
        )
    return password


def _roles(roles: Sequence[str]) -> list[str]:
    if isinstance(roles, str):
        raise InvalidInput("roles must be a list of role names, not a string", field="roles")
    unique = sorted(set(roles))
    unknown = [role for role in unique if role not in USER_ROLES]
    if unknown or not unique:
        raise InvalidInput(f"roles must be some of {', '.join(USER_ROLES)}", field="roles")
    return unique


def _steward_regions(roles: Sequence[str], regions: Sequence[str]) -> list[str]:
    try:
        parsed = sorted({parse_region(region).value for region in regions})
    except ValueError as error:
        raise InvalidInput(str(error), field="steward_regions") from None
    if parsed and "steward" not in roles:
        raise InvalidInput("only stewards steward regions", field="steward_regions")
    if "steward" in roles and not parsed:
        raise InvalidInput("a steward needs at least one region", field="steward_regions")
    return parsed
