"""Helpers for the tests of the demo's push feed, ``mssc-phone listen`` and the dev notifications page.

The CLI runs in the test's event loop and reaches the app in-process (its ``PhoneClient`` is swapped
for one over an ASGI transport); its profile lives under a temporary ``XDG_CONFIG_HOME``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from contracts.push import AlertClass
from core.settings import WatcherSettings
from phone import cli
from phone.client import PhoneClient, PhoneState
from push.payload import PushTarget, alert_payload, build_notification, mail_payload
from push.providers.sink import SinkProvider
from tests.harness import BASE, Harness

#: The watcher finds a newly push-enabled mailbox within a third of a second (10 s by default).
FAST_WATCHER = WatcherSettings(discover_every_s=0.3, coalesce_s=0.05, lease_ttl_s=1.2)


async def until(predicate: Callable[[], bool], *, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.02)


def in_process_cli(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """``mssc-phone`` commands reach this app without a socket."""

    class InProcessPhone(PhoneClient):
        def __init__(self, state: PhoneState, **kwargs: Any) -> None:
            http = httpx.AsyncClient(transport=httpx.ASGITransport(app=h.app), base_url=BASE)  # type: ignore[arg-type]
            super().__init__(state, http=http, **kwargs)

    monkeypatch.setattr(cli, "PhoneClient", InProcessPhone)


class Console:
    """What the CLI printed so far (``capsys`` hands it out once: this keeps all of it)."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self._capsys = capsys
        self._text = ""

    @property
    def text(self) -> str:
        self._text += self._capsys.readouterr().out
        return self._text

    async def wait_for(self, fragment: str, *, timeout_s: float = 10.0) -> None:
        await until(lambda: fragment in self.text, timeout_s=timeout_s)


def sink_of(h: Harness) -> SinkProvider:
    sink = h.container.providers.sink
    assert sink is not None
    return sink


async def watched(h: Harness, mailbox_id: str) -> None:
    """Until the app's watcher idles on this mailbox (a delivery before that is not announced)."""
    wanted = uuid.UUID(mailbox_id)

    def idling() -> bool:
        watcher = h.container.watcher
        found = next((m for m in watcher.watching if uuid.UUID(m) == wanted), None)
        watch = watcher.watch_of(found) if found is not None else None
        return watch is not None and watch.connected

    await until(idling)


async def record_push(
    sink: SinkProvider,
    device_id: str,
    alert_class: AlertClass = AlertClass.MAIL,
    *,
    event_id: str | None = None,
    ref: str | None = None,
) -> str:
    """Hand the sink one push for ``device_id``, as the pipeline would; its event id."""
    event = event_id or uuid.uuid4().hex
    opaque = ref or str(uuid.uuid4())
    payload = (
        mail_payload(event_id=event, mailbox_id=opaque, badge=1)
        if alert_class is AlertClass.MAIL
        else alert_payload(alert_class, event_id=event, alert_id=opaque)
    )
    target = PushTarget(device_id=device_id, provider="sink", token="sink-test-token")
    report = await sink.send([build_notification(target, payload, push_id=str(uuid.uuid4()))])
    assert len(report.accepted) == 1
    return event
