"""OAuth client and signing-key persistence on a real SQLite catalog."""

from __future__ import annotations

import multiprocessing
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import ECKey
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from catalog import clients
from catalog.clients import (
    SigningKeyUnreadable,
    active_signing_key,
    create_client,
    disable_client,
    get_client,
    published_keys,
    rotate_signing_key,
    verify_client_secret,
)
from catalog.database import make_engine, session_factory, upgrade_to_head
from catalog.errors import InvalidInput, NotFound
from catalog.models import OAuthClient, Organisation, SigningKey

KEY_SECRET = b"test-key-secret-" + secrets.token_bytes(16)
PRIVATE_JWK_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
DAY = timedelta(days=1)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "c.db"


@pytest.fixture
def sessions(db_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(f"sqlite:///{db_path}")
    upgrade_to_head(engine)
    yield session_factory(engine)
    engine.dispose()


@pytest.fixture
def org_id(sessions: sessionmaker[Session]) -> str:
    tag = secrets.token_hex(3)
    with sessions.begin() as session:
        org = Organisation(
            slug=f"org_{tag}",
            name=f"Org {tag}",
            kind="consumer",
            region="GZ",
            registration_id="91440101MA9Y1T6H6L",
            registration_scheme="uscc",
        )
        session.add(org)
        session.flush()
        return org.id


def _new_client(sessions: sessionmaker[Session], org_id: str) -> tuple[str, str]:
    with sessions.begin() as session:
        client, secret = create_client(
            session, org_id=org_id, name="svc", roles=["consumer"], scope="query datasets:read"
        )
        return client.client_id, secret


def test_create_client_returns_prefixed_id_and_256_bit_secret(sessions, org_id):
    client_id, secret = _new_client(sessions, org_id)
    assert client_id.startswith("dsc_")
    assert len(secret) >= 43  # token_urlsafe(32): 32 random bytes
    with sessions() as session:
        row = get_client(session, client_id)
        assert row is not None
        assert row.roles == ["consumer"]
        assert row.scope == "query datasets:read"


def test_create_client_stores_only_an_argon2id_hash(sessions, org_id, db_path):
    client_id, secret = _new_client(sessions, org_id)
    with sessions() as session:
        row = session.get(OAuthClient, client_id)
        assert row is not None
        assert row.secret_hash.startswith("$argon2id$")
    with sqlite3.connect(db_path) as raw:
        values = raw.execute("SELECT * FROM oauth_clients").fetchall()
    assert not any(secret in str(value) for row_values in values for value in row_values)


def test_create_client_unknown_organisation_not_found(sessions):
    with sessions() as session, pytest.raises(NotFound):
        create_client(session, org_id="nope", name="svc", roles=[], scope="")


@pytest.mark.parametrize(
    ("roles", "scope"),
    [("consumer", ""), (["Bad Role"], ""), (["consumer"], 'quote"scope'), (["consumer"], "x\\y")],
)
def test_create_client_rejects_malformed_roles_and_scope(sessions, org_id, roles, scope):
    with sessions() as session, pytest.raises(InvalidInput):
        create_client(session, org_id=org_id, name="svc", roles=roles, scope=scope)


def test_verify_client_secret_accepts_only_the_right_secret(sessions, org_id):
    client_id, secret = _new_client(sessions, org_id)
    with sessions() as session:
        row = get_client(session, client_id)
    assert verify_client_secret(row, secret)
    assert not verify_client_secret(row, secret + "x")
    assert not verify_client_secret(row, "")
    assert not verify_client_secret(row, secret + "x" * 300)


def test_verify_client_secret_spends_a_hash_check_when_client_unknown(monkeypatch):
    checked: list[str] = []
    real = clients._argon2_verify

    def spy(stored: str, secret: str) -> bool:
        checked.append(stored)
        return real(stored, secret)

    monkeypatch.setattr(clients, "_argon2_verify", spy)
    assert not verify_client_secret(None, "guess")
    assert len(checked) == 1 and checked[0].startswith("$argon2id$")


def test_verify_client_secret_rejects_disabled_client(sessions, org_id):
    client_id, secret = _new_client(sessions, org_id)
    with sessions.begin() as session:
        disable_client(session, client_id)
    with sessions() as session:
        assert not verify_client_secret(get_client(session, client_id), secret)


@pytest.mark.parametrize("client_id", ["", "a" * 65, "dsc_x'; --", "dsc_ünïcode"])
def test_get_client_malformed_id_returns_none(sessions, client_id):
    with sessions() as session:
        assert get_client(session, client_id) is None


@pytest.mark.parametrize("algorithm", ["ES256", "RS256"])
def test_active_signing_key_creates_then_reuses(sessions, algorithm):
    with sessions() as session:
        first = active_signing_key(session, KEY_SECRET, rotate_after=DAY, algorithm=algorithm)
    with sessions() as session:
        again = active_signing_key(session, KEY_SECRET, rotate_after=DAY, algorithm=algorithm)
    assert first.kid == again.kid
    assert first.algorithm == algorithm
    assert again.private_key.as_dict(private=False) == first.private_key.as_dict(private=False)
    assert first.public_jwk["kty"] == ("EC" if algorithm == "ES256" else "RSA")
    assert "private_key" not in repr(first) and "PRIVATE" not in repr(first)


def test_active_signing_key_rotates_when_too_old(sessions):
    with sessions() as session:
        old = active_signing_key(session, KEY_SECRET, rotate_after=DAY)
    with sessions() as session:
        new = active_signing_key(session, KEY_SECRET, rotate_after=timedelta(0))
    assert new.kid != old.kid
    with sessions() as session:
        rows = {row.kid: row for row in session.scalars(select(SigningKey))}
        assert rows[old.kid].retired_at is not None
        assert rows[new.kid].retired_at is None
        published = [jwk["kid"] for jwk in published_keys(session, overlap=timedelta(hours=1))]
        assert published == [new.kid, old.kid]
        assert [jwk["kid"] for jwk in published_keys(session, overlap=timedelta(0))] == [new.kid]


def test_signing_key_private_half_encrypted_at_rest(sessions, db_path):
    with sessions() as session:
        active_signing_key(session, KEY_SECRET, rotate_after=DAY)
    with sqlite3.connect(db_path) as raw:
        (stored,) = raw.execute("SELECT private_key FROM signing_keys").fetchone()
    assert "PRIVATE KEY" not in stored and stored.startswith("gAAAAA")  # a Fernet token


def test_signing_key_wrong_key_secret_unreadable(sessions):
    with sessions() as session:
        active_signing_key(session, KEY_SECRET, rotate_after=DAY)
    with sessions() as session, pytest.raises(SigningKeyUnreadable):
        active_signing_key(session, b"another-secret-of-enough-length", rotate_after=DAY)


def test_signing_key_tampered_public_jwk_unreadable(sessions):
    with sessions() as session:
        key = active_signing_key(session, KEY_SECRET, rotate_after=DAY)
    other = ECKey.generate_key("P-256").as_dict(private=False)
    with sessions.begin() as session:
        row = session.get(SigningKey, key.kid)
        assert row is not None
        row.public_jwk = {**row.public_jwk, "x": other["x"], "y": other["y"]}
    with sessions() as session, pytest.raises(SigningKeyUnreadable):
        active_signing_key(session, KEY_SECRET, rotate_after=DAY)


def test_published_keys_never_contain_private_members(sessions):
    with sessions() as session:
        key = rotate_signing_key(session, KEY_SECRET, algorithm="RS256")
        rotate_signing_key(session, KEY_SECRET, algorithm="ES256")
    with sessions.begin() as session:  # even if a private member found its way into the row
        row = session.get(SigningKey, key.kid)
        assert row is not None
        row.public_jwk = {**row.public_jwk, "d": "leak", "p": "leak"}
    with sessions() as session:
        published = published_keys(session, overlap=DAY)
    assert len(published) == 2
    for jwk in published:
        assert not PRIVATE_JWK_MEMBERS & jwk.keys()
        assert jwk["use"] == "sig" and jwk["alg"] in ("ES256", "RS256")


def test_active_signing_key_concurrent_creation_publishes_every_key_used(sessions):
    workers = 4
    barrier = threading.Barrier(workers)
    used: list[str] = []
    errors: list[BaseException] = []

    def create() -> None:
        try:
            with sessions() as session:
                barrier.wait()
                used.append(active_signing_key(session, KEY_SECRET, rotate_after=DAY).kid)
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=create) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    with sessions() as session:
        published = {jwk["kid"] for jwk in published_keys(session, overlap=DAY)}
    assert len(used) == workers and set(used) <= published
    # every process converges on the same newest key at its next refresh
    with sessions() as session:
        converged = {active_signing_key(session, KEY_SECRET, rotate_after=DAY).kid for _ in "ab"}
    assert len(converged) == 1 and converged <= published


def _child_active_key(url: str, key_secret: bytes, barrier: Any, results: Any) -> None:
    engine = make_engine(url)
    try:
        with session_factory(engine)() as session:
            barrier.wait(timeout=60)
            results.put(("ok", active_signing_key(session, key_secret, rotate_after=DAY).kid))
    except BaseException as error:  # reported to the parent
        results.put(("error", repr(error)))
    finally:
        engine.dispose()


@pytest.mark.slow
def test_active_signing_key_two_processes_race_safely(sessions, db_path):
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    url = f"sqlite:///{db_path}"
    children = [
        context.Process(target=_child_active_key, args=(url, KEY_SECRET, barrier, results))
        for _ in range(2)
    ]
    for child in children:
        child.start()
    outcomes = [results.get(timeout=120) for _ in children]
    for child in children:
        child.join(timeout=30)
    assert [status for status, _ in outcomes] == ["ok", "ok"], outcomes
    with sessions() as session:
        published = {jwk["kid"] for jwk in published_keys(session, overlap=DAY)}
    assert {kid for _, kid in outcomes} <= published


def test_access_and_id_keys_rotate_independently(sessions):
    with sessions() as session:
        access = active_signing_key(session, KEY_SECRET, rotate_after=DAY)
        id_key = active_signing_key(session, KEY_SECRET, rotate_after=DAY, purpose="id")
        assert id_key.kid != access.kid
        # each purpose reuses its own key, and rotating one never retires the other
        assert active_signing_key(session, KEY_SECRET, rotate_after=DAY).kid == access.kid
        new_access = rotate_signing_key(session, KEY_SECRET)
        assert active_signing_key(session, KEY_SECRET, rotate_after=DAY, purpose="id").kid == (
            id_key.kid
        )
        assert active_signing_key(session, KEY_SECRET, rotate_after=DAY).kid == new_access.kid
    with sessions() as session:
        retired = session.get(SigningKey, access.kid)
        assert retired is not None and retired.retired_at is not None
        assert session.get(SigningKey, id_key.kid).retired_at is None  # type: ignore[union-attr]
        only_id = {jwk["kid"] for jwk in published_keys(session, overlap=DAY, purpose="id")}
        only_access = {jwk["kid"] for jwk in published_keys(session, overlap=DAY, purpose="access")}
        every = {jwk["kid"] for jwk in published_keys(session, overlap=DAY)}
    assert only_id == {id_key.kid}
    assert only_access == {access.kid, new_access.kid}
    assert every == only_id | only_access
