"""Retries against the real APNs peer on a fake clock: backoff with jitter, Retry-After, bounded tries."""

from __future__ import annotations

import pytest

from contracts.push import AlertClass
from push.delivery import RetryPolicy, deliver_with_retries
from tests.peers import apns as replies
from tests.peers.apns import ApnsPeer, ApnsReply
from tests.push.conftest import ApnsFactory, FakeTime, apns_token, notification


def test_backoff_doubles_with_equal_jitter_and_a_cap() -> None:
    policy = RetryPolicy(max_tries=10, base_delay_s=1.0, max_delay_s=8.0)
    assert [policy.backoff(n, lambda: 1.0) for n in range(1, 6)] == [1.0, 2.0, 4.0, 8.0, 8.0]
    assert [policy.backoff(n, lambda: 0.0) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 4.0]


async def test_backoff_between_tries_grows(apns_factory: ApnsFactory, apns_peer: ApnsPeer, fake_time: FakeTime) -> None:
    push = notification(apns_token())
    apns_peer.script(push.token, *[replies.SERVICE_UNAVAILABLE] * 3)
    result = await deliver_with_retries(
        apns_factory(),
        [push],
        policy=RetryPolicy(max_tries=5, base_delay_s=1.0, max_delay_s=60),
        clock=fake_time.clock,
        sleep=fake_time.sleep,
        rand=lambda: 0.5,
    )
    assert result.accepted == [push.push_id]
    assert fake_time.sleeps == [0.75, 1.5, 3.0]


async def test_retry_after_is_a_floor(apns_factory: ApnsFactory, apns_peer: ApnsPeer, fake_time: FakeTime) -> None:
    push = notification(apns_token())
    apns_peer.script(push.token, ApnsReply.error(429, "TooManyRequests", retry_after="9"))
    result = await deliver_with_retries(
        apns_factory(),
        [push],
        policy=RetryPolicy(max_tries=3, base_delay_s=0.1, max_delay_s=30),
        clock=fake_time.clock,
        sleep=fake_time.sleep,
    )
    assert result.accepted == [push.push_id]
    assert fake_time.sleeps == [9.0]


async def test_tries_are_bounded(apns_factory: ApnsFactory, apns_peer: ApnsPeer, fake_time: FakeTime) -> None:
    push = notification(apns_token())
    apns_peer.script(push.token, *[replies.SERVICE_UNAVAILABLE] * 10)
    result = await deliver_with_retries(
        apns_factory(),
        [push],
        policy=RetryPolicy(max_tries=3, base_delay_s=0.1, max_delay_s=30),
        clock=fake_time.clock,
        sleep=fake_time.sleep,
    )
    assert [(g.push_id, g.reason) for g in result.gave_up] == [(push.push_id, "ServiceUnavailable")]
    assert result.tries == {push.push_id: 3} and not result.accepted
    assert [r.headers["apns-id"] for r in apns_peer.records] == [push.push_id] * 3


async def test_a_long_retry_after_goes_back_to_the_queue(
    apns_factory: ApnsFactory, apns_peer: ApnsPeer, fake_time: FakeTime
) -> None:
    push = notification(apns_token())
    apns_peer.script(push.token, ApnsReply.error(503, "ServiceUnavailable", retry_after="3600"))
    result = await deliver_with_retries(
        apns_factory(),
        [push],
        policy=RetryPolicy(max_tries=5, base_delay_s=0.1, max_delay_s=60),
        clock=fake_time.clock,
        sleep=fake_time.sleep,
    )
    (deferred,) = result.deferred
    assert deferred.push_id == push.push_id and deferred.not_before == pytest.approx(fake_time.now + 3600)
    assert fake_time.sleeps == [] and len(apns_peer.records) == 1


async def test_each_push_keeps_its_own_schedule(
    apns_factory: ApnsFactory, apns_peer: ApnsPeer, fake_time: FakeTime
) -> None:
    slow, quick = notification(apns_token()), notification(apns_token())
    apns_peer.script(slow.token, ApnsReply.error(429, "TooManyRequests", retry_after="5"))
    apns_peer.script(quick.token, replies.SERVICE_UNAVAILABLE)
    result = await deliver_with_retries(
        apns_factory(),
        [slow, quick],
        policy=RetryPolicy(max_tries=3, base_delay_s=1.0, max_delay_s=30),
        clock=fake_time.clock,
        sleep=fake_time.sleep,
        rand=lambda: 1.0,
    )
    assert sorted(result.accepted) == sorted([slow.push_id, quick.push_id])
    assert fake_time.sleeps == [1.0, 4.0]  # the quick one after its backoff, the slow one at Retry-After
    second_tries = [r.token for r in apns_peer.records[2:]]
    assert second_tries == [quick.token, slow.token]


async def test_dead_and_refused_pushes_are_not_retried(
    apns_factory: ApnsFactory, apns_peer: ApnsPeer, fake_time: FakeTime
) -> None:
    dead, refused, fine = (notification(apns_token()) for _ in range(3))
    wipe = notification(apns_token(), AlertClass.WIPE)
    apns_peer.script(dead.token, replies.UNREGISTERED)
    apns_peer.script(refused.token, ApnsReply.error(400, "BadCollapseId"))
    result = await deliver_with_retries(
        apns_factory(),
        [dead, refused, fine, wipe],
        policy=RetryPolicy(),
        clock=fake_time.clock,
        sleep=fake_time.sleep,
    )
    assert [(d.device_id, d.token, d.reason) for d in result.dead_tokens] == [
        (dead.device_id, dead.token, "Unregistered")
    ]
    assert [(f.push_id, f.reason) for f in result.failed_permanently] == [(refused.push_id, "BadCollapseId")]
    assert sorted(result.accepted) == sorted([fine.push_id, wipe.push_id])
    assert fake_time.sleeps == [] and len(apns_peer.records) == 4
