"""The console in a real browser: playwright driving Debian's chromium (headless, never a
downloaded browser) against the real gateway over HTTP.

Every page a test opens records the requests the browser made; each test ends by asserting
that none went to a host other than the gateway. Screenshots of the pages land in
``tests/artifacts/`` for a reviewer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.console.browsing import Visit, classified_contract
from tests.console.conftest import ConsoleStack
from tests.factories import (
    ENERGY_CSV,
    Caller,
    make_caller,
    make_dataset,
    wait_job,
)

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.slow]


def meter_file(rows: int) -> bytes:
    """A mainland meter export: ``rows`` readings, every 1000th one negative (quarantined)."""
    lines = ["设备编号,时间,用电量(度),时段"]
    tariffs = ("尖峰", "峰", "平", "谷")
    for i in range(rows):
        kwh = -1.0 if i % 1000 == 999 else round((i % 97) * 1.5, 2)
        lines.append(
            f"DG-P{i % 7}-MCC-{i % 50:02d},2025-07-{1 + i % 28:02d} 08:15,{kwh},{tariffs[i % 4]}"
        )
    return ("\n".join(lines) + "\n").encode()


def test_provider_uploads_with_progress_and_reads_the_report(
    console_stack: ConsoleStack, visit: Callable[[Caller | None, str], Visit], tmp_path: Path
) -> None:
    username, password, org = console_stack.person(role="provider", region="DG")
    with console_stack.http() as api:
        machine = make_caller(console_stack.platform, api, role="provider", org=org)
        dataset = make_dataset(api, machine)
    source = tmp_path / "meters-2025-07.csv"
    source.write_bytes(meter_file(30_000))
    browser = visit(None, "zh_Hant")
    browser.sign_in(f"/console/datasets/{dataset['id']}/upload", username, password)
    assert browser.page.locator("h1").inner_text().startswith("上載檔案")
    # a slow uplink, so the bytes-sent bar has something to show
    cdp = browser.context.new_cdp_session(browser.page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 5, "downloadThroughput": -1, "uploadThroughput": 800_000},
    )
    browser.page.set_input_files("#file", str(source))
    browser.page.click("#upload-button")
    seen_bytes: set[int] = set()
    deadline = time.monotonic() + 60
    shot_taken = False
    while "/console/jobs/" not in browser.page.url and time.monotonic() < deadline:
        try:
            seen_bytes.add(int(browser.page.eval_on_selector("#bytes-bar", "e => e.value")))
        except Exception:  # the page is navigating to the report
            break
        if not shot_taken and 0 < max(seen_bytes) < 100:
            browser.shot("provider-upload-progress-zh_Hant")
            shot_taken = True
        time.sleep(0.05)
    browser.page.wait_for_url("**/console/jobs/**", timeout=60_000)
    assert any(0 < value < 100 for value in seen_bytes), f"the bar never moved: {seen_bytes}"
    browser.page.wait_for_selector("#rows-rejected")
    while browser.page.locator("#job-running").count():  # the report refreshes itself
        browser.page.wait_for_load_state()
        time.sleep(0.5)
    assert browser.page.locator("#rows-rejected").inner_text() == "30"
    assert browser.page.locator("table.rules").count() == 1
    assert "被隔離的行" in browser.page.content()
    browser.shot("provider-validation-report-zh_Hant")
    with browser.page.expect_download() as download:
        browser.page.click("a[href$='/quarantine']")
    saved = tmp_path / "quarantine.parquet"
    download.value.save_as(saved)
    assert saved.read_bytes()[:4] == b"PAR1"
    browser.open(f"/console/datasets/{dataset['id']}")
    assert browser.page.locator("svg.histogram rect").count() > 1
    browser.shot("dataset-page-zh_Hant")


# Every visible form control must have a name a screen reader can announce.
UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea')]
  .filter(e => e.type !== 'hidden')
  .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
  .map(e => e.name || e.id || e.outerHTML.slice(0, 60))"""
OVERFLOW = "() => document.documentElement.scrollWidth - window.innerWidth"

FAMILIES = {  # page family → (role, path, heading per language)
    "catalog": ("consumer", "/console/catalog", ("Catalog", "数据目录", "數據目錄")),
    "provider": ("provider", "/console/provider", ("My datasets", "我的数据集", "我的數據集")),
    "consumer": ("consumer", "/console/access", ("My access", "我的访问权限", "我的訪問權限")),
    "query": ("consumer", "/console/query", ("SQL console", "SQL 控制台", "SQL 控制台")),
    "steward": ("steward", "/console/steward", ("Approvals", "审批", "審批")),
    "audit": ("steward", "/console/audit", ("Audit log", "审计日志", "審計日誌")),
}


def test_every_page_family_in_each_language_accessible_and_responsive(
    console_stack: ConsoleStack, visit: Callable[[Caller | None, str], Visit]
) -> None:
    callers = {
        "provider": console_stack.caller(role="provider", region="SZ"),
        "consumer": console_stack.caller(role="consumer", region="HK"),
        "steward": console_stack.caller(role="steward", region="SZ"),
    }
    browsers = {role: visit(caller, "en") for role, caller in callers.items()}
    for index, locale in enumerate(("en", "zh_Hans", "zh_Hant")):
        for number, (family, (role, path, headings)) in enumerate(FAMILIES.items()):
            browser = browsers[role]
            # the language switcher in the header: a cookie, then back to the page
            browser.open(f"/console/lang/{locale}?next={path}")
            assert browser.page.url.endswith(path)
            assert browser.page.locator("h1").inner_text() == headings[index], (family, locale)
            assert browser.page.locator("html").get_attribute("lang") == locale.replace("_", "-")
            assert browser.page.evaluate(UNLABELLED) == [], (family, locale)
            if number % 3 == index:  # each family pictured in one language, all three covered
                browser.shot(f"{family}-{locale}")
    # tablet portrait: nothing wider than the screen, navigation still reachable
    browser = browsers["consumer"]
    browser.page.set_viewport_size({"width": 768, "height": 1024})
    for path in ("/console/catalog", "/console/query", "/console/access"):
        browser.open(path)
        assert browser.page.evaluate(OVERFLOW) <= 0, path
    browser.shot("my-access-tablet-zh_Hant")
    # keyboard: the skip link is the first stop and moves focus to the content
    browser.page.keyboard.press("Tab")
    assert browser.page.evaluate("document.activeElement.className") == "skip"
    browser.page.keyboard.press("Enter")
    assert browser.page.evaluate("document.activeElement.id") == "main"


def test_consumer_requests_steward_masks_consumer_sees_masked_values(
    console_stack: ConsoleStack, visit: Callable[[Caller | None, str], Visit]
) -> None:
    _user, _password, provider_org = console_stack.person(role="provider", region="DG")
    with console_stack.http() as api:
        machine = make_caller(console_stack.platform, api, role="provider", org=provider_org)
        dataset = make_dataset(api, machine, contract=classified_contract())
        job = api.post(
            f"/v1/datasets/{dataset['id']}/uploads?filename=meters.csv",
            content=ENERGY_CSV,
            headers=machine.headers,
        ).json()
        assert wait_job(api, machine, job["id"])["status"] == "succeeded"
    consumer_name, consumer_password, consumer_org = console_stack.person(
        role="consumer", region="HK"
    )
    steward_name, steward_password, _sorg = console_stack.person(role="steward", region="DG")

    # the consumer (简体中文) asks for two columns, previews the rules, sends the request
    consumer = visit(None, "zh_Hans")
    consumer.sign_in(
        f"/console/access/new?dataset={dataset['id']}", consumer_name, consumer_password
    )
    for column in ("ts", "tariff"):
        consumer.page.uncheck(f"input[name=columns][value={column}]")
    consumer.page.select_option("#purpose", "analytics")
    consumer.page.fill("#justification", "负荷预测模型训练")
    consumer.page.click("button[value=preview]")
    preview = consumer.page.locator("#preview")
    assert "mainland_to_sar" in preview.inner_text() or "内地" in preview.inner_text()
    assert consumer.page.locator("#preview td.outcome-clear").count() == 2
    consumer.shot("consumer-access-request-preview-zh_Hans")
    consumer.page.click("button[value=submit]")
    consumer.page.wait_for_url("**/console/access?notice=requested")
    assert "待审批" in consumer.page.content()
    consumer.shot("consumer-my-access-zh_Hans")

    # the steward of DG (English) approves with a mask on meter_id
    steward = visit(None, "en")
    steward.sign_in("/console/steward", steward_name, steward_password)
    card = steward.page.locator("article.request", has_text=dataset["sql_name"])
    assert card.count() == 1
    # who asks, by name and home region (not an id)
    assert card.locator("p.meta .org").inner_text() == consumer_org.name
    assert card.locator("p.meta .badge.region").inner_text() == "HK"
    card.locator("select[name='mask:meter_id']").select_option("redact")
    steward.shot("steward-approval-queue-en")
    card.locator("button[value=approve]").click()
    steward.page.wait_for_url("**/console/steward?notice=approved")
    assert steward.page.locator("article.request", has_text=dataset["sql_name"]).count() == 0
    live = steward.page.locator("tr", has_text=dataset["sql_name"])
    assert live.locator(".org").inner_text() == consumer_org.name
    steward.open("/console/audit")
    assert steward.page.locator("#chain-status").get_attribute("class") == "flash ok"
    assert steward.page.locator("table.audit", has_text="access_request.approved").count() == 1
    steward.shot("steward-audit-log-en")

    # the consumer queries: meter ids come back masked, the readings in clear
    sql = f"SELECT meter_id, kwh FROM {dataset['sql_name']} ORDER BY kwh"
    consumer.open("/console/query")
    consumer.page.fill("#sql", sql)
    consumer.page.click("button[value=run]")
    consumer.page.wait_for_selector("table.results")
    cells = consumer.page.locator("table.results tbody tr td:first-child").all_inner_texts()
    assert len(cells) == 3 and all("DG-P2" not in cell for cell in cells), cells
    assert set(cells) == {"***"}
    readings = consumer.page.locator("table.results tbody tr td:nth-child(2)").all_inner_texts()
    assert readings == ["0.0", "7.25", "12.5"]
    consumer.shot("consumer-sql-console-masked-zh_Hans")
    consumer.page.click("button[value=explain]")
    assert "meter_id: " in consumer.page.locator("section", has_text="SQL").last.inner_text()
