"""The durable queue over both backends: in-process, and a real Redis (db 15, one namespace per test)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import pytest

from core.queue import DurableQueue, MemoryQueue, QueuePolicy, RedisStreamQueue
from tests.conftest import REDIS_URL

#: A low attempt limit keeps the dead-letter tests short.
TEST_POLICY = QueuePolicy(max_attempts=3, maxlen=None)

MakeQueue = Callable[..., DurableQueue]


@pytest.fixture(params=["memory", "redis"])
async def make_queue(request: pytest.FixtureRequest) -> AsyncIterator[MakeQueue]:
    """``make_queue(policy)`` -> a handle on this test's queues.

    Memory: one process, so every handle is the same queue. Redis: each handle is its own client, as
    another instance of the app would be, over the same namespace.
    """
    namespace = f"mssc-test-{uuid.uuid4().hex[:12]}"
    made: list[DurableQueue] = []
    memory: dict[QueuePolicy, MemoryQueue] = {}

    def make(policy: QueuePolicy = TEST_POLICY) -> DurableQueue:
        queue: DurableQueue
        if request.param == "memory":
            queue = memory.setdefault(policy, MemoryQueue(namespace, policy))
        else:
            queue = RedisStreamQueue.from_url(REDIS_URL, namespace, policy)
        made.append(queue)
        return queue

    yield make
    for queue in made:
        await queue.clear()
        await queue.close()


@pytest.fixture
def queue(make_queue: MakeQueue) -> DurableQueue:
    return make_queue()


@pytest.fixture
def peer(make_queue: MakeQueue) -> DurableQueue:
    """A second instance of the app on the same queues."""
    return make_queue()
