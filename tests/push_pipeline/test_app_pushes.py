"""Pushes from the running app (dev sink provider): wipes on revocation, alerts, never content."""

from __future__ import annotations

from pathlib import Path

from contracts.push import AlertClass
from tests.conftest import Backends
from tests.harness import ALL_ROLES, NURSE, running


async def test_revocation_sends_a_wipe_to_the_phone(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path, roles=ALL_ROLES) as h:
        await h.login(NURSE)
        phone = await h.enrol_phone(push_provider="apns", push_token="a" * 64)
        page = await h.web.get("/appareils")
        await h.web.post(f"/appareils/{phone.state.device_id}/revoquer", data={"csrf_token": h.csrf(page.text)})
        sink = h.container.providers.sink
        assert sink is not None
        [wipe] = await sink.wait_for(phone.state.device_id or "", timeout_s=5)
        assert wipe.alert_class == AlertClass.WIPE
        assert set(wipe.payload) == {"alertClass", "eventId"}
