"""The titulaire's team page: members, grants on the pharmacy mailbox, devices, revocation, audit."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import update

from core.db.models import AuditEvent
from phone.client import PhoneError
from tests.conftest import Backends
from tests.harness import ADJOINT, BASE, NURSE, NURSE_TWO_PLACES, TITULAIRE, running

PHARMACY_MAILBOX = "pharmacie.tilleuls@pharmacie.mssante.fr"


async def _as_titulaire(h, path: str = "/equipe"):  # type: ignore[no-untyped-def]
    page = await h.web.get(path)
    assert page.status_code == 200, page.text
    return page


async def test_only_the_titulaire_sees_the_team(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path) as h:
        await h.login(ADJOINT)
        refused = await h.web.get("/equipe", headers={"Accept": "application/json"})
        assert refused.status_code == 403 and refused.json()["code"] == "not_titulaire"
        home = await h.web.get("/")
        assert "Mon équipe" not in home.text


async def test_titulaire_revokes_a_member_device_and_removes_read_grant(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path) as adjoint_side:
        await adjoint_side.login(ADJOINT)
        phone = await adjoint_side.enrol_phone(name="Android de Julien")
        me = await phone.me()
        pharmacy = next(m for m in me["mailboxes"] if m["address"] == PHARMACY_MAILBOX)
        assert pharmacy["canRead"] and not pharmacy["canSend"]

        # the titulaire, in another browser, on the same instance
        import httpx

        titulaire_web = httpx.AsyncClient(transport=httpx.ASGITransport(app=adjoint_side.app), base_url=BASE)
        adjoint_web, adjoint_side.web = adjoint_side.web, titulaire_web
        await adjoint_side.login(TITULAIRE)
        team = await _as_titulaire(adjoint_side)
        assert "Julien LEFÈVRE" in team.text and "Android de Julien" in team.text

        # withdraw the read grant: the phone's token goes stale at once, the refreshed one lacks the scope
        mailbox_id = pharmacy["id"]
        professional = re.search(
            r'name="professional" value="([^"]+)"[^>]*>\s*<input type="checkbox" id="r-\1-' + mailbox_id, team.text
        )
        julien_id = re.findall(
            r'<tr data-member="' + ADJOINT + r'">.*?name="professional" value="([^"]+)"', team.text, re.S
        )[0]
        del professional
        await adjoint_side.web.post(
            "/equipe/droits",
            data={"csrf_token": adjoint_side.csrf(team.text), "mailbox": mailbox_id, "professional": julien_id},
        )
        me = await phone.me()  # refreshes on token_stale, by itself
        assert PHARMACY_MAILBOX not in [m["address"] for m in me["mailboxes"]]

        # revoke the device from the team page
        team = await _as_titulaire(adjoint_side)
        device_id = phone.state.device_id
        assert f'data-revoke-device="{device_id}"' in team.text
        done = await adjoint_side.web.post(
            f"/equipe/appareils/{device_id}/revoquer", data={"csrf_token": adjoint_side.csrf(team.text)}
        )
        assert done.status_code == 303
        with pytest.raises(PhoneError) as err:
            await phone.whoami()
        assert err.value.code == "device_revoked" and err.value.problem["wipe"] is True

        journal = await _as_titulaire(adjoint_side, "/equipe/journal")
        assert 'id="chain-ok"' in journal.text
        for label in ("Appareil enrôlé", "Droits modifiés", "Appareil révoqué"):
            assert label in journal.text
        await adjoint_web.aclose()
        await titulaire_web.aclose()


async def test_add_member_by_rpps_approve_and_remove(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path) as h:
        await h.login(TITULAIRE)
        team = await _as_titulaire(h)
        added = await h.web.post("/equipe/membres", data={"csrf_token": h.csrf(team.text), "rpps": "10009999990"})
        assert added.status_code == 303
        team = await _as_titulaire(h)
        assert "RPPS 10009999990" in team.text
        bad = await h.web.post(
            "/equipe/membres",
            data={"csrf_token": h.csrf(team.text), "rpps": "123"},
            headers={"Accept": "application/json"},
        )
        assert bad.status_code == 400 and bad.json()["code"] == "validation_failed"
        membership = re.search(r"/equipe/membres/([0-9a-f-]+)/retirer", team.text)
        assert membership is not None
        removed = await h.web.post(
            f"/equipe/membres/{membership.group(1)}/retirer", data={"csrf_token": h.csrf(team.text)}
        )
        assert removed.status_code == 303


async def test_removed_member_asks_again_and_is_approved(backends: Backends, tmp_path: Path) -> None:
    """A removed member who logs in for the pharmacy again waits for the titulaire's approval."""
    async with running(backends, tmp_path) as h:
        await h.login(TITULAIRE)
        team = await _as_titulaire(h)
        row = re.search(r'<tr data-member="' + ADJOINT + r'">(.*?)</tr>', team.text, re.S)
        assert row is not None
        removal = re.search(r"/equipe/membres/([0-9a-f-]+)/retirer", row.group(1))
        assert removal is not None
        await h.web.post(removal.group(0), data={"csrf_token": h.csrf(team.text)})
        assert ADJOINT not in (await _as_titulaire(h)).text

        h.web.cookies.clear()
        await h.login(ADJOINT)
        h.web.cookies.clear()
        await h.login(TITULAIRE)
        team = await _as_titulaire(h)
        assert "demande en attente" in team.text
        approve = re.search(r"/equipe/membres/([0-9a-f-]+)/accepter", team.text)
        assert approve is not None
        await h.web.post(approve.group(0), data={"csrf_token": h.csrf(team.text)})
        assert "demande en attente" not in (await _as_titulaire(h)).text


async def test_audit_chain_detects_an_edited_row_on_the_page(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path) as h:
        await h.login(TITULAIRE)
        await h.enrol_phone()
        journal = await _as_titulaire(h, "/equipe/journal")
        assert 'id="chain-ok"' in journal.text
        async with h.container.db.transaction() as session:
            await session.execute(
                update(AuditEvent).where(AuditEvent.action == "device.enrolled").values(actor="899999999999")
            )
        journal = await _as_titulaire(h, "/equipe/journal")
        assert 'id="chain-broken"' in journal.text
        export = await h.web.get("/equipe/journal.jsonl")
        assert export.headers["content-type"].startswith("application/jsonl")
        assert all(line.startswith("{") for line in export.text.splitlines())


async def test_nurse_with_two_places_chooses_the_structure(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path) as h:
        landing = await h.login(NURSE_TWO_PLACES, structure_index=1)
        assert landing.status_code == 303
        home = await h.web.get("/")
        assert "SSIAD" in home.text


async def test_forms_need_the_csrf_token(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path) as h:
        await h.login(NURSE)
        phone = await h.enrol_phone()
        forged = await h.web.post(
            f"/appareils/{phone.state.device_id}/revoquer",
            data={"csrf_token": "forged"},
            headers={"Accept": "application/json"},
        )
        assert forged.status_code == 403 and forged.json()["code"] == "csrf_failed"
        assert (await phone.whoami())["deviceId"] == phone.state.device_id
