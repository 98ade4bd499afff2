"""IMAP IDLE against a real Dovecot: one event per delivery, within seconds; catch-up after an
outage, a restart of the operator or of the watcher; no duplicates. Over memory and Redis."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import time

import msgspec
import pytest
from sqlalchemy import update

from backend.mail.operator import MasterUserAuth, OperatorConnector, OperatorUnavailableError
from backend.mail.operator.imap_session import ImapSession
from contracts.events import Event, EventType
from core.db.models import Device
from core.settings import OperatorSettings, Settings, StoreSettings
from push.watcher import (
    PendingAnnouncement,
    Watcher,
    WatchState,
    WatchStateStore,
    enqueue_mail_arrived,
    event_id,
    mail_arrived,
    session_opener,
)
from push.watcher.watch import MailboxWatch, SessionOpener
from tests.peers.dovecot import DovecotInstance
from tests.peers.fixtures import MailboxFactory
from tests.push_watcher.conftest import TEST_WATCHER, EventReader, Stack, WatcherFactory, covered_uids, deliver, until

#: What a ``mail.arrived`` payload may hold: ids and counts, never content.
ALLOWED_KEYS = {"id", "type", "at", "mailbox_id", "uidvalidity", "highest_uid", "new_count", "unseen"}


async def wait_connected(watcher: Watcher, mailbox_id: str) -> None:
    await until(lambda: (w := watcher.watch_of(mailbox_id)) is not None and w.connected)


async def uidvalidity_of(opener: SessionOpener, address: str) -> int:
    session = await opener(address)
    try:
        return (await session.select("INBOX", readonly=True)).uidvalidity
    finally:
        await session.logout()


async def test_a_delivery_is_announced_once_within_two_seconds(
    stack: Stack,
    make_watcher: WatcherFactory,
    events: EventReader,
    mailbox_factory: MailboxFactory,
    dovecot: DovecotInstance,
) -> None:
    user = mailbox_factory()
    mailbox_id = await stack.seed_mailbox(user.address)
    watcher = make_watcher()
    await watcher.start()
    await wait_connected(watcher, mailbox_id)

    started = time.monotonic()
    await deliver(dovecot, user.address)
    [event] = await events.take(until=lambda seen: len(seen) >= 1, timeout_s=3)
    latency = time.monotonic() - started
    print(f"\nMEASURE[{stack.name}] delivery -> mail.arrived on the queue: {latency * 1000:.0f} ms")
    assert latency < 2.0

    assert event.type is EventType.MAIL_ARRIVED and event.mailbox_id == mailbox_id
    assert (event.new_count, event.highest_uid, event.unseen) == (1, 1, 1)
    assert event.id == event_id(mailbox_id, event.uidvalidity, 1)
    assert await events.quiet(0.6) == []
    # ids and counts only; any consumer of the plain Event contract reads it
    raw = events.raw[0]
    assert set(msgspec.json.decode(raw)) <= ALLOWED_KEYS and b"CANARY" not in raw and user.address.encode() not in raw
    plain = msgspec.json.decode(raw, type=Event)  # what the push pipeline reads
    assert (plain.id, plain.mailbox_id, plain.unseen) == (event.id, mailbox_id, 1)
    # the operator traces the service itself, not a professional
    assert "x-mssc-idnat=mss-companion-watcher" in dovecot.log_text()


async def test_ten_deliveries_are_each_announced_once(
    stack: Stack,
    make_watcher: WatcherFactory,
    events: EventReader,
    mailbox_factory: MailboxFactory,
    dovecot: DovecotInstance,
) -> None:
    user = mailbox_factory()
    mailbox_id = await stack.seed_mailbox(user.address)
    watcher = make_watcher()
    await watcher.start()
    await wait_connected(watcher, mailbox_id)

    # two bursts: the first announced before the second arrives
    await deliver(dovecot, user.address, 4)
    await events.take(until=lambda s: sum(e.new_count for e in s) >= 4, timeout_s=5)
    await deliver(dovecot, user.address, 6)
    seen = await events.take(until=lambda s: sum(e.new_count for e in s) >= 10, timeout_s=5)
    assert covered_uids(seen) == list(range(1, 11))
    assert len({e.id for e in seen}) == len(seen) >= 2
    assert max(seen, key=lambda e: e.highest_uid).unseen == 10
    assert await events.quiet(0.3) == []
    print(f"\nMEASURE[{stack.name}] 10 deliveries in two bursts -> {len(seen)} events (a burst coalesces)")


class GatedOperator:
    """The gateway's logins, refused while the operator is "down" (``reachable`` cleared)."""

    def __init__(self, opener: SessionOpener, dovecot: DovecotInstance) -> None:
        self._opener = opener
        self._dovecot = dovecot
        self.reachable = asyncio.Event()
        self.reachable.set()

    async def open(self, address: str) -> ImapSession:
        if not self.reachable.is_set():
            raise OperatorUnavailableError(1, "operator down (test)")
        return await self._opener(address)

    async def cut(self, address: str, watch: MailboxWatch) -> None:
        """Go down: kick the mailbox's session (``doveadm kick``) and refuse logins until ``reachable``."""
        self.reachable.clear()
        kick = ["/usr/bin/doveadm", "-c", str(self._dovecot.config_file), "kick", address]
        await asyncio.to_thread(subprocess.run, kick, check=True, timeout=10, capture_output=True)
        await until(lambda: not watch.connected)


async def test_messages_delivered_while_disconnected_are_announced_after_reconnect(
    stack: Stack,
    make_watcher: WatcherFactory,
    events: EventReader,
    mailbox_factory: MailboxFactory,
    dovecot: DovecotInstance,
    gateway_opener: SessionOpener,
) -> None:
    user = mailbox_factory()
    mailbox_id = await stack.seed_mailbox(user.address)
    operator = GatedOperator(gateway_opener, dovecot)
    watcher = make_watcher(opener=operator.open)
    await watcher.start()
    await wait_connected(watcher, mailbox_id)
    watch = watcher.watch_of(mailbox_id)
    assert watch is not None
    await deliver(dovecot, user.address)
    await events.take(until=lambda s: len(s) == 1)

    # the operator kills the session, and stays unreachable while mail keeps arriving
    await operator.cut(user.address, watch)
    await deliver(dovecot, user.address, 3)
    assert await events.quiet(0.3) == []

    sessions = watch.sessions
    operator.reachable.set()
    seen = await events.take(until=lambda s: sum(e.new_count for e in s) >= 4, timeout_s=5)
    assert covered_uids(seen) == [1, 2, 3, 4]
    assert seen[1].new_count == 3  # one catch-up batch for the three
    assert watch.sessions == sessions + 1
    assert await events.quiet(0.3) == []


async def test_a_catch_up_that_fails_to_announce_is_retried_in_full(
    stack: Stack,
    make_watcher: WatcherFactory,
    events: EventReader,
    mailbox_factory: MailboxFactory,
    dovecot: DovecotInstance,
    gateway_opener: SessionOpener,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Found by the combined fault test: the store failed during the catch-up after a reconnect, and the
    next reconnect took the mailbox for unchanged (its MODSEQ had been recorded before the catch-up)."""
    user = mailbox_factory()
    mailbox_id = await stack.seed_mailbox(user.address)
    operator = GatedOperator(gateway_opener, dovecot)
    watcher = make_watcher(opener=operator.open)
    await watcher.start()
    await wait_connected(watcher, mailbox_id)
    watch = watcher.watch_of(mailbox_id)
    assert watch is not None
    await deliver(dovecot, user.address)
    await events.take(until=lambda s: len(s) == 1)

    await operator.cut(user.address, watch)
    await deliver(dovecot, user.address, 2)

    # after the reconnect: the takeover write goes through, the next state write (the batch about to be
    # announced) fails: the store restarts, or the operator drops the session in between
    writes = 0
    compare_and_set = stack.ephemeral.compare_and_set

    async def second_write_fails(*args: object, **kwargs: object) -> bool:
        nonlocal writes
        writes += 1
        if writes == 2:
            raise ConnectionError("the store is restarting (test)")
        return await compare_and_set(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(stack.ephemeral, "compare_and_set", second_write_fails)
    operator.reachable.set()
    seen = await events.take(until=lambda s: sum(e.new_count for e in s) >= 3, timeout_s=5)
    assert writes >= 3
    assert covered_uids(seen) == [1, 2, 3]


async def test_an_operator_restart_loses_nothing(
    stack: Stack, make_watcher: WatcherFactory, events: EventReader
) -> None:
    if stack.name != "redis":
        pytest.skip("the restart is the operator's: one backend is enough")
    private = DovecotInstance()
    private.start()
    try:
        settings = OperatorSettings(
            kind="remote",
            imap_host=private.host,
            imap_port=private.imap_port,
            tls="plain",
            auth="master",
            master_user=private.master_user,
            master_password=private.master_password,
            connect_timeout_s=2.0,
            command_timeout_s=5.0,
        )
        auth = MasterUserAuth(user=private.master_user, password=private.master_password)
        opener = session_opener(settings, auth, None)
        reachable = asyncio.Event()
        reachable.set()

        async def gated(address: str) -> ImapSession:
            if not reachable.is_set():
                raise OperatorUnavailableError(1, "operator restarting (test)")
            return await opener(address)

        user = private.add_user()
        mailbox_id = await stack.seed_mailbox(user.address)
        watcher = make_watcher(opener=gated)
        await watcher.start()
        await wait_connected(watcher, mailbox_id)
        watch = watcher.watch_of(mailbox_id)
        assert watch is not None
        await deliver(private, user.address)
        await events.take(until=lambda s: len(s) == 1)

        reachable.clear()  # the watcher reconnects only once the test has delivered
        started = time.monotonic()
        await asyncio.to_thread(private.restart)
        restart_s = time.monotonic() - started
        await until(lambda: not watch.connected)
        await deliver(private, user.address, 2)
        reachable.set()
        seen = await events.take(until=lambda s: sum(e.new_count for e in s) >= 3, timeout_s=8)
        assert covered_uids(seen) == [1, 2, 3]
        assert await events.quiet(0.3) == []
        # and it is idling again: the next delivery comes through IDLE
        await wait_connected(watcher, mailbox_id)
        await deliver(private, user.address)
        seen = await events.take(until=lambda s: sum(e.new_count for e in s) >= 4, timeout_s=3)
        assert covered_uids(seen) == [1, 2, 3, 4]
        print(f"\nMEASURE[{stack.name}] operator restart took {restart_s:.2f} s; sessions used {watch.sessions}")
    finally:
        await asyncio.to_thread(private.cleanup)


async def test_a_new_watcher_resumes_where_the_last_one_stopped(
    stack: Stack,
    make_watcher: WatcherFactory,
    events: EventReader,
    mailbox_factory: MailboxFactory,
    dovecot: DovecotInstance,
) -> None:
    user = mailbox_factory()
    mailbox_id = await stack.seed_mailbox(user.address)
    first = make_watcher("first")
    await first.start()
    await wait_connected(first, mailbox_id)
    await deliver(dovecot, user.address)
    await events.take(until=lambda s: len(s) == 1)
    await first.stop()

    await deliver(dovecot, user.address, 2)  # nobody watches
    second = make_watcher("second")
    await second.start()
    seen = await events.take(until=lambda s: sum(e.new_count for e in s) >= 3, timeout_s=5)
    assert [(e.highest_uid, e.new_count) for e in seen] == [(1, 1), (3, 2)]
    assert await events.quiet(0.3) == []
    state = (await WatchStateStore(stack.ephemeral).load(mailbox_id)).state
    assert state is not None and state.next_uid == 4 and state.owner == "second" and state.pending is None


async def test_an_announcement_cut_short_by_a_crash_is_finished_once(
    stack: Stack,
    make_watcher: WatcherFactory,
    events: EventReader,
    mailbox_factory: MailboxFactory,
    dovecot: DovecotInstance,
    gateway_opener: SessionOpener,
) -> None:
    user = mailbox_factory()
    mailbox_id = await stack.seed_mailbox(user.address)
    await deliver(dovecot, user.address, 2)
    uidvalidity = await uidvalidity_of(gateway_opener, user.address)
    # a watcher died after enqueueing the batch of UID 1 and before recording it
    pending = PendingAnnouncement(highest_uid=1, count=1, unseen=1, at=1234.5)
    states = WatchStateStore(stack.ephemeral)
    crashed = WatchState(uidvalidity=uidvalidity, next_uid=1, pending=pending, owner="dead")
    await states.replace(mailbox_id, None, crashed)
    await enqueue_mail_arrived(
        stack.queue,
        mail_arrived(mailbox_id=mailbox_id, uidvalidity=uidvalidity, highest_uid=1, new_count=1, unseen=1, at=1234.5),
    )

    watcher = make_watcher("heir")
    await watcher.start()
    seen = await events.take(until=lambda s: sum(e.new_count for e in s) >= 2, timeout_s=5)
    assert [(e.highest_uid, e.new_count, e.at) for e in seen[:1]] == [(1, 1, 1234.5)]
    assert covered_uids(seen) == [1, 2]
    assert await events.quiet(0.3) == []
    state = (await states.load(mailbox_id)).state
    assert state is not None and (state.next_uid, state.pending, state.owner) == (3, None, "heir")


async def test_a_recreated_inbox_starts_afresh(
    stack: Stack,
    make_watcher: WatcherFactory,
    events: EventReader,
    mailbox_factory: MailboxFactory,
    dovecot: DovecotInstance,
) -> None:
    user = mailbox_factory()
    mailbox_id = await stack.seed_mailbox(user.address)
    await deliver(dovecot, user.address, 2)
    # a state from another UIDVALIDITY: its UIDs mean nothing now, nothing old is announced
    states = WatchStateStore(stack.ephemeral)
    await states.replace(mailbox_id, None, WatchState(uidvalidity=1, next_uid=1, owner="old"))
    watcher = make_watcher()
    await watcher.start()
    await wait_connected(watcher, mailbox_id)
    await deliver(dovecot, user.address)
    seen = await events.take(until=lambda s: len(s) >= 1)
    assert [(e.highest_uid, e.new_count) for e in seen] == [(3, 1)]
    assert await events.quiet(0.3) == []


async def test_idle_is_reissued_and_the_session_kept(
    stack: Stack,
    make_watcher: WatcherFactory,
    events: EventReader,
    mailbox_factory: MailboxFactory,
    dovecot: DovecotInstance,
) -> None:
    if stack.name != "memory":
        pytest.skip("IDLE refresh does not depend on the backend")
    user = mailbox_factory()
    mailbox_id = await stack.seed_mailbox(user.address)
    watcher = make_watcher(idle_refresh_s=0.2)
    await watcher.start()
    await wait_connected(watcher, mailbox_id)
    done_before = dovecot.log_text().count("x-mssc-idnat=mss-companion-watcher")
    await asyncio.sleep(0.7)  # a few IDLE / DONE rounds
    await deliver(dovecot, user.address)
    seen = await events.take(until=lambda s: len(s) >= 1)
    assert [(e.highest_uid, e.new_count) for e in seen] == [(1, 1)]
    watch = watcher.watch_of(mailbox_id)
    assert watch is not None and watch.sessions == 1
    assert dovecot.log_text().count("x-mssc-idnat=mss-companion-watcher") == done_before  # no new login


async def test_a_mailbox_without_pushable_devices_is_let_go(
    stack: Stack, make_watcher: WatcherFactory, mailbox_factory: MailboxFactory
) -> None:
    user = mailbox_factory()
    mailbox_id = await stack.seed_mailbox(user.address)
    silent = mailbox_factory()
    await stack.seed_mailbox(silent.address, push_token=None)  # no push token: not watched
    watcher = make_watcher()
    await watcher.start()
    await wait_connected(watcher, mailbox_id)
    assert watcher.watching == {mailbox_id}

    async with stack.db.transaction() as session:
        await session.execute(update(Device).values(revoked_at=Device.created_at))
    await until(lambda: not watcher.watching, timeout_s=3)
    deadline = time.monotonic() + 3  # the lease goes back once the session has logged out
    while (await watcher._leases.holders([mailbox_id]))[mailbox_id] is not None:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)


async def test_the_app_wiring_watches_over_starttls(
    stack: Stack,
    events: EventReader,
    mailbox_factory: MailboxFactory,
    dovecot: DovecotInstance,
    operator_settings: OperatorSettings,
) -> None:
    """``Watcher.create`` from the app's services: the connector's gateway login, over STARTTLS."""
    if stack.name != "memory":
        pytest.skip("the wiring is the same over both backends")
    tls = dataclasses.replace(operator_settings, tls="starttls")
    settings = Settings(store=StoreSettings(url="memory"), operator=tls, watcher=TEST_WATCHER)
    connector = OperatorConnector(tls)
    watcher = Watcher.create(settings, db=stack.db, ephemeral=stack.ephemeral, queue=stack.queue, connector=connector)
    user = mailbox_factory()
    mailbox_id = await stack.seed_mailbox(user.address)
    try:
        await watcher.start()
        await wait_connected(watcher, mailbox_id)
        await deliver(dovecot, user.address)
        [event] = await events.take(until=lambda s: len(s) >= 1, timeout_s=3)
        assert (event.mailbox_id, event.highest_uid) == (mailbox_id, 1)
    finally:
        await watcher.stop()
        await connector.aclose()
