"""OAuth 2.0 and OpenID Connect for the gateway.

Authorization server (``server``: client credentials, authorization code + PKCE and
refresh grants in ``grants``; revocation and introspection in ``endpoints``; the
authorization endpoint and login page in ``authorize``/``login``), RFC 9068 access
tokens validated in one place (``tokens``), partner issuers (``external``), scopes
(``scopes``), rate limits (``rate_limit``).

The app factory sets ``app.state.oauth = OAuthService(...)`` and includes
``gateway.oauth.routes.router``; protected routes call ``OAuthService.authenticate``.
"""

from gateway.oauth.errors import AuthError, InsufficientRole, InsufficientScope, InvalidToken
from gateway.oauth.service import OAuthService
from gateway.oauth.tokens import validate_access_token

__all__ = [
    "AuthError",
    "InsufficientRole",
    "InsufficientScope",
    "InvalidToken",
    "OAuthService",
    "validate_access_token",
]
