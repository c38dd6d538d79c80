"""Users, client registrations and the authorization server's state, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from catalog.clients import check_redirect_uri, client_profile, register_client
from catalog.database import make_engine, session_factory, upgrade_to_head
from catalog.errors import Conflict, InvalidInput
from catalog.models import Organisation
from catalog.oauth_state import (
    add_tokens,
    find_refresh_token,
    is_revoked,
    peek_refresh_token,
    purge_expired,
    redeem_code,
    save_code,
    start_family,
    use_refresh_token,
)
from catalog.users import create_user, disable_user, find_user, verify_password
from tests.conftest import ACTIVE_CATALOGS, fresh_postgres_url
from tests.factories import suffix

PASSWORD = "a long enough passphrase"


@pytest.fixture(scope="module", params=ACTIVE_CATALOGS)
def sessions(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[sessionmaker[Session]]:
    """One catalog per backend for the module (tests use their own names and ids)."""
    if request.param == "postgres":
        url = fresh_postgres_url(request.getfixturevalue("postgres_server"))
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('users') / 'catalog.db'}"
    engine = make_engine(url)
    upgrade_to_head(engine)
    yield session_factory(engine)
    engine.dispose()


@pytest.fixture(scope="module")
def org_id(sessions: sessionmaker[Session]) -> str:
    with sessions.begin() as session:
        org = Organisation(
            slug=f"mo_{suffix()}",
            name=f"Macao {suffix()}",
            kind="provider",
            region="MO",
            registration_id="12345(SO)",
            registration_scheme="mo_reg",
        )
        session.add(org)
        session.flush()
        return org.id


def test_user_password_checks(sessions, org_id) -> None:
    tag = suffix()
    with sessions.begin() as session:
        user = create_user(
            session,
            org_id=org_id,
            username="Ｌｅｏｎｇ_Ka" + tag,
            password=PASSWORD,
            roles=["consumer"],
        )
    assert user.username == "leong_ka" + tag  # NFKC and lower case
    assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash
    with sessions() as session:
        found = find_user(session, "LEONG_KA" + tag)
        assert verify_password(found, PASSWORD)
        assert not verify_password(found, PASSWORD + "x")
        assert not verify_password(None, PASSWORD)
    with sessions.begin() as session:
        disable_user(session, find_user(session, "leong_ka" + tag))
    with sessions() as session:
        assert not verify_password(find_user(session, "leong_ka" + tag), PASSWORD)


def test_user_duplicate_name_conflict(sessions, org_id) -> None:
    name = f"dup_{suffix()}"
    with sessions.begin() as session:
        create_user(
            session,
            org_id=org_id,
            username=name,
            password=PASSWORD,
            roles=["provider"],
        )
    with pytest.raises(Conflict), sessions.begin() as session:
        create_user(
            session,
            org_id=org_id,
            username="DUP_" + name[4:],
            password=PASSWORD,
            roles=["provider"],
        )


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"password": "short"}, "password"),
        ({"roles": ["root"]}, "roles"),
        ({"roles": []}, "roles"),
        ({"roles": ["steward"]}, "steward_regions"),  # a steward needs regions
        ({"steward_regions": ["HK"]}, "steward_regions"),  # only stewards have them
        ({"roles": ["steward"], "steward_regions": ["XX"]}, "steward_regions"),
        ({"username": "a"}, "username"),
        ({"username": "x y"}, "username"),
    ],
)
def test_user_invalid_input(sessions, org_id, options, field) -> None:
    arguments = {
        "username": f"u_{suffix()}",
        "password": PASSWORD,
        "roles": ["consumer"],
        **options,
    }
    with pytest.raises(InvalidInput) as raised, sessions.begin() as session:
        create_user(session, org_id=org_id, **arguments)
    assert raised.value.field == field


@pytest.mark.parametrize(
    "uri",
    [
        "http://evil.example/cb",
        "https://good.example/cb#x",
        "https://user@good.example/cb",
        "https://good.example/a/../cb",
        "https://*.good.example/cb",
        "javascript:alert(1)",
        "datashare:/cb",
        "https://good.example/\u00e9",
        "",
    ],
)
def test_register_redirect_uri_refused(uri) -> None:
    with pytest.raises(InvalidInput):
        check_redirect_uri(uri)


@pytest.mark.parametrize(
    "uri", ["https://console.example/callback", "http://127.0.0.1:8765/cb", "http://localhost/cb"]
)
def test_register_redirect_uri_accepted(uri) -> None:
    assert check_redirect_uri(uri) == uri


def test_register_client_profiles(sessions, org_id) -> None:
    with sessions.begin() as session:
        public, secret = register_client(
            session,
            org_id=org_id,
            name="console",
            roles=[],
            scope="openid",
            client_type="public",
            auth_method="none",
            grant_types=["authorization_code", "refresh_token"],
            redirect_uris=["https://console.example/cb"],
        )
        assert secret is None
        profile = client_profile(session, public.client_id)
    assert profile.client_type == "public" and profile.redirect_uris == (
        "https://console.example/cb",
    )
    bad = [
        {"client_type": "public", "auth_method": "client_secret_basic"},
        {"client_type": "public", "auth_method": "none", "grant_types": ["client_credentials"]},
        {"grant_types": ["authorization_code"]},  # no redirect URI
        {"auth_method": "private_key_jwt"},  # no JWKS
        {
            "auth_method": "private_key_jwt",
            "jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "x"}]},
        },
    ]
    for options in bad:
        with pytest.raises(InvalidInput), sessions.begin() as session:
            register_client(session, org_id=org_id, name="x", roles=[], scope="", **options)


def test_code_single_use_and_family_revocation(sessions, org_id) -> None:
    code, jti = "code-" + suffix(), "jti-" + suffix()
    refresh = "refresh-" + suffix() * 4
    with sessions.begin() as session:
        user = create_user(
            session, org_id=org_id, username=f"c_{suffix()}", password=PASSWORD, roles=["consumer"]
        )
    now = datetime.now(UTC)
    with sessions() as session:
        save_code(
            session,
            code,
            client_id="dsc_a",
            user_id=user.id,
            redirect_uri="https://x/cb",
            scope="query",
            nonce=None,
            code_challenge="c" * 43,
            code_challenge_method="S256",
            auth_time=now,
            ttl=timedelta(minutes=2),
        )
        assert redeem_code(session, code, "dsc_other")[0] == "unknown"
        outcome, grant = redeem_code(session, code, "dsc_a")
        assert outcome == "ok" and grant is not None and grant.scope == "query"
        family = start_family(
            session,
            client_id="dsc_a",
            user_id=user.id,
            scope="query",
            auth_time=now,
            lifetime=timedelta(days=1),
            code_hash=grant.code_hash,
        )
        add_tokens(
            session,
            family.id,
            jti=jti,
            access_expires_at=now + timedelta(minutes=15),
            refresh_token=refresh,
            refresh_ttl=timedelta(hours=1),
        )
        assert redeem_code(session, code, "dsc_a")[0] == "replayed"
        assert is_revoked(session, jti)
        assert find_refresh_token(session, refresh)[0] == "revoked"


def test_refresh_rotation_and_reuse(sessions) -> None:
    token, jti = "r-" + suffix() * 4, "j-" + suffix()
    now = datetime.now(UTC)
    with sessions() as session:
        family = start_family(
            session,
            client_id="dsc_b",
            user_id=None,
            scope="query",
            auth_time=None,
            lifetime=timedelta(days=1),
        )
        add_tokens(
            session,
            family.id,
            jti=jti,
            access_expires_at=now + timedelta(minutes=5),
            refresh_token=token,
            refresh_ttl=timedelta(hours=1),
        )
        assert find_refresh_token(session, token)[0] == "ok"
        assert use_refresh_token(session, token)
        assert not use_refresh_token(session, token)  # a second rotation: family revoked
        assert peek_refresh_token(session, token).active is False
        assert is_revoked(session, jti)
        assert purge_expired(session, grace=timedelta(days=-1)) >= 1  # everything looks expired
