"""OAuth endpoints: token, authorize, login, revocation, introspection, JWKS, metadata.

The routes only delegate to ``OAuthService`` (``request.app.state.oauth``, set by
the app factory). The token endpoint answers in RFC 6749 JSON, the one
exception to the platform's error envelope, because OAuth clients expect it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

from gateway.oauth.login import AUTHORIZE_PATH, LOGIN_PATH
from gateway.oauth.service import INTROSPECT_PATH, JWKS_PATH, REVOKE_PATH, TOKEN_PATH, OAuthService

JWKS_MAX_AGE_SECONDS = 60
METADATA_MAX_AGE_SECONDS = 300


def get_oauth(request: Request) -> OAuthService:
    service = getattr(request.app.state, "oauth", None)
    if not isinstance(service, OAuthService):
        raise RuntimeError("app.state.oauth is not configured; create_app must set it")
    return service


OAuthDep = Annotated[OAuthService, Depends(get_oauth)]

router = APIRouter(tags=["oauth"])


@router.post(TOKEN_PATH, response_model=None, summary="Issue an access token (RFC 6749 §4.4)")
async def token(request: Request, oauth: OAuthDep) -> Response:
    return await oauth.issue_token(request)


@router.get(
    AUTHORIZE_PATH, response_model=None, summary="Authorization endpoint (code + PKCE S256)"
)
async def authorize(request: Request, oauth: OAuthDep) -> Response:
    return await oauth.flow.authorize(request)


@router.get(LOGIN_PATH, response_model=None, summary="The sign-in page")
def login_page(request: Request, oauth: OAuthDep) -> Response:
    return oauth.flow.login_page(request)


@router.post(LOGIN_PATH, response_model=None, summary="Sign in (form post from the login page)")
async def login(request: Request, oauth: OAuthDep) -> Response:
    return await oauth.flow.login(request)


@router.post("/oauth/logout", response_model=None, summary="End the sign-in session")
def logout(oauth: OAuthDep) -> Response:
    return oauth.flow.logout()


@router.post(REVOKE_PATH, response_model=None, summary="Revoke a token (RFC 7009)")
async def revoke(request: Request, oauth: OAuthDep) -> Response:
    return await oauth.revoke(request)


@router.post(INTROSPECT_PATH, response_model=None, summary="Introspect a token (RFC 7662)")
async def introspect(request: Request, oauth: OAuthDep) -> Response:
    return await oauth.introspect(request)


@router.get(JWKS_PATH, response_model=None, summary="Public keys that sign access tokens")
def jwks(oauth: OAuthDep) -> JSONResponse:
    return _cacheable(oauth.jwks(), JWKS_MAX_AGE_SECONDS)


@router.get(
    "/.well-known/oauth-authorization-server",
    response_model=None,
    summary="Authorization server metadata (RFC 8414)",
)
def metadata(oauth: OAuthDep) -> JSONResponse:
    return _cacheable(oauth.metadata(), METADATA_MAX_AGE_SECONDS)


def _cacheable(body: dict[str, Any], max_age: int) -> JSONResponse:
    return JSONResponse(body, headers={"Cache-Control": f"public, max-age={max_age}"})


@router.get(
    "/.well-known/openid-configuration",
    response_model=None,
    summary="OpenID Connect discovery",
)
def openid_configuration(oauth: OAuthDep) -> JSONResponse:
    return _cacheable(oauth.openid_configuration(), METADATA_MAX_AGE_SECONDS)
