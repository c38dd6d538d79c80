"""The demo creates one console user per demo organisation, with a password people can use."""

from __future__ import annotations

import json

from catalog.users import find_user, verify_password
from gateway.admin import admin_session
from gateway.demo import _ensure_org, _users
from gateway.demo_data import sample_orgs
from tests.conftest import make_settings


def test_demo_users_one_per_organisation_with_working_passwords(tmp_path) -> None:
    settings = make_settings(tmp_path / "data", backend="local", seaweed=None)
    with admin_session(settings) as admin:
        for org in sample_orgs():
            _ensure_org(admin, org)
        users = _users(settings, admin)
        assert {u["org"] for u in users} == {org.slug for org in sample_orgs()}
        with admin.sessions() as session:
            for entry in users:
                user = find_user(session, entry["username"])
                assert user is not None and user.roles == [entry["role"]]
            consumer = next(u for u in users if u["role"] == "consumer")
            assert verify_password(find_user(session, consumer["username"]), consumer["password"])
            steward = next(u for u in users if u["role"] == "steward")
            assert find_user(session, steward["username"]).steward_regions == [
                "DG",
                "GZ",
                "HK",
                "MO",
                "SZ",
            ]
        path = settings.data_dir / "demo-credentials.json"
        path.write_text(json.dumps({"clients": [], "users": users}))
        assert _users(settings, admin) == users  # a second run keeps the passwords
