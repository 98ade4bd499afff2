"""How much memory one watched mailbox costs the watcher process (one IDLE session each), roughly."""

from __future__ import annotations

import dataclasses
import gc
import tracemalloc
from pathlib import Path
from typing import Literal

import pytest

from backend.mail.operator import MasterUserAuth
from backend.mail.operator.tls import ssl_context_from_settings
from core.settings import OperatorSettings
from push.watcher import session_opener
from push.watcher.watch import SessionOpener
from tests.peers.dovecot import DovecotInstance
from tests.peers.fixtures import MailboxFactory
from tests.push_watcher.conftest import Stack, WatcherFactory, until


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


async def per_mailbox(
    stack: Stack,
    make_watcher: WatcherFactory,
    mailbox_factory: MailboxFactory,
    opener: SessionOpener,
    *,
    warm: int,
    more: int,
) -> tuple[float, float]:
    """(Python heap, RSS) growth per mailbox when ``more`` mailboxes join ``warm`` idling ones."""
    ids = [await stack.seed_mailbox(mailbox_factory().address) for _ in range(warm)]
    watcher = make_watcher(max_mailboxes_per_watcher=warm + more, opener=opener)

    def all_idling() -> bool:
        return watcher.stats().connected == len(ids)

    tracemalloc.start()
    try:
        await watcher.start()
        await until(all_idling, timeout_s=10)  # warm: code paths, caches, the first sessions
        gc.collect()
        heap_before, rss_before = tracemalloc.get_traced_memory()[0], rss_bytes()
        ids += [await stack.seed_mailbox(mailbox_factory().address) for _ in range(more)]
        await until(all_idling, timeout_s=15)
        gc.collect()
        heap_after, rss_after = tracemalloc.get_traced_memory()[0], rss_bytes()
    finally:
        tracemalloc.stop()
        await watcher.stop()
    return (heap_after - heap_before) / more, (rss_after - rss_before) / more


@pytest.mark.parametrize("tls", ["plain", "starttls"])
async def test_memory_per_watched_mailbox(
    tls: Literal["plain", "starttls"],
    stack: Stack,
    make_watcher: WatcherFactory,
    mailbox_factory: MailboxFactory,
    operator_settings: OperatorSettings,
    dovecot: DovecotInstance,
) -> None:
    if stack.name != "memory":
        pytest.skip("the watcher's own memory does not depend on where the state lives")
    settings = dataclasses.replace(operator_settings, tls=tls)
    auth = MasterUserAuth(user=dovecot.master_user, password=dovecot.master_password)
    opener = session_opener(settings, auth, ssl_context_from_settings(settings))
    more = 30 if tls == "plain" else 15  # the test Dovecot keeps one login process per TLS client (≤ 100)
    heap, rss = await per_mailbox(stack, make_watcher, mailbox_factory, opener, warm=5, more=more)
    print(
        f"\nMEASURE[{stack.name}/{tls}] per watched mailbox (IDLE session, task, state): "
        f"Python heap {heap / 1024:.1f} KiB, RSS {rss / 1024:.1f} KiB ({more} mailboxes joining 5)"
    )
    # TLS: asyncio's SSL transport keeps a 256 KiB read buffer per connection (SSLProtocol.max_size)
    assert heap < (64 if tls == "plain" else 384) * 1024
