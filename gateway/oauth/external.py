"""Tokens from partner identity providers (external OIDC issuers) trusted by configuration."""

from __future__ import annotations

from policies.model import Principal


class ExternalIssuers:
    """The configured external issuers, keyed by their exact ``iss``."""

    def issuer_of(self, token: str) -> str | None:
        del token
        return None

    def authenticate(self, token: str, issuer: str) -> Principal:
        raise NotImplementedError
