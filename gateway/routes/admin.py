"""Administration over HTTP: organisations, users and OAuth clients (scope ``admin``, role admin).

The same operations as ``datashare admin …`` (``gateway.admin.AdminContext``); secrets and
generated passwords are returned once, in the creating response, and never again.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from catalog.models import Organisation
from catalog.users import User
from gateway.admin import AdminContext
from gateway.deps import PlatformDep, require_role, require_scope
from gateway.query_exports import sweep_exports
from gateway.services import Platform
from policies.model import Principal

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[require_scope("admin")])
Admin = Annotated[Principal, Depends(require_role("admin"))]


class OrgCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    slug: str = Field(min_length=2, max_length=32)
    kind: Literal["provider", "consumer", "steward", "operator"]
    region: Literal["GZ", "SZ", "DG", "HK", "MO"]
    registration_id: str = Field(min_length=1, max_length=64)


class OrgPublic(BaseModel):
    id: str
    slug: str
    name: str
    kind: str
    region: str
    jurisdiction: str
    registration_id: str
    registration_scheme: str


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    org: str = Field(description="Organisation id or slug.")
    username: str = Field(min_length=3, max_length=64)
    display_name: str = Field(default="", max_length=200)
    roles: list[Literal["provider", "consumer", "steward", "admin"]] = Field(min_length=1)
    steward_regions: list[Literal["GZ", "SZ", "DG", "HK", "MO"]] = Field(default_factory=list)


class UserPublic(BaseModel):
    id: str
    org_id: str
    username: str
    display_name: str
    roles: list[str]
    steward_regions: list[str]
    disabled: bool


class UserCreated(UserPublic):
    password: str = Field(description="Generated; shown only in this response.")


class ClientCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    org: str = Field(description="Organisation id or slug.")
    name: str = Field(min_length=1, max_length=200)
    roles: list[Literal["provider", "consumer", "steward", "admin"]] = Field(default_factory=list)
    redirect_uris: list[str] = Field(
        default_factory=list, description="Set for an app people sign in to (authorization code)."
    )
    public: bool = Field(default=True, description="Apps only: no secret, PKCE only.")


class ClientCreated(BaseModel):
    client_id: str
    client_secret: str | None = Field(description="Shown only in this response.")


def _context(platform: Platform, principal: Principal) -> AdminContext:
    return AdminContext(
        platform.sessions,
        platform.registry,
        platform.grants,
        platform.audit,
        actor=f"user:{principal.subject}",
    )


def _org(org: Organisation) -> OrgPublic:
    from catalog.regions import Region

    return OrgPublic(
        id=org.id,
        slug=org.slug,
        name=org.name,
        kind=org.kind,
        region=org.region,
        jurisdiction=Region(org.region).jurisdiction,
        registration_id=org.registration_id,
        registration_scheme=org.registration_scheme,
    )


def _user(user: User) -> UserPublic:
    return UserPublic(
        id=user.id,
        org_id=user.org_id,
        username=user.username,
        display_name=user.display_name,
        roles=list(user.roles),
        steward_regions=list(user.steward_regions),
        disabled=user.disabled_at is not None,
    )


@router.post("/keys/rotate")
def rotate_keys(admin: Admin, platform: PlatformDep) -> dict[str, str]:
    """Sign new access and ID tokens with fresh keys; tokens signed before stay valid until
    they expire."""
    kids = platform.oauth.rotate_keys()
    for kid in kids.values():
        platform.audit.append(
            actor=f"user:{admin.subject}",
            action="key.rotate",
            resource=f"key:{kid}",
            outcome="rotated",
        )
    return kids


@router.post("/exports/sweep")
async def sweep(_admin: Admin, platform: PlatformDep) -> dict[str, int]:
    """Delete the files of expired, revoked and abandoned exports now (each gateway also does
    this every ``query.export_sweep_seconds``); how many exports ended in each status."""
    return await run_in_threadpool(sweep_exports, platform)


@router.get("/orgs")
def list_orgs(_admin: Admin, platform: PlatformDep) -> list[OrgPublic]:
    return [_org(org) for org in platform.registry.list_orgs()]


@router.post("/orgs", status_code=201)
def create_org(body: OrgCreate, admin: Admin, platform: PlatformDep) -> OrgPublic:
    org = _context(platform, admin).create_org(**body.model_dump())
    return _org(org)


@router.get("/users")
def list_users(_admin: Admin, platform: PlatformDep, org: str | None = None) -> list[UserPublic]:
    return [_user(user) for user in _context(platform, _admin).list_users(org)]


@router.post("/users", status_code=201)
def create_user(body: UserCreate, admin: Admin, platform: PlatformDep) -> UserCreated:
    user, password = _context(platform, admin).create_user(
        body.org,
        body.username,
        list(body.roles),
        steward_regions=list(body.steward_regions),
        display_name=body.display_name,
    )
    return UserCreated(**_user(user).model_dump(), password=password)


@router.post("/users/{user}/disable")
def disable_user(user: str, admin: Admin, platform: PlatformDep) -> UserPublic:
    return _user(_context(platform, admin).disable_user(user))


@router.post("/users/{user}/password")
def reset_password(user: str, admin: Admin, platform: PlatformDep) -> UserCreated:
    record, password = _context(platform, admin).reset_password(user)
    return UserCreated(**_user(record).model_dump(), password=password)


@router.post("/clients", status_code=201)
def create_client(body: ClientCreate, admin: Admin, platform: PlatformDep) -> ClientCreated:
    context = _context(platform, admin)
    if body.redirect_uris:
        client_id, secret = context.register_app(
            body.org, body.name, body.redirect_uris, public=body.public, roles=list(body.roles)
        )
        return ClientCreated(client_id=client_id, client_secret=secret)
    client_id, machine_secret = context.create_client(body.org, body.name, list(body.roles))
    return ClientCreated(client_id=client_id, client_secret=machine_secret)
