"""What every console page gets: the viewer's language, session, API client and identity,
and the one way to render a template or redirect (which also renews the session cookie)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Final
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse, RedirectResponse, Response

from gateway.console.api import Api, ApiError
from gateway.console.charts import HEIGHT, WIDTH, histogram_bars, quality_trend
from gateway.console.i18n import (
    LANG_COOKIE,
    LOCALE_NAMES,
    LOCALES,
    N_,
    Translator,
    choose_locale,
)
from gateway.console.session import ConsoleSession, SessionCodec

TEMPLATES: Final = Path(__file__).parent / "templates"
CSRF_FIELD: Final = "csrf"
# ``?notice=<key>`` after a redirect shows one of these (never text from the URL itself).
NOTICES: Final = {
    "created": N_("The dataset is registered. Upload its first file."),
    "contract_saved": N_("The contract is saved as a new version."),
    "metadata_saved": N_("The description is saved."),
    "requested": N_("Your request was sent to the stewards of the dataset's region."),
    "approved": N_("The request is approved; the grant is live."),
    "denied": N_("The request is denied."),
    "revoked": N_("The grant is revoked."),
    "no_file": N_("Choose a file to upload."),
}
CSRF_HEADER: Final = "x-csrf-token"


class LoginRequired(Exception):
    """No usable session: the handler sends the browser to the login flow."""

    def __init__(self, next_path: str, *, clear_session: bool = False) -> None:
        super().__init__(next_path)
        self.next_path = next_path
        self.clear_session = clear_session


class CsrfRejected(Exception):
    """A state-changing request without the session's CSRF token, or from another origin."""


@dataclass
class ConsoleState:
    """Built once per app by ``install_console``."""

    codec: SessionCodec
    templates: Environment
    token_refresher: Any = None  # gateway.console.auth.refresh (set by install_console)
    client_id: str | None = None  # the console's OAuth client, once found


def build_templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        LOCALES=LOCALES,
        LOCALE_NAMES=LOCALE_NAMES,
        histogram_bars=histogram_bars,
        quality_trend=quality_trend,
        chart_width=WIDTH,
        chart_height=HEIGHT,
    )
    env.filters.update(number=_number, filesize=_filesize, when=_when, short=_short)
    return env


@dataclass
class Console:
    request: Request
    state: ConsoleState
    t: Translator
    api: Api
    session: ConsoleSession | None
    me: dict[str, Any] | None = None
    renewed: bool = False
    flash: list[tuple[str, str]] = field(default_factory=list)

    @property
    def roles(self) -> set[str]:
        return set(self.me.get("roles", [])) if self.me else set()

    def has_role(self, *roles: str) -> bool:
        mine = self.roles
        return "admin" in mine or any(role in mine for role in roles)

    def render(self, template: str, *, status: int = 200, **values: Any) -> HTMLResponse:
        notice = NOTICES.get(self.request.query_params.get("notice", ""))
        if notice is not None:
            self.flash.append(("ok", self.t.text(notice)))
        page = self.state.templates.get_template(template)
        html = page.render(
            _=self.t.gettext,
            ngettext=self.t.ngettext,
            t=self.t,
            loc=self.t.localized,
            me=self.me,
            console=self,
            csrf=self.session.csrf if self.session else "",
            path=self.request.url.path,
            here=_here(self.request),
            **values,
        )
        response = HTMLResponse(html, status_code=status)
        self.finish(response)
        return response

    def redirect(self, url: str) -> RedirectResponse:
        response = RedirectResponse(url, status_code=303)
        self.finish(response)
        return response

    def finish(self, response: Response) -> Response:
        if self.renewed and self.session is not None:
            self.state.codec.store(response, self.request, self.session)
        return response

    def error(self, error: ApiError) -> HTMLResponse:
        status = error.status if 400 <= error.status < 600 else 502
        return self.render("error.html", status=status, error=error)

    async def check_csrf(self) -> dict[str, str]:
        """The submitted form, after checking its CSRF token and origin."""
        form = await self.request.form()
        values = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        lists: dict[str, list[str]] = {}
        for key, value in form.multi_items():
            if isinstance(value, str):
                lists.setdefault(key, []).append(value)
        self._check_origin()
        if self.session is None or not self.session.csrf_matches(values.get(CSRF_FIELD)):
            raise CsrfRejected
        self.request.state.form_lists = lists
        return values

    def check_csrf_header(self) -> None:
        self._check_origin()
        if self.session is None or not self.session.csrf_matches(
            self.request.headers.get(CSRF_HEADER)
        ):
            raise CsrfRejected

    def form_list(self, name: str) -> list[str]:
        lists: dict[str, list[str]] = getattr(self.request.state, "form_lists", {})
        return lists.get(name, [])

    def _check_origin(self) -> None:
        origin = self.request.headers.get("origin")
        host = self.request.headers.get("host", "")
        if origin and origin != "null" and urlsplit(origin).netloc != host:
            raise CsrfRejected


def _here(request: Request) -> str:
    query = f"?{request.url.query}" if request.url.query else ""
    return quote(request.url.path + query, safe="/?=&")


def state_of(request: Request) -> ConsoleState:
    state: ConsoleState = request.app.state.console
    return state


def _translator(request: Request) -> Translator:
    locale = choose_locale(
        request.cookies.get(LANG_COOKIE), request.headers.get("accept-language", "")
    )
    return Translator(locale)


def _api(request: Request, token: str | None) -> Api:
    return Api(request.app, token, request_id=getattr(request.state, "request_id", None))


async def anonymous_console(request: Request) -> Console:
    """Pages anyone may open (login, language switch, errors)."""
    state = state_of(request)
    session = state.codec.load(request)
    return Console(request, state, _translator(request), _api(request, None), session)


async def user_console(request: Request) -> Console:
    """Pages for a signed-in user: a live access token (refreshed when it can be) and
    the user's identity from ``GET /v1/me``."""
    state = state_of(request)
    session = state.codec.load(request)
    target = _here(request) if request.method == "GET" else "/console"
    if session is None:
        raise LoginRequired(target)
    renewed = False
    if session.expired():
        session = await state.token_refresher(request, session) if state.token_refresher else None
        if session is None:
            raise LoginRequired(target, clear_session=True)
        renewed = True
    console = Console(
        request, state, _translator(request), _api(request, session.access_token), session
    )
    console.renewed = renewed
    try:
        console.me = await console.api.get("/v1/me")
    except ApiError as error:
        if error.status == 401:
            raise LoginRequired(target, clear_session=True) from error
        raise
    return console


AnyConsole = Annotated[Console, Depends(anonymous_console)]
UserConsole = Annotated[Console, Depends(user_console)]


# --- template filters ----------------------------------------------------------------------


def _number(value: Any, digits: int = 0) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, int | float):
        return f"{value:,.{digits}f}" if digits or isinstance(value, float) else f"{value:,}"
    return str(value)


def _filesize(value: Any) -> str:
    if not isinstance(value, int | float):
        return "—"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{size:,.1f} TiB"


def _when(value: Any) -> str:
    """ISO timestamps as ``YYYY-MM-DD HH:MM UTC`` (unambiguous in all three languages)."""
    if not value:
        return "—"
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    return parsed.strftime("%Y-%m-%d %H:%M UTC")


def _short(value: Any, length: int = 12) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= length else text[:length] + "…"
