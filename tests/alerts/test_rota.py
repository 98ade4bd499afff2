"""The on-call rota: ordering, management rights, the web page (titulaire only, CSRF) and the phone's view."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from core.device_registry import Actor
from core.errors import DomainError
from tests.alerts.helpers import (
    FAST,
    add_third_member,
    pharmacy_id,
    phone_of,
    professional_id,
    titulaire_actor,
)
from tests.conftest import Backends
from tests.harness import ADJOINT, TITULAIRE, running

H = dt.timedelta(hours=1)


async def test_on_call_now_orders_overlapping_shifts_by_rank(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path, alerts=FAST) as h:
        rota = h.container.rota
        boss = await titulaire_actor(h)
        pharmacy = await pharmacy_id(h)
        helene, julien = await professional_id(h, TITULAIRE), await professional_id(h, ADJOINT)
        third = await add_third_member(h)
        now = dt.datetime.now(dt.UTC)
        assert await rota.on_call_now(pharmacy, now) == []

        await rota.add_shift(boss, professional_id=julien, starts_at=now - H, ends_at=now + H, rank=1)
        await rota.add_shift(boss, professional_id=third, starts_at=now - H / 2, ends_at=now + 2 * H, rank=0)
        await rota.add_shift(boss, professional_id=helene, starts_at=now - 2 * H, ends_at=now + H, rank=0)
        # Julien a second time, ranked first but starting later: one entry per person, at their best place
        await rota.add_shift(boss, professional_id=julien, starts_at=now - H / 4, ends_at=now + H, rank=0)
        # not covering now
        await rota.add_shift(boss, professional_id=helene, starts_at=now + 3 * H, ends_at=now + 5 * H, rank=0)
        assert await rota.on_call_now(pharmacy, now) == [helene, third, julien]
        assert await rota.on_call_now(pharmacy, now + 3.5 * H) == [helene]
        assert await rota.on_call_now(pharmacy, now + 1.5 * H) == [third]
        assert await rota.on_call_now(pharmacy, now + 6 * H) == []

        # a member who leaves the team drops off the rota at once
        team = await h.container.teams.team(pharmacy)
        membership = next(m.membership for m in team.members if m.professional.id == third)
        await h.container.teams.remove(membership.id, boss)
        assert await rota.on_call_now(pharmacy, now) == [helene, julien]

        shifts = await rota.shifts(pharmacy, now, now + 7 * 24 * H)
        assert [s.starts_at for s in shifts] == sorted(s.starts_at for s in shifts)
        assert len(shifts) == 5


async def test_only_managers_change_the_rota_and_shifts_are_checked(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path, alerts=FAST) as h:
        rota = h.container.rota
        boss = await titulaire_actor(h)
        pharmacy = await pharmacy_id(h)
        julien = await professional_id(h, ADJOINT)
        now = dt.datetime.now(dt.UTC)
        adjoint = Actor(idnat=ADJOINT, professional_id=julien, structure_id=pharmacy)
        with pytest.raises(DomainError) as refused:
            await rota.add_shift(adjoint, professional_id=julien, starts_at=now, ends_at=now + H)
        assert refused.value.code == "not_titulaire"
        with pytest.raises(DomainError) as refused:
            await rota.add_shift(
                Actor(idnat=TITULAIRE, professional_id=boss.professional_id),
                professional_id=julien,
                starts_at=now,
                ends_at=now + H,
            )
        assert refused.value.code == "structure_required"
        for start, end, rank in [
            (now + H, now, 0),  # ends before it starts
            (now, now + dt.timedelta(days=40), 0),  # too long
            (now - 3 * H, now - 2 * H, 0),  # already over
            (now, now + H, 100),  # rank out of range
            (now.replace(tzinfo=None), now.replace(tzinfo=None) + H, 0),  # no time zone
        ]:
            with pytest.raises(DomainError) as refused:
                await rota.add_shift(boss, professional_id=julien, starts_at=start, ends_at=end, rank=rank)
            assert refused.value.code == "validation_failed"
        # someone outside the structure cannot be put on its rota
        outsider = await professional_id(h, "810003456786")
        with pytest.raises(DomainError) as refused:
            await rota.add_shift(boss, professional_id=outsider, starts_at=now, ends_at=now + H)
        assert refused.value.code == "member_not_found"

        shift = await rota.add_shift(boss, professional_id=julien, starts_at=now, ends_at=now + H)
        with pytest.raises(DomainError) as refused:
            await rota.remove_shift(adjoint, shift.id)
        assert refused.value.code == "not_titulaire"
        await rota.remove_shift(boss, shift.id)
        with pytest.raises(DomainError) as refused:
            await rota.remove_shift(boss, shift.id)
        assert refused.value.code == "shift_not_found"

        actions = [e.action for e in await h.container.audit.recent(chain=str(pharmacy), limit=20)]
        assert "rota.shift_added" in actions and "rota.shift_removed" in actions


async def test_rota_page_is_for_the_titulaire_and_its_forms_need_csrf(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path, alerts=FAST) as h:
        await h.login(ADJOINT)
        refused = await h.web.get("/equipe/garde", headers={"Accept": "application/json"})
        assert refused.status_code == 403 and refused.json()["code"] == "not_titulaire"
        as_html = await h.web.get("/equipe/garde", headers={"Accept": "text/html"})
        assert as_html.status_code == 403 and "Réservé au titulaire" in as_html.text
        page = await h.web.get("/disponibilite")
        julien = await professional_id(h, ADJOINT)
        now = dt.datetime.now(ZoneInfo("Europe/Paris")).replace(tzinfo=None)
        by_member = await h.web.post(
            "/equipe/garde/creneaux",
            data={
                "csrf_token": h.csrf(page.text),
                "professional": str(julien),
                "start": now.isoformat(timespec="minutes"),
                "end": (now + H).isoformat(timespec="minutes"),
            },
            headers={"Accept": "application/json"},
        )
        assert by_member.status_code == 403 and by_member.json()["code"] == "not_titulaire"

        h.web.cookies.clear()
        await h.login(TITULAIRE)
        page = await h.web.get("/equipe/garde")
        assert page.status_code == 200
        assert "Personne n'est de garde en ce moment" in page.text
        assert "<caption>" in page.text and 'for="shift-member"' in page.text
        assert f'<option value="{julien}">Julien LEFÈVRE</option>' in page.text

        paris = dt.datetime.now(ZoneInfo("Europe/Paris")).replace(second=0, microsecond=0, tzinfo=None)
        shift = {
            "professional": str(julien),
            "start": (paris - H).isoformat(timespec="minutes"),
            "end": (paris + 2 * H).isoformat(timespec="minutes"),
            "rank": "0",
        }
        forged = await h.web.post(
            "/equipe/garde/creneaux", data={"csrf_token": "forged"} | shift, headers={"Accept": "application/json"}
        )
        assert forged.status_code == 403 and forged.json()["code"] == "csrf_failed"
        added = await h.web.post("/equipe/garde/creneaux", data={"csrf_token": h.csrf(page.text)} | shift)
        assert added.status_code == 303 and added.headers["location"] == "/equipe/garde?ok=ajoute"
        bad = await h.web.post(
            "/equipe/garde/creneaux",
            data={"csrf_token": h.csrf(page.text)} | shift | {"start": "demain matin"},
            headers={"Accept": "application/json"},
        )
        assert bad.status_code == 400 and bad.json()["code"] == "validation_failed"

        page = await h.web.get("/equipe/garde?ok=ajoute")
        assert "Créneau de garde ajouté." in page.text
        assert re.search(r'<ol id="on-call-now"><li>Julien LEFÈVRE</li></ol>', page.text)
        local_start = (paris - H).strftime("%d/%m %H:%M")
        assert local_start in page.text  # shown in Paris time, as entered
        shift_id = re.search(r'data-shift="([0-9a-f-]+)"', page.text)
        assert shift_id is not None

        # the phone of a member sees the same rota, and its colleagues
        phone = await phone_of(h, ADJOINT, "Android de Julien")
        seen = await phone.call("GET", "/api/v1/rota")
        assert [s["id"] for s in seen["shifts"]] == [shift_id.group(1)]
        assert seen["onCallNow"] == [{"id": str(julien), "name": "Julien LEFÈVRE"}]
        assert {m["name"] for m in seen["members"]} >= {"Hélène GARNIER", "Julien LEFÈVRE"}
        assert (await phone.call("GET", "/api/v1/me/availability"))["onCallNow"] is True

        removed = await h.web.post(
            f"/equipe/garde/creneaux/{shift_id.group(1)}/supprimer", data={"csrf_token": h.csrf(page.text)}
        )
        assert removed.status_code == 303
        assert (await phone.call("GET", "/api/v1/rota"))["shifts"] == []
        unknown = await h.web.post(
            "/equipe/garde/creneaux/not-a-uuid/supprimer",
            data={"csrf_token": h.csrf(page.text)},
            headers={"Accept": "application/json"},
        )
        assert unknown.status_code == 404 and unknown.json()["code"] == "shift_not_found"


async def test_a_phone_without_an_active_membership_sees_no_rota(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path, alerts=FAST) as h:
        phone = await phone_of(h, "810003456786", "Téléphone de Camille")  # her cabinet's request is pending
        refused = await phone.request("GET", "/api/v1/rota", auth=True)
        assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
