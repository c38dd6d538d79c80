"""Tokens of a partner identity provider: a second instance of our own issuer, on another
port with its own catalog and keys, stands in for it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from catalog.clients import register_client, rotate_signing_key
from catalog.models import Organisation
from gateway.oauth.errors import InvalidToken
from gateway.oauth.external import ExternalIssuer, ExternalIssuers
from tests.oauth.conftest import AUDIENCE, KEY_SECRET, browser, make_org, start_issuer

PARTNER_ORG = "hk_partner_lab"
OTHER_ORG = "hk_other_lab"


@pytest.fixture(scope="module")
def partner(tmp_path_factory: pytest.TempPathFactory):
    yield from start_issuer(Path(tmp_path_factory.mktemp("partner")), name="partner")


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, partner):
    """Our issuer, trusting the partner for PARTNER_ORG only."""
    holder: dict[str, ExternalIssuers] = {}
    generator = start_issuer(Path(tmp_path_factory.mktemp("ours")), name="ours")
    ours = next(generator)
    for slug in (PARTNER_ORG, OTHER_ORG):
        make_org(ours.sessions, region="HK", slug=slug)
    config = ExternalIssuer(
        name="partner",
        issuer=partner.url,
        audience=AUDIENCE,
        organisations=(PARTNER_ORG,),
        allowed_roles=("consumer",),
        unknown_kid_cooldown_seconds=0,
    )
    holder["external"] = ExternalIssuers([config], ours.sessions)
    ours.service.external = holder["external"]
    yield ours
    next(generator, None)


def org_id(issuer, slug: str) -> str:
    with issuer.sessions() as session:
        found = session.scalar(select(Organisation.id).where(Organisation.slug == slug))
    return found or make_org(issuer.sessions, region="HK", slug=slug).id


def issue_token(issuer, org_slug: str, roles: list[str], scope: str = "datasets:read query") -> str:
    """A client-credentials token from ``issuer`` for a new client of organisation ``org_slug``
    (the partner's own catalog names the organisation by our slug)."""
    with issuer.sessions.begin() as session:
        client, secret = register_client(
            session, org_id=org_id(issuer, org_slug), name="app", roles=roles, scope=scope
        )
        client_id = client.client_id
    with browser(issuer) as http:
        response = http.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
        )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def test_external_issuer_token_accepted_for_its_organisation(gateway, partner):
    token = issue_token(partner, PARTNER_ORG, ["consumer", "admin"], scope="query admin")
    principal = gateway.service.authenticate(token)
    assert principal.org_id == org_id(gateway, PARTNER_ORG) != org_id(partner, PARTNER_ORG)
    assert principal.org_slug == PARTNER_ORG
    assert principal.jurisdiction == "HK"
    assert principal.roles == frozenset({"consumer"})  # admin is not the partner's to grant
    assert principal.scopes == frozenset({"query"})
    assert principal.subject.startswith("partner:")
    with browser(gateway) as http:
        whoami = http.get("/whoami", headers={"Authorization": f"Bearer {token}"})
    assert whoami.status_code == 200 and whoami.json()["org"] == PARTNER_ORG


def test_external_issuer_claiming_another_organisation_refused(gateway, partner):
    token = issue_token(partner, OTHER_ORG, ["consumer"])
    with pytest.raises(InvalidToken) as refused:
        gateway.service.authenticate(token)
    assert refused.value.reason == "organisation_not_allowed"
    with browser(gateway) as http:
        assert http.get("/whoami", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_external_issuer_new_key_fetched_on_unknown_kid(gateway, partner):
    gateway.service.authenticate(issue_token(partner, PARTNER_ORG, ["consumer"]))  # cached
    with partner.sessions() as session:
        rotate_signing_key(session, KEY_SECRET)
    partner.service.keys._signing = None  # the partner process picks its new key up at once
    token = issue_token(partner, PARTNER_ORG, ["consumer"])
    assert gateway.service.authenticate(token).org_slug == PARTNER_ORG


def test_our_own_tokens_still_validated_by_our_keys(gateway):
    token = issue_token(gateway, "sz_own_team", ["consumer"])
    assert gateway.service.authenticate(token).org_slug == "sz_own_team"
