"""The authorization endpoint and the console's login page (``/oauth/login``).

Flow: ``GET /oauth/authorize`` validates the request with authlib (client, exact
redirect URI, response type, scope, PKCE S256). With a valid login session it
redirects back with a code; otherwise it sends the browser to ``/oauth/login``
with the same query. The login form posts the credentials with a CSRF token
(double-submit cookie); success sets the login session cookie (HMAC-signed,
HttpOnly, SameSite=Lax, Secure on https) and returns to the authorization
endpoint. Errors found before the redirect URI is known are shown on the page,
never redirected (RFC 6749 §4.1.2.1). Failed logins read the same whether the
user exists or not, and are rate-limited per address and per user name.

The page is a small self-contained template (no external assets) in English,
简体中文 and 繁體中文, chosen by ``ui_locales`` or Accept-Language.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse, RedirectResponse, Response

LOGIN_PATH: Final = "/oauth/login"
AUTHORIZE_PATH: Final = "/oauth/authorize"
SESSION_COOKIE: Final = "datashare_login"
CSRF_COOKIE: Final = "datashare_login_csrf"
LANGUAGES: Final = (("en", "English"), ("zh-Hans", "简体中文"), ("zh-Hant", "繁體中文"))
PAGE_HEADERS: Final = {
    "Cache-Control": "no-store",
    # no form-action: browsers apply it to the redirects after the post, and the sign-in ends
    # with a redirect to the client's (registered, exactly matched) redirect URI
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}

STRINGS: Final[dict[str, dict[str, str]]] = {
    "en": {
        "title": "Sign in · GBA Industrial Data Exchange",
        "heading": "Sign in to the GBA Industrial Data Exchange",
        "signing_in_to": "Signing in to",
        "username": "User name",
        "password": "Password",
        "submit": "Sign in",
        "language": "Language",
        "bad_credentials": "The user name or password is incorrect.",
        "too_many": "Too many sign-in attempts. Wait a minute and try again.",
        "expired_form": "The sign-in form expired. Please try again.",
        "bad_request": "This sign-in link is not valid. Start again from the application.",
    },
    "zh-Hans": {
        "title": "登录 · 大湾区工业数据交换平台",
        "heading": "登录大湾区工业数据交换平台",
        "signing_in_to": "正在登录",
        "username": "用户名",
        "password": "密码",
        "submit": "登录",
        "language": "语言",
        "bad_credentials": "用户名或密码不正确。",
        "too_many": "登录尝试次数过多，请一分钟后再试。",
        "expired_form": "登录表单已过期，请重试。",
        "bad_request": "此登录链接无效，请从应用重新开始。",
    },
    "zh-Hant": {
        "title": "登入 · 大灣區工業數據交換平台",
        "heading": "登入大灣區工業數據交換平台",
        "signing_in_to": "正在登入",
        "username": "使用者名稱",
        "password": "密碼",
        "submit": "登入",
        "language": "語言",
        "bad_credentials": "使用者名稱或密碼不正確。",
        "too_many": "登入嘗試次數過多，請一分鐘後再試。",
        "expired_form": "登入表單已過期，請重試。",
        "bad_request": "此登入連結無效，請從應用程式重新開始。",
    },
}

_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    auto_reload=False,
)


def negotiate_locale(ui_locales: str | None, accept_language: str | None) -> str:
    """``ui_locales`` (OIDC, space-separated, in order) first, then Accept-Language by q."""
    for tag in (ui_locales or "").split():
        found = _match(tag)
        if found:
            return found
    weighted: list[tuple[float, int, str]] = []
    for index, part in enumerate((accept_language or "").split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        weighted.append((-quality, index, tag.strip()))
    for quality, _, tag in sorted(weighted):
        found = _match(tag) if quality < 0 else None
        if found:
            return found
    return "en"


def _match(tag: str) -> str | None:
    lowered = tag.lower()
    if lowered.startswith("en"):
        return "en"
    if lowered in ("zh-hant", "zh-tw", "zh-hk", "zh-mo") or lowered.startswith("zh-hant"):
        return "zh-Hant"
    if lowered.startswith("zh"):
        return "zh-Hans"  # zh, zh-Hans, zh-CN, zh-SG
    return None


@dataclass(frozen=True)
class LoginSession:
    user_id: str
    auth_time: int


class SessionCookies:
    """Signed login-session and CSRF cookies (HMAC-SHA256 under a key derived from the
    platform's OAuth key secret; nothing secret is stored in them)."""

    def __init__(self, key_secret: bytes, *, max_age: int, secure: bool) -> None:
        self._key = hmac.new(key_secret, b"gba-datashare/login-session/v1", hashlib.sha256).digest()
        self.max_age = max_age
        self.secure = secure

    def issue(self, response: Response, user_id: str) -> None:
        now = int(time.time())
        body = {"u": user_id, "t": now, "e": now + self.max_age}
        response.set_cookie(
            SESSION_COOKIE,
            self._sign(body),
            max_age=self.max_age,
            path="/oauth",
            httponly=True,
            secure=self.secure,
            samesite="lax",
        )

    def read(self, value: str | None) -> LoginSession | None:
        body = self._verify(value)
        if body is None or not isinstance(body.get("u"), str) or not isinstance(body.get("t"), int):
            return None
        if not isinstance(body.get("e"), int) or body["e"] <= time.time():
            return None
        return LoginSession(body["u"], body["t"])

    def clear(self, response: Response) -> None:
        response.delete_cookie(SESSION_COOKIE, path="/oauth", secure=self.secure, httponly=True)

    def csrf_token(self, existing: str | None) -> str:
        """The CSRF cookie value (reused while it is still well-formed)."""
        if existing and 20 <= len(existing) <= 64 and existing.isascii():
            return existing
        return secrets.token_urlsafe(24)

    def set_csrf(self, response: Response, token: str) -> None:
        response.set_cookie(
            CSRF_COOKIE,
            token,
            max_age=3600,
            path=LOGIN_PATH,
            httponly=True,
            secure=self.secure,
            samesite="strict",
        )

    @staticmethod
    def csrf_matches(cookie: str | None, field: str | None) -> bool:
        if not cookie or not field:
            return False
        return hmac.compare_digest(cookie.encode(), field.encode())

    def _sign(self, body: dict[str, Any]) -> str:
        payload = base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":")).encode())
        mac = hmac.new(self._key, payload, hashlib.sha256).digest()
        return (payload + b"." + base64.urlsafe_b64encode(mac)).decode().replace("=", "")

    def _verify(self, value: str | None) -> dict[str, Any] | None:
        if not value or len(value) > 1024 or value.count(".") != 1:
            return None
        payload, _, mac = value.partition(".")
        try:
            raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
            given = base64.urlsafe_b64decode(mac + "=" * (-len(mac) % 4))
        except ValueError:
            return None
        padded = base64.urlsafe_b64encode(raw)
        expected = hmac.new(self._key, padded, hashlib.sha256).digest()
        if not hmac.compare_digest(expected, given):
            return None
        try:
            body = json.loads(raw)
        except ValueError:
            return None
        return body if isinstance(body, dict) else None


def render_login(
    *,
    lang: str,
    authorize_query: str,
    csrf_token: str,
    status: int = 200,
    error_key: str | None = None,
    username: str = "",
    client_name: str | None = None,
    show_form: bool = True,
) -> HTMLResponse:
    strings = STRINGS.get(lang, STRINGS["en"])
    switch = {code: _with_locale(authorize_query, code) for code, _ in LANGUAGES}
    html = _TEMPLATES.get_template("login.html").render(
        lang=lang,
        t=strings,
        error=strings[error_key] if error_key else None,
        action=LOGIN_PATH,
        authorize=authorize_query,
        csrf_token=csrf_token,
        username=username[:64],
        client_name=client_name,
        show_form=show_form,
        languages=LANGUAGES,
        switch_query=switch,
    )
    return HTMLResponse(html, status_code=status, headers=dict(PAGE_HEADERS))


def _with_locale(query: str, lang: str) -> str:
    from urllib.parse import parse_qsl

    pairs = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "ui_locales"]
    return urlencode([*pairs, ("ui_locales", lang)])


def redirect(location: str, status: int = 303) -> RedirectResponse:
    return RedirectResponse(location, status_code=status, headers={"Cache-Control": "no-store"})
