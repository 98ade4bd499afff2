"""The push pipeline over the durable queue: who gets a push, wipes, dead tokens, retries, crashes."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Collection

import pytest
from sqlalchemy import select

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
from core.fanout import new_event
from core.queue import DurableQueue, create_queue
from core.settings import PushSettings
from push.delivery import RetryPolicy
from push.metrics import PushMetrics
from push.pipeline import EVENTS, POLICY_GROUP, PushPipeline
from push.providers.factory import PushProviders, providers_from_settings
from push.providers.sink import SinkProvider
from tests.conftest import Backends
from tests.peers.apns import ApnsPeer, ApnsReply


@dataclasses.dataclass
class World:
    db: Database
    queue: DurableQueue
    mailbox: uuid.UUID
    owner_device: Device
    member_device: Device
    outsider_device: Device
    revoked_device: Device


async def _device(
    session: object,
    professional: Professional,
    structure: Structure | None,
    *,
    provider: str = "apns",
    revoked: bool = False,
) -> Device:
    from sqlalchemy.ext.asyncio import AsyncSession

    assert isinstance(session, AsyncSession)
    device = Device(
        professional_id=professional.id,
        structure_id=structure.id if structure else None,
        name="t",
        platform="ios",
        binding="es256",
        jkt=uuid.uuid4().hex,
        public_jwk={},
        push_provider=provider,
        push_token=uuid.uuid4().hex * 2,
        revoked_at=dt.datetime.now(dt.UTC) if revoked else None,
    )
    session.add(device)
    await session.flush()
    return device


@pytest.fixture
async def world(backends: Backends, database: Database) -> AsyncIterator[World]:
    queue = create_queue(backends.store)
    async with database.transaction() as session:
        pharmacy = Structure(idnat=f"1{uuid.uuid4().int % 10**9:09d}", name="Pharmacie")
        titulaire = Professional(idnat=f"8{uuid.uuid4().int % 10**11:011d}")
        member = Professional(idnat=f"8{uuid.uuid4().int % 10**11:011d}")
        outsider = Professional(idnat=f"8{uuid.uuid4().int % 10**11:011d}")
        session.add_all([pharmacy, titulaire, member, outsider])
        await session.flush()
        mailbox = Mailbox(
            address=f"officine{uuid.uuid4().hex[:6]}@pharmacie.mssante.fr",
            kind=MailboxKind.ORGANISATIONAL,
            structure_id=pharmacy.id,
        )
        session.add(mailbox)
        await session.flush()
        for person in (titulaire, member, outsider):
            session.add(Membership(structure_id=pharmacy.id, professional_id=person.id, status=MembershipStatus.ACTIVE))
        session.add_all(
            [
                MailboxGrant(mailbox_id=mailbox.id, professional_id=titulaire.id, can_read=True, can_send=True),
                MailboxGrant(mailbox_id=mailbox.id, professional_id=member.id, can_read=True),
            ]
        )
        owner_device = await _device(session, titulaire, pharmacy)
        member_device = await _device(session, member, pharmacy, provider="fcm")
        outsider_device = await _device(session, outsider, pharmacy)  # member, but no grant
        revoked_device = await _device(session, member, pharmacy, revoked=True)
    yield World(database, queue, mailbox.id, owner_device, member_device, outsider_device, revoked_device)
    await queue.clear()
    await queue.close()


def _pipeline(world: World, providers: PushProviders, **kwargs: object) -> PushPipeline:
    return PushPipeline(
        db=world.db,
        queue=world.queue,
        providers=providers,
        retry=RetryPolicy(max_tries=4, base_delay_s=0.01, max_delay_s=1.0),
        metrics=PushMetrics(),
        **kwargs,
    )  # type: ignore[arg-type]


async def test_new_mail_reaches_entitled_devices_only(world: World) -> None:
    sink = SinkProvider()
    pipeline = _pipeline(world, PushProviders({"sink": sink}))
    event = new_event(EventType.MAIL_ARRIVED, mailbox_id=str(world.mailbox), unseen=3)
    await pipeline.publish(event)
    await pipeline.publish(event)  # at least once upstream: the same event twice
    await pipeline.drain()
    got = {r.device_id for r in sink.records()}
    assert got == {str(world.owner_device.id), str(world.member_device.id)}
    assert len(sink.records()) == 2  # de-duplicated by event id
    record = sink.records()[0]
    assert record.alert_class == AlertClass.MAIL and record.payload["badge"] == 3
    assert set(record.payload) <= {"alertClass", "eventId", "mailboxId", "badge", "locKey"}


async def test_revocation_sends_a_silent_wipe(world: World) -> None:
    sink = SinkProvider()
    pipeline = _pipeline(world, PushProviders({"sink": sink}))
    await pipeline.publish(new_event(EventType.DEVICE_REVOKED, device_id=str(world.revoked_device.id)))
    await pipeline.drain()
    [wipe] = sink.records()
    assert wipe.device_id == str(world.revoked_device.id)
    assert wipe.alert_class == AlertClass.WIPE and wipe.kind.value == "background"


async def test_a_device_revoked_after_its_push_was_queued_gets_only_its_wipe(world: World) -> None:
    sink = SinkProvider()
    pipeline = _pipeline(world, PushProviders({"sink": sink}))
    await pipeline.publish(new_event(EventType.MAIL_ARRIVED, mailbox_id=str(world.mailbox)))
    while await pipeline.run_policy_once():  # the mail pushes are queued for both phones...
        pass
    async with world.db.transaction() as session:  # ...then the member's phone is revoked
        member = await session.get(Device, world.member_device.id)
        assert member is not None
        member.revoked_at = dt.datetime.now(dt.UTC)
    await pipeline.publish(new_event(EventType.DEVICE_REVOKED, device_id=str(world.member_device.id)))
    await pipeline.drain()
    got = sorted((r.device_id, r.alert_class) for r in sink.records())
    assert got == sorted(
        [(str(world.owner_device.id), AlertClass.MAIL), (str(world.member_device.id), AlertClass.WIPE)]
    )
    assert (await world.queue.depth("push", "push-sender")).total == 0  # the dropped push is acknowledged


async def test_dead_token_is_pruned(world: World) -> None:
    sink = SinkProvider(dead_tokens=[world.member_device.push_token or ""])
    pipeline = _pipeline(world, PushProviders({"sink": sink}))
    await pipeline.publish(new_event(EventType.MAIL_ARRIVED, mailbox_id=str(world.mailbox)))
    await pipeline.drain()
    async with world.db.read() as session:
        member = await session.get(Device, world.member_device.id)
        owner = await session.get(Device, world.owner_device.id)
    assert member is not None and member.push_token_dead_at is not None
    assert owner is not None and owner.push_token_dead_at is None


async def test_availability_suppresses_mail_but_never_oncall(world: World) -> None:
    sink = SinkProvider()

    async def at_the_counter(professionals: Collection[uuid.UUID], alert_class: AlertClass) -> set[uuid.UUID]:
        return set() if alert_class == AlertClass.MAIL else set(professionals)

    pipeline = _pipeline(world, PushProviders({"sink": sink}), allow=at_the_counter)
    await pipeline.publish(new_event(EventType.MAIL_ARRIVED, mailbox_id=str(world.mailbox)))
    await pipeline.notify_alert(
        alert_id=uuid.uuid4(),
        alert_class=AlertClass.ONCALL_ALERT,
        professionals=[world.owner_device.professional_id],
        step=1,
    )
    await pipeline.drain()
    assert [r.alert_class for r in sink.records()] == [AlertClass.ONCALL_ALERT]


async def test_a_crashed_worker_loses_nothing(world: World) -> None:
    sink = SinkProvider()
    await _pipeline(world, PushProviders({"sink": sink})).publish(
        new_event(EventType.MAIL_ARRIVED, mailbox_id=str(world.mailbox))
    )
    # a worker takes the event and dies before acknowledging it
    taken = await world.queue.consume(EVENTS, POLICY_GROUP, "dead-worker", count=10)
    assert len(taken) == 1
    survivor = _pipeline(world, PushProviders({"sink": sink}), reclaim_idle_ms=50)
    import asyncio

    await asyncio.sleep(0.1)
    await survivor.drain()
    assert {r.device_id for r in sink.records()} == {str(world.owner_device.id), str(world.member_device.id)}


@pytest.mark.parametrize("backends", ["redis+postgres"], indirect=True)
async def test_apns_busy_then_accepting_delivers_once(
    world: World, apns_peer: ApnsPeer, push_settings: PushSettings, tmp_path: object
) -> None:
    from core.settings import AppSettings, Settings

    settings = Settings(
        app=AppSettings(data_dir=str(tmp_path)), push=dataclasses.replace(push_settings, providers=("apns",))
    )
    providers = providers_from_settings(settings)
    token = world.owner_device.push_token or ""
    apns_peer.script(token, ApnsReply.error(429, "TooManyRequests"), ApnsReply.error(503, "ServiceUnavailable"))
    pipeline = _pipeline(world, providers)
    async with world.db.transaction() as session:  # only the titulaire's phone for this test
        for device in (await session.scalars(select(Device).where(Device.id != world.owner_device.id))).all():
            device.push_token = None
    await pipeline.publish(new_event(EventType.MAIL_ARRIVED, mailbox_id=str(world.mailbox)))
    for _ in range(50):
        await pipeline.drain()
        if any(r.status == 200 for r in apns_peer.records if r.token == token):
            break
        import asyncio

        await asyncio.sleep(0.05)
    statuses = [r.status for r in apns_peer.records if r.token == token]
    assert statuses == [429, 503, 200]
    assert (
        len({r.headers.get("apns-id") for r in apns_peer.records if r.token == token}) == 1
    )  # stable apns-id across retries
    await providers.aclose()


@pytest.mark.parametrize("backends", ["embedded"], indirect=True)
@pytest.mark.parametrize(
    ("invalid_minutes_ago", "registered_minutes_ago", "pruned"),
    [(60, 5, False), (5, 60, True)],
    ids=["given-again-after-apple-dropped-it", "dropped-after-it-was-given"],
)
async def test_apns_410_timestamp_against_when_the_token_was_given(
    world: World,
    apns_peer: ApnsPeer,
    push_settings: PushSettings,
    tmp_path: object,
    invalid_minutes_ago: int,
    registered_minutes_ago: int,
    pruned: bool,
) -> None:
    from core.settings import AppSettings, Settings

    now = dt.datetime.now(dt.UTC)
    token = world.owner_device.push_token or ""
    async with world.db.transaction() as session:  # only the titulaire's phone, its token given back then
        for device in (await session.scalars(select(Device))).all():
            if device.id == world.owner_device.id:
                device.push_token_registered_at = now - dt.timedelta(minutes=registered_minutes_ago)
            else:
                device.push_token = None
    invalid_since = now - dt.timedelta(minutes=invalid_minutes_ago)
    apns_peer.script(token, ApnsReply(410, "Unregistered", timestamp_ms=int(invalid_since.timestamp() * 1000)))
    settings = Settings(
        app=AppSettings(data_dir=str(tmp_path)), push=dataclasses.replace(push_settings, providers=("apns",))
    )
    providers = providers_from_settings(settings)
    try:
        pipeline = _pipeline(world, providers)
        await pipeline.publish(new_event(EventType.MAIL_ARRIVED, mailbox_id=str(world.mailbox)))
        await pipeline.drain()
    finally:
        await providers.aclose()
    assert [r.status for r in apns_peer.records if r.token == token] == [410]
    async with world.db.read() as session:
        owner = await session.get(Device, world.owner_device.id)
    assert owner is not None and (owner.push_token_dead_at is not None) is pruned
