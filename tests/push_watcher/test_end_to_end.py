"""From a delivery at the operator to a content-free push: watcher → durable queue → push pipeline."""

from __future__ import annotations

import time

import pytest

from contracts.push import AlertClass
from push.delivery import RetryPolicy
from push.metrics import PushMetrics
from push.pipeline import PushPipeline
from push.providers.factory import PushProviders
from push.providers.sink import SinkProvider
from tests.peers.dovecot import DovecotInstance
from tests.peers.fixtures import MailboxFactory
from tests.push_watcher.conftest import Stack, WatcherFactory, deliver, until


async def test_a_delivery_becomes_one_content_free_push(
    stack: Stack, make_watcher: WatcherFactory, mailbox_factory: MailboxFactory, dovecot: DovecotInstance
) -> None:
    if stack.name != "memory":
        pytest.skip("the queue backends are the pipeline's own tests")
    user = mailbox_factory()
    mailbox_id = await stack.seed_mailbox(user.address, push_token="sink-token", provider="sink")
    sink = SinkProvider()
    pipeline = PushPipeline(
        db=stack.db,
        queue=stack.queue,
        providers=PushProviders({"sink": sink}),
        retry=RetryPolicy(max_tries=2, base_delay_s=0.01, max_delay_s=0.1),
        metrics=PushMetrics(),
    )
    watcher = make_watcher()
    await watcher.start()
    await until(lambda: (w := watcher.watch_of(mailbox_id)) is not None and w.connected)
    pipeline.start()
    try:
        started = time.monotonic()
        await deliver(dovecot, user.address)
        await until(lambda: len(sink.records()) >= 1, timeout_s=3)
        print(f"\nMEASURE delivery -> push handed to the provider: {(time.monotonic() - started) * 1000:.0f} ms")
        [push] = sink.records()
        assert push.alert_class == AlertClass.MAIL
        assert push.payload["mailboxId"] == mailbox_id and push.payload["badge"] == 1
        assert "CANARY" not in repr(push) and user.address not in repr(push)
    finally:
        await pipeline.stop()
