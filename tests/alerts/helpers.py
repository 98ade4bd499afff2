"""Shared steps of the alert tests: people of the sandbox pharmacy, phones, a notify recorder."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import select

from backend.alerts import AlertNotice
from core.db.models import Professional, Structure
from core.device_registry import Actor
from core.settings import AlertSettings
from enrolment.psc_sandbox.people import PHARMACIE_DES_TILLEULS
from phone.client import PhoneClient
from tests.harness import ADJOINT, BASE, TITULAIRE, Harness

#: Small delays: an on-call alert escalates after 1 s; the background loop stays out of the way.
FAST = AlertSettings(escalation_delay_s=1, check_every_s=3600)
#: A third member of the pharmacy, added by RPPS (never logs in).
THIRD_RPPS = "10009999990"
THIRD = f"8{THIRD_RPPS}"
_KEY = re.compile(r'id="service-key" value="(mssc_sk_[^"]+)"')


async def professional_id(h: Harness, idnat: str) -> uuid.UUID:
    async with h.container.db.read() as session:
        found = await session.scalar(select(Professional.id).where(Professional.idnat == idnat))
    assert found is not None, idnat
    return found


async def pharmacy_id(h: Harness) -> uuid.UUID:
    async with h.container.db.read() as session:
        found = await session.scalar(select(Structure.id).where(Structure.idnat == PHARMACIE_DES_TILLEULS.idnat))
    assert found is not None
    return found


async def titulaire_actor(h: Harness) -> Actor:
    return Actor(
        idnat=TITULAIRE, professional_id=await professional_id(h, TITULAIRE), structure_id=await pharmacy_id(h)
    )


async def add_third_member(h: Harness) -> uuid.UUID:
    await h.container.teams.add_by_rpps(THIRD_RPPS, await titulaire_actor(h))
    return await professional_id(h, THIRD)


async def browser(h: Harness) -> httpx.AsyncClient:
    """Another browser (its own cookies) on the same app."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=h.app), base_url=BASE, follow_redirects=False)


async def phone_of(h: Harness, idnat: str, name: str) -> PhoneClient:
    """A fresh browser logs in as ``idnat`` and enrols a phone; the harness's browser is restored."""
    own, h.web = h.web, await browser(h)
    try:
        await h.login(idnat)
        return await h.enrol_phone(name=name)
    finally:
        await h.web.aclose()
        h.web = own


async def titulaire_and_adjoint_phones(h: Harness) -> tuple[PhoneClient, PhoneClient]:
    return await phone_of(h, TITULAIRE, "iPhone d'Hélène"), await phone_of(h, ADJOINT, "Android de Julien")


async def create_service_key(h: Harness, name: str, *scopes: str) -> str:
    """As the titulaire on the web: create a service client; the key is read off the page, once."""
    page = await h.web.get("/equipe/garde")
    assert page.status_code == 200, page.text
    form = {"csrf_token": h.csrf(page.text), "name": name} | {f"scope:{s}": "1" for s in scopes}
    created = await h.web.post("/equipe/garde/services", data=form)
    assert created.status_code == 200, created.text
    match = _KEY.search(created.text)
    assert match is not None
    return match.group(1)


@dataclass
class Recorder:
    """An ``on_notify`` subscriber, as the push pipeline will be: keeps exactly what it was given."""

    calls: list[tuple[Any, tuple[uuid.UUID, ...], int]] = field(default_factory=list)

    async def __call__(self, alert: AlertNotice, recipients: tuple[uuid.UUID, ...], step: int) -> None:
        self.calls.append((alert, recipients, step))

    def for_alert(self, alert_id: uuid.UUID | str) -> list[tuple[Any, tuple[uuid.UUID, ...], int]]:
        return [c for c in self.calls if str(c[0].id) == str(alert_id)]
