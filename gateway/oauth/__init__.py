"""OAuth 2.0 for the gateway: authorization server (client credentials, RFC 9068 JWT
access tokens) and resource-server token validation.

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
