"""The console's session: the user's OAuth tokens in an encrypted, HttpOnly cookie.

The console is a server-side OAuth client: the browser never sees an access token. The
tokens the authorization-code flow returned live in a Fernet-encrypted cookie
(AES-128-CBC + HMAC-SHA256), keyed by HKDF from the gateway's URL-signing secret with a
label of its own, so several gateway processes that share that secret share sessions and
no server-side store is needed. The cookie is HttpOnly, SameSite=Lax, Secure when the
console is served over https, and scoped to ``/console``. Each session carries a random
CSRF token that every form and script sends back (``csrf`` field or ``X-CSRF-Token``).
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from starlette.requests import Request
from starlette.responses import Response

SESSION_COOKIE: Final = "console_session"
LOGIN_COOKIE: Final = "console_login"  # state + PKCE verifier between /login and /callback
COOKIE_PATH: Final = "/console"
SESSION_SECONDS: Final = 12 * 3600  # the cookie's own limit; tokens expire sooner
LOGIN_SECONDS: Final = 600
_HKDF_INFO: Final = b"gba-datashare/console/session/v1"


@dataclass
class ConsoleSession:
    access_token: str
    expires_at: float  # epoch seconds of the access token's expiry
    refresh_token: str | None = None
    client_id: str = ""  # the console's OAuth client that obtained the tokens
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))

    def expired(self, leeway: float = 15.0) -> bool:
        return time.time() + leeway >= self.expires_at

    def csrf_matches(self, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(self.csrf, presented)


@dataclass(frozen=True)
class PendingLogin:
    state: str
    verifier: str
    next_path: str
    client_id: str


class SessionCodec:
    """Seal and open the console's cookies."""

    def __init__(self, secret: bytes, *, https_only: bool = False) -> None:
        self.https_only = https_only  # the public URL is https: Secure even behind a proxy
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(secret)
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def seal(self, value: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(value, separators=(",", ":")).encode()).decode()

    def open(self, token: str | None, ttl: int) -> dict[str, Any] | None:
        if not token:
            return None
        try:
            raw = self._fernet.decrypt(token.encode(), ttl=ttl)
            value = json.loads(raw)
        except (InvalidToken, ValueError):
            return None
        return value if isinstance(value, dict) else None

    # --- the session ---------------------------------------------------------------------

    def load(self, request: Request) -> ConsoleSession | None:
        value = self.open(request.cookies.get(SESSION_COOKIE), SESSION_SECONDS)
        if value is None:
            return None
        try:
            return ConsoleSession(**value)
        except TypeError:
            return None

    def store(self, response: Response, request: Request, session: ConsoleSession) -> None:
        self._set(response, request, SESSION_COOKIE, self.seal(asdict(session)), SESSION_SECONDS)

    def clear(self, response: Response) -> None:
        response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)

    # --- the login in progress -----------------------------------------------------------

    def load_login(self, request: Request) -> PendingLogin | None:
        value = self.open(request.cookies.get(LOGIN_COOKIE), LOGIN_SECONDS)
        if value is None:
            return None
        try:
            return PendingLogin(**value)
        except TypeError:
            return None

    def store_login(self, response: Response, request: Request, login: PendingLogin) -> None:
        self._set(response, request, LOGIN_COOKIE, self.seal(asdict(login)), LOGIN_SECONDS)

    def clear_login(self, response: Response) -> None:
        response.delete_cookie(LOGIN_COOKIE, path=COOKIE_PATH)

    def _set(
        self, response: Response, request: Request, name: str, value: str, max_age: int
    ) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path=COOKIE_PATH,
            httponly=True,
            secure=self.https_only or request.url.scheme == "https",
            samesite="lax",
        )
