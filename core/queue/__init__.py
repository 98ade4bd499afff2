"""Durable queues for events and pushes: in-process by default, Redis Streams in production.

At-least-once: see :mod:`core.queue.base`. Pick the backend from ``StoreSettings`` with
:func:`create_queue`, as :func:`core.ephemeral.create_ephemeral` does for ephemeral state.
"""

from __future__ import annotations

from core.queue.base import DeadLetter, Delivery, Depth, DurableQueue, QueuePolicy, RetryOutcome
from core.queue.memory import MemoryQueue
from core.queue.redis_streams import RedisStreamQueue
from core.settings import StoreSettings


def create_queue(store: StoreSettings, policy: QueuePolicy | None = None) -> DurableQueue:
    """``memory`` (one process) or the Redis of ``store.url``, keys under ``store.namespace``."""
    if store.is_redis:
        return RedisStreamQueue.from_url(store.url, store.namespace, policy)
    if store.url != "memory":
        raise ValueError(f"unsupported queue store URL scheme: {store.url.split(':', 1)[0]!r}")
    return MemoryQueue(store.namespace, policy)


__all__ = [
    "DeadLetter",
    "Delivery",
    "Depth",
    "DurableQueue",
    "MemoryQueue",
    "QueuePolicy",
    "RedisStreamQueue",
    "RetryOutcome",
    "create_queue",
]
