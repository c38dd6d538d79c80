"""Authentication and authorisation failures raised by ``gateway.oauth``.

``gateway.errors`` maps them to HTTP: ``InvalidToken`` → 401 with
``WWW-Authenticate: <InvalidToken.www_authenticate>``; ``InsufficientScope`` and
``InsufficientRole`` → 403. The token endpoint does not raise these: it answers
with RFC 6749 error JSON itself, the one exception to the platform's error envelope.
"""

from __future__ import annotations

from typing import Literal

from catalog.errors import PlatformError, Terminal

TokenRejection = Literal[
    "missing",
    "malformed",
    "oversized",
    "unsupported_algorithm",
    "wrong_type",
    "unsupported_header",
    "unknown_key",
    "bad_signature",
    "expired",
    "not_yet_valid",
    "issued_in_future",
    "wrong_issuer",
    "wrong_audience",
    "missing_claim",
    "invalid_claim",
    "revoked",
    "untrusted_issuer",
    "organisation_not_allowed",
]


class AuthError(PlatformError):
    """Root of the gateway's authentication and authorisation errors."""

    code = "auth_error"


class InvalidToken(AuthError, Terminal):
    """The bearer token was absent or failed validation; ``reason`` says which check.

    The reason is for logs and tests. Clients only learn "expired" versus "invalid",
    so a forger gets no hint which check stopped them.
    """

    code = "invalid_token"

    def __init__(self, reason: TokenRejection, *, claim: str | None = None) -> None:
        message = f"access token rejected: {reason}" + (f" ({claim})" if claim else "")
        super().__init__(message, reason=reason, claim=claim)
        self.reason: TokenRejection = reason
        self.claim = claim

    @property
    def public_description(self) -> str:
        if self.reason == "missing":
            return "Send an access token in the Authorization: Bearer header."
        if self.reason == "expired":
            return "The access token expired; request a new one from the token endpoint."
        return "The access token is invalid."

    @property
    def www_authenticate(self) -> str:
        """RFC 6750 §3 challenge; no error code when no credentials were sent (§3.1)."""
        if self.reason == "missing":
            return "Bearer"
        return f'Bearer error="invalid_token", error_description="{self.public_description}"'


class InsufficientScope(AuthError):
    """The token is valid but lacks a scope the operation requires (RFC 6750 §3.1)."""

    code = "insufficient_scope"

    def __init__(self, required: str, *, client_id: str) -> None:
        super().__init__(
            f"client {client_id} needs scope {required!r}; ask the platform operator to add it "
            "to the client and request a new token",
            required=required,
            client_id=client_id,
        )
        self.required = required
        self.client_id = client_id

    @property
    def www_authenticate(self) -> str:
        return f'Bearer error="insufficient_scope", scope="{self.required}"'


class InsufficientRole(AuthError):
    """The caller's organisation role does not allow the operation."""

    code = "insufficient_role"

    def __init__(self, role: str, *, client_id: str) -> None:
        super().__init__(
            f"client {client_id} needs role {role!r} for this operation",
            role=role,
            client_id=client_id,
        )
        self.role = role
        self.client_id = client_id
