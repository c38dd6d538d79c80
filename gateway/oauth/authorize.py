"""Routes' logic for ``/oauth/authorize`` and ``/oauth/login`` (see ``gateway.oauth.login``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode

from authlib.oauth2 import OAuth2Error
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from catalog.errors import InvalidInput
from catalog.users import User, normalise_username, verify_password
from gateway.oauth.client_auth import UserAccount
from gateway.oauth.form_requests import parse_authorization_query
from gateway.oauth.login import (
    AUTHORIZE_PATH,
    CSRF_COOKIE,
    SESSION_COOKIE,
    SessionCookies,
    negotiate_locale,
    redirect,
    render_login,
)
from gateway.oauth.rate_limit import RateLimiter
from gateway.oauth.server import AuthorizeInput, GatewayAuthorizationServer

log = logging.getLogger(__name__)

MAX_LOGIN_FORM_BYTES: Final = 16 * 1024


def client_address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


class AuthorizeFlow:
    def __init__(
        self,
        server: GatewayAuthorizationServer,
        cookies: SessionCookies,
        *,
        login_per_ip: RateLimiter,
        login_per_user: RateLimiter,
        audit: Callable[..., None],
    ) -> None:
        self.server = server
        self.cookies = cookies
        self._per_ip = login_per_ip
        self._per_user = login_per_user
        self._audit = audit

    # -- GET /oauth/authorize --

    async def authorize(self, request: Request) -> Response:
        query = request.url.query
        lang = self._lang(request, query)
        try:
            pairs = parse_authorization_query(query)
        except OAuth2Error:
            return self._bad_request(request, lang)
        authorize_input = AuthorizeInput(dict(request.headers), pairs)
        try:
            grant = await run_in_threadpool(self.server.get_consent_grant, authorize_input)
        except OAuth2Error as error:
            if getattr(error, "redirect_uri", None):  # validated: errors go back to the client
                return self._with_issuer(self.server.handle_error_response(None, error))
            log.info("authorization request refused before redirect: %s", error.error)
            return self._bad_request(request, lang)
        params = dict(pairs)
        user = await self._session_user(request, params)
        if user is None:
            if params.get("prompt") == "none":
                return self._with_issuer(
                    self.server.handle_error_response(None, _login_required(grant))
                )
            return redirect(f"/oauth/login?{query}")
        response: Response = await run_in_threadpool(
            self.server.create_authorization_response, grant.request, user, grant
        )
        return self._with_issuer(response)

    def _with_issuer(self, response: Response) -> Response:
        """RFC 9207: name the issuer in every authorization response (mix-up defence)."""
        location = response.headers.get("location")
        if location:
            separator = "&" if "?" in location else "?"
            response.headers["location"] = (
                f"{location}{separator}{urlencode({'iss': self.server.issuer})}"
            )
        return response

    async def _session_user(self, request: Request, params: dict[str, str]) -> UserAccount | None:
        session = self.cookies.read(request.cookies.get(SESSION_COOKIE))
        if session is None or "login" in params.get("prompt", "").split():
            return None
        max_age = params.get("max_age")
        too_old = max_age is not None and max_age.isdigit()
        if too_old and datetime.now(UTC).timestamp() - session.auth_time > int(str(max_age)):
            return None
        auth_time = datetime.fromtimestamp(session.auth_time, UTC)
        return await run_in_threadpool(
            lambda: self.server.load_user(session.user_id, auth_time=auth_time, session_login=True)
        )

    # -- GET /oauth/login --

    def login_page(self, request: Request) -> Response:
        query = request.url.query
        lang = self._lang(request, query)
        token = self.cookies.csrf_token(request.cookies.get(CSRF_COOKIE))
        response = render_login(lang=lang, authorize_query=query, csrf_token=token)
        self.cookies.set_csrf(response, token)
        return response

    # -- POST /oauth/login --

    async def login(self, request: Request) -> Response:
        form = await _read_form(request)
        if form is None:
            return self._bad_request(request, "en")
        authorize_query = _clean_query(form.get("authorize", ""))
        lang = negotiate_locale(form.get("ui_locales"), request.headers.get("accept-language"))
        username = form.get("username", "")[:64]
        token = self.cookies.csrf_token(request.cookies.get(CSRF_COOKIE))
        page: dict[str, Any] = {
            "lang": lang,
            "authorize_query": authorize_query,
            "csrf_token": token,
        }
        if not self.cookies.csrf_matches(request.cookies.get(CSRF_COOKIE), form.get("csrf_token")):
            response = render_login(**page, status=400, error_key="expired_form", username=username)
            self.cookies.set_csrf(response, token)
            return response
        address = client_address(request)
        name = _normalised(username)
        wait = self._per_ip.hit("login-ip", address) or self._per_user.hit("login-user", name)
        if wait is not None:
            self._audit("login.refused", name, "rate_limited", address=address)
            response = render_login(**page, status=429, error_key="too_many", username=username)
            response.headers["Retry-After"] = str(int(wait) + 1)
            return response
        user_id = await run_in_threadpool(self._check_password, name, form.get("password", ""))
        if user_id is None:
            self._audit("login.failed", name, "failed", address=address)
            return render_login(**page, status=401, error_key="bad_credentials", username=username)
        self._audit("login.succeeded", user_id, "succeeded", address=address)
        target = f"{AUTHORIZE_PATH}?{authorize_query}" if authorize_query else "/"
        success = redirect(target)
        self.cookies.issue(success, user_id)
        return success

    def logout(self) -> Response:
        response = redirect("/oauth/login")
        self.cookies.clear(response)
        return response

    def _check_password(self, username: str, password: str) -> str | None:
        with self.server.sessions() as session:
            user = (
                session.scalar(select(User).where(User.username == username)) if username else None
            )
            return user.id if verify_password(user, password) and user is not None else None

    def _lang(self, request: Request, query: str) -> str:
        ui_locales = dict(parse_qsl(query)).get("ui_locales") if query else None
        return negotiate_locale(ui_locales, request.headers.get("accept-language"))

    def _bad_request(self, request: Request, lang: str) -> Response:
        token = self.cookies.csrf_token(request.cookies.get(CSRF_COOKIE))
        return render_login(
            lang=lang,
            authorize_query="",
            csrf_token=token,
            status=400,
            error_key="bad_request",
            show_form=False,
        )


def _clean_query(query: str) -> str:
    """The authorization request carried through the login form, re-encoded: whatever the
    form held, the redirect after sign-in is our own /oauth/authorize with plain parameters."""
    try:
        return urlencode(parse_qsl(query, keep_blank_values=True, max_num_fields=30))
    except ValueError:
        return ""


def _normalised(username: str) -> str:
    try:
        return normalise_username(username)
    except InvalidInput:
        return ""


async def _read_form(request: Request) -> dict[str, str] | None:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_LOGIN_FORM_BYTES:
            return None
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=10)
    except ValueError:
        return None
    return dict(pairs)


def _login_required(grant: Any) -> OAuth2Error:
    error = OAuth2Error(description="The user is not signed in.")
    error.error = "login_required"
    error.redirect_uri = grant.redirect_uri
    error.state = grant.request.payload.state
    return error
