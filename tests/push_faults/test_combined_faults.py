"""Everything goes wrong at once, and nothing is lost.

Real parts: Dovecot (the operator), PostgreSQL, a private Redis with the append-only file on, the
local APNs and FCM peers, the IMAP IDLE watcher, and push workers in processes of their own. While
mail and alerts keep coming:

1. a push worker is killed (SIGKILL) with a batch in flight at APNs; another one takes over;
2. Redis is killed (SIGKILL) and started again from its append-only file;
3. every IMAP connection of the operator drops, mail arrives while the watcher reconnects, and a
   phone is revoked;
4. APNs answers 429 and 503 to everything for a while.

Then we count, at the peers: every message is announced to every entitled device (coalesced per
mailbox: a device's newest push for a mailbox carries the final unread count, so it covers every
message), every alert reaches every device of its recipients, the revoked phone gets its wipe and
nothing of what came after, and an outsider gets no mail at all. Duplicates are allowed (at least
once; phones de-duplicate by event id). Nothing of the messages appears in what the peers received.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import secrets
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from backend.mail.operator import MasterUserAuth
from contracts.events import EventType
from contracts.push import AlertClass
from core.db.engine import Database
from core.db.models import (
    Device,
    Mailbox,
    MailboxGrant,
    MailboxKind,
    Membership,
    MembershipStatus,
    Professional,
    Structure,
)
from core.ephemeral import RedisEphemeral
from core.fanout import new_event
from core.queue import QueuePolicy, RedisStreamQueue
from core.settings import OperatorSettings, PushSettings
from push.delivery import RetryPolicy
from push.metrics import PushMetrics
from push.pipeline import PushPipeline
from push.providers.factory import PushProviders
from push.watcher import RedisLeases, WatchedMailbox, Watcher, push_enabled_mailboxes, session_opener
from tests.conftest import Backends
from tests.peers.apns import SERVICE_UNAVAILABLE, ApnsPeer, ApnsReply
from tests.peers.dovecot import DovecotInstance
from tests.peers.fcm import FcmPeer
from tests.peers.fixtures import MailboxFactory
from tests.peers.private_redis import PrivateRedis
from tests.push_watcher.conftest import TEST_WATCHER

pytestmark = [pytest.mark.parametrize("backends", ["redis+postgres"], indirect=True), pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]
PHASES = 4
CANARIES = ("CANARY-SUBJECT-7f3a", "canary.sender.9b1c@", "CANARY-BODY-2e8d", "CANARY-PATIENT-Durandal")


@dataclasses.dataclass
class Phone:
    name: str
    device_id: str
    provider: str
    token: str
    professional_id: uuid.UUID


@dataclasses.dataclass
class World:
    phones: dict[str, Phone]
    #: mailbox id → (address, phase, names of the phones entitled to it)
    mailboxes: dict[str, tuple[str, int, set[str]]]
    alert_recipients: list[uuid.UUID]
    revoked: str = "member-apns"


async def _seed(db: Database, mailbox_factory: MailboxFactory) -> World:
    """A pharmacy: the titulaire (two phones), a member with a read grant (two phones; one will be
    revoked), a member without a grant (one phone). Per phase: an organisational mailbox and the
    member's own nominative one, so each phase's mail is counted on its own."""
    phones: dict[str, Phone] = {}
    mailboxes: dict[str, tuple[str, int, set[str]]] = {}
    async with db.transaction() as session:
        pharmacy = Structure(idnat=f"1{secrets.randbelow(10**9):09d}", name="Pharmacie")
        people = {role: Professional(idnat=f"8{secrets.randbelow(10**11):011d}") for role in ("tit", "mem", "out")}
        session.add_all([pharmacy, *people.values()])
        await session.flush()
        for person in people.values():
            session.add(Membership(structure_id=pharmacy.id, professional_id=person.id, status=MembershipStatus.ACTIVE))
        for name, role, provider in (
            ("titulaire-apns", "tit", "apns"),
            ("titulaire-fcm", "tit", "fcm"),
            ("member-fcm", "mem", "fcm"),
            ("member-apns", "mem", "apns"),
            ("outsider-apns", "out", "apns"),
        ):
            token = secrets.token_hex(32) if provider == "apns" else secrets.token_urlsafe(40)
            device = Device(
                professional_id=people[role].id,
                structure_id=pharmacy.id,
                name=name,
                platform="ios" if provider == "apns" else "android",
                binding="es256",
                jkt=secrets.token_urlsafe(32),
                public_jwk={"kty": "EC"},
                push_provider=provider,
                push_token=token,
            )
            session.add(device)
            await session.flush()
            phones[name] = Phone(name, str(device.id), provider, token, people[role].id)
        for phase in range(1, PHASES + 1):
            organisational = Mailbox(
                address=mailbox_factory().address.lower(), kind=MailboxKind.ORGANISATIONAL, structure_id=pharmacy.id
            )
            nominative = Mailbox(
                address=mailbox_factory().address.lower(),
                kind=MailboxKind.NOMINATIVE,
                professional_id=people["mem"].id,
            )
            session.add_all([organisational, nominative])
            await session.flush()
            for role in ("tit", "mem"):
                session.add(MailboxGrant(mailbox_id=organisational.id, professional_id=people[role].id, can_read=True))
            everyone_granted = {"titulaire-apns", "titulaire-fcm", "member-fcm", "member-apns"}
            mailboxes[str(organisational.id)] = (organisational.address, phase, everyone_granted)
            mailboxes[str(nominative.id)] = (nominative.address, phase, {"member-fcm", "member-apns"})
    return World(phones, mailboxes, [people["tit"].id, people["out"].id])


def _message(n: int) -> bytes:
    message = EmailMessage()
    message["From"] = f"Dr Test <{CANARIES[1]}hopital.mssante.fr>"
    message["To"] = "officine@pharmacie.mssante.fr"
    message["Subject"] = f"{CANARIES[0]} compte rendu {n} — {CANARIES[3]}"
    message["Message-ID"] = f"<{uuid.uuid4().hex}@hopital.mssante.fr>"
    message.set_content(f"{CANARIES[2]} Patient {CANARIES[3]}, ordonnance {n}.")
    return message.as_bytes()


class Worker:
    """A push worker process (``push_worker_process``), killed without mercy."""

    def __init__(self, name: str, config: dict[str, Any]) -> None:
        self.name = name
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.push_faults.push_worker_process", json.dumps(config | {"consumer": name})],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )

    async def started(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None

        def wait() -> None:  # structlog writes to stdout too
            while (line := stdout.readline()) and line.strip() != b"started":
                pass

        await asyncio.wait_for(asyncio.to_thread(wait), 30)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.process.stdout is not None:
            self.process.stdout.close()


@pytest.fixture
async def aof_redis(tmp_path: Path) -> AsyncIterator[PrivateRedis]:
    server = PrivateRedis(tmp_path, appendonly=True)
    await server.start()
    try:
        yield server
    finally:
        await server.kill()


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop()


class Received:
    """What the peers accepted (HTTP 200), by phone: the payloads exactly as sent."""

    def __init__(self, world: World, apns: ApnsPeer, fcm: FcmPeer) -> None:
        by_token = {phone.token: phone.name for phone in world.phones.values()}
        self.pushes: dict[str, list[tuple[float, dict[str, Any]]]] = defaultdict(list)
        for record in apns.records:
            if record.status == 200 and record.token in by_token:
                self.pushes[by_token[record.token]].append((record.at, dict(record.json["mssc"])))
        for fcm_record in fcm.records:
            if fcm_record.status == 200 and fcm_record.token in by_token and fcm_record.message is not None:
                self.pushes[by_token[fcm_record.token]].append((fcm_record.at, dict(fcm_record.message["data"])))

    def badges(self, phone: str, mailbox_id: str) -> list[int]:
        return [
            int(payload.get("badge", 0))
            for _, payload in self.pushes[phone]
            if payload.get("alertClass") == AlertClass.MAIL and payload.get("mailboxId") == mailbox_id
        ]

    def alerts(self, phone: str) -> set[str]:
        return {str(payload.get("alertId")) for _, payload in self.pushes[phone] if "alertId" in payload}

    def classes(self, phone: str) -> list[str]:
        return [str(payload.get("alertClass")) for _, payload in self.pushes[phone]]


def _missing(world: World, received: Received, delivered: dict[str, int], alerts: list[uuid.UUID]) -> list[str]:
    """What has not arrived yet (empty: everything has)."""
    missing = []
    for mailbox_id, (_, phase, entitled) in world.mailboxes.items():
        for phone in entitled:
            if phone == world.revoked:
                continue  # entitled only until its revocation, which may come first: checked apart
            if max(received.badges(phone, mailbox_id), default=0) < delivered[mailbox_id]:
                missing.append(f"phase {phase} mailbox {mailbox_id[:8]} → {phone}")
    for alert_id in alerts:
        for device in world.phones.values():
            if device.professional_id in world.alert_recipients and str(alert_id) not in received.alerts(device.name):
                missing.append(f"alert {str(alert_id)[:8]} → {device.name}")
    if AlertClass.WIPE not in received.classes(world.revoked):
        missing.append(f"wipe → {world.revoked}")
    return missing


async def test_nothing_is_lost_when_everything_fails_at_once(
    backends: Backends,
    database: Database,
    aof_redis: PrivateRedis,
    workers: list[Worker],
    dovecot: DovecotInstance,
    mailbox_factory: MailboxFactory,
    operator_settings: OperatorSettings,
    apns_peer: ApnsPeer,
    fcm_peer: FcmPeer,
    push_settings: PushSettings,
    tmp_path: Path,
) -> None:
    world = await _seed(database, mailbox_factory)
    namespace = f"mssc-faults-{uuid.uuid4().hex[:8]}"
    push = dataclasses.replace(
        push_settings, providers=("apns", "fcm"), backoff_base_s=0.2, backoff_max_s=1.0, max_tries=4, send_timeout_s=3
    )
    config = {
        "db_url": backends.db.url,
        "redis_url": aof_redis.url,
        "namespace": namespace,
        "data_dir": str(tmp_path / "worker"),
        "reclaim_idle_ms": 1500,
        "batch": 20,
        "push": {f.name: getattr(push, f.name) for f in dataclasses.fields(push)},
    }
    # The watcher (in this process) and a producer of alerts and revocations, on the same Redis.
    queue = RedisStreamQueue.from_url(aof_redis.url, namespace, QueuePolicy(max_attempts=50))
    ephemeral = RedisEphemeral.from_url(aof_redis.url, namespace)
    producer = PushPipeline(
        db=database, queue=queue, providers=PushProviders({}), retry=RetryPolicy(), metrics=PushMetrics()
    )

    async def discover() -> list[WatchedMailbox]:
        return await push_enabled_mailboxes(database)

    auth = MasterUserAuth(user=dovecot.master_user, password=dovecot.master_password, style="dovecot")
    watcher = Watcher(
        settings=dataclasses.replace(TEST_WATCHER, lease_ttl_s=3.0),
        queue=queue,
        ephemeral=ephemeral,
        leases=RedisLeases.from_url(aof_redis.url, namespace, "watcher-1", 3.0),
        discover=discover,
        opener=session_opener(operator_settings, auth, None),
        watcher_id="watcher-1",
    )
    delivered: dict[str, int] = defaultdict(int)
    alerts: list[uuid.UUID] = []
    counter = 0

    def deliver_phase(phase: int, messages: int = 2) -> None:
        nonlocal counter
        for mailbox_id, (address, mailbox_phase, _) in world.mailboxes.items():
            if mailbox_phase == phase:
                for _ in range(messages):
                    counter += 1
                    dovecot.deliver(address, _message(counter))
                    delivered[mailbox_id] += 1

    async def raise_alert() -> None:
        alert_id = uuid.uuid4()
        alerts.append(alert_id)
        await producer.notify_alert(
            alert_id=alert_id, alert_class=AlertClass.VISIT_ALERT, professionals=world.alert_recipients, step=1
        )

    async def until(condition: Any, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            assert time.monotonic() < deadline, what
            await asyncio.sleep(0.05)

    await watcher.start()
    try:
        await until(lambda: watcher.stats().connected == len(world.mailboxes), 20, "every mailbox watched")
        first = Worker("worker-a", config)
        workers.append(first)
        await first.started()

        # 1. a worker dies with pushes in flight at APNs (the peer answers slowly)
        apns_peer.default_delay_s = 1.0
        deliver_phase(1)
        await raise_alert()
        await until(lambda: len(apns_peer.records) >= 2, 20, "APNs received the first batch")
        first.kill()
        apns_peer.default_delay_s = 0.0
        second = Worker("worker-b", config)
        workers.append(second)
        await second.started()

        # 2. Redis crashes with events and pushes queued, and comes back from its append-only file
        deliver_phase(2)
        await raise_alert()
        await asyncio.sleep(0.3)
        await aof_redis.kill()
        await aof_redis.start()

        # 3. a phone is revoked; the operator drops every IMAP connection; mail comes in meanwhile
        revoked = world.phones[world.revoked]
        async with database.transaction() as session:
            device = await session.get(Device, uuid.UUID(revoked.device_id))
            assert device is not None
            device.revoked_at = dt.datetime.now(dt.UTC)
        revoked_at = time.time()
        await producer.publish(new_event(EventType.DEVICE_REVOKED, device_id=revoked.device_id, reason="titulaire"))
        assert dovecot.drop_imap_sessions() > 0
        deliver_phase(3)

        # 4. APNs throttles, then is down, for a while
        apns_peer.outage(3.0, ApnsReply.error(429, "TooManyRequests", retry_after="1"), SERVICE_UNAVAILABLE)
        deliver_phase(4)
        await raise_alert()

        deadline = time.monotonic() + 60
        while missing := _missing(world, Received(world, apns_peer, fcm_peer), delivered, alerts):
            assert time.monotonic() < deadline, "never arrived:\n" + "\n".join(missing)
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # late duplicates, if any, land before the counts below
    finally:
        await watcher.stop()
        await ephemeral.close()
        await queue.close()

    received = Received(world, apns_peer, fcm_peer)
    after = {m for m, (_, phase, _) in world.mailboxes.items() if phase >= 3}
    late = [
        payload
        for at, payload in received.pushes[world.revoked]
        if payload.get("mailboxId") in after or (payload.get("alertClass") != AlertClass.WIPE and at > revoked_at + 1.0)
    ]
    assert late == [], "the revoked phone was pushed to after its revocation (a batch in flight aside)"
    assert received.classes("outsider-apns").count(AlertClass.MAIL) == 0, "no grant, no mail push"
    assert any(r.status == 429 for r in apns_peer.records) and any(r.status == 503 for r in apns_peer.records)
    apns_ids = [r.headers.get("apns-id") for r in apns_peer.records]
    assert len(apns_ids) > len(set(apns_ids)), "what the killed worker had in flight was sent again (same apns-id)"
    for phone, pushes in received.pushes.items():
        for _, payload in pushes:
            assert set(payload) <= {"alertClass", "eventId", "mailboxId", "alertId", "badge", "locKey"}, phone
    seen = apns_peer.raw_received + fcm_peer.raw_received
    for canary in CANARIES:
        assert canary.encode() not in seen
