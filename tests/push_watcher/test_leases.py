"""Leases over memory and Redis, and watchers sharing mailboxes through them: never the same mailbox
twice, and a stopped or killed watcher's mailboxes taken over within seconds."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from push.watcher import LeaseManager, Watcher
from tests.conftest import REDIS_URL
from tests.peers.dovecot import DovecotInstance
from tests.peers.fixtures import MailboxFactory
from tests.push_watcher.conftest import (
    TEST_WATCHER,
    EventReader,
    Stack,
    WatcherFactory,
    covered_uids,
    deliver,
    until,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def two(stack: Stack) -> AsyncIterator[tuple[LeaseManager, LeaseManager]]:
    a, b = stack.leases("a", 0.4), stack.leases("b", 0.4)
    yield a, b
    await a.close()
    await b.close()


async def test_a_lease_has_one_holder_until_it_expires_or_is_released(two: tuple[LeaseManager, LeaseManager]) -> None:
    a, b = two
    assert await a.acquire(["m1", "m2", "m3"], 2) == ["m1", "m2"]
    assert await b.acquire(["m1", "m2", "m3"], 5) == ["m3"]
    assert await a.holders(["m1", "m2", "m3", "m4"]) == {"m1": "a", "m2": "a", "m3": "b", "m4": None}
    # renew extends only one's own; release drops only one's own
    assert await a.renew(["m1", "m2", "m3"]) == {"m1", "m2"}
    await b.release(["m1", "m3"])
    assert await a.holders(["m1", "m3"]) == {"m1": "a", "m3": None}
    # a dead holder stops renewing: the lease expires and someone else takes it
    await asyncio.sleep(0.5)
    assert await b.renew(["m1"]) == set()
    assert await b.acquire(["m1", "m2"], 5) == ["m1", "m2"]
    assert await a.renew(["m1", "m2"]) == set()


async def test_watchers_count_each_other_while_alive(two: tuple[LeaseManager, LeaseManager]) -> None:
    a, b = two
    assert await a.heartbeat() == 1
    assert await b.heartbeat() == 2
    await b.leave()
    assert await a.heartbeat() == 1
    await b.heartbeat()
    await asyncio.sleep(0.5)  # b died
    assert await a.heartbeat() == 1


async def watch_for_overlap(a: Watcher, b: Watcher, seen: list[frozenset[str]]) -> None:
    while True:
        if a.watching & b.watching:
            seen.append(a.watching & b.watching)
        await asyncio.sleep(0.005)


def all_connected(watcher: Watcher, ids: set[str]) -> bool:
    return watcher.watching == ids and all((w := watcher.watch_of(m)) is not None and w.connected for m in ids)


async def test_two_watchers_share_six_mailboxes_and_one_takes_over_when_the_other_stops(
    stack: Stack,
    make_watcher: WatcherFactory,
    events: EventReader,
    mailbox_factory: MailboxFactory,
    dovecot: DovecotInstance,
) -> None:
    users = [mailbox_factory() for _ in range(6)]
    ids = [await stack.seed_mailbox(u.address) for u in users]
    a, b = make_watcher("a"), make_watcher("b")
    overlaps: list[frozenset[str]] = []
    monitor = asyncio.create_task(watch_for_overlap(a, b, overlaps))
    try:
        await a.start()
        await b.start()
        await until(lambda: len(a.watching) == 3 and len(b.watching) == 3, timeout_s=6)
        await until(lambda: all_connected(a, set(a.watching)) and all_connected(b, set(b.watching)))
        holders = await a._leases.holders(ids)
        assert {m for m, h in holders.items() if h == "a"} == a.watching
        assert {m for m, h in holders.items() if h == "b"} == b.watching

        for user in users:
            await deliver(dovecot, user.address)
        seen = await events.take(until=lambda s: len(s) >= 6)
        assert sorted(e.mailbox_id or "" for e in seen) == sorted(ids)

        stopped = time.monotonic()
        await a.stop()
        took = await until(lambda: all_connected(b, set(ids)), timeout_s=5)
        print(f"\nMEASURE[{stack.name}] takeover after a watcher stopped: {time.monotonic() - stopped:.2f} s")
        assert took < 3
        for user in users:
            await deliver(dovecot, user.address)
        await events.take(until=lambda s: len(s) >= 12)
        assert await events.quiet(0.5) == []
        for mailbox_id in ids:
            assert covered_uids(events.of(mailbox_id)) == [1, 2]
        assert overlaps == []
    finally:
        monitor.cancel()


async def test_a_killed_watcher_is_taken_over_within_seconds(
    stack: Stack,
    make_watcher: WatcherFactory,
    events: EventReader,
    mailbox_factory: MailboxFactory,
    dovecot: DovecotInstance,
) -> None:
    if stack.name != "redis":
        pytest.skip("one process shares in-process leases: killing it kills every watcher")
    users = [mailbox_factory() for _ in range(6)]
    ids = [await stack.seed_mailbox(u.address) for u in users]
    config = {
        "db_url": stack.db.settings.url,
        "redis_url": REDIS_URL,
        "namespace": stack.namespace,
        "owner": "doomed",
        "watcher": dataclasses.asdict(TEST_WATCHER),
        "imap_host": dovecot.host,
        "imap_port": dovecot.imap_port,
        "master_user": dovecot.master_user,
        "master_password": dovecot.master_password,
    }
    process = subprocess.Popen(  # noqa: ASYNC220 - started once, read below off the loop
        [sys.executable, "-m", "tests.push_watcher.watcher_process", json.dumps(config)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        stdout = process.stdout

        def started() -> None:  # structlog writes to stdout too
            while (line := stdout.readline()) and line.strip() != b"started":
                pass

        survivor = make_watcher("survivor")
        await survivor.start()  # while the other process starts: it gives half back when that one joins
        await asyncio.wait_for(asyncio.to_thread(started), 20)
        probe = stack.leases("probe", TEST_WATCHER.lease_ttl_s)

        async def split() -> bool:
            owners = list((await probe.holders(ids)).values())
            return owners.count("doomed") == 3 and owners.count("survivor") == 3

        deadline = time.monotonic() + 8
        while not await split():
            assert time.monotonic() < deadline, await probe.holders(ids)
            await asyncio.sleep(0.05)
        doomed = {m for m, h in (await probe.holders(ids)).items() if h == "doomed"}
        await asyncio.sleep(0.3)  # the doomed watcher's sessions are up and idling

        process.kill()  # SIGKILL: no release, no logout
        killed = time.monotonic()
        await until(lambda: all_connected(survivor, set(ids)), timeout_s=6)
        takeover = time.monotonic() - killed
        ttl = TEST_WATCHER.lease_ttl_s
        print(f"\nMEASURE[{stack.name}] takeover after a watcher was killed (lease TTL {ttl} s): {takeover:.2f} s")
        assert takeover < 4
        for user in users:
            await deliver(dovecot, user.address)
        await events.take(until=lambda s: len(s) >= 6)
        assert await events.quiet(0.5) == []
        assert sorted(e.mailbox_id or "" for e in events.seen) == sorted(ids)
        assert len(doomed) == 3  # half of them were the killed watcher's: announced once all the same
        await probe.close()
    finally:
        process.kill()
        await asyncio.to_thread(process.wait)
