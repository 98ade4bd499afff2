"""The durable queue contract: named streams, consumer groups, at-least-once delivery.

Delivery is **at least once**. A message stays *pending* for a group from the moment one of the
group's consumers receives it until that consumer acknowledges it; a consumer that dies before
``ack`` leaves it pending, and :meth:`DurableQueue.reclaim` hands it to another consumer once it
has been idle long enough. So a message may be handled twice (a slow consumer that was presumed
dead, a crash between the work and the ``ack``): consumers make their work idempotent and
de-duplicate by message id (``Delivery.id``, stable across redeliveries and retries) or by the
event id inside the payload (``contracts.events.Event.id``). Phones de-duplicate pushes by id.

Failures: :meth:`DurableQueue.retry_later` keeps the message pending for the group and hides it
until its delay has passed (temporary failure); after ``QueuePolicy.max_attempts`` deliveries the
message moves to the group's dead-letter list instead (also on :meth:`DurableQueue.reclaim`, so a
message that crashes every consumer that takes it stops circulating). :meth:`DurableQueue.dead_letter`
moves one there at once (permanent failure). Retries and dead letters are per group: other groups
reading the same stream are not affected.

Ordering: one stream delivers new messages in enqueue order; redeliveries (retries, reclaims) come
back out of order, as in any at-least-once queue.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

#: Stream and group names become part of keys: keep them to a safe alphabet (no ``:``, ``{``, ``}``).
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}")
_MESSAGE_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")


@dataclass(frozen=True, slots=True)
class QueuePolicy:
    """How long messages live and how often they are tried. One policy per queue instance."""

    #: Deliveries to one group before the message is dead-lettered (``retry_later``, ``reclaim``).
    max_attempts: int = 5
    #: Approximate cap on a stream's length, applied at every enqueue (Redis ``XADD MAXLEN ~``);
    #: ``None`` disables it. A safety net: entries beyond it are dropped *even if not yet acknowledged*,
    #: so size it to hours of peak traffic and run :meth:`DurableQueue.trim` to free acknowledged ones.
    maxlen: int | None = 100_000
    #: Approximate cap on each group's dead-letter list.
    dead_maxlen: int = 10_000
    #: How long an enqueue ``dedupe_key`` is remembered.
    dedupe_window_ms: int = 10 * 60 * 1000

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.maxlen is not None and self.maxlen < 1:
            raise ValueError("maxlen must be positive (or None)")
        if self.dead_maxlen < 1 or self.dedupe_window_ms < 1:
            raise ValueError("dead_maxlen and dedupe_window_ms must be positive")


@dataclass(frozen=True, slots=True)
class Delivery:
    """One delivery of a message to one consumer of a group."""

    #: Stream id (``<ms>-<seq>``), the same on every redelivery: ``ack`` it, de-duplicate by it.
    id: str
    payload: bytes
    #: Deliveries of this message to this group so far, this one included (1 on first delivery).
    attempts: int


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message a group gave up on."""

    #: The message's id in its stream.
    id: str
    payload: bytes
    attempts: int
    #: Short machine reason: ``max_attempts`` or the one given to ``dead_letter``.
    reason: str
    #: Unix time (seconds) it was dead-lettered.
    at: float


@dataclass(frozen=True, slots=True)
class Depth:
    """Backlog of one group on one stream, for metrics and health checks."""

    #: Delivered and not yet acknowledged (in flight, abandoned, or waiting for a retry).
    pending: int
    #: Not yet delivered to the group.
    lag: int
    #: Of ``pending``, how many wait for a scheduled retry.
    delayed: int
    #: Messages in the group's dead-letter list.
    dead: int

    @property
    def total(self) -> int:
        """Work still owed to the group: ``pending + lag``."""
        return self.pending + self.lag


class RetryOutcome(StrEnum):
    SCHEDULED = "scheduled"
    DEAD_LETTERED = "dead_lettered"
    #: Not pending for the group (already acknowledged, dead-lettered, or trimmed away).
    NOT_PENDING = "not_pending"


class DurableQueue(ABC):
    """Named streams read by consumer groups; see the module docstring for the guarantees.

    Groups are created on first use (``consume``, ``reclaim``, ``ensure_group``) and start from the
    beginning of the stream, so nothing enqueued before the first consumer starts is missed.
    """

    def __init__(self, policy: QueuePolicy | None = None) -> None:
        self.policy = policy or QueuePolicy()

    @abstractmethod
    async def enqueue(
        self,
        stream: str,
        payload: bytes,
        *,
        dedupe_key: str | None = None,
    ) -> str:
        """Append a message; its id. With ``dedupe_key``, a second enqueue of the same key within
        ``policy.dedupe_window_ms`` adds nothing and returns the first message's id."""

    async def enqueue_many(self, stream: str, items: Sequence[tuple[bytes, str | None]]) -> list[str]:
        """:meth:`enqueue` of ``(payload, dedupe_key)`` pairs, in order; their ids. A backend over the
        network sends them in one round trip."""
        return [await self.enqueue(stream, payload, dedupe_key=key) for payload, key in items]

    @abstractmethod
    async def ensure_group(self, stream: str, group: str) -> None:
        """Create the group (and the stream) if absent; idempotent."""

    @abstractmethod
    async def consume(
        self,
        stream: str,
        group: str,
        consumer: str,
        *,
        count: int = 10,
        block_ms: int = 0,
    ) -> list[Delivery]:
        """Up to ``count`` messages for this consumer: retries that are due first, then new messages
        in stream order. Waits up to ``block_ms`` when there are none (``0``: return at once)."""

    @abstractmethod
    async def ack(self, stream: str, group: str, ids: list[str]) -> int:
        """Acknowledge handled messages; how many were pending."""

    @abstractmethod
    async def reclaim(
        self,
        stream: str,
        group: str,
        consumer: str,
        *,
        min_idle_ms: int,
        count: int = 10,
    ) -> list[Delivery]:
        """Take over up to ``count`` messages left pending by any consumer for at least ``min_idle_ms``
        (a consumer that died). Messages waiting for a retry are left alone; messages already delivered
        ``policy.max_attempts`` times are dead-lettered instead of being handed out again."""

    @abstractmethod
    async def retry_later(self, stream: str, group: str, id: str, delay_ms: int) -> RetryOutcome:
        """Temporary failure: deliver the message to the group again (any consumer) after ``delay_ms``,
        or dead-letter it when it has had ``policy.max_attempts`` deliveries."""

    async def nack(self, stream: str, group: str, id: str) -> RetryOutcome:
        """``retry_later`` without delay."""
        return await self.retry_later(stream, group, id, 0)

    @abstractmethod
    async def dead_letter(self, stream: str, group: str, id: str, *, reason: str) -> bool:
        """Permanent failure: move a pending message to the group's dead-letter list now.
        ``False`` when it was not pending."""

    @abstractmethod
    async def dead_letters(self, stream: str, group: str, *, count: int = 100) -> list[DeadLetter]:
        """The oldest ``count`` dead letters of the group (for inspection and replay by an operator)."""

    @abstractmethod
    async def depth(self, stream: str, group: str) -> Depth: ...

    @abstractmethod
    async def length(self, stream: str) -> int:
        """Entries the stream retains (acknowledged ones included, until trimmed)."""

    @abstractmethod
    async def trim(self, stream: str) -> int:
        """Drop the entries every group has acknowledged; how many were dropped. Run it periodically:
        ``policy.maxlen`` is only the safety cap. A stream without groups is left as it is."""

    @abstractmethod
    async def clear(self) -> None:
        """Remove every stream of this namespace (tests, demo reset)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


def check_name(kind: str, name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(f"invalid {kind} name {name!r}: letters, digits, '_', '.', '-' (at most 100)")
    return name


def check_id(id: str) -> str:
    if not _MESSAGE_ID.fullmatch(id):
        raise ValueError(f"invalid message id {id!r}")
    return id


def check_consumer(consumer: str) -> str:
    if not consumer or len(consumer) > 200:
        raise ValueError("consumer name must be 1 to 200 characters")
    return consumer


def check_count(count: int) -> int:
    if count < 1:
        raise ValueError("count must be at least 1")
    return count


def parse_id(id: str) -> tuple[int, int]:
    ms, _, seq = id.partition("-")
    return int(ms), int(seq)
