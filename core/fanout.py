"""Fan-out: tell every instance at once (revocations close sessions, drop caches, stop streams).

Best-effort by nature (pub/sub): correctness never depends on it — the shared denylist already
refuses a revoked device everywhere. Fan-out makes instances *act* (close the operator sessions a
revoked device had open, stop its streams) within milliseconds instead of at their next check.
In-process by default; Redis pub/sub when the store is Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from redis.asyncio import Redis

from contracts.events import Event, EventType
from core.logging import get_logger
from core.tasks import cancel_and_wait, stop_if_cancelled

log = get_logger("mssc.fanout")

Handler = Callable[[Event], Awaitable[None]]


def new_event(kind: EventType, **fields: Any) -> Event:
    return Event(id=uuid.uuid4().hex, type=kind, at=time.time(), **fields)


class FanOut(ABC):
    def __init__(self) -> None:
        self._handlers: list[Handler] = []

    def on_event(self, handler: Handler) -> None:
        self._handlers.append(handler)

    async def _dispatch(self, raw: bytes) -> None:
        try:
            event = msgspec.json.decode(raw, type=Event)
        except msgspec.DecodeError:
            log.warning("fanout_bad_event")
            return
        for handler in self._handlers:
            try:
                await handler(event)
            except Exception as exc:  # noqa: BLE001 - one failing handler must not starve the others
                log.error("fanout_handler_failed", event=event.type.value, error_type=type(exc).__name__)

    @abstractmethod
    async def publish(self, event: Event) -> None: ...

    async def start(self) -> None:  # noqa: B027 - optional
        """Begin receiving (Redis: subscribe)."""

    async def stop(self) -> None:  # noqa: B027 - optional
        """Stop receiving."""


class MemoryFanOut(FanOut):
    """One process: publishing is dispatching."""

    async def publish(self, event: Event) -> None:
        await self._dispatch(msgspec.json.encode(event))


class RedisFanOut(FanOut):
    """Every instance subscribes to one channel; a lost connection is re-established with backoff."""

    def __init__(self, client: Redis, namespace: str) -> None:
        super().__init__()
        self._redis = client
        self._channel = f"{namespace}:fanout"
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    async def publish(self, event: Event) -> None:
        await self._redis.publish(self._channel, msgspec.json.encode(event))

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="fanout-listener")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.ready.wait(), 5)

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait([self._task])

    async def _listen(self) -> None:
        delay = 0.1
        while True:
            stop_if_cancelled()
            try:
                async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(self._channel)
                    self.ready.set()
                    delay = 0.1
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            await self._dispatch(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - reconnect on any transport failure
                self.ready.clear()
                log.warning("fanout_reconnect", error_type=type(exc).__name__, delay_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
