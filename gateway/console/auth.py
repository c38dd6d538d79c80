"""Signing in to the console: OAuth 2.0 authorization code with PKCE (RFC 6749 §4.1,
RFC 7636 S256) against the gateway's own authorization server, as a public client.

``/console/login`` sends the browser to ``/oauth/authorize`` with a fresh ``state`` and
code challenge (both kept in a short-lived encrypted cookie); the server's login page
authenticates the user and redirects to ``/console/auth/callback``, which checks
``state`` and redeems the code with the verifier at ``/oauth/token``. The tokens then
live in the encrypted session cookie (see ``session.py``); an expired access token is
refreshed with the refresh token when the server issued one. There is no other way in.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import secrets
import time
from typing import Annotated, Any, Final
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from gateway.console.api import Api, ApiError
from gateway.console.context import AnyConsole
from gateway.console.i18n import LANG_COOKIE, LOCALES
from gateway.console.registration import find_console_client
from gateway.console.session import COOKIE_PATH, ConsoleSession, PendingLogin
from gateway.oauth.login import SESSION_COOKIE as OAUTH_LOGIN_COOKIE
from gateway.oauth.scopes import SCOPES_SUPPORTED

CALLBACK_PATH: Final = "/console/auth/callback"
AUTHORIZE_PATH: Final = "/oauth/authorize"
TOKEN_PATH: Final = "/oauth/token"
REVOKE_PATH: Final = "/oauth/revoke"
# Every scope; the server narrows the token to what the signed-in person's roles allow.
REQUESTED_SCOPE: Final = " ".join(SCOPES_SUPPORTED)

router = APIRouter(prefix="/console", include_in_schema=False)


def callback_url(request: Request) -> str:
    """The redirect URI registered for the console client (exact match at the server)."""
    settings = request.app.state.platform.settings
    return f"{settings.public_url}{CALLBACK_PATH}"


async def console_client_id(request: Request) -> str | None:
    """The console's client id (see ``registration.py``), remembered once found."""
    state = request.app.state.console
    if state.client_id is None:
        state.client_id = await run_in_threadpool(
            find_console_client, request.app.state.platform.sessions, callback_url(request)
        )
    client_id: str | None = state.client_id
    return client_id


def safe_next(value: str | None) -> str:
    """Only a path inside the console: never an absolute or scheme-relative URL."""
    if not value or not value.startswith("/console") or value.startswith("//"):
        return "/console"
    if any(ch in value for ch in ("\\", "\r", "\n", "\t")):
        return "/console"
    return value


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@router.get("/login")
async def login(
    console: AnyConsole, next_path: Annotated[str | None, Query(alias="next")] = None
) -> Response:
    request = console.request
    client_id = await console_client_id(request)
    if client_id is None:
        return console.render(
            "login_failed.html", status=503, reason="unregistered", callback=callback_url(request)
        )
    verifier = secrets.token_urlsafe(64)  # 86 characters, within RFC 7636's 43..128
    pending = PendingLogin(
        state=secrets.token_urlsafe(24),
        verifier=verifier,
        next_path=safe_next(next_path),
        client_id=client_id,
    )
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": callback_url(request),
        "scope": REQUESTED_SCOPE,
        "state": pending.state,
        "code_challenge": _challenge(verifier),
        "code_challenge_method": "S256",
        "ui_locales": console.t.tag,
    }
    response = RedirectResponse(f"{AUTHORIZE_PATH}?{urlencode(params)}", status_code=303)
    console.state.codec.store_login(response, request, pending)
    return response


@router.get("/auth/callback")
async def callback(
    console: AnyConsole,
    code: str | None = None,
    state: str | None = None,
    error: str | None = None,
    error_description: str | None = None,
) -> Response:
    request = console.request
    codec = console.state.codec
    pending = codec.load_login(request)
    if pending is None or state is None or not hmac.compare_digest(pending.state, state):
        return console.render("login_failed.html", status=400, reason="state")
    if error is not None or not code:
        detail = error_description or error or "no authorization code"
        return console.render("login_failed.html", status=400, reason="denied", detail=detail)
    try:
        tokens = await _token_request(
            console.api,
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": callback_url(request),
                "client_id": pending.client_id,
                "code_verifier": pending.verifier,
            },
        )
    except ApiError as failure:
        return console.render(
            "login_failed.html", status=400, reason="token", detail=failure.message
        )
    response = RedirectResponse(pending.next_path, status_code=303)
    codec.clear_login(response)
    codec.store(response, request, _session(tokens, pending.client_id))
    return response


@router.post("/logout")
async def logout(console: AnyConsole) -> Response:
    await console.check_csrf()
    session = console.session
    if session is not None:
        for token, hint in (
            (session.refresh_token, "refresh_token"),
            (session.access_token, "access_token"),
        ):
            if token:
                with contextlib.suppress(ApiError):  # best effort; the cookie goes anyway
                    await console.api.request(
                        "POST",
                        REVOKE_PATH,
                        data={
                            "token": token,
                            "token_type_hint": hint,
                            "client_id": session.client_id,
                        },
                    )
    response = console.render("signed_out.html")
    console.state.codec.clear(response)
    # and the authorization server's sign-in session, so "Sign in" asks for the password again
    response.delete_cookie(OAUTH_LOGIN_COOKIE, path="/oauth", httponly=True)
    return response


@router.get("/lang/{locale}")
async def switch_language(
    locale: str, next_path: Annotated[str | None, Query(alias="next")] = None
) -> Response:
    """Remember the viewer's language (a year) and go back to the page."""
    response = RedirectResponse(safe_next(next_path), status_code=303)
    if locale in LOCALES:
        response.set_cookie(
            LANG_COOKIE, locale, max_age=365 * 86400, path=COOKIE_PATH, samesite="lax"
        )
    return response


async def refresh(request: Request, session: ConsoleSession) -> ConsoleSession | None:
    """A new access token from the refresh token, or None (the user signs in again)."""
    if not session.refresh_token or not session.client_id:
        return None
    api = Api(request.app, None)
    try:
        tokens = await _token_request(
            api,
            {
                "grant_type": "refresh_token",
                "refresh_token": session.refresh_token,
                "client_id": session.client_id,
            },
        )
    except ApiError:
        return None
    renewed = _session(tokens, session.client_id)
    renewed.csrf = session.csrf  # forms already on screen stay valid
    if renewed.refresh_token is None:
        renewed.refresh_token = session.refresh_token
    return renewed


async def _token_request(api: Api, form: dict[str, str]) -> dict[str, Any]:
    response = await api.request("POST", TOKEN_PATH, data=form)
    body: dict[str, Any] = response.json()
    if not isinstance(body.get("access_token"), str):
        raise ApiError(502, "invalid_token_response", "the token endpoint returned no token")
    return body


def _session(tokens: dict[str, Any], client_id: str) -> ConsoleSession:
    lifetime = float(tokens.get("expires_in") or 300)
    refresh_token = tokens.get("refresh_token")
    return ConsoleSession(
        access_token=tokens["access_token"],
        expires_at=time.time() + lifetime,
        refresh_token=refresh_token if isinstance(refresh_token, str) else None,
        client_id=client_id,
    )
