"""What a person does in the browser, step by step, and what a phone camera reads off the screen."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import httpx
import zxingcpp
from PIL import Image
from playwright.async_api import Page, expect

from phone.client import PhoneClient, PhoneState

#: Roles of controls a person operates; each needs an accessible name.
CONTROL_ROLES = frozenset(
    {
        "button",
        "textbox",
        "checkbox",
        "radio",
        "combobox",
        "listbox",
        "searchbox",
        "spinbutton",
        "slider",
        "switch",
        "link",
        "menuitem",
    }
)


async def psc_login(page: Page, base_url: str, *, professional: str, auth_mode: str = "card") -> None:
    """Home → "Se connecter avec Pro Santé Connect" → sandbox form → back home, logged in."""
    await page.goto(f"{base_url}/")
    await page.get_by_role("link", name="Se connecter avec Pro Santé Connect").click()
    await expect(page).to_have_url(re.compile(r"/psc-sandbox/"))
    await page.locator(f'input[name="professional"][value="{professional}"]').check()
    await page.locator(f'input[name="auth_mode"][value="{auth_mode}"]').check()
    await page.locator("#psc-sandbox-submit").click()
    await expect(page).to_have_url(f"{base_url}/")
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Bonjour")


async def open_enrolment(page: Page) -> None:
    await page.get_by_role("navigation").get_by_role("link", name="Enrôler un téléphone").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Enrôler un téléphone")
    await expect(page.locator("#enrolment-qr")).to_be_visible()


def decode_qr_png(png: bytes | Path) -> str:
    """The single QR code in a screenshot, read as a phone camera would (zxing-cpp)."""
    image = Image.open(png if isinstance(png, Path) else io.BytesIO(png))
    results = zxingcpp.read_barcodes(image)
    assert len(results) == 1, f"expected one QR code in the screenshot, found {len(results)}"
    return str(results[0].text)


def phone_for(base_url: str) -> PhoneClient:
    """The reference phone client, over real HTTP to the uvicorn server (no cookies shared with the page)."""
    return PhoneClient(PhoneState(base_url=base_url), http=httpx.AsyncClient(base_url=base_url, timeout=15))


async def nameless_controls(page: Page) -> list[dict[str, Any]]:
    """Controls in Chromium's accessibility tree that have no accessible name (should be none)."""
    cdp = await page.context.new_cdp_session(page)
    try:
        tree = await cdp.send("Accessibility.getFullAXTree")
    finally:
        await cdp.detach()
    missing = []
    for node in tree["nodes"]:
        role = node.get("role", {}).get("value")
        if node.get("ignored") or role not in CONTROL_ROLES:
            continue
        if not str(node.get("name", {}).get("value", "")).strip():
            missing.append({"role": role, "backendDOMNodeId": node.get("backendDOMNodeId")})
    return missing
