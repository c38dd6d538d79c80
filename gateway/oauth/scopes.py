"""The scopes of the API and which roles may hold them.

Each scope opens one API area; routes declare theirs with ``require_scope`` (gateway.deps).
A token's scope is what the client asked for, intersected with the client's registration
and, for a person, with what the person's roles allow: a scope never widens a role.
``openid`` only asks for an ID token (console sign-in) and opens no API area.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

API_SCOPES: Final[tuple[str, ...]] = (
    "datasets:read",
    "datasets:write",
    "query",
    "access:request",
    "access:approve",
    "audit:read",
    "admin",
)
OPENID: Final = "openid"
SCOPES_SUPPORTED: Final[tuple[str, ...]] = (*API_SCOPES, OPENID)

ROLE_SCOPES: Final[dict[str, tuple[str, ...]]] = {
    "provider": ("datasets:read", "datasets:write", "query", "access:request"),
    "consumer": ("datasets:read", "query", "access:request"),
    "steward": ("datasets:read", "access:approve", "audit:read"),
    "admin": API_SCOPES,
}


def scopes_for_roles(roles: Iterable[str]) -> list[str]:
    """Every scope the roles allow, in API order."""
    allowed = {scope for role in roles for scope in ROLE_SCOPES.get(role, ())}
    return [scope for scope in API_SCOPES if scope in allowed]
