"""The FastAPI application factory (composition only; no business rules here)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from gateway.body_limit import BodyLimitMiddleware
from gateway.console import install_console
from gateway.errors import install_error_handlers
from gateway.oauth.routes import router as oauth_router
from gateway.observability import RequestContextMiddleware
from gateway.routes import (
    access,
    audit,
    catalog,
    contracts,
    datasets,
    exports,
    files,
    governance,
    grants,
    health,
    jobs,
    me,
    query,
)
from gateway.routes import admin as admin_routes
from gateway.services import Platform, build_platform
from gateway.settings import PlatformSettings


def create_app(settings: PlatformSettings, platform: Platform | None = None) -> FastAPI:
    """Build the app. With ``platform`` given (tests, CLI), the caller owns its lifecycle;
    otherwise the app builds one on startup and closes it on shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = app.state.platform is None
        if owned:
            app.state.platform = build_platform(settings)
        app.state.oauth = app.state.platform.oauth
        app.state.metrics = app.state.platform.metrics
        app.state.platform.ingest.resume_pending()
        app.state.platform.ingest.start_polling(min(15.0, settings.ingest.lease_seconds / 2))
        app.state.platform.exports.start_sweeper(
            app.state.platform, settings.query.export_sweep_seconds
        )
        try:
            yield
        finally:
            if owned:
                app.state.platform.close()

    app = FastAPI(
        title="GBA Industrial Data Exchange",
        version="0.1.0",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.platform = platform
    if platform is not None:
        app.state.oauth = platform.oauth
        app.state.metrics = platform.metrics
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.gateway.max_body_kb * 1024)
    app.add_middleware(RequestContextMiddleware)
    for router in (
        health.router,
        oauth_router,
        me.router,
        admin_routes.router,
        datasets.router,
        contracts.router,
        contracts.proposals,
        jobs.router,
        grants.router,
        access.router,
        governance.router,
        audit.router,
        query.router,
        exports.router,
        files.router,
        catalog.router,
    ):
        app.include_router(router)
    install_console(app, settings)
    return app
