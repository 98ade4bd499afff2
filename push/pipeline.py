"""The push pipeline: events → policy (who, how urgent) → content-free pushes → providers.

Two consumers over the durable queue, so a crash loses nothing (at least once; phones de-duplicate
by event id, and a re-processed event yields the same push id):

* the **policy** stage reads ``events`` and writes one job per entitled device on ``push``;
* the **sender** stage reads ``push``, sends in batches per provider, acknowledges what the
  provider accepted, schedules retries on the queue (``Retry-After`` and backoff), prunes dead
  tokens, and dead-letters permanent failures.

Nothing here reads a message: events carry ids and counts; payloads are checked against the
allow-list in ``contracts.push`` before they are queued.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any

import msgspec
from sqlalchemy import and_, exists, or_, select, update

from contracts.events import Event, EventType
from contracts.push import AlertClass, PushPayload, validate_push_payload
from core.db.engine import Database
from core.db.models import Device, Mailbox, MailboxGrant, Membership, MembershipStatus
from core.logging import get_logger
from core.queue import Delivery, DurableQueue
from core.tasks import cancel_and_wait, stop_if_cancelled
from push.delivery import RetryPolicy
from push.metrics import PushMetrics
from push.payload import PushTarget, alert_payload, build_notification, mail_payload, wipe_payload
from push.providers.base import PushKind, PushNotification, PushPriority
from push.providers.factory import PushProviders

log = get_logger("mssc.push")

EVENTS = "events"
PUSH = "push"
POLICY_GROUP = "push-policy"
SENDER_GROUP = "push-sender"

#: Which of these professionals may get this class of push now? (availability, quiet hours; all of
#: them by default). Asked once per class and batch of events.
Allow = Callable[[Collection[uuid.UUID], AlertClass], Awaitable[set[uuid.UUID]]]


async def _always(professionals: Collection[uuid.UUID], _alert_class: AlertClass) -> set[uuid.UUID]:
    return set(professionals)


class PushJob(msgspec.Struct, kw_only=True):
    """One queued push: the device's address and an allow-listed payload. No content can fit in it."""

    push_id: str
    device_id: str
    provider: str
    token: str
    payload: dict[str, Any]
    kind: str
    priority: str
    expires_at: float
    collapse_id: str | None = None
    #: When the event entered the pipeline (latency metric).
    queued_at: float = 0.0

    @classmethod
    def of(cls, notification: PushNotification, provider: str, queued_at: float) -> PushJob:
        return cls(
            push_id=notification.push_id,
            device_id=notification.device_id,
            provider=provider,
            token=notification.token,
            payload=notification.payload.to_wire(),
            kind=notification.kind.value,
            priority=notification.priority.value,
            expires_at=notification.expires_at,
            collapse_id=notification.collapse_id,
            queued_at=queued_at,
        )

    def notification(self) -> PushNotification:
        payload: PushPayload = validate_push_payload(self.payload)
        return PushNotification(
            push_id=self.push_id,
            device_id=self.device_id,
            token=self.token,
            payload=payload,
            kind=PushKind(self.kind),
            priority=PushPriority(self.priority),
            expires_at=self.expires_at,
            collapse_id=self.collapse_id,
        )


class PushPipeline:
    def __init__(
        self,
        *,
        db: Database,
        queue: DurableQueue,
        providers: PushProviders,
        retry: RetryPolicy,
        metrics: PushMetrics,
        consumer: str | None = None,
        allow: Allow = _always,
        batch: int = 200,
        reclaim_idle_ms: int = 30_000,
    ) -> None:
        self._db = db
        self._queue = queue
        self._providers = providers
        self._retry = retry
        self.metrics = metrics
        self._consumer = consumer or f"worker-{uuid.uuid4().hex[:8]}"
        self._allow = allow
        self._batch = batch
        #: A consumer silent this long is presumed dead: its pending entries are taken over.
        self._reclaim_idle_ms = reclaim_idle_ms
        self._tasks: list[asyncio.Task[None]] = []
        self._groups_ready = False

    # entering the pipeline -----------------------------------------------------------------------

    async def publish(self, event: Event) -> None:
        """Durably record an event; the policy stage turns it into pushes."""
        await self._queue.enqueue(EVENTS, msgspec.json.encode(event), dedupe_key=event.id)

    # policy stage --------------------------------------------------------------------------------

    async def _groups(self) -> None:
        if not self._groups_ready:
            await self._queue.ensure_group(EVENTS, POLICY_GROUP)
            await self._queue.ensure_group(PUSH, SENDER_GROUP)
            self._groups_ready = True

    async def run_policy_once(self, *, block_ms: int = 0) -> int:
        """One batch of events: the entitled devices of every mail event in one query, availability in
        one query per class, then the jobs, then one acknowledgement for the batch."""
        await self._groups()
        deliveries = await self._queue.consume(
            EVENTS, POLICY_GROUP, self._consumer, count=self._batch, block_ms=block_ms
        )
        deliveries += await self._queue.reclaim(
            EVENTS, POLICY_GROUP, self._consumer, min_idle_ms=self._reclaim_idle_ms, count=self._batch
        )
        events: list[Event] = []
        done: list[str] = []
        for delivery in deliveries:
            try:
                events.append(msgspec.json.decode(delivery.payload, type=Event))
                done.append(delivery.id)
            except msgspec.DecodeError:
                await self._queue.dead_letter(EVENTS, POLICY_GROUP, delivery.id, reason="undecodable")
        if events:
            await self._expand(events)
            await self._queue.ack(EVENTS, POLICY_GROUP, done)
        return len(deliveries)

    async def _expand(self, events: Sequence[Event]) -> None:
        now = time.time()
        mail = [e for e in events if e.type == EventType.MAIL_ARRIVED and e.mailbox_id]
        entitled = await self._mail_devices([uuid.UUID(e.mailbox_id or "") for e in mail]) if mail else {}
        allowed = await self._allowed([d for devices in entitled.values() for d in devices], AlertClass.MAIL)
        jobs: list[tuple[bytes, str | None]] = []
        for event in events:
            if event.type == EventType.MAIL_ARRIVED and event.mailbox_id:
                devices = entitled.get(uuid.UUID(event.mailbox_id), [])
                payload = mail_payload(event_id=_uuid(event.id), mailbox_id=event.mailbox_id, badge=_badge(event))
                jobs += self._jobs(devices, payload, AlertClass.MAIL, now, allowed)
            elif event.type == EventType.DEVICE_REVOKED and event.device_id:
                devices = await self._devices_by_id([uuid.UUID(event.device_id)], include_revoked=True)
                jobs += self._jobs(devices, wipe_payload(event_id=_uuid(event.id)), AlertClass.WIPE, now)
        await self._queue.enqueue_many(PUSH, jobs)

    async def _allowed(self, devices: Sequence[Device], alert_class: AlertClass) -> set[uuid.UUID]:
        """The professionals among these devices' owners who may get this class now (one question)."""
        if alert_class in (AlertClass.WIPE, AlertClass.ONCALL_ALERT) or not devices:
            return {d.professional_id for d in devices}
        return await self._allow({d.professional_id for d in devices}, alert_class)

    async def notify_alert(
        self, *, alert_id: uuid.UUID, alert_class: AlertClass, professionals: Sequence[uuid.UUID], step: int
    ) -> None:
        """Alerts (visit, on-call): the recipients' devices; the push says only the class."""
        event_id = uuid.uuid5(alert_id, f"step-{step}")
        devices = await self._devices_of(professionals)
        payload = alert_payload(alert_class, event_id=event_id, alert_id=alert_id)
        allowed = await self._allowed(devices, alert_class)
        await self._queue.enqueue_many(PUSH, self._jobs(devices, payload, alert_class, time.time(), allowed))

    def _jobs(
        self,
        devices: Sequence[Device],
        payload: PushPayload,
        alert_class: AlertClass,
        now: float,
        allowed: set[uuid.UUID] | None = None,
    ) -> list[tuple[bytes, str | None]]:
        """One job per device, with its dedupe key (the push id); ``allowed``: the owners who may get
        it now (all when ``None``)."""
        jobs: list[tuple[bytes, str | None]] = []
        for device in devices:
            target = PushTarget.of(device)
            if target is None:
                continue
            if allowed is not None and device.professional_id not in allowed:
                self.metrics.suppressed(alert_class.value)
                continue
            notification = build_notification(target, payload, now=now)
            jobs.append((msgspec.json.encode(PushJob.of(notification, target.provider, now)), notification.push_id))
        return jobs

    async def _mail_devices(self, mailbox_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, list[Device]]:
        """Devices entitled to each mailbox, in one query: its owner's, and members' with a read grant
        acting for its structure."""
        granted = exists().where(
            MailboxGrant.mailbox_id == Mailbox.id,
            MailboxGrant.professional_id == Device.professional_id,
            MailboxGrant.can_read.is_(True),
        )
        member = exists().where(
            Membership.structure_id == Mailbox.structure_id,
            Membership.professional_id == Device.professional_id,
            Membership.status == MembershipStatus.ACTIVE,
        )
        entitled = or_(
            Device.professional_id == Mailbox.professional_id,
            and_(Device.structure_id == Mailbox.structure_id, granted, member),
        )
        query = (
            select(Mailbox.id, Device)
            .join(Device, entitled)
            .where(Mailbox.id.in_(list(mailbox_ids)), Device.revoked_at.is_(None), Device.push_token.is_not(None))
        )
        found: dict[uuid.UUID, list[Device]] = defaultdict(list)
        async with self._db.read() as session:
            for mailbox_id, device in (await session.execute(query)).unique().all():
                found[mailbox_id].append(device)
        return found

    async def _devices_of(self, professionals: Sequence[uuid.UUID]) -> list[Device]:
        async with self._db.read() as session:
            query = select(Device).where(
                Device.professional_id.in_(list(professionals)),
                Device.revoked_at.is_(None),
                Device.push_token.is_not(None),
            )
            return list((await session.scalars(query)).unique().all())

    async def _devices_by_id(self, ids: Sequence[uuid.UUID], *, include_revoked: bool) -> list[Device]:
        async with self._db.read() as session:
            query = select(Device).where(Device.id.in_(list(ids)))
            if not include_revoked:
                query = query.where(Device.revoked_at.is_(None))
            return list((await session.scalars(query)).unique().all())

    # sender stage --------------------------------------------------------------------------------

    async def run_send_once(self, *, block_ms: int = 0) -> int:
        await self._groups()
        deliveries = await self._queue.consume(PUSH, SENDER_GROUP, self._consumer, count=self._batch, block_ms=block_ms)
        deliveries += await self._queue.reclaim(
            PUSH, SENDER_GROUP, self._consumer, min_idle_ms=self._reclaim_idle_ms, count=self._batch
        )
        by_provider: dict[str, list[tuple[Delivery, PushJob, PushNotification]]] = defaultdict(list)
        now = time.time()
        for delivery in deliveries:
            try:
                job = msgspec.json.decode(delivery.payload, type=PushJob)
                notification = job.notification()
            except (msgspec.DecodeError, ValueError):
                await self._queue.dead_letter(PUSH, SENDER_GROUP, delivery.id, reason="invalid_job")
                continue
            if job.expires_at <= now:
                self.metrics.outcome(notification.alert_class.value, job.provider, "expired")
                await self._queue.ack(PUSH, SENDER_GROUP, [delivery.id])
                continue
            by_provider[job.provider].append((delivery, job, notification))
        await self._drop_revoked(by_provider)
        await asyncio.gather(*(self._send(provider, items) for provider, items in by_provider.items() if items))
        return len(deliveries)

    async def _drop_revoked(self, by_provider: dict[str, list[tuple[Delivery, PushJob, PushNotification]]]) -> None:
        """A device revoked after its push was queued gets nothing more (but its wipe): one query per batch."""
        device_ids = {
            uuid.UUID(job.device_id)
            for items in by_provider.values()
            for _, job, notification in items
            if notification.alert_class != AlertClass.WIPE
        }
        if not device_ids:
            return
        async with self._db.read() as session:
            query = select(Device.id).where(Device.id.in_(device_ids), Device.revoked_at.is_not(None))
            revoked = {str(device_id) for device_id in (await session.scalars(query)).all()}
        if not revoked:
            return
        for provider, items in by_provider.items():
            kept = []
            for delivery, job, notification in items:
                if job.device_id in revoked and notification.alert_class != AlertClass.WIPE:
                    self.metrics.outcome(notification.alert_class.value, provider, "revoked")
                    await self._queue.ack(PUSH, SENDER_GROUP, [delivery.id])
                else:
                    kept.append((delivery, job, notification))
            items[:] = kept

    async def _send(self, provider_name: str, items: list[tuple[Delivery, PushJob, PushNotification]]) -> None:
        provider = self._provider(provider_name)
        by_push = {n.push_id: (d, j, n) for d, j, n in items}
        if provider is None:
            for delivery, job, notification in items:
                self.metrics.outcome(notification.alert_class.value, job.provider, "no_provider")
                await self._queue.dead_letter(PUSH, SENDER_GROUP, delivery.id, reason="no_provider")
            return
        report = await provider.send([n for _, _, n in items])
        now = time.time()
        done: list[str] = []
        for push_id in report.accepted:
            delivery, job, notification = by_push[push_id]
            self.metrics.outcome(notification.alert_class.value, provider.name, "accepted")
            self.metrics.latency(provider.name, now - job.queued_at)
            done.append(delivery.id)
        for dead in report.dead_tokens:
            delivery, job, notification = by_push[dead.push_id]
            await self._prune(job, dead.invalid_since)
            self.metrics.outcome(notification.alert_class.value, provider.name, "dead_token")
            done.append(delivery.id)
        await self._queue.ack(PUSH, SENDER_GROUP, done)  # one round trip for the batch
        for failure in report.failed_permanently:
            delivery, job, notification = by_push[failure.push_id]
            self.metrics.outcome(notification.alert_class.value, provider.name, "failed")
            await self._queue.dead_letter(PUSH, SENDER_GROUP, delivery.id, reason=failure.reason)
        for retry in report.retry:
            delivery, job, notification = by_push[retry.push_id]
            delay = max(self._retry.backoff(delivery.attempts), retry.retry_after_s or 0.0)
            self.metrics.outcome(notification.alert_class.value, provider.name, "retry")
            await self._queue.retry_later(PUSH, SENDER_GROUP, delivery.id, int(delay * 1000))

    def _provider(self, name: str) -> Any:
        """The provider for a job; in dev, one that is not configured falls back to the sink."""
        try:
            return self._providers[name]
        except KeyError:
            return self._providers.sink

    async def _prune(self, job: PushJob, invalid_since: float | None = None) -> None:
        """The provider says the token is dead: mark it (if unchanged), the phone is asked for a new one.
        Not when the phone gave the token again after the time the provider holds it invalid since."""
        unchanged = [Device.id == uuid.UUID(job.device_id), Device.push_token == job.token]
        if invalid_since is not None:
            since = dt.datetime.fromtimestamp(invalid_since, dt.UTC)
            unchanged.append(or_(Device.push_token_registered_at.is_(None), Device.push_token_registered_at <= since))
        async with self._db.transaction() as session:
            result = await session.execute(
                update(Device).where(*unchanged).values(push_token_dead_at=dt.datetime.now(dt.UTC))
            )
        if getattr(result, "rowcount", 0):
            self.metrics.pruned(job.provider)

    # running -------------------------------------------------------------------------------------

    async def drain(self, *, rounds: int = 20) -> None:
        """Process until both stages are idle (tests, demo)."""
        for _ in range(rounds):
            if not (await self.run_policy_once() + await self.run_send_once()):
                depth = await self._queue.depth(PUSH, SENDER_GROUP)
                if depth.total == 0 and depth.delayed == 0:
                    return
                await asyncio.sleep(0.05)

    def start(self) -> None:
        async def loop(step: Callable[..., Awaitable[int]], name: str) -> None:
            delay = 0.1
            while True:
                stop_if_cancelled()
                try:
                    await step(block_ms=1000)
                    delay = 0.1
                    for stream, group in ((EVENTS, POLICY_GROUP), (PUSH, SENDER_GROUP)):
                        self.metrics.depth(stream, (await self._queue.depth(stream, group)).total)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - the loop survives; the queue keeps the work
                    # The first word of a store error is its code (NOGROUP, BUSY…): no content can be in it.
                    code = str(exc).split(" ", 1)[0][:32] if str(exc) else ""
                    log.error("push.loop_failed", stage=name, error_type=type(exc).__name__, error_code=code)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)

        self._tasks = [
            asyncio.create_task(loop(self.run_policy_once, "policy"), name="push-policy"),
            asyncio.create_task(loop(self.run_send_once, "sender"), name="push-sender"),
        ]

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks = []


def _uuid(event_id: str) -> uuid.UUID:
    """Event ids are UUID hex; anything else is mapped to a stable UUID (never echoed)."""
    try:
        return uuid.UUID(event_id)
    except ValueError:
        return uuid.uuid5(uuid.NAMESPACE_OID, event_id)


def _badge(event: Event) -> int | None:
    return None if event.unseen is None else max(0, event.unseen)
