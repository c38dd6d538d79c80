"""Run the gateway under uvicorn, owning the platform's lifecycle (embedded S3 included)."""

from __future__ import annotations

import logging
import threading
import time

import httpx
import uvicorn

from gateway.app import create_app
from gateway.observability import configure_logging
from gateway.services import Platform
from gateway.settings import PlatformSettings

log = logging.getLogger("datashare.server")


def make_server(settings: PlatformSettings, platform: Platform | None) -> uvicorn.Server:
    """``platform=None``: the app builds the platform on startup and closes it on shutdown."""
    config = uvicorn.Config(
        create_app(settings, platform),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    return uvicorn.Server(config)


def run_server(settings: PlatformSettings) -> None:
    """Serve until SIGINT/SIGTERM. The app's lifespan owns the platform, so the embedded S3
    server is stopped during shutdown: uvicorn re-raises the signal once it returns, which
    would skip any clean-up written after ``run()``."""
    configure_logging(settings.log.level, settings.log.json_format)
    log.info("gateway starting", extra={"url": settings.public_url})
    make_server(settings, None).run()


class BackgroundServer:
    """The gateway on a thread (demo and end-to-end tests): ``start()`` waits for /readyz."""

    def __init__(self, settings: PlatformSettings, platform: Platform) -> None:
        self.settings = settings
        self.server = make_server(settings, platform)
        self._thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)

    def start(self, timeout: float = 60.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        url = f"http://{self.settings.host}:{self.settings.port}/readyz"
        while time.monotonic() < deadline:
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if not self._thread.is_alive():
                raise RuntimeError(
                    f"the gateway did not start on {self.settings.host}:{self.settings.port}"
                )
            time.sleep(0.1)
        raise RuntimeError(f"the gateway was not ready within {timeout:.0f} s")

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=15)
