"""The dev page "Notifications envoyées (démo)": the pushes to one's own devices, payloads only; its
button drops a demo message at the sandbox operator (CSRF-protected); none of it without the sink."""

from __future__ import annotations

import html
import json
from pathlib import Path

import httpx

from backend.dev.demo_message import DEMO_SENDER, DEMO_SENDER_NAME, DEMO_SUBJECT, DEMO_TEXT
from contracts.errors import ErrorCode
from core.settings import PushSettings
from tests.conftest import Backends
from tests.harness import ALL_ROLES, BASE, DOCTOR, NURSE, Harness, running
from tests.push_pipeline.dev_demo import FAST_WATCHER, record_push, sink_of, watched

PAGE = "/dev/notifications"
DEPOSIT = "/dev/notifications/message-demo"
HTML = {"Accept": "text/html"}


def _other_browser(h: Harness) -> Harness:
    """Another person at another browser (own cookies), on the same app."""
    web = httpx.AsyncClient(transport=httpx.ASGITransport(app=h.app), base_url=BASE)  # type: ignore[arg-type]
    return Harness(h.app, web, h.settings)


async def test_the_page_lists_own_pushes_with_their_payload_and_no_content(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path, sandbox_operator=True, roles=ALL_ROLES, watcher=FAST_WATCHER) as h:
        await h.login(NURSE)
        devices = await h.web.get("/appareils")
        assert f'href="{PAGE}"' in devices.text  # the device page links to it in dev
        phone = await h.enrol_phone(name="Pixel de Camille", push_provider="fcm", push_token="f" * 40)
        await phone.call("PUT", "/api/v1/me/availability", json={"mode": "en_visite"})
        [mailbox] = [m for m in await phone.mailboxes() if m.kind == "nominative"]

        page = await h.web.get(PAGE, headers=HTML)
        assert page.status_code == 200, page.text
        assert "<title>Notifications envoyées (démo)" in page.text
        assert "Aucune notification envoyée" in page.text and "Déposer un message de démonstration" in page.text

        await watched(h, mailbox.id)
        deposited = await h.web.post(DEPOSIT, data={"csrf_token": h.csrf(page.text)})
        assert deposited.status_code == 303 and deposited.headers["location"] == f"{PAGE}?ok=depose"
        [push] = await sink_of(h).wait_for(phone.state.device_id or "", timeout_s=10)

        page = await h.web.get(deposited.headers["location"], headers=HTML)
        shown = html.unescape(page.text)
        assert "Message de démonstration déposé" in shown
        assert "Pixel de Camille" in shown and "Messagerie" in shown and "Nouveau message sécurisé" in shown
        assert json.dumps(push.payload, ensure_ascii=False, sort_keys=True) in shown
        for content in (DEMO_SUBJECT, DEMO_SENDER, DEMO_SENDER_NAME, DEMO_TEXT.splitlines()[2], "Jean EXEMPLE"):
            assert content not in shown, content
        # the message is there, for the phone to fetch
        [newest, *_] = (await phone.messages(mailbox.id, limit=1)).items
        assert newest.subject == DEMO_SUBJECT

        # a wipe shows too (a revoked device's last push), newest first
        await record_push(sink_of(h), phone.state.device_id or "")
        devices = await h.web.get("/appareils")
        await h.web.post(f"/appareils/{phone.state.device_id}/revoquer", data={"csrf_token": h.csrf(devices.text)})
        await sink_of(h).wait_for(phone.state.device_id or "", count=3, timeout_s=10)
        shown = html.unescape((await h.web.get(PAGE)).text)
        assert shown.index("Effacement à distance") < shown.index("Messagerie")

        # another professional sees none of these
        doctor = _other_browser(h)
        await doctor.login(DOCTOR)
        other = await doctor.web.get(PAGE)
        assert other.status_code == 200 and "Aucune notification envoyée" in other.text
        assert push.payload["eventId"] not in other.text
        await doctor.web.aclose()


async def test_the_button_needs_a_login_and_the_csrf_token(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path, sandbox_operator=True) as h:
        anonymous = await h.web.get(PAGE)
        assert anonymous.status_code == 401 and anonymous.json()["code"] == ErrorCode.LOGIN_REQUIRED
        refused = await h.web.post(DEPOSIT, data={})
        assert refused.status_code == 401 and refused.json()["code"] == ErrorCode.LOGIN_REQUIRED

        await h.login(NURSE)
        before = h.app.state.sandbox_operator.count("camille.rousseau@infirmier.mssante.fr")
        for form in ({}, {"csrf_token": "forged"}):
            refused = await h.web.post(DEPOSIT, data=form)
            assert refused.status_code == 403 and refused.json()["code"] == ErrorCode.CSRF_FAILED
        assert h.app.state.sandbox_operator.count("camille.rousseau@infirmier.mssante.fr") == before

        page = await h.web.get(PAGE)
        accepted = await h.web.post(DEPOSIT, data={"csrf_token": h.csrf(page.text)})
        assert accepted.status_code == 303
        assert h.app.state.sandbox_operator.count("camille.rousseau@infirmier.mssante.fr") == before + 1


async def test_no_button_without_the_sandbox_operator(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path) as h:
        await h.login(NURSE)
        page = await h.web.get(PAGE)
        assert page.status_code == 200 and "Déposer un message de démonstration" not in page.text
        refused = await h.web.post(DEPOSIT, data={"csrf_token": h.csrf(page.text)})
        assert refused.status_code == 404 and refused.json()["code"] == ErrorCode.NOT_FOUND


async def test_no_page_without_the_sink(backends: Backends, tmp_path: Path, push_settings: PushSettings) -> None:
    async with running(backends, tmp_path, push=push_settings) as h:
        await h.login(NURSE)
        devices = await h.web.get("/appareils")
        assert devices.status_code == 200 and PAGE not in devices.text
        for response in (
            await h.web.get(PAGE),
            await h.web.post(DEPOSIT, data={"csrf_token": h.csrf(devices.text)}),
        ):
            assert response.status_code == 404, response.text
            assert response.json()["code"] == ErrorCode.NOT_FOUND
        browser = await h.web.get(PAGE, headers=HTML)
        assert browser.status_code == 404 and "Page introuvable" in browser.text
