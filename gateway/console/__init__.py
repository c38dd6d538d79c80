"""The web console under ``/console``: server-rendered pages (Jinja2) in English, 简体中文
and 繁體中文 for providers, consumers and stewards, on top of the gateway's JSON API.

``install_console(app, settings)`` is the only entry point ``create_app`` calls.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.console import auth, catalog_pages, consumer_pages, provider_pages, steward_pages
from gateway.console.api import ApiError
from gateway.console.context import (
    ConsoleState,
    CsrfRejected,
    LoginRequired,
    anonymous_console,
    build_templates,
)
from gateway.console.session import SessionCodec
from gateway.settings import PlatformSettings

STATIC: Final = Path(__file__).parent / "static"
# Same-origin everything: no CDN, no inline scripts, no framing.
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def install_console(app: FastAPI, settings: PlatformSettings) -> None:
    secret = settings.secret(settings.gateway.url_signing_secret, "url_signing_secret")
    codec = SessionCodec(secret, https_only=settings.public_url.startswith("https://"))
    app.state.console = ConsoleState(codec, build_templates(), auth.refresh)
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")
    # provider_pages first: its /console/datasets/new must win over /console/datasets/{id}
    for module in (auth, provider_pages, catalog_pages, consumer_pages, steward_pages):
        app.include_router(module.router)
    app.add_exception_handler(LoginRequired, _to_login)
    app.add_exception_handler(CsrfRejected, _csrf_rejected)
    app.add_exception_handler(ApiError, _api_error)
    app.add_middleware(ConsoleHeadersMiddleware)


async def _to_login(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    response = RedirectResponse(
        f"/console/login?next={quote(exc.next_path, safe='')}", status_code=303
    )
    if exc.clear_session:
        request.app.state.console.codec.clear(response)
    return response


async def _csrf_rejected(request: Request, _exc: Exception) -> Response:
    console = await anonymous_console(request)
    return console.render("error.html", status=403, csrf_failed=True, error=None)


async def _api_error(request: Request, exc: Exception) -> Response:
    """An API error a page did not handle itself: the error page, in the viewer's language."""
    assert isinstance(exc, ApiError)
    console = await anonymous_console(request)
    return console.error(exc)


class ConsoleHeadersMiddleware:
    """Security headers on every ``/console`` response; other paths pass straight through.

    Pure ASGI, like ``RequestContextMiddleware``: a ``@app.middleware("http")`` function runs
    every request of the API too in a task of its own and relays its body through a memory
    stream, which cost each small query ~2 ms of the gateway's CPU for a header it never gets."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/console"):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "same-origin")
                if headers.get("content-type", "").startswith("text/html"):
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)
