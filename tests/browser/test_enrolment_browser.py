"""The whole journey in headless Chromium: PSC login, QR on screen, phone enrolment, revocation, audit."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from playwright.async_api import Dialog, Page, expect

from phone.client import PhoneError
from tests.browser.conftest import LiveServer
from tests.browser.flows import decode_qr_png, open_enrolment, phone_for, psc_login
from tests.harness import TITULAIRE

pytestmark = [pytest.mark.browser, pytest.mark.timeout(60)]

DEVICE_NAME = "Pixel de l'officine"


async def test_enrol_from_screenshot_then_revoke_from_team_page(
    live_server: LiveServer, page: Page, tmp_path: Path
) -> None:
    base = live_server.url
    shots = tmp_path / "screenshots"
    shots.mkdir()

    # The titulaire (Hélène Garnier) logs in with her CPS card through the PSC sandbox.
    await psc_login(page, base, professional=TITULAIRE, auth_mode="card")
    who = page.locator(".qui")
    await expect(who).to_contain_text("Hélène GARNIER")  # French administrative form
    await expect(who).to_contain_text(re.compile("Pharmacie des Tilleuls", re.IGNORECASE))

    # "Enrôler un téléphone": the QR code is read from pixels, like a phone camera.
    await open_enrolment(page)
    qr_png = shots / "1-enrolement-qr.png"
    await page.screenshot(path=qr_png, full_page=True)
    qr_url = decode_qr_png(qr_png)
    assert re.fullmatch(rf"{re.escape(base)}/e/[A-Za-z0-9_-]{{22,}}#[A-Za-z0-9_-]{{22,}}", qr_url), qr_url

    phone = phone_for(base)
    try:
        code = await phone.claim(qr_url, name=DEVICE_NAME)
        await phone.bind()

        # The page (polling its status every second) shows the same code as the phone.
        check = page.locator("#check-code")
        await expect(check).to_have_text(code)
        await expect(page.get_by_role("alert")).to_contain_text(f"Téléphone « {DEVICE_NAME} »")
        await page.screenshot(path=shots / "2-enrolement-code.png", full_page=True)

        # The phone waits for the confirmation while the person clicks "Oui, c'est le même code".
        completion = asyncio.create_task(phone.complete(timeout_s=15))
        await page.locator("#confirm-enrolment").click()
        tokens = await asyncio.wait_for(completion, 20)
        device_id = tokens["deviceId"]
        assert tokens["accessToken"] and tokens["refreshToken"]
        await expect(page.locator("#enrolment-done")).to_contain_text(DEVICE_NAME)
        assert (await phone.whoami())["deviceId"] == device_id

        # "Mes appareils" lists it.
        await page.locator("#enrolment-done").get_by_role("link", name="Voir mes appareils").click()
        await expect(page).to_have_url(f"{base}/appareils")
        row = page.locator(f'#devices tr[data-device-id="{device_id}"]')
        await expect(row).to_have_count(1)
        await expect(row.get_by_label("Nom de l'appareil")).to_have_value(DEVICE_NAME)
        await expect(row).to_contain_text("Android")
        await page.screenshot(path=shots / "3-appareils.png", full_page=True)

        # "Mon équipe": the titulaire revokes the phone.
        await page.get_by_role("navigation").get_by_role("link", name="Mon équipe").click()
        await expect(page).to_have_url(f"{base}/equipe")
        revoke = page.locator(f'#members [data-revoke-device="{device_id}"]')
        await expect(revoke).to_have_accessible_name(f"Révoquer {DEVICE_NAME} de Hélène GARNIER")
        questions: list[str] = []

        async def accept(dialog: Dialog) -> None:  # the page asks before revoking
            questions.append(dialog.message)
            await dialog.accept()

        page.once("dialog", accept)
        await revoke.click()
        await expect(page).to_have_url(f"{base}/equipe?ok=revoque")
        assert questions and DEVICE_NAME in questions[0]
        await expect(page.get_by_role("status")).to_have_text("Appareil révoqué.")
        await expect(page.locator(f'[data-revoke-device="{device_id}"]')).to_have_count(0)
        await page.screenshot(path=shots / "4-equipe.png", full_page=True)

        # The phone's next call is refused, and told to wipe; it acknowledges with its last token.
        with pytest.raises(PhoneError) as refused:
            await phone.whoami()
        assert refused.value.status == 401
        assert refused.value.code == "device_revoked"
        assert refused.value.problem.get("wipe") is True
        await phone.acknowledge_wipe()
        assert phone.state.access_token is None and phone.state.refresh_token is None
    finally:
        await phone.aclose()

    # The audit trail is intact and tells the story.
    await page.get_by_role("link", name="Journal d'audit").click()
    await expect(page).to_have_url(f"{base}/equipe/journal")
    await expect(page.locator("#chain-ok")).to_be_visible()
    journal = page.get_by_role("table")
    for action in (
        "QR code affiché",
        "QR scanné",
        "Code confirmé",
        "Appareil enrôlé",
        "Appareil révoqué",
        "Effacement confirmé par l'appareil",
    ):
        await expect(journal).to_contain_text(action)
    await page.screenshot(path=shots / "5-journal.png", full_page=True)
