"""Administration without a running gateway: talks to the catalog database only."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from catalog.audit import AuditLog
from catalog.clients import create_client
from catalog.database import make_engine, session_factory, upgrade_to_head
from catalog.errors import InvalidInput, NotFound
from catalog.grants import GrantStore
from catalog.models import Dataset, Grant
from catalog.registry import Registry
from gateway.settings import PlatformSettings
from policies.grants import record_grant
from policies.model import ROLES

ROLE_SCOPES = {
    "provider": ["datasets:read", "datasets:write", "query"],
    "consumer": ["datasets:read", "query"],
    "steward": ["datasets:read", "grants:admin"],
    "admin": ["datasets:read", "datasets:write", "query", "grants:admin", "admin"],
}


@dataclass
class AdminContext:
    sessions: sessionmaker[Session]
    registry: Registry
    grants: GrantStore
    audit: AuditLog

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
            actor="cli",
            action="client.create",
            resource=f"client:{client_id}",
            outcome="created",
            detail={"org": organisation.slug, "roles": roles},
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
            actor="cli",
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
