"""Watcher tests: a real Dovecot (``tests.peers``), the real durable queue, ephemeral store and leases,
over the embedded backends (in-process) and over a real Redis (db 15, one namespace per test).

* ``stack``: where the watcher's state lives (``memory`` or ``redis``) and an SQLite database with
  the schema, in which ``seed_mailbox`` declares mailboxes with a push-enabled device;
* ``make_watcher``: watchers over that stack, logging into the shared Dovecot as the gateway,
  stopped after the test;
* ``events``: reads ``mail.arrived`` events off the queue as the push worker would.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from backend.mail.operator import MasterUserAuth
from core.db.engine import Database
from core.db.models import Device, Mailbox, MailboxKind, Professional
from core.ephemeral import Ephemeral, MemoryEphemeral, RedisEphemeral
from core.queue import DurableQueue, MemoryQueue, QueuePolicy, RedisStreamQueue
from core.settings import DatabaseSettings, OperatorSettings, WatcherSettings
from push.watcher import (
    EVENTS_STREAM,
    LeaseManager,
    MailArrived,
    MemoryLeases,
    MemoryLeaseTable,
    RedisLeases,
    WatchedMailbox,
    Watcher,
    decode_mail_arrived,
    push_enabled_mailboxes,
    session_opener,
)
from push.watcher.watch import SessionOpener
from tests.conftest import REDIS_URL
from tests.peers.dovecot import DovecotInstance

#: Short leases and ticks: takeovers within a couple of seconds, tests well under a minute.
TEST_WATCHER = WatcherSettings(
    mode="idle",
    lease_ttl_s=1.2,
    idle_refresh_s=60,
    discover_every_s=0.5,
    coalesce_s=0.1,
    reconnect_min_s=0.1,
    reconnect_max_s=0.5,
)


@dataclass
class Stack:
    """One test's backends: the queue, the ephemeral store and the leases of a deployment."""

    name: str
    namespace: str
    db: Database
    queue: DurableQueue
    ephemeral: Ephemeral
    table: MemoryLeaseTable = field(default_factory=MemoryLeaseTable)

    def leases(self, owner: str, ttl_s: float) -> LeaseManager:
        """Another watcher's handle: shares the in-process table, or its own Redis connection."""
        if self.name == "memory":
            return MemoryLeases(owner, ttl_s, self.table)
        return RedisLeases.from_url(REDIS_URL, self.namespace, owner, ttl_s)

    async def seed_mailbox(self, address: str, *, push_token: str | None = "apns-token", provider: str = "apns") -> str:
        """A professional, their nominative mailbox and one device (pushable if it has a token)."""
        async with self.db.transaction() as session:
            person = Professional(idnat=f"8{secrets.randbelow(10**11):011d}", given_name="Test", family_name="Watch")
            session.add(person)
            await session.flush()
            mailbox = Mailbox(address=address.lower(), kind=MailboxKind.NOMINATIVE, professional_id=person.id)
            session.add(mailbox)
            session.add(
                Device(
                    professional_id=person.id,
                    name="iPhone",
                    platform="ios",
                    binding="es256",
                    jkt=secrets.token_urlsafe(32),
                    public_jwk={"kty": "EC"},
                    push_provider=provider if push_token else None,
                    push_token=push_token,
                )
            )
            await session.flush()
            return str(mailbox.id)


@pytest.fixture(params=["memory", "redis"])
async def stack(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stack]:
    db = Database(DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'watcher.sqlite3'}"))
    await db.migrate()
    namespace = f"mssc-test-{uuid.uuid4().hex[:12]}"
    policy = QueuePolicy(maxlen=None)
    if request.param == "memory":
        made = Stack("memory", namespace, db, MemoryQueue(namespace, policy), MemoryEphemeral(namespace))
    else:
        made = Stack(
            "redis",
            namespace,
            db,
            RedisStreamQueue.from_url(REDIS_URL, namespace, policy),
            RedisEphemeral.from_url(REDIS_URL, namespace),
        )
    try:
        yield made
    finally:
        await made.queue.clear()
        await made.queue.close()
        await made.ephemeral.clear()
        await made.ephemeral.close()
        await db.dispose()


@pytest.fixture
def gateway_opener(operator_settings: OperatorSettings, dovecot: DovecotInstance) -> SessionOpener:
    auth = MasterUserAuth(user=dovecot.master_user, password=dovecot.master_password, style="dovecot")
    return session_opener(operator_settings, auth, None)


WatcherFactory = Callable[..., Watcher]


@pytest.fixture
async def make_watcher(stack: Stack, gateway_opener: SessionOpener) -> AsyncIterator[WatcherFactory]:
    made: list[Watcher] = []

    def make(
        owner: str | None = None,
        *,
        settings: WatcherSettings = TEST_WATCHER,
        opener: SessionOpener | None = None,
        discover: Callable[[], Awaitable[list[WatchedMailbox]]] | None = None,
        **overrides: Any,
    ) -> Watcher:
        if overrides:
            settings = dataclasses.replace(settings, **overrides)
        owner = owner or f"watcher-{len(made) + 1}-{secrets.token_hex(2)}"

        async def from_db() -> list[WatchedMailbox]:
            return await push_enabled_mailboxes(stack.db)

        watcher = Watcher(
            settings=settings,
            queue=stack.queue,
            ephemeral=stack.ephemeral,
            leases=stack.leases(owner, settings.lease_ttl_s),
            discover=discover or from_db,
            opener=opener or gateway_opener,
            watcher_id=owner,
        )
        made.append(watcher)
        return watcher

    yield make
    for watcher in made:
        await watcher.stop()


class EventReader:
    """Reads the ``events`` stream in a group of its own, as a push worker would."""

    def __init__(self, queue: DurableQueue) -> None:
        self.queue = queue
        self.seen: list[MailArrived] = []
        self.raw: list[bytes] = []

    async def take(self, *, until: Callable[[list[MailArrived]], bool], timeout_s: float = 5.0) -> list[MailArrived]:
        """Read until ``until(all events so far)`` holds; ``TimeoutError`` otherwise."""
        deadline = time.monotonic() + timeout_s
        while not until(self.seen):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"events so far: {self.seen}")
            await self._read(min(left, 0.2))
        return self.seen

    async def quiet(self, seconds: float) -> list[MailArrived]:
        """Whatever else arrives within ``seconds`` (tests expect nothing)."""
        before = len(self.seen)
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            await self._read(min(left, 0.2))
        return self.seen[before:]

    async def _read(self, block_s: float) -> None:
        deliveries = await self.queue.consume(
            EVENTS_STREAM, "test-reader", "reader", count=100, block_ms=max(1, int(block_s * 1000))
        )
        for delivery in deliveries:
            self.raw.append(delivery.payload)
            self.seen.append(decode_mail_arrived(delivery.payload))
        if deliveries:
            await self.queue.ack(EVENTS_STREAM, "test-reader", [d.id for d in deliveries])

    def of(self, mailbox_id: str) -> list[MailArrived]:
        return [e for e in self.seen if e.mailbox_id == mailbox_id]


@pytest.fixture
async def events(stack: Stack) -> EventReader:
    reader = EventReader(stack.queue)
    await stack.queue.ensure_group(EVENTS_STREAM, "test-reader")
    return reader


def message(n: int = 1) -> bytes:
    """A small MSSanté-like message; the subject is a canary that must never reach an event or a log."""
    return (
        f"From: dr.dubois@medecin.mssante.fr\r\nTo: watcher@pharmacie.mssante.fr\r\n"
        f"Subject: CANARY-SUBJECT-{n}\r\nMessage-ID: <{uuid.uuid4().hex}@medecin.mssante.fr>\r\n"
        f"X-MSS-NIL: MSS-COMPANION-TEST\r\n\r\nCANARY-BODY-{n}\r\n"
    ).encode()


async def deliver(dovecot: DovecotInstance, address: str, count: int = 1) -> None:
    """LMTP deliveries off the event loop (the watcher keeps running meanwhile)."""

    def run() -> None:
        for n in range(count):
            dovecot.deliver(address, message(n + 1))

    await asyncio.to_thread(run)


async def until(predicate: Callable[[], bool], *, timeout_s: float = 5.0, step_s: float = 0.02) -> float:
    """Wait until ``predicate()``; seconds it took. ``TimeoutError`` otherwise."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout_s:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(step_s)
    return time.monotonic() - started


def covered_uids(events: list[MailArrived]) -> list[int]:
    """The UIDs a mailbox's events announce, from each batch's highest UID and count (in order)."""
    uids: list[int] = []
    for event in sorted(events, key=lambda e: e.highest_uid):
        uids += range(event.highest_uid - event.new_count + 1, event.highest_uid + 1)
    return uids
