"""Sending with retries: exponential backoff with jitter, ``Retry-After`` honoured, bounded tries.

Each push keeps its own schedule: a ``429`` for one token does not hold back the others. A wait
longer than ``max_delay_s`` is not slept through: the push is handed back (``deferred``) with the
time before which it must not be retried, for the durable queue to keep. Pushes are re-sent as
they are, so their ``push_id`` (the ``apns-id``) is the same on every try.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from core.settings import PushSettings
from push.providers.base import DeadToken, PermanentFailure, PushNotification, PushProvider, RetryLater

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_tries: int = 5
    base_delay_s: float = 1.0
    max_delay_s: float = 60.0

    @classmethod
    def from_settings(cls, settings: PushSettings) -> RetryPolicy:
        return cls(settings.max_tries, settings.backoff_base_s, settings.backoff_max_s)

    def backoff(self, tries: int, rand: Callable[[], float] = random.random) -> float:
        """Delay after the ``tries``-th failed try: base·2^(tries-1), capped, "equal jitter" (half to all of it)."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2.0 ** (tries - 1))
        return ceiling / 2 + rand() * ceiling / 2


@dataclass(frozen=True, slots=True)
class Deferred:
    """Not to be retried before ``not_before`` (``clock`` time): longer than this call waits."""

    push_id: str
    not_before: float
    reason: str


@dataclass(slots=True)
class DeliveryResult:
    accepted: list[str] = field(default_factory=list)
    dead_tokens: list[DeadToken] = field(default_factory=list)
    failed_permanently: list[PermanentFailure] = field(default_factory=list)
    #: Still failing after ``max_tries``: the last answer of each.
    gave_up: list[RetryLater] = field(default_factory=list)
    deferred: list[Deferred] = field(default_factory=list)
    #: Tries made per push id.
    tries: dict[str, int] = field(default_factory=dict)


async def deliver_with_retries(
    provider: PushProvider[Any],
    notifications: Sequence[PushNotification],
    *,
    policy: RetryPolicy,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    rand: Callable[[], float] = random.random,
) -> DeliveryResult:
    """Send until every push is accepted, dead, refused, out of tries or deferred."""
    result = DeliveryResult()
    by_id = {n.push_id: n for n in notifications}
    not_before = dict.fromkeys(by_id, clock())
    while not_before:
        now = clock()
        due = [push_id for push_id, at in not_before.items() if at <= now]
        if not due:
            await sleep(min(not_before.values()) - now)
            continue
        report = await provider.send([by_id[push_id] for push_id in due])
        for push_id in due:
            del not_before[push_id]
            result.tries[push_id] = result.tries.get(push_id, 0) + 1
        result.accepted.extend(report.accepted)
        result.dead_tokens.extend(report.dead_tokens)
        result.failed_permanently.extend(report.failed_permanently)
        answered = {*report.accepted, *(d.push_id for d in report.dead_tokens)}
        answered |= {f.push_id for f in report.failed_permanently}
        retries = list(report.retry)
        answered |= {r.push_id for r in retries}
        # A provider that forgot a push has not sent it for sure: try again.
        retries += [RetryLater(push_id, None, "unreported") for push_id in due if push_id not in answered]
        now = clock()
        for retry in retries:
            tries = result.tries[retry.push_id]
            if tries >= policy.max_tries:
                result.gave_up.append(retry)
                continue
            delay = max(policy.backoff(tries, rand), retry.retry_after_s or 0.0)
            if delay > policy.max_delay_s:
                result.deferred.append(Deferred(retry.push_id, now + delay, retry.reason))
                continue
            not_before[retry.push_id] = now + delay
        if retries:
            log.info("push.retrying", provider=provider.name, count=len(not_before), gave_up=len(result.gave_up))
    return result
