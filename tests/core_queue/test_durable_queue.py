"""The durable queue's contract, the same tests over the in-process backend and a real Redis."""

from __future__ import annotations

import asyncio
import time

import pytest

from core.queue import DurableQueue, QueuePolicy, RetryOutcome
from core.queue.base import parse_id
from tests.core_queue.conftest import MakeQueue

S, G = "push", "push-workers"


async def _fill(queue: DurableQueue, n: int, stream: str = S) -> list[str]:
    return [await queue.enqueue(stream, f"m{i}".encode()) for i in range(n)]


async def test_enqueue_consume_ack(queue: DurableQueue) -> None:
    ids = await _fill(queue, 3)
    got = await queue.consume(S, G, "w1", count=10)
    assert [(d.id, d.payload, d.attempts) for d in got] == [(ids[0], b"m0", 1), (ids[1], b"m1", 1), (ids[2], b"m2", 1)]
    depth = await queue.depth(S, G)
    assert (depth.pending, depth.lag, depth.total) == (3, 0, 3)
    assert await queue.ack(S, G, ids[:2]) == 2
    assert await queue.ack(S, G, ids[:2]) == 0  # already acknowledged
    assert await queue.ack(S, G, []) == 0
    assert (await queue.depth(S, G)).pending == 1
    assert await queue.consume(S, G, "w1") == []  # consume hands out new messages only
    await _fill(queue, 2)
    assert (await queue.depth(S, G)).total == 3


async def test_order_within_a_stream(queue: DurableQueue) -> None:
    ids = await _fill(queue, 25)
    got: list[str] = []
    while batch := await queue.consume(S, G, "w", count=7):
        got += [d.id for d in batch]
        await queue.ack(S, G, [d.id for d in batch])
    assert got == ids
    assert [parse_id(i) for i in ids] == sorted(parse_id(i) for i in ids)
    assert len(set(ids)) == 25


async def test_two_consumers_share_the_work_without_overlap(queue: DurableQueue, peer: DurableQueue) -> None:
    ids = await _fill(queue, 40)

    async def worker(q: DurableQueue, name: str) -> list[str]:
        seen: list[str] = []
        while batch := await q.consume(S, G, name, count=3, block_ms=50):
            seen += [d.id for d in batch]
            await asyncio.sleep(0.005)  # the work
            await q.ack(S, G, [d.id for d in batch])
        return seen

    a, b = await asyncio.gather(worker(queue, "a"), worker(peer, "b"))
    assert a and b
    assert not set(a) & set(b)
    assert sorted(a + b, key=parse_id) == ids
    assert (await queue.depth(S, G)).total == 0


async def test_groups_each_get_every_message(queue: DurableQueue) -> None:
    ids = await _fill(queue, 2)
    assert [d.id for d in await queue.consume(S, "g1", "w")] == ids
    assert await queue.retry_later(S, "g1", ids[0], 0) is RetryOutcome.SCHEDULED
    assert [d.id for d in await queue.consume(S, "g2", "w")] == ids
    assert await queue.consume(S, "g2", "w") == []  # g1's retry is g1's alone
    assert [d.id for d in await queue.consume(S, "g1", "w")] == ids[:1]


async def test_messages_of_a_dead_consumer_are_reclaimed(queue: DurableQueue, peer: DurableQueue) -> None:
    ids = await _fill(queue, 3)
    assert len(await queue.consume(S, G, "dies", count=10)) == 3  # ... and never acknowledges
    assert await peer.reclaim(S, G, "survivor", min_idle_ms=300) == []  # not idle long enough yet
    await asyncio.sleep(0.35)
    first = await peer.reclaim(S, G, "survivor", min_idle_ms=300, count=2)
    rest = await peer.reclaim(S, G, "survivor", min_idle_ms=300, count=2)
    assert [d.id for d in first] == ids[:2]
    assert [d.id for d in rest] == ids[2:]
    assert {d.attempts for d in first + rest} == {2}
    assert [d.payload for d in first + rest] == [b"m0", b"m1", b"m2"]
    assert await peer.reclaim(S, G, "late", min_idle_ms=300) == []  # the survivor's claim counts as activity
    assert await peer.ack(S, G, ids) == 3
    assert (await queue.depth(S, G)).total == 0


async def test_reclaim_skips_busy_consumers(queue: DurableQueue, peer: DurableQueue) -> None:
    await _fill(queue, 2)
    await queue.consume(S, G, "busy", count=1)
    await asyncio.sleep(0.2)
    await queue.consume(S, G, "busy", count=1)
    got = await peer.reclaim(S, G, "other", min_idle_ms=150)
    assert [d.payload for d in got] == [b"m0"]


async def test_retry_later_delays_redelivery(queue: DurableQueue, peer: DurableQueue) -> None:
    [id] = await _fill(queue, 1)
    [d] = await queue.consume(S, G, "w")
    assert await queue.retry_later(S, G, d.id, 400) is RetryOutcome.SCHEDULED
    assert await queue.consume(S, G, "w") == []
    assert await peer.reclaim(S, G, "other", min_idle_ms=0) == []  # waiting for its retry, not abandoned
    depth = await queue.depth(S, G)
    assert (depth.pending, depth.delayed, depth.lag) == (1, 1, 0)
    started = time.monotonic()
    [again] = await peer.consume(S, G, "w2", block_ms=3000)
    waited = time.monotonic() - started
    assert 0.25 < waited < 1.5
    assert (again.id, again.payload, again.attempts) == (id, b"m0", 2)
    assert (await queue.depth(S, G)).delayed == 0
    assert await peer.ack(S, G, [id]) == 1
    assert await queue.retry_later(S, G, id, 0) is RetryOutcome.NOT_PENDING


async def test_a_blocked_consumer_sees_a_retry_scheduled_elsewhere(queue: DurableQueue, peer: DurableQueue) -> None:
    await _fill(queue, 1)
    [d] = await queue.consume(S, G, "w")
    waiting = asyncio.create_task(peer.consume(S, G, "w2", block_ms=4000))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    await queue.retry_later(S, G, d.id, 100)
    [again] = await waiting
    assert again.id == d.id
    assert time.monotonic() - started < 1.6  # Redis: blocked reads are sliced to 1 s


async def test_a_blocked_consumer_wakes_on_enqueue(queue: DurableQueue, peer: DurableQueue) -> None:
    await queue.ensure_group(S, G)
    waiting = asyncio.create_task(peer.consume(S, G, "w", block_ms=4000))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    id = await queue.enqueue(S, b"x")
    assert [d.id for d in await waiting] == [id]
    assert time.monotonic() - started < 0.8
    started = time.monotonic()
    assert await queue.consume(S, G, "w", block_ms=200) == []
    assert 0.15 < time.monotonic() - started < 1.0


async def test_attempts_are_counted_then_dead_letter(queue: DurableQueue) -> None:
    [id] = await _fill(queue, 1)
    for attempt in (1, 2):
        [d] = await queue.consume(S, G, "w")
        assert d.attempts == attempt
        assert await queue.nack(S, G, id) is RetryOutcome.SCHEDULED
    [d] = await queue.consume(S, G, "w")
    assert d.attempts == 3  # max_attempts: the next failure is the last
    assert await queue.retry_later(S, G, id, 10) is RetryOutcome.DEAD_LETTERED
    [dead] = await queue.dead_letters(S, G)
    assert (dead.id, dead.payload, dead.attempts, dead.reason) == (id, b"m0", 3, "max_attempts")
    assert abs(dead.at - time.time()) < 5
    depth = await queue.depth(S, G)
    assert (depth.pending, depth.delayed, depth.dead) == (0, 0, 1)
    assert await queue.consume(S, G, "w") == []
    assert await queue.nack(S, G, id) is RetryOutcome.NOT_PENDING
    assert await queue.dead_letters(S, "other-group") == []


async def test_a_message_that_kills_every_consumer_is_dead_lettered(make_queue: MakeQueue) -> None:
    queue = make_queue(QueuePolicy(max_attempts=2, maxlen=None))
    [id] = await _fill(queue, 1)
    assert [d.attempts for d in await queue.consume(S, G, "first")] == [1]
    assert [d.attempts for d in await queue.reclaim(S, G, "second", min_idle_ms=0)] == [2]
    assert await queue.reclaim(S, G, "third", min_idle_ms=0) == []
    [dead] = await queue.dead_letters(S, G)
    assert (dead.id, dead.attempts, dead.reason) == (id, 2, "max_attempts")
    assert (await queue.depth(S, G)).pending == 0


async def test_permanent_failure_goes_to_dead_letters_at_once(queue: DurableQueue) -> None:
    ids = await _fill(queue, 2)
    await queue.consume(S, G, "w")
    assert await queue.dead_letter(S, G, ids[1], reason="bad_token")
    assert not await queue.dead_letter(S, G, ids[1], reason="bad_token")
    assert not await queue.dead_letter(S, "no-such-group", ids[0], reason="x")
    [dead] = await queue.dead_letters(S, G)
    assert (dead.id, dead.payload, dead.attempts, dead.reason) == (ids[1], b"m1", 1, "bad_token")
    assert (await queue.depth(S, G)).pending == 1


async def test_dedupe_key_within_its_window(make_queue: MakeQueue) -> None:
    queue = make_queue(QueuePolicy(dedupe_window_ms=300))
    first = await queue.enqueue(S, b"mail.arrived", dedupe_key="mbx-1:uid-7")
    assert await queue.enqueue(S, b"again", dedupe_key="mbx-1:uid-7") == first
    other = await queue.enqueue(S, b"other", dedupe_key="mbx-1:uid-8")
    plain = [await queue.enqueue(S, b"p"), await queue.enqueue(S, b"p")]
    assert len({first, other, *plain}) == 4
    await queue.enqueue("events", b"other stream", dedupe_key="mbx-1:uid-7")  # keys are per stream
    assert await queue.length("events") == 1
    assert await queue.length(S) == 4
    await asyncio.sleep(0.4)
    assert await queue.enqueue(S, b"later", dedupe_key="mbx-1:uid-7") != first
    payloads = [d.payload for d in await queue.consume(S, G, "w", count=10)]
    assert payloads == [b"mail.arrived", b"other", b"p", b"p", b"later"]


async def test_enqueue_many_keeps_order_and_dedupes_like_one_by_one(queue: DurableQueue) -> None:
    assert await queue.enqueue_many(S, []) == []
    first = await queue.enqueue(S, b"a", dedupe_key="k-a")
    ids = await queue.enqueue_many(S, [(b"a again", "k-a"), (b"b", "k-b"), (b"b again", "k-b"), (b"c", None)])
    assert ids[0] == first and ids[1] == ids[2] and len({first, ids[1], ids[3]}) == 3
    payloads = [d.payload for d in await queue.consume(S, G, "w", count=10)]
    assert payloads == [b"a", b"b", b"c"]


async def test_trim_drops_what_every_group_acknowledged(queue: DurableQueue) -> None:
    ids = await _fill(queue, 10)
    assert await queue.trim(S) == 0  # no group yet: nothing is known to be done
    got = await queue.consume(S, "g1", "w", count=6)
    await queue.ack(S, "g1", [d.id for d in got[:4]])
    assert await queue.trim(S) == 4  # m4, m5 pending: kept, and everything after
    assert await queue.length(S) == 6
    await queue.ensure_group(S, "g2")
    await queue.ensure_group(S, "g2")  # idempotent
    assert await queue.trim(S) == 0  # g2 has read nothing
    g2 = await queue.consume(S, "g2", "w", count=10)
    assert [d.id for d in g2] == ids[4:]
    await queue.ack(S, "g2", [d.id for d in g2])
    assert await queue.trim(S) == 0  # g1 still owes m4
    await queue.ack(S, "g1", [d.id for d in got[4:]])
    await queue.ack(S, "g1", [d.id for d in await queue.consume(S, "g1", "w", count=10)])
    assert await queue.trim(S) == 5  # the last delivered entry stays as the groups' mark
    assert await queue.length(S) == 1
    assert (await queue.depth(S, "g1")).total == 0
    new = await queue.enqueue(S, b"new")
    assert [d.id for d in await queue.consume(S, "g1", "w")] == [new]


async def test_maxlen_caps_the_stream_even_unacknowledged(make_queue: MakeQueue) -> None:
    queue = make_queue(QueuePolicy(maxlen=50))
    [first] = await _fill(queue, 1)
    [d] = await queue.consume(S, G, "w")
    assert d.id == first
    await _fill(queue, 600)
    assert 50 <= await queue.length(S) <= 200  # MAXLEN ~: whole Redis nodes are dropped
    # The cap is a safety net: the pending message was trimmed away and cannot come back.
    assert await queue.reclaim(S, G, "other", min_idle_ms=0) == []
    assert (await queue.depth(S, G)).pending == 0


async def test_depth_before_the_group_exists(queue: DurableQueue) -> None:
    await _fill(queue, 3)
    depth = await queue.depth(S, "late")
    assert (depth.pending, depth.lag, depth.delayed, depth.dead) == (0, 3, 0, 0)
    assert len(await queue.consume(S, "late", "w", count=10)) == 3  # a new group starts at the beginning
    empty = await queue.depth("nothing-yet", G)
    assert empty.total == 0
    assert await queue.length("nothing-yet") == 0


@pytest.mark.parametrize("stream", ["a:b", "{x}", "", "a b", "x" * 101])
async def test_names_are_checked(queue: DurableQueue, stream: str) -> None:
    with pytest.raises(ValueError, match="invalid stream"):
        await queue.enqueue(stream, b"x")
    with pytest.raises(ValueError, match="invalid group"):
        await queue.consume(S, stream, "w")


async def test_ids_and_counts_are_checked(queue: DurableQueue) -> None:
    with pytest.raises(ValueError, match="count"):
        await queue.consume(S, G, "w", count=0)
    with pytest.raises(ValueError, match="count"):
        await queue.reclaim(S, G, "w", min_idle_ms=0, count=0)
    with pytest.raises(ValueError, match="invalid message id"):
        await queue.ack(S, G, ["nope"])
    with pytest.raises(ValueError, match="invalid message id"):
        await queue.retry_later(S, G, "1-2-3", 0)
