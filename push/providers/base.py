"""One interface for every push provider, and what a send reports back.

A provider takes :class:`PushNotification` s and answers a :class:`SendReport`: which pushes were
accepted, which failed for now (retry, maybe after a ``Retry-After``), which tokens are dead (the
phone must register a new one) and which pushes can never be sent. It never raises for one push:
timeouts, lost connections and surprises become "retry later", refusals become permanent failures.

The base class does what every provider shares: expiry, the content-free check (``render``),
bounded concurrency and a timeout around each send (the client libraries have none).
"""

from __future__ import annotations

import asyncio
import email.utils
import re
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar, Generic, Literal, TypeVar

import structlog

from contracts.push import OPAQUE_ID_PATTERN, AlertClass, PushPayload, PushPayloadRefusedError

log = structlog.get_logger(__name__)

Rendered = TypeVar("Rendered")


class PushKind(StrEnum):
    """``alert`` shows the generic text; ``background`` only wakes the app (APNs ``content-available``,
    FCM data-only)."""

    ALERT = "alert"
    BACKGROUND = "background"


class PushPriority(StrEnum):
    """How soon it must arrive. APNs: 10 / 5 (background is always 5); FCM Android: high / normal."""

    HIGH = "high"
    NORMAL = "normal"


class NotificationInvalidError(ValueError):
    """A :class:`PushNotification` whose fields do not fit together (a bug in the caller)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PushNotification:
    """One push to one device, as the queue stores it: retried as is, so its ``push_id`` is stable."""

    #: A UUID: the ``apns-id`` (Apple requires this form) and the key of retries and reports.
    push_id: str
    device_id: str
    token: str
    payload: PushPayload
    kind: PushKind
    priority: PushPriority
    #: Absolute expiry (epoch seconds): retries never push it back. Past it, the push is dropped.
    expires_at: float
    #: Pushes with the same collapse id replace each other on the phone (an opaque id, or none).
    collapse_id: str | None = None

    def __post_init__(self) -> None:
        try:
            canonical = str(uuid.UUID(self.push_id))
        except ValueError:
            raise NotificationInvalidError("push_id must be a UUID") from None
        if canonical != self.push_id:
            raise NotificationInvalidError("push_id must be a UUID in canonical lowercase form")
        if not self.token:
            raise NotificationInvalidError("token is empty")
        if self.collapse_id is not None and not _is_opaque(self.collapse_id):
            raise NotificationInvalidError("collapse_id must be an opaque id")
        silent = self.payload.loc_key is None
        if silent != (self.kind is PushKind.BACKGROUND):
            raise NotificationInvalidError("background pushes carry no text, alert pushes do")
        if self.payload.alert_class is AlertClass.WIPE and self.kind is not PushKind.BACKGROUND:
            raise NotificationInvalidError("a wipe is a background push")

    @property
    def alert_class(self) -> AlertClass:
        return self.payload.alert_class


def retry_after_seconds(value: str | None) -> float | None:
    """An HTTP ``Retry-After`` as seconds from now (delta or HTTP-date form); ``None`` if absent or bad."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _is_opaque(value: str) -> bool:
    return re.fullmatch(OPAQUE_ID_PATTERN, value) is not None


@dataclass(frozen=True, slots=True)
class RetryLater:
    push_id: str
    #: The provider's ``Retry-After`` in seconds, if it sent one: never retry sooner.
    retry_after_s: float | None
    reason: str


@dataclass(frozen=True, slots=True)
class DeadToken:
    """The provider says this token will never work again: mark it dead, the phone re-registers."""

    push_id: str
    device_id: str
    token: str
    reason: str
    #: Since when (epoch seconds) the provider holds the token invalid, when it says (APNs 410).
    invalid_since: float | None = None


@dataclass(frozen=True, slots=True)
class PermanentFailure:
    push_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one push. ``reason`` is a provider code or ours, never content."""

    status: Literal["accepted", "retry", "dead", "failed"]
    reason: str = ""
    retry_after_s: float | None = None
    #: A dead token: since when the provider holds it invalid (APNs 410 ``timestamp``), if it says.
    invalid_since: float | None = None

    @classmethod
    def accepted(cls) -> Outcome:
        return cls("accepted")

    @classmethod
    def retry(cls, reason: str, retry_after_s: float | None = None) -> Outcome:
        return cls("retry", reason, retry_after_s)

    @classmethod
    def dead(cls, reason: str, invalid_since: float | None = None) -> Outcome:
        return cls("dead", reason, invalid_since=invalid_since)

    @classmethod
    def failed(cls, reason: str) -> Outcome:
        return cls("failed", reason)


@dataclass(slots=True)
class SendReport:
    """Every push of a send lands in exactly one list."""

    accepted: list[str] = field(default_factory=list)
    retry: list[RetryLater] = field(default_factory=list)
    dead_tokens: list[DeadToken] = field(default_factory=list)
    failed_permanently: list[PermanentFailure] = field(default_factory=list)

    def record(self, notification: PushNotification, outcome: Outcome) -> None:
        push_id = notification.push_id
        if outcome.status == "accepted":
            self.accepted.append(push_id)
        elif outcome.status == "retry":
            self.retry.append(RetryLater(push_id, outcome.retry_after_s, outcome.reason))
        elif outcome.status == "dead":
            self.dead_tokens.append(
                DeadToken(push_id, notification.device_id, notification.token, outcome.reason, outcome.invalid_since)
            )
        else:
            self.failed_permanently.append(PermanentFailure(push_id, outcome.reason))

    def extend(self, other: SendReport) -> None:
        self.accepted.extend(other.accepted)
        self.retry.extend(other.retry)
        self.dead_tokens.extend(other.dead_tokens)
        self.failed_permanently.extend(other.failed_permanently)


class PushProvider(ABC, Generic[Rendered]):
    """A way to reach phones. Subclasses render (and check) a push, then send one rendered push."""

    #: ``apns``, ``fcm``, ``sink``: matches ``Device.push_provider`` (the sink takes any).
    name: ClassVar[str]

    def __init__(
        self, *, concurrency: int = 50, send_timeout_s: float = 10.0, clock: Callable[[], float] | None = None
    ) -> None:
        if concurrency < 1 or send_timeout_s <= 0:
            raise ValueError("concurrency must be at least 1 and send_timeout_s positive")
        self.concurrency = concurrency
        self.send_timeout_s = send_timeout_s
        self.clock = clock or time.time
        # One bound per provider, shared by concurrent ``send`` calls; created in the running loop.
        self._slots: asyncio.Semaphore | None = None

    async def send(self, notifications: Sequence[PushNotification]) -> SendReport:
        """Send each push once. Never raises for a push: every one lands in the report."""
        report = SendReport()
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.concurrency)
        slots = self._slots
        # At most ``concurrency`` workers take the pushes in turn: a task per push would cost a task,
        # a semaphore wait and a wake-up each, for pushes that cannot be in flight anyway.
        pending = iter(notifications)

        async def worker() -> None:
            for notification in pending:
                if notification.expires_at <= self.clock():
                    report.record(notification, Outcome.failed("expired"))
                    continue
                try:
                    rendered = self.render(notification)
                except PushPayloadRefusedError as exc:
                    # Refused before it left: a bug upstream, never sent, never retried.
                    log.error("push.refused", provider=self.name, push_id=notification.push_id, reason=exc.reason)
                    report.record(notification, Outcome.failed(f"refused: {exc.reason}"))
                    continue
                async with slots:
                    outcome = await self._send_bounded(notification, rendered)
                report.record(notification, outcome)

        workers = min(self.concurrency, len(notifications))
        if workers == 1:
            await worker()
        elif workers > 1:
            await asyncio.gather(*(worker() for _ in range(workers)))
        return report

    async def _send_bounded(self, notification: PushNotification, rendered: Rendered) -> Outcome:
        try:
            async with asyncio.timeout(self.send_timeout_s):
                return await self.send_one(notification, rendered)
        except TimeoutError:
            return Outcome.retry("timeout")
        except Exception as exc:  # noqa: BLE001 - a client-library surprise must not lose the other pushes
            log.warning("push.send_error", provider=self.name, push_id=notification.push_id, error=type(exc).__name__)
            return Outcome.retry(f"error: {type(exc).__name__}")

    @abstractmethod
    def render(self, notification: PushNotification) -> Rendered:
        """Build what goes on the wire and check it against the allow-list and the size limit.

        Raises :class:`PushPayloadRefusedError` for anything that may not leave.
        """

    @abstractmethod
    async def send_one(self, notification: PushNotification, rendered: Rendered) -> Outcome:
        """Send one rendered push and classify the answer."""

    async def aclose(self) -> None:
        """Close connections; the provider may not be used afterwards."""

    async def __aenter__(self) -> PushProvider[Rendered]:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()
