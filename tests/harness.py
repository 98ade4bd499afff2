"""A running app for tests: real settings, real stores, the PSC sandbox, a browser-like web client.

The web client keeps cookies like a browser; the phone gets its own HTTP client (no cookies), so
nothing leaks between the two sides. The PSC client of the app reaches the in-app sandbox through
an in-process transport: the same OIDC exchange, without a socket.
"""

from __future__ import annotations

import base64
import html
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from litestar import Litestar

from backend.app import create_app
from backend.container import Container
from core.settings import AppSettings, EnrolmentSettings, PscSettings, Settings
from phone.client import PhoneClient, PhoneState
from tests.conftest import Backends
from tests.qr import decode_qr, rasterise_svg

BASE = "https://companion.test"

TITULAIRE = "810001234565"  # Hélène Garnier, pharmacienne titulaire, Pharmacie des Tilleuls
ADJOINT = "810002345675"  # Julien Lefèvre, pharmacien adjoint
NURSE = "810003456786"  # Camille Rousseau, one structure
NURSE_TWO_PLACES = "810004567896"  # Thomas Lambert, cabinet + SSIAD
DOCTOR = "810005678908"  # Antoine Dubois

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')
_QR_IMG = re.compile(r'src="data:image/svg\+xml;base64,([^"]+)"')
_RDV = re.compile(r'data-rdv="([^"]+)"')


class _Loopback(httpx.AsyncBaseTransport):
    """Lets the app's own PSC client call the sandbox inside the same app."""

    def __init__(self) -> None:
        self.app: Litestar | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert self.app is not None
        return await httpx.ASGITransport(app=self.app).handle_async_request(request)


#: The app's roles in tests: the web pages and phone API. Tests of the push pipeline and the watcher ask
#: for them (``roles=ALL_ROLES``), so the others do not run background loops they do not look at.
WEB_ONLY = ("web",)
ALL_ROLES = ("web", "push", "watcher")


def make_settings(backends: Backends, data_dir: Path, *, roles: tuple[str, ...] = WEB_ONLY, **groups: Any) -> Settings:
    values: dict[str, Any] = {
        "app": AppSettings(public_url=BASE, secret_key=secrets.token_urlsafe(32), data_dir=str(data_dir), roles=roles),
        "db": backends.db,
        "store": backends.store,
        "psc": PscSettings(sandbox=True),
        "enrolment": EnrolmentSettings(),
    }
    return Settings(**(values | groups)).checked()


@dataclass
class Harness:
    app: Litestar
    web: httpx.AsyncClient
    settings: Settings

    @property
    def container(self) -> Container:
        return self.app.state.container  # type: ignore[no-any-return]

    # web -------------------------------------------------------------------------------------

    async def login(self, idnat: str, *, mode: str = "card", structure_index: int = 0) -> httpx.Response:
        """The whole PSC round trip as a browser makes it, through the sandbox's login form."""
        start = await self.web.get("/connexion")
        assert start.status_code in (302, 303), start.text
        authorize = await self.web.get(_local(start.headers["location"]))
        assert authorize.status_code == 200, authorize.text
        form = dict(_HIDDEN.findall(authorize.text))
        form |= {"professional": idnat, "auth_mode": mode, "action": "login"}
        action = re.search(r'<form method="post" action="([^"]+)"', authorize.text)
        assert action is not None
        submitted = await self.web.post(html.unescape(action.group(1)), data=form)
        assert submitted.status_code in (302, 303), submitted.text
        callback = await self.web.get(_local(submitted.headers["location"]))
        if callback.status_code in (302, 303) and callback.headers["location"].startswith("/connexion/structure"):
            page = await self.web.get(callback.headers["location"])
            choices = re.findall(r'name="structure" value="([^"]+)"', page.text)
            return await self.web.post(
                "/connexion/structure",
                data={"csrf_token": self.csrf(page.text), "structure": choices[structure_index], "next": "/"},
            )
        return callback

    @staticmethod
    def csrf(page: str) -> str:
        match = _CSRF.search(page)
        assert match is not None, "no CSRF token on the page"
        return match.group(1)

    async def open_enrolment(self) -> tuple[str, str]:
        """The enrolment page, and the QR's URL decoded from the image the page shows."""
        page = await self.web.get("/enrolement", headers={"Accept": "text/html"})
        assert page.status_code == 200, page.text
        return page.text, qr_from_page(page.text)

    async def confirm(self, rendezvous_id: str, *, accept: bool = True) -> httpx.Response:
        page = await self.web.get(f"/enrolement/{rendezvous_id}/statut")
        verb = "confirmer" if accept else "refuser"
        return await self.web.post(f"/enrolement/{rendezvous_id}/{verb}", data={"csrf_token": self.csrf(page.text)})

    # phone -----------------------------------------------------------------------------------

    def phone(self, **kwargs: Any) -> PhoneClient:
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=BASE)
        return PhoneClient(PhoneState(base_url=BASE), http=http, **kwargs)

    async def enrol_phone(self, *, name: str = "Pixel de test", binding: str = "es256", **claim: Any) -> PhoneClient:
        """Claim → check code → confirm on the web → bind → first tokens."""
        _, qr_url = await self.open_enrolment()
        phone = self.phone()
        code = await phone.claim(qr_url, name=name, binding=binding, **claim)
        rdv = phone.rendezvous
        assert rdv is not None
        status = await self.web.get(f"/enrolement/{rdv.rendezvous_id}/statut")
        assert code in status.text
        await phone.bind()
        await self.confirm(rdv.rendezvous_id)
        await phone.complete(timeout_s=5)
        return phone


def qr_from_page(page: str) -> str:
    match = _QR_IMG.search(page)
    assert match is not None, "no QR code image on the page"
    return decode_qr(rasterise_svg(base64.b64decode(match.group(1)).decode()))


def rendezvous_of(page: str) -> str:
    match = _RDV.search(page)
    assert match is not None
    return match.group(1)


def _local(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


@asynccontextmanager
async def running(
    backends: Backends, data_dir: Path, *, sandbox_operator: bool = False, **groups: Any
) -> AsyncIterator[Harness]:
    """The app on these backends; ``sandbox_operator`` also starts the demo's local Dovecot."""
    settings = make_settings(backends, data_dir, **groups)
    loopback = _Loopback()
    psc_http = httpx.AsyncClient(transport=loopback, timeout=10)
    app = create_app(settings, psc_http=psc_http, sandbox_operator=sandbox_operator)
    loopback.app = app
    async with (
        app.lifespan(),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE, follow_redirects=False) as client,
    ):
        yield Harness(app, client, settings)
    await psc_http.aclose()


__all__ = ["Harness", "make_settings", "replace", "running"]
