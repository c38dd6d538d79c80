"""Administration without a running gateway: talks to the catalog database only."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from catalog.audit import AuditLog
from catalog.clients import create_client, register_client
from catalog.database import make_engine, session_factory, upgrade_to_head
from catalog.errors import InvalidInput, NotFound
from catalog.grants import GrantStore
from catalog.models import Dataset, Grant, Organisation
from catalog.oauth_state import revoke_user_families
from catalog.registry import Registry
from catalog.users import (
    User,
    create_user,
    disable_user,
    generate_password,
    get_user,
    list_users,
    set_password,
)
from gateway.oauth.scopes import ROLE_SCOPES as SCOPE_TABLE
from gateway.oauth.scopes import SCOPES_SUPPORTED
from gateway.settings import PlatformSettings
from policies.grants import record_grant
from policies.model import ROLES

ROLE_SCOPES = {role: list(scopes) for role, scopes in SCOPE_TABLE.items()}


@dataclass
class AdminContext:
    sessions: sessionmaker[Session]
    registry: Registry
    grants: GrantStore
    audit: AuditLog
    actor: str = "cli"  # who is administering: "cli", or "user:<id>" / "client:<id>" via the API

    def create_client(self, org: str, name: str, roles: list[str]) -> tuple[str, str]:
        unknown = sorted(set(roles) - ROLES)
        if unknown or not roles:
            raise InvalidInput(f"roles must be some of {', '.join(sorted(ROLES))}", field="role")
        organisation = self.registry.find_org(org)
        scope = sorted({s for r in roles for s in ROLE_SCOPES[r]})
        with self.sessions.begin() as session:
            client, secret = create_client(
                session,
                org_id=organisation.id,
                name=name,
                roles=sorted(set(roles)),
                scope=" ".join(scope),
            )
            client_id = client.client_id
        self.audit.append(
            actor=self.actor,
            action="client.create",
            resource=f"client:{client_id}",
            outcome="created",
            detail={"org": organisation.slug, "roles": roles},
        )
        return client_id, secret

    def create_org(
        self, *, name: str, slug: str, kind: str, region: str, registration_id: str
    ) -> Organisation:
        org = self.registry.create_org(
            name=name, slug=slug, kind=kind, region=region, registration_id=registration_id
        )
        self.audit.append(
            actor=self.actor,
            action="org.create",
            resource=f"org:{org.id}",
            outcome="created",
            detail={"slug": slug, "region": org.region},
        )
        return org

    def create_user(
        self,
        org: str,
        username: str,
        roles: list[str],
        *,
        steward_regions: list[str] | None = None,
        password: str | None = None,
        display_name: str = "",
    ) -> tuple[User, str]:
        """A console user; the password (generated unless given) is returned only here."""
        organisation = self.registry.find_org(org)
        secret = password or generate_password()
        with self.sessions.begin() as session:
            user = create_user(
                session,
                org_id=organisation.id,
                username=username,
                password=secret,
                display_name=display_name,
                roles=roles,
                steward_regions=steward_regions or [],
            )
        self.audit.append(
            actor=self.actor,
            action="user.create",
            resource=f"user:{user.id}",
            outcome="created",
            detail={"org": organisation.slug, "username": user.username, "roles": user.roles},
        )
        return user, secret

    def list_users(self, org: str | None = None) -> list[User]:
        org_id = self.registry.find_org(org).id if org else None
        with self.sessions() as session:
            return list_users(session, org_id=org_id)

    def disable_user(self, ident: str) -> User:
        with self.sessions.begin() as session:
            user = get_user(session, ident)
            disable_user(session, user)
            revoke_user_families(session, user.id, reason="user_disabled")
        self.audit.append(
            actor=self.actor, action="user.disable", resource=f"user:{user.id}", outcome="disabled"
        )
        return user

    def reset_password(self, ident: str, password: str | None = None) -> tuple[User, str]:
        secret = password or generate_password()
        with self.sessions.begin() as session:
            user = get_user(session, ident)
            set_password(session, user, secret)
            revoke_user_families(session, user.id, reason="password_reset")
        self.audit.append(
            actor=self.actor, action="user.password", resource=f"user:{user.id}", outcome="changed"
        )
        return user, secret

    def register_app(
        self,
        org: str,
        name: str,
        redirect_uris: list[str],
        *,
        public: bool = True,
        roles: list[str] | None = None,
    ) -> tuple[str, str | None]:
        """A client for people (authorization code + PKCE, refresh tokens), e.g. the console.

        Its scope covers every API area; each token is narrowed to the signed-in user's roles.
        """
        organisation = self.registry.find_org(org)
        with self.sessions.begin() as session:
            client, secret = register_client(
                session,
                org_id=organisation.id,
                name=name,
                roles=roles or [],
                scope=" ".join(SCOPES_SUPPORTED),
                client_type="public" if public else "confidential",
                auth_method="none" if public else "client_secret_basic",
                grant_types=["authorization_code", "refresh_token"],
                redirect_uris=redirect_uris,
            )
            client_id = client.client_id
        self.audit.append(
            actor=self.actor,
            action="client.create",
            resource=f"client:{client_id}",
            outcome="created",
            detail={"org": organisation.slug, "redirect_uris": redirect_uris, "public": public},
        )
        return client_id, secret

    def dataset(self, ident: str) -> Dataset:
        if "." in ident:
            org, _, name = ident.partition(".")
            found = self.registry.find_dataset(org, name)
            if found is None:
                raise NotFound("dataset", ident)
            return found
        return self.registry.get_dataset(ident)

    def grant(self, dataset_ident: str, org: str, columns: list[str] | None, purpose: str) -> Grant:
        return record_grant(
            self.grants,
            self.audit,
            actor=self.actor,
            dataset=self.dataset(dataset_ident),
            consumer=self.registry.find_org(org),
            columns=columns,
            purpose=purpose,
        )


@contextmanager
def admin_session(settings: PlatformSettings) -> Iterator[AdminContext]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.catalog_url)
    try:
        upgrade_to_head(engine)
        sessions = session_factory(engine)
        yield AdminContext(sessions, Registry(sessions), GrantStore(sessions), AuditLog(sessions))
    finally:
        engine.dispose()


def migrate() -> None:
    """Bring the configured catalog database to the latest schema (docker-compose one-shot)."""
    settings = PlatformSettings()
    engine = make_engine(settings.catalog_url)
    try:
        upgrade_to_head(engine)
    finally:
        engine.dispose()
