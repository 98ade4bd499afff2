"""What only the Redis backend has: keys, groups lost by Redis, the factory, a restart with AOF on."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.queue import MemoryQueue, QueuePolicy, RedisStreamQueue, RetryOutcome, create_queue
from core.settings import StoreSettings
from tests.conftest import REDIS_URL
from tests.peers.private_redis import PrivateRedis

S, G = "events", "push-workers"


@pytest.fixture
async def redis_queue() -> AsyncIterator[RedisStreamQueue]:
    queue = RedisStreamQueue.from_url(REDIS_URL, f"mssc-test-{uuid.uuid4().hex[:12]}", QueuePolicy(max_attempts=3))
    try:
        yield queue
    finally:
        await queue.clear()
        await queue.close()


async def test_keys_stay_in_the_namespace(redis_queue: RedisStreamQueue) -> None:
    ns = redis_queue.namespace
    d = await redis_queue.enqueue(S, b"x", dedupe_key="k")
    await redis_queue.consume(S, G, "w")
    await redis_queue.retry_later(S, G, d, 60_000)
    await redis_queue.enqueue(S, b"y")
    [y] = await redis_queue.consume(S, G, "w")
    await redis_queue.dead_letter(S, G, y.id, reason="test")
    keys = sorted([k.decode() async for k in redis_queue.client.scan_iter(match=f"{ns}:*")])
    base = f"{ns}:queue:{{{S}}}"
    assert keys == [base, f"{base}:dead:{G}", f"{base}:dedupe:k", f"{base}:delayed:{G}"]
    await redis_queue.clear()
    assert [k async for k in redis_queue.client.scan_iter(match=f"{ns}:*")] == []


async def test_a_group_lost_by_redis_is_created_again(redis_queue: RedisStreamQueue) -> None:
    await redis_queue.enqueue(S, b"before")
    assert len(await redis_queue.consume(S, G, "w")) == 1
    await redis_queue.client.delete(f"{redis_queue.namespace}:queue:{{{S}}}")  # as a restart without persistence
    assert await redis_queue.consume(S, G, "w") == []
    assert await redis_queue.reclaim(S, G, "w", min_idle_ms=0) == []
    assert await redis_queue.retry_later(S, G, "1-0", 0) is RetryOutcome.NOT_PENDING
    assert await redis_queue.ack(S, G, ["1-0"]) == 0
    id = await redis_queue.enqueue(S, b"after")
    assert [d.id for d in await redis_queue.consume(S, G, "w")] == [id]


async def test_factory_follows_store_settings() -> None:
    memory = create_queue(StoreSettings(url="memory", namespace="x"))
    assert isinstance(memory, MemoryQueue)
    redis = create_queue(StoreSettings(url=REDIS_URL, namespace="x"), QueuePolicy(max_attempts=7))
    assert isinstance(redis, RedisStreamQueue)
    assert redis.policy.max_attempts == 7
    await redis.close()
    with pytest.raises(ValueError, match="unsupported"):
        create_queue(StoreSettings(url="postgres://nope"))
    with pytest.raises(ValueError, match="max_attempts"):
        QueuePolicy(max_attempts=0)


# Redis restarted: a private redis-server with the append-only file on, killed with SIGKILL.


@pytest.fixture
async def private_redis(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[PrivateRedis]:
    server = PrivateRedis(tmp_path, appendonly=request.param)
    await server.start()
    try:
        yield server
    finally:
        await server.kill()


@pytest.mark.parametrize("private_redis", [True], indirect=True, ids=["aof"])
async def test_unacknowledged_messages_survive_a_redis_crash_with_aof(private_redis: PrivateRedis) -> None:
    queue = RedisStreamQueue.from_url(private_redis.url, "mssc", QueuePolicy(max_attempts=5))
    try:
        ids = [await queue.enqueue(S, f"m{i}".encode(), dedupe_key=f"k{i}") for i in range(5)]
        got = await queue.consume(S, G, "dies", count=3)
        assert [d.id for d in got] == ids[:3]
        await queue.ack(S, G, [ids[0]])  # m0 done
        await queue.retry_later(S, G, ids[1], 500)  # m1 failed, retry scheduled
        # m2 in flight on a consumer that dies with Redis; m3, m4 never delivered.

        await private_redis.kill()
        await private_redis.start()

        depth = await queue.depth(S, G)
        assert (depth.pending, depth.delayed, depth.lag) == (2, 1, 2)
        assert await queue.enqueue(S, b"dup", dedupe_key="k4") == ids[4]  # the dedupe window survived too
        [orphan] = await queue.reclaim(S, G, "survivor", min_idle_ms=0)
        assert (orphan.id, orphan.payload, orphan.attempts) == (ids[2], b"m2", 2)
        seen = {d.id: d for d in await queue.consume(S, G, "survivor", count=10)}
        while ids[1] not in seen:
            seen |= {d.id: d for d in await queue.consume(S, G, "survivor", count=10, block_ms=2000)}
        assert sorted(seen) == sorted(ids[1:2] + ids[3:])
        assert seen[ids[1]].attempts == 2
        assert await queue.ack(S, G, [*seen, orphan.id]) == 4
        assert (await queue.depth(S, G)).total == 0
    finally:
        await queue.close()


@pytest.mark.parametrize("private_redis", [False], indirect=True, ids=["no-persistence"])
async def test_without_persistence_a_crash_loses_the_queue_and_consumers_carry_on(private_redis: PrivateRedis) -> None:
    queue = RedisStreamQueue.from_url(private_redis.url, "mssc")
    try:
        await queue.enqueue(S, b"lost")
        await queue.ensure_group(S, G)
        await private_redis.kill()
        await private_redis.start()
        assert (await queue.depth(S, G)).total == 0  # why production runs Redis with appendonly yes
        assert await queue.consume(S, G, "w") == []  # the lost group is created again
        id = await queue.enqueue(S, b"next")
        assert [d.id for d in await queue.consume(S, G, "w")] == [id]
    finally:
        await queue.close()
