"""Accessible and responsive (issue 8, item 5), measured in the real browser on the main
pages with real data: WCAG 2.1 text contrast, an accessible name on every control (as
chromium's accessibility tree computes it), the main tasks by keyboard alone with a visible
focus indicator, and the layout at 1280 px and at tablet width (768 x 1024).

The checks run in page JavaScript (nothing is downloaded); a failure names the element.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.console.browsing import Visit, classified_contract
from tests.console.conftest import ConsoleStack
from tests.factories import ENERGY_CSV, Caller, make_dataset, wait_job

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.slow]

# Shared helpers: sRGB parsing, relative luminance and contrast ratio (WCAG 2.1, 1.4.3),
# the effective background (the ancestors' background colours composited over white) and
# a short CSS-like name for an element in failure messages.
HELPERS = """
const rgba = text => {
  const m = /rgba?\\(([^)]*)\\)/.exec(text || '');
  if (!m) return null;
  const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
  return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
};
const over = (top, under) => {
  const a = top[3];
  return [0, 1, 2].map(i => top[i] * a + under[i] * (1 - a)).concat([1]);
};
const luminance = c => {
  const f = v => {
    v /= 255;
    return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
  };
  return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
};
const ratio = (a, b) => {
  const [x, y] = [luminance(a), luminance(b)];
  return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05);
};
const backdrop = el => {
  const layers = [];
  for (let e = el; e && e.nodeType === 1; e = e.parentElement) {
    const c = rgba(getComputedStyle(e).backgroundColor);
    if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
  }
  return layers.reverse().reduce((under, c) => over(c, under), [255, 255, 255, 1]);
};
const describe = el => {
  let name = el.localName;
  if (el.id) name += '#' + el.id;
  if (el.classList.length) name += '.' + [...el.classList].join('.');
  const text = (el.innerText || el.value || el.textContent || '').trim().slice(0, 40);
  return name + (text ? ' "' + text + '"' : '');
};
"""

# Every visible element with text of its own (and every text control): its colour against
# its effective background, 4.5:1 for normal text, 3:1 for large (24 px, or 18.66 px bold).
# SVG text is painted with `fill`. Disabled controls are exempt (WCAG 1.4.3).
LOW_CONTRAST = (
    "() => {"
    + HELPERS
    + """
  const failures = [];
  for (const el of document.querySelectorAll('body *')) {
    if (['SCRIPT', 'STYLE', 'NOSCRIPT', 'OPTION'].includes(el.tagName)) continue;
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    const control = el.matches('select, textarea, input:not([type=hidden]):not([type=checkbox])'
      + ':not([type=radio]):not([type=file]):not([type=range])');
    if (!own && !control) continue;
    if (el.closest(':disabled')) continue;
    const style = getComputedStyle(el);
    if (style.visibility !== 'visible' || style.display === 'none') continue;
    const box = el.getBoundingClientRect();
    if (box.width < 1 || box.height < 1 || box.right <= 0 || box.bottom <= 0) continue;
    if (el.closest('[aria-hidden=true]')) continue;
    const svg = el instanceof SVGElement;
    const paint = rgba(svg ? style.fill : style.color);
    if (!paint) continue;
    const back = backdrop(svg ? el.closest('svg').parentElement : el);
    const fore = over(paint, back);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    const need = large ? 3 : 4.5;
    const got = ratio(fore, back);
    if (got < need) failures.push(describe(el) + ': ' + got.toFixed(2) + ' < ' + need
      + ' (' + style.color + ' on rgb(' + back.slice(0, 3).map(Math.round) + '))');
  }
  return failures;
}"""
)

# The focused element's indicator: an outline at least 2 px wide whose colour has 3:1
# against what surrounds it (WCAG 2.1, 2.4.7 and 1.4.11).
FOCUS = (
    "() => {"
    + HELPERS
    + """
  const el = document.activeElement;
  if (!el || el === document.body) return {name: 'body', ok: false, why: 'nothing focused'};
  const style = getComputedStyle(el);
  const width = parseFloat(style.outlineWidth) || 0;
  const colour = rgba(style.outlineColor);
  const around = backdrop(el.parentElement || el);
  const contrast = colour ? ratio(over(colour, around), around) : 0;
  const ok = style.outlineStyle !== 'none' && width >= 2 && contrast >= 3;
  return {name: describe(el), ok, why: style.outlineStyle + ' ' + width + 'px, contrast '
    + contrast.toFixed(2) + ' against rgb(' + around.slice(0, 3).map(Math.round) + ')'};
}"""
)

OVERFLOW = "() => document.documentElement.scrollWidth - window.innerWidth"
# Tables the console itself lays out (not query results, whose width is the data's) fit
# without scrolling inside their box either.
CLIPPED = (
    "() => {"
    + HELPERS
    + """
  return [...document.querySelectorAll('.scroll')]
    .filter(e => !e.querySelector('table.results') && e.scrollWidth > e.clientWidth + 1)
    .map(e => describe(e.querySelector('table') || e) + ' is clipped by '
      + (e.scrollWidth - e.clientWidth) + ' px');
}"""
)
CONTROL_ROLES = frozenset(
    {
        "button",
        "checkbox",
        "combobox",
        "link",
        "listbox",
        "menuitem",
        "radio",
        "searchbox",
        "slider",
        "spinbutton",
        "switch",
        "textbox",
    }
)


def unnamed_controls(browser: Visit) -> list[str]:
    """Controls without an accessible name, as chromium's accessibility tree computes it
    (label, aria-labelledby, aria-label, title, content), each named by its markup."""
    cdp = browser.context.new_cdp_session(browser.page)
    try:
        nodes = cdp.send("Accessibility.getFullAXTree")["nodes"]
        missing = []
        for node in nodes:
            role = node.get("role", {}).get("value")
            name = str(node.get("name", {}).get("value", "")).strip()
            if node.get("ignored") or role not in CONTROL_ROLES or name:
                continue
            described = cdp.send("DOM.describeNode", {"backendNodeId": node["backendDOMNodeId"]})
            attributes = described["node"].get("attributes", [])
            missing.append(f"{role} <{described['node']['localName']} {attributes}>")
        return missing
    finally:
        cdp.detach()


@pytest.fixture(scope="module")
def scene(console_stack: ConsoleStack) -> dict[str, Any]:
    """A Shenzhen dataset with a loaded version, a pending access request from a Macao
    consumer and a live grant to a Hong Kong one: every main page has something to show."""
    stack = console_stack
    people = {
        "provider": stack.caller(role="provider", region="SZ"),
        "consumer": stack.caller(role="consumer", region="MO"),
        "granted": stack.caller(role="consumer", region="HK"),
        "steward": stack.caller(role="steward", region="SZ"),
    }
    with stack.http() as api:
        dataset = make_dataset(api, people["provider"], contract=classified_contract())
        upload = api.post(
            f"/v1/datasets/{dataset['id']}/uploads?filename=meters.csv",
            content=ENERGY_CSV,
            headers=people["provider"].headers,
        )
        assert upload.status_code == 202, upload.text
        job = wait_job(api, people["provider"], upload.json()["id"])
        assert job["status"] == "succeeded", job
        asked = {
            who: api.post(
                "/v1/access-requests",
                headers=people[who].headers,
                json={"dataset_id": dataset["id"], "purpose": "analytics"},
            ).json()
            for who in ("granted", "consumer")
        }
        approved = api.post(
            f"/v1/access-requests/{asked['granted']['id']}/approve",
            headers=people["steward"].headers,
            json={"masks": [{"column": "meter_id", "kind": "redact"}]},
        )
        assert approved.status_code == 200, approved.text
    return {"people": people, "dataset": dataset, "job": job, "pending": asked["consumer"]["id"]}


def main_pages(scene: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(role, page name, path) of the main pages."""
    dataset_id, job_id = scene["dataset"]["id"], scene["job"]["id"]
    return [
        ("consumer", "catalog", "/console/catalog?q=energy"),
        ("consumer", "dataset", f"/console/datasets/{dataset_id}"),
        ("consumer", "access-request", f"/console/access/new?dataset={dataset_id}"),
        ("consumer", "my-access", "/console/access"),
        ("consumer", "sql-console", "/console/query"),
        ("provider", "my-datasets", "/console/provider"),
        ("provider", "register", "/console/datasets/new"),
        ("provider", "upload", f"/console/datasets/{dataset_id}/upload"),
        ("provider", "report", f"/console/jobs/{job_id}"),
        ("provider", "contract", f"/console/datasets/{dataset_id}/contract"),
        ("provider", "metadata", f"/console/datasets/{dataset_id}/metadata"),
        ("steward", "approvals", "/console/steward"),
        ("steward", "audit", "/console/audit"),
    ]


def test_main_pages_contrast_names_and_tablet_width(
    console_stack: ConsoleStack,
    visit: Callable[[Caller | None, str], Visit],
    scene: dict[str, Any],
) -> None:
    """Light theme, English: every main page at 1280 px and at 768 x 1024 has WCAG AA text
    contrast and named controls, does not scroll sideways, and is pictured at both sizes."""
    browsers = {role: visit(scene["people"][role], "en") for role in ("consumer", "provider")}
    browsers["steward"] = visit(scene["people"]["steward"], "en")
    problems: list[str] = []
    for width, height in ((1280, 900), (768, 1024)):
        for browser in browsers.values():
            browser.page.set_viewport_size({"width": width, "height": height})
        for role, name, path in main_pages(scene):
            browser = browsers[role]
            browser.open(path)
            problems += [f"{name} @{width}: {p}" for p in browser.page.evaluate(LOW_CONTRAST)]
            if width == 1280:  # names do not change with the width
                problems += [f"{name}: unnamed {c}" for c in unnamed_controls(browser)]
            overflow = browser.page.evaluate(OVERFLOW)
            if overflow > 0:
                problems.append(f"{name} @{width}: scrolls sideways by {overflow} px")
            problems += [f"{name} @{width}: {c}" for c in browser.page.evaluate(CLIPPED)]
            browser.shot(f"{name}-{width}")
    assert problems == [], "\n".join(problems)


def tab_to(browser: Visit, selector: str, limit: int = 80) -> list[str]:
    """Press Tab until the focus is on ``selector``; every stop on the way must show a
    focus indicator. Returns the stops that did not."""
    unseen = []
    for _ in range(limit):
        browser.page.keyboard.press("Tab")
        focus = browser.page.evaluate(FOCUS)
        if not focus["ok"]:
            unseen.append(f"{browser.page.url}: {focus['name']}: {focus['why']}")
        if browser.page.evaluate("s => document.activeElement.matches(s)", selector):
            return unseen
    raise AssertionError(f"{limit} Tab presses never reached {selector} on {browser.page.url}")


def test_search_upload_and_approve_by_keyboard_alone(
    console_stack: ConsoleStack,
    visit: Callable[[Caller | None, str], Visit],
    scene: dict[str, Any],
) -> None:
    """Tab (and Enter, arrows, typing) only: a consumer searches, opens a dataset and asks
    for access, a provider uploads a file, a steward approves with a mask; each focus stop
    is visible."""
    dataset, people = scene["dataset"], scene["people"]
    unseen: list[str] = []

    consumer = visit(console_stack.caller(role="consumer", region="HK"), "en")
    consumer.open("/console/catalog")
    unseen += tab_to(consumer, "#q")
    consumer.page.keyboard.type("energy")
    consumer.page.keyboard.press("Enter")
    consumer.page.wait_for_url("**/console/catalog?*q=energy*")
    unseen += tab_to(consumer, f"a[href='/console/datasets/{dataset['id']}']")
    consumer.page.keyboard.press("Enter")
    consumer.page.wait_for_url(f"**/console/datasets/{dataset['id']}")
    # ... and asks for access: the link, then the form's last button
    unseen += tab_to(consumer, f"a[href='/console/access/new?dataset={dataset['id']}']")
    consumer.page.keyboard.press("Enter")
    consumer.page.wait_for_url("**/console/access/new?dataset=*")
    unseen += tab_to(consumer, "button[value=submit]")
    consumer.page.keyboard.press("Enter")
    consumer.page.wait_for_url("**/console/access?notice=requested")

    provider = visit(people["provider"], "en")
    provider.open(f"/console/datasets/{dataset['id']}/upload")
    unseen += tab_to(provider, "#file")
    # the file chooser is the operating system's dialog; playwright stands in for it
    provider.page.set_input_files("#file", files=[_csv("meters-2.csv")])
    unseen += tab_to(provider, "#upload-button")
    provider.shot("keyboard-focus-upload-1280")
    provider.page.keyboard.press("Enter")
    provider.page.wait_for_url("**/console/jobs/**", timeout=60_000)

    steward = visit(people["steward"], "en")
    steward.open("/console/steward")
    card = f"article[aria-labelledby='req-{scene['pending']}']"
    assert people["consumer"].org.name in steward.page.locator(card).inner_text()
    unseen += tab_to(steward, f"{card} select[name='mask:meter_id']")
    for _ in range(2):  # "no mask" → "keyed hash" → "redact"
        steward.page.keyboard.press("ArrowDown")
    assert steward.page.eval_on_selector(
        f"{card} select[name='mask:meter_id']", "e => e.value"
    ) == ("redact")
    unseen += tab_to(steward, f"{card} button[value=approve]")
    steward.shot("keyboard-focus-approve-1280")
    steward.page.keyboard.press("Enter")
    steward.page.wait_for_url("**/console/steward?notice=approved")
    assert unseen == [], "focus not visible on:\n" + "\n".join(unseen)
    with console_stack.http() as api:
        grants = api.get("/v1/grants", headers=people["steward"].headers).json()
    (grant,) = [g for g in grants if g["org_id"] == people["consumer"].org.id]
    assert grant["masks"] == [{"column": "meter_id", "kind": "redact"}]


def _csv(name: str) -> dict[str, Any]:
    return {"name": name, "mimeType": "text/csv", "buffer": ENERGY_CSV}
