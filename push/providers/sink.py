"""The dev sink: records pushes instead of sending them (the demo, and tests of other rooms).

It checks each payload against the allow-list like the real providers and keeps the last
``capacity`` pushes in memory. Production refuses it (``MSSC_PUSH_PROVIDERS=sink`` is dev only).

Each record gets a sequence number, increasing by one per record, and the sink a random ``epoch``:
the demo's push feed (``GET /api/v1/dev/pushes``) hands out ``(epoch, seq)`` cursors and long-polls
with :meth:`SinkProvider.wait_after`, and a cursor from before a restart names another epoch.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import deque
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from contracts.push import AlertClass, validate_push_payload
from push.providers.base import Outcome, PushKind, PushNotification, PushPriority, PushProvider


@dataclass(frozen=True, slots=True)
class SinkRecord:
    """One recorded push: what a phone would have received, and how."""

    at: float
    push_id: str
    device_id: str
    alert_class: AlertClass
    kind: PushKind
    priority: PushPriority
    collapse_id: str | None
    expires_at: float
    #: The payload exactly as on the wire (``PushPayload`` JSON object).
    payload: dict[str, Any]
    #: Position in this sink (1, 2, …): feeds resume after the last one they saw.
    seq: int = 0


class SinkProvider(PushProvider[dict[str, Any]]):
    """Accepts every push (except to tokens marked dead) and records it."""

    name = "sink"

    def __init__(
        self,
        *,
        capacity: int = 1000,
        dead_tokens: Collection[str] = (),
        concurrency: int = 50,
        send_timeout_s: float = 10.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(concurrency=concurrency, send_timeout_s=send_timeout_s, clock=clock)
        self._records: deque[SinkRecord] = deque(maxlen=capacity)
        self._dead = set(dead_tokens)
        self._changed = asyncio.Condition()
        self._seq = 0
        #: Names this sink's numbering: sequence numbers restart with a new sink (a restart).
        self.epoch = secrets.token_hex(4)

    def mark_dead(self, token: str) -> None:
        """Answer "dead token" for ``token`` from now on, as APNs and FCM would after an uninstall."""
        self._dead.add(token)

    def records(self, device_id: str | None = None) -> list[SinkRecord]:
        return [r for r in self._records if device_id is None or r.device_id == device_id]

    @property
    def last_seq(self) -> int:
        """The sequence number of the newest record ever made (0 before the first)."""
        return self._seq

    def records_after(self, after: int, device_ids: Collection[str]) -> list[SinkRecord]:
        """Records of ``device_ids`` newer than sequence number ``after``, oldest first."""
        return [r for r in self._records if r.seq > after and r.device_id in device_ids]

    def clear(self) -> None:
        self._records.clear()

    async def wait_after(self, after: int, device_ids: Collection[str], *, timeout_s: float) -> list[SinkRecord]:
        """:meth:`records_after`, waiting up to ``timeout_s`` for the first one (a long poll): an
        empty list when nothing came in time."""
        found = self.records_after(after, device_ids)
        if found or timeout_s <= 0:
            return found
        try:
            async with asyncio.timeout(timeout_s), self._changed:
                await self._changed.wait_for(lambda: self._seq > after and bool(self.records_after(after, device_ids)))
        except TimeoutError:
            pass
        return self.records_after(after, device_ids)

    async def wait_for(self, device_id: str, *, count: int = 1, timeout_s: float = 5.0) -> list[SinkRecord]:
        """Wait until ``device_id`` has at least ``count`` recorded pushes; ``TimeoutError`` otherwise."""
        async with asyncio.timeout(timeout_s), self._changed:
            await self._changed.wait_for(lambda: len(self.records(device_id)) >= count)
        return self.records(device_id)

    def render(self, notification: PushNotification) -> dict[str, Any]:
        wire = notification.payload.to_wire()
        validate_push_payload(wire)
        return wire

    async def send_one(self, notification: PushNotification, rendered: dict[str, Any]) -> Outcome:
        if notification.token in self._dead:
            return Outcome.dead("sink: marked dead")
        self._seq += 1
        self._records.append(
            SinkRecord(
                at=self.clock(),
                push_id=notification.push_id,
                device_id=notification.device_id,
                alert_class=notification.alert_class,
                kind=notification.kind,
                priority=notification.priority,
                collapse_id=notification.collapse_id,
                expires_at=notification.expires_at,
                payload=rendered,
                seq=self._seq,
            )
        )
        async with self._changed:
            self._changed.notify_all()
        return Outcome.accepted()
