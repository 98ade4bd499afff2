"""Keyboard and screen-reader basics in headless Chromium: Tab reaches the login, controls have names."""

from __future__ import annotations

import asyncio
import re

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import LiveServer
from tests.browser.flows import decode_qr_png, nameless_controls, open_enrolment, phone_for
from tests.harness import NURSE

pytestmark = [pytest.mark.browser, pytest.mark.timeout(60)]

#: Tab presses allowed to reach the login link: skip link, brand, then the link itself.
MAX_TABS = 5


async def _assert_french(page: Page) -> None:
    await expect(page.locator("html")).to_have_attribute("lang", "fr")


async def test_keyboard_reaches_login_and_controls_are_labelled(live_server: LiveServer, page: Page) -> None:
    base = live_server.url
    await page.goto(f"{base}/")
    await _assert_french(page)

    # Keyboard only: the first Tab shows the skip link, a few more reach "Se connecter avec Pro Santé Connect".
    await page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Aller au contenu")
    await expect(skip).to_be_focused()
    await expect(skip).to_be_in_viewport()
    login = page.get_by_role("link", name="Se connecter avec Pro Santé Connect")
    for _ in range(MAX_TABS):
        if await login.evaluate("el => el === document.activeElement"):
            break
        await page.keyboard.press("Tab")
    await expect(login).to_be_focused()
    await page.keyboard.press("Enter")

    # The sandbox's login form: every control is labelled; it is operated by its labels and the keyboard.
    await expect(page).to_have_url(re.compile(r"/psc-sandbox/"))
    await _assert_french(page)
    assert await nameless_controls(page) == []
    person = page.get_by_role("radio", name=re.compile(r"^Camille Rousseau"))
    await expect(person).to_have_attribute("value", NURSE)
    await person.focus()
    await page.keyboard.press("Space")
    await expect(person).to_be_checked()
    card = page.get_by_role("radio", name=re.compile(r"^Carte CPS"))
    await card.focus()
    await page.keyboard.press("Space")
    await expect(card).to_be_checked()
    await expect(page.get_by_label("Format de la réponse userinfo")).to_be_visible()
    await page.get_by_role("button", name="Se connecter").focus()
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(f"{base}/")
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Bonjour")

    # The enrolment page: a named QR image, named controls, French.
    await open_enrolment(page)
    await _assert_french(page)
    qr = page.get_by_role("img", name=re.compile(r"^QR code d'enrôlement"))
    await expect(qr).to_be_visible()
    await expect(page.get_by_role("navigation", name="Navigation principale")).to_be_visible()
    await expect(page.get_by_role("button", name="Se déconnecter")).to_be_visible()
    assert await nameless_controls(page) == []

    phone = phone_for(base)
    try:
        code = await phone.claim(decode_qr_png(await qr.screenshot()), name="Téléphone de Camille")
        await phone.bind()
        confirm = page.get_by_role("button", name="Oui, c'est le même code")
        await expect(page.get_by_role("alert")).to_contain_text(f"code {code}")
        await expect(confirm).to_be_visible()
        await expect(page.get_by_role("button", name="Non, annuler")).to_be_visible()
        assert await nameless_controls(page) == []
        completion = asyncio.create_task(phone.complete(timeout_s=15))
        await confirm.focus()
        await page.keyboard.press("Enter")
        device_id = (await asyncio.wait_for(completion, 20))["deviceId"]
        await expect(page.get_by_role("status")).to_contain_text("Téléphone « Téléphone de Camille » enrôlé")
    finally:
        await phone.aclose()

    # "Mes appareils": the table has a caption, the name field a label; rename with the keyboard.
    await page.get_by_role("navigation").get_by_role("link", name="Mes appareils").click()
    await expect(page).to_have_url(f"{base}/appareils")
    await _assert_french(page)
    await expect(page.get_by_role("table", name=re.compile(r"^Téléphones ayant accès"))).to_be_visible()
    name = page.get_by_role("textbox", name="Nom de l'appareil")
    await expect(name).to_have_value("Téléphone de Camille")
    await expect(page.get_by_role("button", name="Renommer")).to_be_visible()
    await expect(page.get_by_role("button", name="Révoquer")).to_be_visible()
    assert await nameless_controls(page) == []
    await name.fill("Téléphone pro de Camille")
    await name.press("Enter")
    await expect(page).to_have_url(f"{base}/appareils?ok=renomme")
    await expect(page.locator(f'tr[data-device-id="{device_id}"]').get_by_label("Nom de l'appareil")).to_have_value(
        "Téléphone pro de Camille"
    )

    # On the freshly loaded page, the skip link moves focus to the main content.
    await page.keyboard.press("Tab")
    await expect(skip).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.locator("main#contenu")).to_be_focused()
