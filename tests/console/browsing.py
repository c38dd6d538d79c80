"""The browser side of the console tests: playwright driving Debian's chromium (headless,
never a downloaded browser) against the real gateway over HTTP.

``visit`` opens a browser context (signed in, in a language) that records every request
the page made; when the test ends it asserts that none went to a host other than the
gateway. ``Visit.shot`` saves a screenshot to ``tests/artifacts/`` for a reviewer.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import sync_playwright

from tests.factories import ENERGY_CONTRACT

if TYPE_CHECKING:
    from tests.console.conftest import ConsoleStack
    from tests.factories import Caller

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parents[1] / "artifacts"
ACCEPT = {"en": "en-GB,en;q=0.9", "zh_Hans": "zh-CN,zh;q=0.9", "zh_Hant": "zh-HK,zh;q=0.9"}


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: run `make chromium` (Debian's chromium package)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        yield launched
        launched.close()


class Visit:
    """A browser context (signed in as ``caller`` when given), recording every request."""

    def __init__(
        self, browser: object, stack: ConsoleStack, caller: Caller | None, locale: str
    ) -> None:
        self.stack = stack
        self.requests: list[str] = []
        self.context = browser.new_context(  # type: ignore[attr-defined]
            viewport={"width": 1280, "height": 900},
            extra_http_headers={"accept-language": ACCEPT[locale]},
            locale=ACCEPT[locale].split(",")[0],
            color_scheme="light",
        )
        if caller is not None:
            sealed, _csrf = stack.session_cookie(caller)
            cookie = {"name": "console_session", "value": sealed, "url": stack.url}
            self.context.add_cookies([cookie])
        self.context.on("request", lambda request: self.requests.append(request.url))
        self.page = self.context.new_page()

    def sign_in(self, path: str, username: str, password: str) -> None:
        """Open ``path`` signed out: the console sends the browser through the
        authorization server's login page and back (authorization code + PKCE)."""
        self.page.goto(f"{self.stack.url}{path}")
        self.page.wait_for_url("**/oauth/login**")
        self.page.fill("#username", username)
        self.page.fill("#password", password)
        self.page.keyboard.press("Enter")
        self.page.wait_for_url(f"{self.stack.url}{path}")

    def open(self, path: str) -> object:
        response = self.page.goto(f"{self.stack.url}{path}")
        assert response is not None and response.status == 200, path
        return response

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    def foreign_requests(self) -> list[str]:
        gateway = urlsplit(self.stack.url).netloc
        return [
            url
            for url in self.requests
            if urlsplit(url).scheme not in ("data", "blob") and urlsplit(url).netloc != gateway
        ]


@pytest.fixture
def visit(
    browser: object, console_stack: ConsoleStack
) -> Iterator[Callable[[Caller | None, str], Visit]]:
    opened: list[Visit] = []

    def open_as(caller: Caller | None, locale: str) -> Visit:
        opened.append(Visit(browser, console_stack, caller, locale))
        return opened[-1]

    yield open_as
    for one in opened:
        one.context.close()
    for one in opened:
        assert one.requests, "the browser made no request at all"
        assert one.foreign_requests() == [], "the console asked a host other than the gateway"


def classified_contract() -> dict[str, object]:
    """The meter contract with every column's personal-information class confirmed."""
    contract = copy.deepcopy(ENERGY_CONTRACT)
    for column in contract["columns"]:  # type: ignore[union-attr]
        column["pi"] = "non_pi"
    return contract
