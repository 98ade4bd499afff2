"""Fixtures for browser tests: the real app served by uvicorn on 127.0.0.1, and headless Chromium.

The server runs as an asyncio task in the test's own event loop, on a socket bound before the app
is built (no race for the port). Its public URL is ``http://localhost:<port>``: Chromium treats
``localhost`` as a secure context, so WebAuthn works and the ``__Host-`` / ``Secure`` session cookie
sticks over plain HTTP. The app's PSC client reaches the in-app sandbox over real HTTP (no
``psc_http`` given): discovery, token, JWKS and userinfo go through the same uvicorn server.

Chromium is Debian's ``/usr/bin/chromium``; Playwright comes from PyPI (never ``playwright install``).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from litestar import Litestar
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from backend.app import create_app
from core.settings import AppSettings, Settings
from tests.conftest import Backends
from tests.harness import make_settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
#: Playwright's default for actions and ``expect``; the flows here need about 1 s per step.
TIMEOUT_MS = 10_000


@dataclass(frozen=True, slots=True)
class LiveServer:
    """The app listening on a real socket."""

    url: str
    app: Litestar
    settings: Settings


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves the process's signal handlers alone (pytest owns Ctrl-C)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    return sock


@pytest.fixture
async def live_server(backends: Backends, tmp_path: Path) -> AsyncIterator[LiveServer]:
    """The real app (PSC sandbox on, embedded or Redis + PostgreSQL backends) under uvicorn."""
    sock = _listening_socket()
    port = sock.getsockname()[1]
    url = f"http://localhost:{port}"
    data_dir = tmp_path / "data"
    settings = make_settings(
        backends,
        data_dir,
        app=AppSettings(
            public_url=url, port=port, secret_key=secrets.token_urlsafe(32), data_dir=str(data_dir), roles=("web",)
        ),
    )
    app = create_app(settings)  # no psc_http: the PSC client calls the sandbox at public_url over HTTP
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    server = _QuietServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="uvicorn")
    try:
        async with asyncio.timeout(15):
            while not server.started:
                if task.done():  # start-up failed (migrations, stores…): surface why
                    task.result()
                    raise RuntimeError("uvicorn stopped before it started")
                await asyncio.sleep(0.02)
        yield LiveServer(url=url, app=app, settings=settings)
    finally:
        server.should_exit = True
        try:
            async with asyncio.timeout(10):
                await task
        finally:
            sock.close()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A fresh profile (cookies, storage) for each test, French locale."""
    ctx = await browser.new_context(locale="fr-FR", viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(TIMEOUT_MS)
    try:
        yield ctx
    finally:
        await ctx.close()


@pytest.fixture
async def page(context: BrowserContext) -> Page:
    return await context.new_page()
