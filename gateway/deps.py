"""Request dependencies: the platform and the authenticated principal."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request

from gateway.errors import AuthenticationRequired, Forbidden
from gateway.oauth.errors import InsufficientScope
from gateway.services import Platform
from policies.model import Principal

MAX_AUTHORIZATION_BYTES = 8192


# Dependencies that neither block nor read the catalog are ``async def``: FastAPI runs a
# plain ``def`` dependency in a worker thread, one thread hop per dependency per request.


async def get_platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


def get_principal(request: Request) -> Principal:
    """Bearer token from the Authorization header only (never from the URL or body)."""
    return authenticate(request, _bearer(request))


async def bearer_token(request: Request) -> str:
    """The bearer token, checked for shape only (no thread hop, no catalog read): for a
    route that calls ``authorize`` in its own worker thread."""
    return _bearer(request)


def _bearer(request: Request) -> str:
    if "access_token" in request.query_params:
        raise AuthenticationRequired(
            "access tokens in the URL are refused; send them as 'Authorization: Bearer <token>'"
        )
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationRequired(
            "send an access token as 'Authorization: Bearer <token>'; "
            "get one from POST /oauth/token"
        )
    if len(header) > MAX_AUTHORIZATION_BYTES:
        raise AuthenticationRequired("the Authorization header is too large")
    return token.strip()


def authenticate(request: Request, token: str) -> Principal:
    """The caller of ``token`` (signature, claims, revocation); blocks on the catalog."""
    platform: Platform = request.app.state.platform
    principal = platform.oauth.authenticate(token)
    request.state.principal = principal
    return principal


def authorize(
    request: Request, token: str, *, scopes: tuple[str, ...], roles: tuple[str, ...]
) -> Principal:
    """``authenticate``, then what ``require_scope(*scopes)`` and ``require_role(*roles)``
    check, in that order. For a route that does its blocking work in one worker thread
    (``POST /v1/query``): one thread hop per request instead of two."""
    principal = authenticate(request, token)
    check_scope(principal, scopes)
    check_role(principal, roles)
    return principal


PlatformDep = Annotated[Platform, Depends(get_platform)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require_scope(*scopes: str) -> Any:
    """Route dependency (``dependencies=[require_scope("query")]``): the token must carry one
    of ``scopes``; otherwise 403 ``insufficient_scope`` naming the scope (RFC 6750 §3.1)."""

    async def check(principal: PrincipalDep) -> Principal:
        check_scope(principal, scopes)
        return principal

    return Depends(check)


def require_role(*roles: str) -> Callable[[Principal], Awaitable[Principal]]:
    """Dependency: the caller must hold one of ``roles`` (admin holds every role)."""

    async def check(principal: PrincipalDep) -> Principal:
        check_role(principal, roles)
        return principal

    return check


def check_scope(principal: Principal, scopes: tuple[str, ...]) -> None:
    if not principal.scopes & set(scopes):
        raise InsufficientScope(" ".join(scopes), client_id=principal.client_id)


def check_role(principal: Principal, roles: tuple[str, ...]) -> None:
    if not any(principal.has_role(role) for role in roles):
        raise Forbidden(
            f"this endpoint needs the role {' or '.join(roles)}; your client has "
            f"{', '.join(sorted(principal.roles)) or 'no roles'}",
            required=list(roles),
        )
