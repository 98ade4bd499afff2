"""In-process durable queue: the embedded default. Correct for one process only.

Same contract as the Redis backend (consumer groups, pending entries, reclaim after idle, delayed
retries, dead letters, trimming), kept in memory: it survives a consumer task that dies, not the
process. Every operation runs without awaiting in the middle, so it is atomic for the event loop.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import time
from collections import deque
from dataclasses import dataclass, field

from core.queue.base import (
    DeadLetter,
    Delivery,
    Depth,
    DurableQueue,
    QueuePolicy,
    RetryOutcome,
    check_consumer,
    check_count,
    check_id,
    check_name,
    parse_id,
)

_Id = tuple[int, int]


@dataclass(slots=True)
class _Pending:
    consumer: str
    #: ``time.monotonic()`` of the last delivery (or claim).
    delivered_at: float
    count: int


@dataclass(slots=True)
class _Group:
    last: _Id = (0, 0)
    pending: dict[_Id, _Pending] = field(default_factory=dict)
    #: Pending ids waiting for a retry -> monotonic time they are due.
    delayed: dict[_Id, float] = field(default_factory=dict)
    dead: deque[DeadLetter] = field(default_factory=deque)


@dataclass(slots=True)
class _Stream:
    ids: list[_Id] = field(default_factory=list)
    payloads: dict[_Id, bytes] = field(default_factory=dict)
    groups: dict[str, _Group] = field(default_factory=dict)
    #: dedupe key -> (message id, monotonic expiry)
    dedupe: dict[str, tuple[str, float]] = field(default_factory=dict)
    #: Set (and replaced) whenever something becomes deliverable, to wake blocked consumers.
    signal: asyncio.Event = field(default_factory=asyncio.Event)

    def wake(self) -> None:
        self.signal.set()
        self.signal = asyncio.Event()

    def drop_front(self, n: int) -> int:
        n = min(n, len(self.ids))
        for key in self.ids[:n]:
            del self.payloads[key]
        del self.ids[:n]
        return n


def _fmt(key: _Id) -> str:
    return f"{key[0]}-{key[1]}"


class MemoryQueue(DurableQueue):
    """One process: the embedded default (``StoreSettings.url == "memory"``)."""

    def __init__(self, namespace: str = "mssc", policy: QueuePolicy | None = None) -> None:
        super().__init__(policy)
        self._ns = namespace
        self._streams: dict[str, _Stream] = {}
        self._last_id: _Id = (0, 0)
        self._enqueued = 0

    @property
    def namespace(self) -> str:
        return self._ns

    def _stream(self, stream: str) -> _Stream:
        check_name("stream", stream)
        s = self._streams.get(stream)
        if s is None:
            s = self._streams[stream] = _Stream()
        return s

    def _group(self, stream: str, group: str) -> tuple[_Stream, _Group]:
        s = self._stream(stream)
        check_name("group", group)
        g = s.groups.get(group)
        if g is None:
            g = s.groups[group] = _Group()
        return s, g

    def _next_id(self) -> _Id:
        ms = int(time.time() * 1000)
        last_ms, last_seq = self._last_id
        self._last_id = (ms, 0) if ms > last_ms else (last_ms, last_seq + 1)
        return self._last_id

    async def enqueue(self, stream: str, payload: bytes, *, dedupe_key: str | None = None) -> str:
        s = self._stream(stream)
        now = time.monotonic()
        if dedupe_key is not None:
            seen = s.dedupe.get(dedupe_key)
            if seen is not None and seen[1] > now:
                return seen[0]
            self._enqueued += 1
            if self._enqueued % 1024 == 0:  # forget expired keys now and then
                s.dedupe = {k: v for k, v in s.dedupe.items() if v[1] > now}
        key = self._next_id()
        s.ids.append(key)
        s.payloads[key] = payload
        if self.policy.maxlen is not None and len(s.ids) > self.policy.maxlen:
            s.drop_front(len(s.ids) - self.policy.maxlen)
        id = _fmt(key)
        if dedupe_key is not None:
            s.dedupe[dedupe_key] = (id, now + self.policy.dedupe_window_ms / 1000)
        s.wake()
        return id

    async def ensure_group(self, stream: str, group: str) -> None:
        self._group(stream, group)

    def _promote_due(self, s: _Stream, g: _Group, consumer: str, count: int, now: float) -> list[Delivery]:
        out: list[Delivery] = []
        for key in sorted(k for k, due in g.delayed.items() if due <= now):
            if len(out) >= count:
                break
            del g.delayed[key]
            out.extend(self._claim(s, g, key, consumer, now))
        return out

    @staticmethod
    def _claim(s: _Stream, g: _Group, key: _Id, consumer: str, now: float) -> list[Delivery]:
        """Deliver a pending message to ``consumer`` (one more attempt); drop it if trimmed away."""
        entry = g.pending[key]
        payload = s.payloads.get(key)
        if payload is None:  # trimmed while pending (maxlen): gone, as in Redis 7
            del g.pending[key]
            return []
        entry.consumer, entry.delivered_at, entry.count = consumer, now, entry.count + 1
        return [Delivery(_fmt(key), payload, entry.count)]

    def _read_new(self, s: _Stream, g: _Group, consumer: str, count: int, now: float) -> list[Delivery]:
        start = bisect.bisect_right(s.ids, g.last)
        out: list[Delivery] = []
        for key in s.ids[start : start + count]:
            g.pending[key] = _Pending(consumer, now, 1)
            g.last = key
            out.append(Delivery(_fmt(key), s.payloads[key], 1))
        return out

    async def consume(
        self,
        stream: str,
        group: str,
        consumer: str,
        *,
        count: int = 10,
        block_ms: int = 0,
    ) -> list[Delivery]:
        check_consumer(consumer)
        check_count(count)
        s, g = self._group(stream, group)
        deadline = time.monotonic() + max(0, block_ms) / 1000
        while True:
            now = time.monotonic()
            out = self._promote_due(s, g, consumer, count, now)
            out += self._read_new(s, g, consumer, count - len(out), now)
            remaining = deadline - now
            if out or remaining <= 0:
                return out
            if g.delayed:
                remaining = min(remaining, max(0.0, min(g.delayed.values()) - now))
            signal = s.signal
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(signal.wait(), remaining)

    async def ack(self, stream: str, group: str, ids: list[str]) -> int:
        _, g = self._group(stream, group)
        acked = 0
        for key in (parse_id(check_id(i)) for i in ids):
            if g.pending.pop(key, None) is not None:
                acked += 1
            g.delayed.pop(key, None)
        return acked

    async def reclaim(
        self,
        stream: str,
        group: str,
        consumer: str,
        *,
        min_idle_ms: int,
        count: int = 10,
    ) -> list[Delivery]:
        check_consumer(consumer)
        check_count(count)
        s, g = self._group(stream, group)
        now = time.monotonic()
        idle_s = min_idle_ms / 1000
        out: list[Delivery] = []
        for key in sorted(g.pending):
            if len(out) >= count:
                break
            entry = g.pending[key]
            if now - entry.delivered_at < idle_s:
                continue
            if key in g.delayed:  # waiting for its retry: whoever consumes next will get it
                entry.consumer, entry.delivered_at = consumer, now
                continue
            if entry.count >= self.policy.max_attempts:
                self._bury(s, g, key, "max_attempts")
                continue
            out.extend(self._claim(s, g, key, consumer, now))
        return out

    def _bury(self, s: _Stream, g: _Group, key: _Id, reason: str) -> None:
        entry = g.pending.pop(key)
        g.delayed.pop(key, None)
        g.dead.append(DeadLetter(_fmt(key), s.payloads.get(key, b""), entry.count, reason, time.time()))
        while len(g.dead) > self.policy.dead_maxlen:
            g.dead.popleft()

    async def retry_later(self, stream: str, group: str, id: str, delay_ms: int) -> RetryOutcome:
        s, g = self._group(stream, group)
        key = parse_id(check_id(id))
        entry = g.pending.get(key)
        if entry is None:
            return RetryOutcome.NOT_PENDING
        if entry.count >= self.policy.max_attempts:
            self._bury(s, g, key, "max_attempts")
            return RetryOutcome.DEAD_LETTERED
        g.delayed[key] = time.monotonic() + max(0, delay_ms) / 1000
        s.wake()  # blocked consumers re-compute how long to wait
        return RetryOutcome.SCHEDULED

    async def dead_letter(self, stream: str, group: str, id: str, *, reason: str) -> bool:
        s, g = self._group(stream, group)
        key = parse_id(check_id(id))
        if key not in g.pending:
            return False
        self._bury(s, g, key, reason)
        return True

    async def dead_letters(self, stream: str, group: str, *, count: int = 100) -> list[DeadLetter]:
        _, g = self._group(stream, group)
        return list(g.dead)[:count]

    async def depth(self, stream: str, group: str) -> Depth:
        s = self._stream(stream)
        check_name("group", group)
        g = s.groups.get(group)
        if g is None:
            return Depth(pending=0, lag=len(s.ids), delayed=0, dead=0)
        lag = len(s.ids) - bisect.bisect_right(s.ids, g.last)
        return Depth(pending=len(g.pending), lag=lag, delayed=len(g.delayed), dead=len(g.dead))

    async def length(self, stream: str) -> int:
        return len(self._stream(stream).ids)

    async def trim(self, stream: str) -> int:
        s = self._stream(stream)
        if not s.groups:
            return 0
        floor = min(min(g.pending) if g.pending else g.last for g in s.groups.values())
        return s.drop_front(bisect.bisect_left(s.ids, floor))

    async def clear(self) -> None:
        for s in self._streams.values():
            s.wake()
        self._streams.clear()
