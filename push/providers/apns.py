"""Apple Push Notification service through aioapns (HTTP/2, token auth with a .p8 key).

aioapns has no host argument and no timeout: the address is the protocol class's ``APNS_SERVER`` /
``APNS_PORT``, so this module gives each client its own protocol subclass (pointing at Apple, at
Apple's sandbox, or at a ``host:port`` peer in tests) that also keeps the ``Retry-After`` header
aioapns drops; the base class bounds every send with a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

import msgspec
import structlog
from aioapns import APNs, NotificationRequest, PushType
from aioapns.common import NotificationResult
from aioapns.connection import (
    APNsDevelopmentClientProtocol,
    APNsProductionClientProtocol,
    APNsTLSClientProtocol,
)
from aioapns.exceptions import ConnectionClosed, MaxAttemptsExceeded
from aioapns.exceptions import ConnectionError as ApnsConnectionError

from contracts.push import MAX_PUSH_BYTES, Badge, LocKey, PushPayload, PushPayloadRefusedError, check_against
from push.payload import CLASS_POLICY, InterruptionLevel
from push.providers.base import Outcome, PushKind, PushNotification, PushPriority, PushProvider, retry_after_seconds

log = structlog.get_logger(__name__)

#: APNs answers that mean the token will never work again: the device must register a new one.
DEAD_TOKEN_REASONS: Final[Mapping[tuple[int, str], str]] = {
    # The token is malformed, or belongs to the other environment (a sandbox token sent to
    # production or the reverse): no retry can deliver it here.
    (400, "BadDeviceToken"): "token unusable in this environment",
    # The token belongs to another app (bundle id) than our topic: it will never be ours.
    (400, "DeviceTokenNotForTopic"): "token of another app",
    # The app was uninstalled or the token invalidated; Apple says so with a timestamp.
    (410, "Unregistered"): "token no longer active",
    # A token past its lifetime (Apple uses it for Live Activities); replaced by a new one.
    (410, "ExpiredToken"): "token expired",
}

#: APNs answers worth retrying later; anything else (bad request, bad config) is permanent.
TEMPORARY_REASONS: Final[Mapping[tuple[int, str], str]] = {
    # Too many pushes to this device token in a short time: slow down for this token.
    (429, "TooManyRequests"): "rate limited for this token",
    # Provider tokens regenerated too often; the next try reuses the cached one.
    (429, "TooManyProviderTokenUpdates"): "provider token churn",
    # aioapns renews the provider token every 30 min; a clock skew can race Apple's 60 min limit.
    (403, "ExpiredProviderToken"): "provider token expired",
    (500, "InternalServerError"): "APNs internal error",
    (503, "ServiceUnavailable"): "APNs unavailable",
    (503, "Shutdown"): "APNs server shutting down",
}

ApnsServer = Literal["production", "sandbox"] | str


class _ApnsAlert(msgspec.Struct, forbid_unknown_fields=True, rename={"loc_key": "loc-key"}):
    loc_key: LocKey


class _Aps(msgspec.Struct, forbid_unknown_fields=True, rename="kebab"):
    alert: _ApnsAlert | None = None
    badge: Badge | None = None
    sound: Literal["default"] | None = None
    interruption_level: InterruptionLevel | None = None
    content_available: Literal[1] | None = None


class ApnsBody(msgspec.Struct, forbid_unknown_fields=True):
    """The allow-list of an APNs body: Apple's ``aps`` envelope and our payload under ``mssc``."""

    aps: _Aps
    mssc: PushPayload


@dataclass(frozen=True, slots=True)
class ApnsRequest:
    body: dict[str, Any]
    push_type: PushType
    priority: int
    collapse_id: str | None


class ApnsProvider(PushProvider[ApnsRequest]):
    """Sends through one aioapns client, built in the running loop on first use."""

    name = "apns"

    def __init__(
        self,
        *,
        key_pem: str,
        key_id: str,
        team_id: str,
        topic: str,
        server: ApnsServer = "production",
        use_tls: bool = True,
        ca_file: str | None = None,
        max_connections: int = 10,
        max_payload_bytes: int = MAX_PUSH_BYTES,
        concurrency: int = 50,
        send_timeout_s: float = 10.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(concurrency=concurrency, send_timeout_s=send_timeout_s, clock=clock)
        if not use_tls and server in ("production", "sandbox"):
            raise ValueError("h2c (use_tls=False) only reaches a host:port peer, never Apple")
        self._key_pem, self._key_id, self._team_id, self._topic = key_pem, key_id, team_id, topic
        self._server, self._use_tls, self._ca_file = server, use_tls, ca_file
        self._max_connections = max_connections
        self.max_payload_bytes = max_payload_bytes
        #: ``Retry-After`` seconds by apns-id, filled by the protocol as answers arrive.
        self._retry_after: dict[str, float] = {}
        self._client: APNs | None = None

    def _client_now(self) -> APNs:
        if self._client is None:
            # aioapns' pool captures the running loop: build it here, inside it.
            context: ssl.SSLContext | None = None
            if self._use_tls:
                context = ssl.create_default_context(cafile=self._ca_file or None)
                context.set_alpn_protocols(["h2"])
            client = APNs(
                key=self._key_pem,
                key_id=self._key_id,
                team_id=self._team_id,
                topic=self._topic,
                max_connections=self._max_connections,
                max_connection_attempts=3,
                ssl_context=context,
                err_func=_quiet,
            )
            client.pool.protocol_class = _protocol_class(self._server, self._retry_after)
            client.pool.ssl_context = context
            self._client = client
        return self._client

    def render(self, notification: PushNotification) -> ApnsRequest:
        payload = notification.payload
        aps: dict[str, Any]
        if notification.kind is PushKind.BACKGROUND:
            aps = {"content-available": 1}
        else:
            policy = CLASS_POLICY[payload.alert_class]
            aps = {"alert": {"loc-key": payload.loc_key}, "sound": "default"}
            if policy.interruption_level is not None:
                aps["interruption-level"] = policy.interruption_level
            if payload.badge is not None:
                aps["badge"] = payload.badge
        body = {"aps": aps, "mssc": payload.to_wire()}
        check_against(body, ApnsBody)
        # The bytes aioapns will send (it encodes with ensure_ascii=False).
        size = len(json.dumps(body, ensure_ascii=False).encode())
        if size > self.max_payload_bytes:
            raise PushPayloadRefusedError("payload_too_large")
        background = notification.kind is PushKind.BACKGROUND
        return ApnsRequest(
            body=body,
            push_type=PushType.BACKGROUND if background else PushType.ALERT,
            # Apple refuses priority 10 for background pushes.
            priority=10 if notification.priority is PushPriority.HIGH and not background else 5,
            collapse_id=None if background else notification.collapse_id,
        )

    async def send_one(self, notification: PushNotification, rendered: ApnsRequest) -> Outcome:
        client = self._client_now()
        request = NotificationRequest(
            device_token=notification.token,
            message=rendered.body,
            # Stable across retries: the push id is the apns-id.
            notification_id=notification.push_id,
            time_to_live=max(0, int(notification.expires_at - self.clock())),
            priority=rendered.priority,
            collapse_key=rendered.collapse_id,
            push_type=rendered.push_type,
        )
        self._retry_after.pop(notification.push_id, None)
        try:
            result = await client.send_notification(request)
        except (ApnsConnectionError, ConnectionClosed, MaxAttemptsExceeded, OSError) as exc:
            return Outcome.retry(f"connection: {type(exc).__name__}")
        finally:
            retry_after = self._retry_after.pop(notification.push_id, None)
        return classify(result, retry_after)

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        client.pool.close()
        # Let the TLS shutdowns finish while the loop still runs (each lost connection leaves the pool).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                while client.pool.connections:  # noqa: ASYNC110 - aioapns offers no event to wait on
                    await asyncio.sleep(0.01)


def classify(result: NotificationResult, retry_after_s: float | None = None) -> Outcome:
    """Map an APNs answer to accepted / retry / dead token / permanent failure."""
    if result.is_successful:
        return Outcome.accepted()
    status = int(result.status)
    reason = result.description or f"HTTP {status}"
    key = (status, reason)
    if key in DEAD_TOKEN_REASONS:
        # 410: Apple says since when (ms) the token is invalid; one given again after that is kept.
        since = result.timestamp / 1000 if status == 410 and isinstance(result.timestamp, int | float) else None
        return Outcome.dead(reason, since)
    if key in TEMPORARY_REASONS or status == 429 or status >= 500:
        return Outcome.retry(reason, retry_after_s)
    log.error("apns.refused", status=status, reason=reason)
    return Outcome.failed(reason)


async def _quiet(_request: NotificationRequest, _result: NotificationResult) -> None:
    """aioapns logs every failure at error level; the provider reports them instead."""


def _protocol_class(server: ApnsServer, retry_after: dict[str, float]) -> type[APNsTLSClientProtocol]:
    base: type[APNsTLSClientProtocol]
    if server == "production":
        base, host, port = APNsProductionClientProtocol, APNsProductionClientProtocol.APNS_SERVER, 443
    elif server == "sandbox":
        base, host, port = APNsDevelopmentClientProtocol, APNsDevelopmentClientProtocol.APNS_SERVER, 443
    else:
        host, _, port_text = server.rpartition(":")
        base, port = APNsTLSClientProtocol, int(port_text)

    class Protocol(base):  # type: ignore[misc,valid-type]
        APNS_SERVER = host
        APNS_PORT = port

        def on_response_received(self, headers: dict[bytes, bytes]) -> None:
            apns_id = headers.get(b"apns-id", b"").decode("latin-1").lower()
            value = headers.get(b"retry-after")
            if value is not None:
                seconds = retry_after_seconds(value.decode("latin-1"))
                if seconds is not None:
                    retry_after[apns_id] = seconds
            if self._abandoned(apns_id):
                return
            super().on_response_received(headers)

        def on_data_received(self, raw_data: bytes, stream_id: int) -> None:
            apns_id = self.request_streams.get(stream_id)
            if apns_id is not None and (self._abandoned(apns_id) or apns_id not in self.requests):
                self.request_streams.pop(stream_id, None)
                return
            super().on_data_received(raw_data, stream_id)

        def _abandoned(self, apns_id: str) -> bool:
            """A send that timed out cancelled its future. aioapns would resolve it anyway when the
            late answer comes, raise InvalidStateError and drop the connection with every push on it."""
            future = self.requests.get(apns_id)
            if future is None or not future.done():
                return False
            del self.requests[apns_id]
            retry_after.pop(apns_id, None)
            return True

    return Protocol
