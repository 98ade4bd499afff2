"""Pushes from the running app (dev sink provider): wipes on revocation, alerts, never content."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from contracts.events import EventType
from contracts.push import AlertClass
from core.db.models import Device
from core.fanout import new_event
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


async def test_a_dead_token_is_pruned_and_the_phone_told_at_next_refresh(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path, roles=ALL_ROLES) as h:
        await h.login(NURSE)
        phone = await h.enrol_phone(push_provider="apns", push_token="d" * 64)
        await phone.call("PUT", "/api/v1/me/availability", json={"mode": "en_visite"})
        [own, *_] = [m for m in await phone.mailboxes() if m.kind == "nominative"]
        assert phone.state.push_token_needed is False
        sink = h.container.providers.sink
        assert sink is not None
        sink.mark_dead("d" * 64)  # the app was reinstalled: APNs answers 410 Unregistered
        await h.container.pipeline.publish(new_event(EventType.MAIL_ARRIVED, mailbox_id=own.id, unseen=1))
        device_id = phone.state.device_id
        assert device_id is not None
        for _ in range(100):
            async with h.container.db.read() as session:
                row = await session.get(Device, uuid.UUID(device_id))
                assert row is not None
            if row.push_token_dead_at is not None:
                break
            await asyncio.sleep(0.05)
        assert row.push_token_dead_at is not None
        await phone.refresh()
        assert phone.state.push_token_needed is True
        await phone.register_push("apns", "e" * 64)
        await phone.refresh()
        assert phone.state.push_token_needed is False
