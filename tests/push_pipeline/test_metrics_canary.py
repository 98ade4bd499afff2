"""``/metrics`` of the running app after real mail became a push: counts only, never a word of it."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from contracts.mail import OutgoingMessage
from core.settings import WatcherSettings
from tests.conftest import Backends
from tests.harness import ALL_ROLES, NURSE, running

#: Mailboxes discovered and coalesced quickly: the test waits for seconds, not for the defaults.
FAST_WATCHER = WatcherSettings(discover_every_s=0.3, coalesce_s=0.05, lease_ttl_s=1.2)

SUBJECT = "CANARY-METRICS-SUBJECT Mme Durandal-Canary"
BODY = "CANARY-METRICS-BODY ordonnance de Mme Durandal-Canary"


def _value(text: str, name: str, **labels: str) -> float:
    """One sample's value (0 when absent), the labels matched in any order."""
    for line in text.splitlines():
        if not line.startswith(name + ("{" if labels else " ")):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.partition("}")[0]))
        if all(found.get(key) == value for key, value in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_metrics_count_pushes_and_watched_mailboxes_without_content(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path, sandbox_operator=True, roles=ALL_ROLES, watcher=FAST_WATCHER) as h:
        await h.login(NURSE)
        phone = await h.enrol_phone(name="iPhone CANARY-DEVICE", push_provider="apns", push_token="c" * 64)
        await phone.call("PUT", "/api/v1/me/availability", json={"mode": "en_visite"})  # mail is pushed
        [own, *_] = [m for m in await phone.mailboxes() if m.kind == "nominative"]
        sink = h.container.providers.sink
        assert sink is not None
        device_id = phone.state.device_id or ""

        async def watched() -> bool:
            text = (await h.web.get("/metrics")).text
            return _value(text, "mssc_watched_mailboxes_connected") >= 1

        for _ in range(100):
            if await watched():
                break
            await asyncio.sleep(0.1)
        sent = OutgoingMessage(to=[own.address], subject=SUBJECT, text=BODY)
        await phone.send(own.id, sent)
        await sink.wait_for(device_id, timeout_s=15)
        for _ in range(50):  # the outcome is counted once the provider's answer is back
            text = (await h.web.get("/metrics")).text
            if _value(text, "mssc_pushes_total", alert_class="mail", provider="sink", outcome="accepted"):
                break
            await asyncio.sleep(0.05)
    assert _value(text, "mssc_watched_mailboxes") >= 1
    assert _value(text, "mssc_pushes_total", alert_class="mail", provider="sink", outcome="accepted") >= 1
    for secret in ("CANARY", "Durandal", own.address, NURSE, device_id, "iPhone"):
        assert secret not in text
