"""Events between rooms and instances. They carry identifiers only, never message content."""

from __future__ import annotations

from enum import StrEnum

import msgspec


class EventType(StrEnum):
    DEVICE_REVOKED = "device.revoked"
    GRANTS_CHANGED = "grants.changed"
    MAIL_ARRIVED = "mail.arrived"
    ALERT_RAISED = "alert.raised"


class Event(msgspec.Struct, kw_only=True, omit_defaults=True):
    #: Unique; phones and workers de-duplicate by it.
    id: str
    type: EventType
    at: float
    device_id: str | None = None
    professional_id: str | None = None
    structure_id: str | None = None
    mailbox_id: str | None = None
    #: Short machine reason (``owner``, ``titulaire``…), never free text.
    reason: str | None = None
    #: ``mail.arrived``: unread messages in the mailbox now (the badge), never what they are.
    unseen: int | None = None
