"""Which OAuth client is the console: the public client registered with the console's
callback URL as a redirect URI.

An operator registers it once (``datashare admin register-app <org> "Web console"
--redirect-uri <public URL>/console/auth/callback``; the demo does it itself); the
console finds it by that exact redirect URI, so no client id has to be configured and
every gateway process behind the same public URL agrees on it.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from catalog.models import OAuthClient
from catalog.users import ClientRegistration


def find_console_client(sessions: sessionmaker[Session], redirect_uri: str) -> str | None:
    """The oldest enabled public authorization-code client with ``redirect_uri``."""
    with sessions() as session:
        rows = session.execute(
            select(ClientRegistration, OAuthClient)
            .join(OAuthClient, OAuthClient.client_id == ClientRegistration.client_id)
            .where(ClientRegistration.client_type == "public")
            .where(OAuthClient.disabled_at.is_(None))
            .order_by(ClientRegistration.created_at)
        ).all()
    for registration, _client in rows:
        if redirect_uri in (registration.redirect_uris or []) and "authorization_code" in (
            registration.grant_types or []
        ):
            return registration.client_id
    return None
