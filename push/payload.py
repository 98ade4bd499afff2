"""The content-free composer: an event becomes a push that says only "something for you".

Everything a push may carry is :class:`contracts.push.PushPayload` (the allow-list). The composer
takes identifiers, never a message or an alert: it copies the event's opaque id and the mailbox or
alert id, adds a badge count and the generic text of the class, and validates the result. A caller
that passes anything else (a subject where an id belongs, an extra key) gets
:class:`~contracts.push.PushPayloadRefusedError`, and each provider checks again the exact bytes it is
about to send (``PushProvider.render``).

The class of a push decides how it travels (:data:`CLASS_POLICY`): alert or background, urgency,
expiry, the APNs interruption level and the Android channel.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from contracts.events import Event, EventType
from contracts.push import (
    LOC_KEY_FOR_CLASS,
    MAX_BADGE,
    AlertClass,
    PushPayload,
    PushPayloadRefusedError,
    validate_push_payload,
)
from core.db.models import Device
from push.providers.base import PushKind, PushNotification, PushPriority

InterruptionLevel = Literal["active", "time-sensitive"]
#: Android notification channels the app creates, one per class that shows a text.
AndroidChannel = Literal["mssc_mail", "mssc_visit", "mssc_oncall"]


@dataclass(frozen=True, slots=True)
class ClassPolicy:
    kind: PushKind
    priority: PushPriority
    #: How long the provider keeps trying to reach an offline phone.
    ttl_s: int
    #: APNs ``interruption-level``; ``time-sensitive`` breaks through Focus modes.
    interruption_level: InterruptionLevel | None
    android_channel: AndroidChannel | None


CLASS_POLICY: Final[Mapping[AlertClass, ClassPolicy]] = {
    # A new message: shown at once, but a day-old "new message" is noise: the app syncs when opened.
    AlertClass.MAIL: ClassPolicy(PushKind.ALERT, PushPriority.HIGH, 24 * 3600, "active", "mssc_mail"),
    # A visit request: useful within the hour; the alert itself escalates if nobody acknowledges.
    AlertClass.VISIT_ALERT: ClassPolicy(PushKind.ALERT, PushPriority.HIGH, 3600, "active", "mssc_visit"),
    # On call: must reach the professional through Focus; escalation takes over after 15 minutes.
    AlertClass.ONCALL_ALERT: ClassPolicy(PushKind.ALERT, PushPriority.HIGH, 15 * 60, "time-sensitive", "mssc_oncall"),
    # Wipe: silent, as urgent as the platform allows for a background push, kept as long as FCM
    # keeps anything (28 days) for a phone that is off. The API answers 401 + wipe meanwhile.
    AlertClass.WIPE: ClassPolicy(PushKind.BACKGROUND, PushPriority.HIGH, 28 * 24 * 3600, None, None),
}

#: Namespace of push ids derived from (event, device): a re-processed event gets the same id.
_PUSH_ID_NAMESPACE: Final = uuid.UUID("4d1b7f3e-62a2-4c1e-9a57-2f0c1b8e5d90")


def compose(fields: Mapping[str, Any]) -> PushPayload:
    """Validate wire-named fields (``alertClass``, ``eventId``…) against the allow-list."""
    return validate_push_payload(fields)


def mail_payload(*, event_id: str | uuid.UUID, mailbox_id: str | uuid.UUID, badge: int | None = None) -> PushPayload:
    """New mail in a mailbox: "Nouveau message sécurisé", with the unread count as badge (capped)."""
    if badge is not None and not isinstance(badge, bool) and isinstance(badge, int):
        badge = min(badge, MAX_BADGE)
    return _compose(AlertClass.MAIL, event_id=event_id, mailboxId=_id(mailbox_id), badge=badge)


def alert_payload(alert_class: AlertClass, *, event_id: str | uuid.UUID, alert_id: str | uuid.UUID) -> PushPayload:
    """A visit or on-call alert: "Alerte de visite" / "Alerte de garde"."""
    if alert_class not in (AlertClass.VISIT_ALERT, AlertClass.ONCALL_ALERT):
        raise PushPayloadRefusedError("not an alert class", "alertClass")
    return _compose(alert_class, event_id=event_id, alertId=_id(alert_id))


def wipe_payload(*, event_id: str | uuid.UUID) -> PushPayload:
    """The device was revoked: wipe. Silent."""
    return _compose(AlertClass.WIPE, event_id=event_id)


def payload_for_event(event: Event, *, badge: int | None = None) -> PushPayload:
    """The payload of a ``mail.arrived`` or ``device.revoked`` event (alerts need their alert id:
    use :func:`alert_payload`). Only ``event.id`` and ``event.mailbox_id`` are read."""
    if event.type is EventType.MAIL_ARRIVED:
        if event.mailbox_id is None:
            raise PushPayloadRefusedError("mailboxId is required for mail", "mailboxId")
        return mail_payload(event_id=event.id, mailbox_id=event.mailbox_id, badge=badge)
    if event.type is EventType.DEVICE_REVOKED:
        return wipe_payload(event_id=event.id)
    raise PushPayloadRefusedError("this event type has no push of its own")


def _id(value: str | uuid.UUID) -> str:
    return str(value) if isinstance(value, uuid.UUID) else value


def _compose(alert_class: AlertClass, *, event_id: str | uuid.UUID, **refs: Any) -> PushPayload:
    loc_key = LOC_KEY_FOR_CLASS[alert_class]
    fields: dict[str, Any] = {"alertClass": alert_class.value, "eventId": _id(event_id), **refs}
    if loc_key is not None:
        fields["locKey"] = loc_key.value
    return compose({key: value for key, value in fields.items() if value is not None})


@dataclass(frozen=True, slots=True)
class PushTarget:
    """Where a device is reached: its provider and token (nothing else of the device is read)."""

    device_id: str
    provider: str
    token: str

    @classmethod
    def of(cls, device: Device) -> PushTarget | None:
        """The device's push address, or ``None`` if it has none or the provider said it is dead."""
        if not device.push_token or device.push_token_dead_at is not None:
            return None
        return cls(device_id=str(device.id), provider=device.push_provider or "none", token=device.push_token)


def build_notification(
    target: PushTarget, payload: PushPayload, *, now: float | None = None, push_id: str | None = None
) -> PushNotification:
    """One push for one device, shaped by the class policy.

    The push id is derived from the event and the device unless given, so an event processed twice
    (delivery is at least once) yields the same ``apns-id``. Mail collapses per mailbox and alerts per
    alert: the phone shows the newest, never a pile.
    """
    policy = CLASS_POLICY[payload.alert_class]
    if push_id is None:
        push_id = str(uuid.uuid5(_PUSH_ID_NAMESPACE, f"{payload.event_id}/{target.device_id}"))
    return PushNotification(
        push_id=push_id,
        device_id=target.device_id,
        token=target.token,
        payload=payload,
        kind=policy.kind,
        priority=policy.priority,
        expires_at=(time.time() if now is None else now) + policy.ttl_s,
        collapse_id=payload.mailbox_id or payload.alert_id,
    )
