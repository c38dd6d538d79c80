"""The console over real HTTP: sign-in flow plumbing, sessions, CSRF, languages, headers,
and the provider/consumer relays to the JSON API."""

from __future__ import annotations

import html
import json
import re
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from gateway.console.auth import safe_next
from gateway.console.registration import find_console_client
from gateway.console.session import LOGIN_COOKIE, SESSION_COOKIE
from tests.console.conftest import ConsoleStack, form
from tests.factories import ENERGY_CSV, Caller, make_dataset, suffix, wait_job

pytestmark = pytest.mark.integration


def test_console_redirects_to_login_when_signed_out(console_stack: ConsoleStack) -> None:
    with console_stack.http() as http:
        response = http.get("/console/catalog?q=energy")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login?next=%2Fconsole%2Fcatalog%3Fq%3Denergy"


def test_login_starts_authorization_code_with_pkce(console_stack: ConsoleStack) -> None:
    with console_stack.http(**{"accept-language": "zh-HK"}) as http:
        response = http.get("/console/login", params={"next": "/console/query"})
    assert response.status_code == 303
    target = urlsplit(response.headers["location"])
    assert target.path == "/oauth/authorize" and not target.netloc
    query = {k: v[0] for k, v in parse_qs(target.query).items()}
    assert query["response_type"] == "code"
    callback = f"{console_stack.url}/console/auth/callback"
    assert query["client_id"] == find_console_client(console_stack.platform.sessions, callback)
    assert query["redirect_uri"] == callback
    assert set(query["scope"].split()) >= {"openid", "datasets:read", "query"}
    elsewhere = "http://127.0.0.1:1/console/auth/callback"  # found by exact redirect URI only
    assert find_console_client(console_stack.platform.sessions, elsewhere) is None
    assert query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) == 43 and len(query["state"]) >= 32
    assert query["ui_locales"] == "zh-Hant"
    cookie = response.headers["set-cookie"].lower()
    assert cookie.startswith(LOGIN_COOKIE)
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/console" in cookie
    assert query["state"] not in response.headers["set-cookie"]  # sealed, not readable


def test_sign_in_through_the_authorization_server_and_out(console_stack: ConsoleStack) -> None:
    username, password, org = console_stack.person(role="provider", region="GZ")
    http = console_stack.sign_in(username, password, next_path="/console/provider")
    try:
        cookie = next(c for c in http.cookies.jar if c.name == SESSION_COOKIE)
        assert cookie.path == "/console" and cookie.has_nonstandard_attr("HttpOnly")
        assert username not in cookie.value and "." not in cookie.value.strip("=")  # sealed
        page = http.get("/console/provider")
        assert page.status_code == 200 and org.slug in page.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        out = http.post("/console/logout", data={"csrf": csrf.group(1)})
        assert out.status_code == 200 and "Signed out" in out.text
        again = http.get("/console/provider", follow_redirects=False)
        assert again.status_code == 303  # the session is gone
        login = http.get("/console/login")  # and the server asks for the password again
        assert "/oauth/login" in str(login.url) and 'name="password"' in login.text
    finally:
        http.close()


def test_callback_refuses_a_state_it_did_not_issue(console_stack: ConsoleStack) -> None:
    with console_stack.http() as http:
        http.get("/console/login")
        response = http.get("/console/auth/callback", params={"code": "x", "state": "forged"})
    assert response.status_code == 400
    assert "Sign-in failed" in response.text
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")


def test_callback_reports_a_refused_authorization(console_stack: ConsoleStack) -> None:
    with console_stack.http() as http:
        start = http.get("/console/login")
        state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
        response = http.get(
            "/console/auth/callback", params={"state": state, "error": "access_denied"}
        )
    assert response.status_code == 400
    assert "access_denied" in response.text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/console/query", "/console/query"),
        ("https://evil.example/console", "/console"),
        ("//evil.example/console", "/console"),
        ("/consolex/../../x", "/consolex/../../x"),
        ("/console\\@evil", "/console"),
        ("/v1/me", "/console"),
        (None, "/console"),
    ],
)
def test_next_stays_inside_the_console(value: str | None, expected: str) -> None:
    assert safe_next(value) == expected


def test_tampered_or_expired_session_sends_to_login(console_stack: ConsoleStack) -> None:
    consumer = console_stack.caller(role="consumer", region="HK")
    sealed, _csrf = console_stack.session_cookie(consumer)
    with console_stack.http() as http:
        http.cookies.set(SESSION_COOKIE, sealed[:-4] + "AAAA")
        assert http.get("/console/catalog").status_code == 303
    expired = console_stack.codec.seal(
        {"access_token": consumer.token, "expires_at": time.time() - 60}
    )
    with console_stack.http() as http:
        http.cookies.set(SESSION_COOKIE, expired)
        response = http.get("/console/catalog")
    assert response.status_code == 303  # no refresh token: sign in again
    assert 'console_session=""' in response.headers["set-cookie"]


def test_forms_refuse_missing_csrf_and_foreign_origin(console_stack: ConsoleStack) -> None:
    consumer = console_stack.caller(role="consumer", region="HK")
    sealed, csrf = console_stack.session_cookie(consumer)
    with console_stack.http() as http:
        http.cookies.set(SESSION_COOKIE, sealed)
        assert http.post("/console/query", data={"sql": "SELECT 1"}).status_code == 403
        wrong = http.post("/console/query", data=form("x" * len(csrf), sql="SELECT 1"))
        assert wrong.status_code == 403
        foreign = http.post(
            "/console/query",
            data=form(csrf, sql="SELECT 1"),
            headers={"origin": "https://evil.example"},
        )
        assert foreign.status_code == 403
        assert "expired or came from another site" in foreign.text
        upload = http.post("/console/datasets/x/upload", content=b"a,b\n1,2\n")
        assert upload.status_code == 403


def test_pages_follow_accept_language_and_the_switch(console_stack: ConsoleStack) -> None:
    consumer = console_stack.caller(role="consumer", region="HK")
    with console_stack.http(consumer, **{"accept-language": "zh-CN"}) as http:
        page = http.get("/console/catalog")
        assert page.status_code == 200
        assert '<html lang="zh-Hans">' in page.text and "数据目录" in page.text
        switch = http.get("/console/lang/zh_Hant", params={"next": "/console/access"})
        assert switch.status_code == 303 and switch.headers["location"] == "/console/access"
        page = http.get("/console/catalog")
        assert '<html lang="zh-Hant">' in page.text and "數據目錄" in page.text
        http.get("/console/lang/en")
        assert "Search datasets" in http.get("/console/catalog").text
        evil = http.get("/console/lang/en", params={"next": "https://evil.example/"})
        assert evil.headers["location"] == "/console"


def test_console_sends_strict_security_headers(console_stack: ConsoleStack) -> None:
    consumer = console_stack.caller(role="consumer", region="HK")
    with console_stack.http(consumer) as http:
        page = http.get("/console/catalog")
        static = http.get("/console/static/console.css")
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert page.headers["cache-control"] == "no-store"
    assert static.status_code == 200 and "text/css" in static.headers["content-type"]
    for marker in ("http://", "https://", "//cdn"):  # every asset is the gateway's own
        assert marker not in static.text


def test_upload_relay_report_and_quarantine_download(console_stack: ConsoleStack) -> None:
    provider = console_stack.caller(role="provider", region="DG")
    with console_stack.http() as api:
        dataset = make_dataset(api, provider)
    sealed, csrf = console_stack.session_cookie(provider)
    with console_stack.http() as http:
        http.cookies.set(SESSION_COOKIE, sealed)
        response = http.post(
            f"/console/datasets/{dataset['id']}/upload",
            params={"filename": "meters.csv", "encoding": "utf-8", "mode": "replace"},
            content=ENERGY_CSV,
            headers={"x-csrf-token": csrf, "content-type": "application/octet-stream"},
        )
        assert response.status_code == 202, response.text
        job = response.json()["job"]
        with console_stack.http() as api:
            finished = wait_job(api, provider, job["id"])
        assert finished["status"] == "succeeded"
        polled = http.get(f"/console/jobs/{job['id']}.json").json()
        assert polled["rows_rejected"] == 2 and polled["status"] == "succeeded"
        report = http.get(f"/console/jobs/{job['id']}")
        assert report.status_code == 200
        assert "bad id" in report.text  # a quarantined row, as uploaded
        assert "Rules that failed" in report.text
        download = http.get(f"/console/jobs/{job['id']}/quarantine")
        assert download.status_code == 200
        assert download.content[:4] == b"PAR1"
        page = http.get(f"/console/datasets/{dataset['id']}")
        assert 'class="histogram" data-column="kwh"' in page.text
        # the provider by name (the API's additive `org_name`), its slug on hover
        assert dataset["org_name"] == provider.org.name
        assert f'title="{provider.org.slug}">{provider.org.name}</strong>' in page.text


def test_query_relay_downloads_csv_and_refuses_bad_sql(console_stack: ConsoleStack) -> None:
    provider = console_stack.caller(role="provider", region="SZ")
    with console_stack.http() as api:
        dataset = make_dataset(api, provider)
        job = api.post(
            f"/v1/datasets/{dataset['id']}/uploads?filename=m.csv",
            content=ENERGY_CSV,
            headers=provider.headers,
        ).json()
        assert wait_job(api, provider, job["id"])["status"] == "succeeded"
    sealed, csrf = console_stack.session_cookie(provider)
    sql = f"SELECT meter_id, kwh FROM {dataset['sql_name']} ORDER BY kwh"
    with console_stack.http() as http:
        http.cookies.set(SESSION_COOKIE, sealed)
        page = http.post("/console/query", data=form(csrf, sql=sql, action="run"))
        assert page.status_code == 200 and "3 rows" in page.text and "DG-P2-MCC-07" in page.text
        csv = http.post("/console/query", data=form(csrf, sql=sql, action="csv"))
        assert csv.status_code == 200
        assert csv.headers["content-disposition"].endswith('.csv"')
        assert csv.text.splitlines()[0] == "meter_id,kwh"
        explain = http.post("/console/query", data=form(csrf, sql=sql, action="explain"))
        assert explain.status_code == 200 and "governed-sql" in explain.text
        bad = http.post("/console/query", data=form(csrf, sql="DROP TABLE x", action="run"))
        assert bad.status_code == 422 and 'class="flash error"' in bad.text
        started = http.post(
            "/console/query", data=form(csrf, sql=sql, action="export"), follow_redirects=False
        )
        assert started.status_code == 303, started.text
        export_id = started.headers["location"].rsplit("/", 1)[-1]
        listed = http.get("/console/access")  # "my exports", newest first, linking to its page
        assert listed.status_code == 200
        table = listed.text.split('id="my-exports"', 1)[1].split("</table>", 1)[0]
        assert f'href="/console/exports/{export_id}"' in table
        assert f"{dataset['sql_name']}@1" in table


def test_catalog_page_lists_search_hits_across_scripts(console_stack: ConsoleStack) -> None:
    provider = console_stack.caller(role="provider", region="DG")
    with console_stack.http() as api:
        dataset = make_dataset(api, provider)
        api.patch(
            f"/v1/datasets/{dataset['id']}/metadata",
            headers=provider.headers,
            json={"title": {"zh-Hans": "东莞压铸车间用电量", "en": "Die-casting shop power"}},
        ).raise_for_status()
    consumer = console_stack.caller(role="consumer", region="HK")
    with console_stack.http(consumer, **{"accept-language": "zh-CN"}) as http:
        page = http.get("/console/catalog", params={"q": "壓鑄車間用電量"})
    assert page.status_code == 200
    assert 'href="/console/datasets/{}"'.format(dataset["id"]) in page.text
    assert "东莞压铸车间用电量" in page.text


def test_catalog_search_and_metadata_in_the_viewers_script(console_stack: ConsoleStack) -> None:
    provider = console_stack.caller(role="provider", region="SZ")
    with console_stack.http() as api:
        dataset = make_dataset(api, provider, name=f"chiller_{suffix()}")
        patched = api.patch(
            f"/v1/datasets/{dataset['id']}/metadata",
            headers=provider.headers,
            json={
                "title": {
                    "en": "Chiller plant power",
                    "zh-Hans": "冷水机组能耗",
                    "zh-Hant": "冷水機組能耗",
                },
                "description": {"en": "Quarter-hourly readings.", "zh-Hant": "每十五分鐘讀數。"},
                "tags": ["hvac"],
                "update_frequency": "daily",
                "columns": {"kwh": {"zh-Hant": "用電量（千瓦時）"}},
            },
        )
        assert patched.status_code == 200, patched.text
    consumer = console_stack.caller(role="consumer", region="MO")
    with console_stack.http(consumer, **{"accept-language": "zh-MO"}) as http:
        found = http.get("/console/catalog", params={"q": "冷水机组"})  # Simplified query
        assert found.status_code == 200
        assert "冷水機組能耗" in found.text  # shown in Traditional for Macao
        assert "access-none" in found.text  # discoverable without a grant
        page = http.get(f"/console/datasets/{dataset['id']}")
        assert "<h1>冷水機組能耗</h1>" in page.text
        assert "每十五分鐘讀數。" in page.text and "用電量（千瓦時）" in page.text
        assert "每日" in page.text  # update frequency, translated
        missing = http.get("/console/catalog", params={"q": "zzzqqq"})
        assert "沒有匹配的數據集" in missing.text
    with console_stack.http(consumer, **{"accept-language": "en"}) as http:
        page = http.get(f"/console/datasets/{dataset['id']}")
        assert "<h1>Chiller plant power</h1>" in page.text
        assert "Quarter-hourly readings." in page.text


def test_provider_registers_a_dataset_from_a_proposed_contract(console_stack: ConsoleStack) -> None:
    provider = console_stack.caller(role="provider", region="DG")
    sealed, csrf = console_stack.session_cookie(provider)
    with console_stack.http() as http:
        http.cookies.set(SESSION_COOKIE, sealed)
        proposed = http.post(
            "/console/datasets/new/propose",
            data=form(csrf, encoding="utf-8"),
            files={"sample": ("meters.csv", ENERGY_CSV, "text/csv")},
        )
        assert proposed.status_code == 200, proposed.text[:2000]
        contract = re.search(r'<textarea id="contract"[^>]*>(.*?)</textarea>', proposed.text, re.S)
        assert contract is not None
        proposal = json.loads(html.unescape(contract.group(1)))
        assert [c["source"] for c in proposal["columns"]][:2] == ["设备编号", "时间"]
        name = f"meters_{suffix()}"
        created = http.post(
            "/console/datasets/new",
            data=form(
                csrf,
                name=name,
                title="Meters",
                classification="internal",
                contract=json.dumps(proposal, ensure_ascii=False),
            ),
        )
        assert created.status_code == 303
        assert created.headers["location"].endswith("/upload?notice=created")
        upload_page = http.get(created.headers["location"])
        assert "The dataset is registered" in upload_page.text and name in upload_page.text
        broken = http.post("/console/datasets/new", data=form(csrf, name="x", contract="{not json"))
        assert broken.status_code == 422 and "not valid JSON" in broken.text
        refused = http.post(
            "/console/datasets/new",
            data=form(csrf, name="Bad Name!", contract=json.dumps(proposal)),
        )
        assert refused.status_code == 422 and 'class="flash error"' in refused.text


def test_steward_denies_with_a_reason_and_revokes_a_grant(console_stack: ConsoleStack) -> None:
    provider = console_stack.caller(role="provider", region="GZ")
    consumer = console_stack.caller(role="consumer", region="GZ")
    steward = console_stack.caller(role="steward", region="GZ")
    with console_stack.http() as api:
        dataset = make_dataset(api, provider)
        asks = [
            api.post(
                "/v1/access-requests",
                headers=consumer.headers,
                json={"dataset_id": dataset["id"], "purpose": "analytics"},
            ).json()
            for _ in range(2)
        ]
    sealed, csrf = console_stack.session_cookie(steward)
    with console_stack.http() as http:
        http.cookies.set(SESSION_COOKIE, sealed)
        queue = http.get("/console/steward")
        assert all(f"/console/steward/requests/{a['id']}/decide" in queue.text for a in asks)
        # people read the consumer organisation's name and region, not its id
        card = queue.text.split(f"req-{asks[0]['id']}", 1)[1].split("</article>", 1)[0]
        assert f'title="{consumer.org.slug}">{consumer.org.name}</span>' in card
        assert '<span class="badge region">GZ</span>' in card
        assert consumer.org.id[:10] not in card
        denied = http.post(
            f"/console/steward/requests/{asks[0]['id']}/decide",
            data=form(csrf, decision="deny", reason="purpose too broad"),
        )
        assert denied.status_code == 303 and denied.headers["location"].endswith("notice=denied")
        bad = http.post(
            f"/console/steward/requests/{asks[1]['id']}/decide",
            data=form(csrf, decision="approve", columns="kwh", row_filter="kwh > (SELECT 1)"),
        )
        assert bad.status_code == 422 and 'class="flash error"' in bad.text  # filter refused
        approved = http.post(
            f"/console/steward/requests/{asks[1]['id']}/decide",
            data=form(csrf, decision="approve", columns="kwh", row_filter="kwh > 1", days="30"),
        )
        assert approved.status_code == 303
        live = http.get("/console/steward").text.split('id="grants-h"', 1)[1]
        assert f">{consumer.org.name}</span>" in live and consumer.org.id[:10] not in live
        with console_stack.http(provider) as own:  # the provider's "who uses my data"
            usage = own.get("/console/provider").text.split('id="usage"', 1)[1]
            assert f'title="{consumer.org.slug}">{consumer.org.name}</span>' in usage
        grants = http_get_json(console_stack, steward, "/v1/grants")
        grant = next(g for g in grants if g["dataset_id"] == dataset["id"])
        assert grant["columns"] == ["kwh"] and grant["row_filter"].replace(chr(34), "") == "kwh > 1"
        revoked = http.post(
            f"/console/grants/{grant['id']}/revoke", data=form(csrf, back="/console/steward")
        )
        assert revoked.status_code == 303
        assert revoked.headers["location"] == "/console/steward?notice=revoked"
    with console_stack.http(provider) as http:  # a provider sees who asked for its data
        listed = http.get("/console/access").text
        assert f">{consumer.org.name}</span>" in listed and ">Organisation</th>" in listed
    with console_stack.http(consumer) as http:  # a consumer's own requests need no such column
        assert ">Organisation</th>" not in http.get("/console/access").text
    with console_stack.http() as api:
        mine = api.get("/v1/access-requests", headers=consumer.headers).json()
        assert {r["id"]: r["status"] for r in mine}[asks[0]["id"]] == "denied"
        after = api.get("/v1/grants", headers=steward.headers).json()
        assert next(g for g in after if g["id"] == grant["id"])["revoked_at"] is not None


def http_get_json(stack: ConsoleStack, caller: Caller, path: str) -> Any:
    with stack.http() as api:
        response = api.get(path, headers=caller.headers)
        assert response.status_code == 200, response.text
        return response.json()


def test_provider_describes_the_dataset_and_confirms_pi_classes(
    console_stack: ConsoleStack,
) -> None:
    provider = console_stack.caller(role="provider", region="DG")
    with console_stack.http() as api:
        dataset = make_dataset(api, provider)
        job = api.post(
            f"/v1/datasets/{dataset['id']}/uploads?filename=m.csv",
            content=ENERGY_CSV,
            headers=provider.headers,
        ).json()
        assert wait_job(api, provider, job["id"])["status"] == "succeeded"
    sealed, csrf = console_stack.session_cookie(provider)
    with console_stack.http(**{"accept-language": "zh-CN"}) as http:
        http.cookies.set(SESSION_COOKIE, sealed)
        page = http.get(f"/console/datasets/{dataset['id']}/contract")
        unclassified = re.findall(r'name="pi:(\w+)"', page.text)
        assert set(unclassified) == {"meter_id", "ts", "kwh", "tariff"}
        assert "扫描建议" in page.text
        confirm = {f"pi:{column}": "non_pi" for column in unclassified}
        confirm["pi:meter_id"] = "pi_quasi_id"
        done = http.post(
            f"/console/datasets/{dataset['id']}/contract/pi",
            data=form(csrf, base_version="1", **confirm),
        )
        assert done.status_code == 303, done.text[:1000]
        form_page = http.get(f"/console/datasets/{dataset['id']}/metadata")
        revision = re.search(r'name="base_revision" value="(\d+)"', form_page.text)
        assert form_page.status_code == 200 and revision is not None
        saved = http.post(
            f"/console/datasets/{dataset['id']}/metadata",
            data=form(
                csrf,
                base_revision=revision.group(1),
                **{
                    "title:en": "Press-shop meters",
                    "title:zh-Hans": "冲压车间电表",
                    "title:zh-Hant": "沖壓車間電錶",
                    "keywords:zh-Hans": "能耗, 电表",
                    "tags": "energy, dg",
                    "update_frequency": "daily",
                    "col:kwh:zh-Hans": "用电量（千瓦时）",
                },
            ),
        )
        assert saved.status_code == 303, re.findall(r"flash error[^<]*<?[^<]*", saved.text)
        stale = http.post(
            f"/console/datasets/{dataset['id']}/metadata",
            data=form(csrf, base_revision=revision.group(1), **{"title:en": "Older edit"}),
        )
        assert stale.status_code == 422 and 'class="flash error"' in stale.text  # 409 shown
        shown = http.get(f"/console/datasets/{dataset['id']}")
        assert "<h1>冲压车间电表</h1>" in shown.text and "用电量（千瓦时）" in shown.text
        assert "准标识符" in shown.text  # the confirmed class, translated
    with console_stack.http() as api:
        contract = api.get(
            f"/v1/datasets/{dataset['id']}/contract", headers=provider.headers
        ).json()
        assert contract["unclassified"] == [] and contract["version"] == 2


def test_expired_access_token_is_refreshed_with_the_refresh_token(
    console_stack: ConsoleStack,
) -> None:
    username, password, _org = console_stack.person(role="consumer", region="MO")
    http = console_stack.sign_in(username, password)
    try:
        sealed = http.cookies.get(SESSION_COOKIE, path="/console")
        session = console_stack.codec.open(sealed, 3600)
        assert session is not None and session["refresh_token"] and session["client_id"]
        old_token = session["access_token"]
        session["expires_at"] = time.time() - 5  # the access token has run out
        http.cookies.clear()
        http.cookies.set(SESSION_COOKIE, console_stack.codec.seal(session), path="/console")
        page = http.get("/console/catalog", follow_redirects=False)
        assert page.status_code == 200
        renewed = console_stack.codec.open(page.cookies.get(SESSION_COOKIE), 3600)
        assert renewed is not None and renewed["access_token"] != old_token
        assert renewed["csrf"] == session["csrf"]  # forms already open stay valid
        assert renewed["refresh_token"] != session["refresh_token"]  # rotated by the server
    finally:
        http.close()


def test_upload_without_javascript_lands_on_the_report(console_stack: ConsoleStack) -> None:
    provider = console_stack.caller(role="provider", region="HK")
    with console_stack.http() as api:
        dataset = make_dataset(api, provider, contract=HK_CONTRACT)
    sealed, csrf = console_stack.session_cookie(provider)
    with console_stack.http() as http:
        http.cookies.set(SESSION_COOKIE, sealed)
        posted = http.post(
            f"/console/datasets/{dataset['id']}/upload",
            data=form(csrf, encoding="utf-8", mode="replace"),
            files={"file": ("readings.csv", HK_CSV, "text/csv")},
        )
        assert posted.status_code == 303
        assert posted.headers["location"].startswith("/console/jobs/")
        report = http.get(posted.headers["location"])
        assert report.status_code == 200 and "readings.csv" in report.text
        empty = http.post(
            f"/console/datasets/{dataset['id']}/upload",
            data=form(csrf),
            files={"file": ("", b"", "application/octet-stream")},
        )
        assert empty.status_code == 303 and empty.headers["location"].endswith("notice=no_file")


HK_CONTRACT = {
    "columns": [
        {"name": "site", "type": "string", "nullable": False},
        {"name": "kwh", "type": "double", "nullable": False, "min": 0},
    ]
}
HK_CSV = b"site,kwh\nTsuen Wan,12.5\nKwai Chung,3.25\n"
