"""Wire types of availability, the on-call rota and alerts (phone API and service clients).

An alert's text travels only in :class:`AlertDetail`, fetched by a recipient through the API; a push
says "Alerte de visite" / "Alerte de garde" and carries the alert id, never the text.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated

import msgspec

#: Hard upper bound on the wire; the configured ``alerts.text_max_length`` is usually lower.
AlertText = Annotated[str, msgspec.Meta(min_length=1, max_length=4000)]
#: Local time of day, ``HH:MM`` (24 h).
LocalTime = Annotated[str, msgspec.Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
Uuid = Annotated[str, msgspec.Meta(min_length=36, max_length=36, pattern=r"^[0-9a-fA-F-]{36}$")]
Rpps = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{11}$")]

#: Scopes a service client may hold.
SCOPE_RAISE_VISIT = "alerts:raise"
SCOPE_RAISE_ONCALL = "alerts:oncall"
SERVICE_SCOPES = (SCOPE_RAISE_VISIT, SCOPE_RAISE_ONCALL)

#: What a push for an alert says, whatever the alert: the text is fetched through the API.
PUSH_TITLES = {"visit": "Alerte de visite", "oncall": "Alerte de garde"}


class AvailabilityMode(StrEnum):
    #: Au cabinet / à l'officine: no phone push for mail.
    AU_CABINET = "au_cabinet"
    #: En visite: push for mail and alerts.
    EN_VISITE = "en_visite"
    #: De garde: on-call alerts are time-sensitive.
    DE_GARDE = "de_garde"
    #: Absent: nothing, except on-call alerts while on the rota.
    ABSENT = "absent"


class AlertKind(StrEnum):
    VISIT = "visit"
    ONCALL = "oncall"


class AlertStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    ESCALATED = "escalated"
    CLOSED = "closed"


class QuietHours(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """Local times; ``start`` after ``end`` spans midnight (``22:00`` → ``07:00``)."""

    start: LocalTime
    end: LocalTime


class AvailabilityView(msgspec.Struct, rename="camel"):
    mode: AvailabilityMode
    quiet_hours: QuietHours | None
    timezone: str
    #: Whether new mail is pushed right now, given the mode and the quiet hours.
    mail_push_now: bool
    #: Whether the professional is on a structure's rota right now.
    on_call_now: bool


class AvailabilityUpdate(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    mode: AvailabilityMode
    #: ``null`` removes the quiet hours.
    quiet_hours: QuietHours | None = None


class RaiseAlert(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """From a phone, for the structure the device acts for.

    ``visit``: exactly one of ``targetProfessionalId`` (a colleague) or ``team: true`` (everyone of the
    team on visit). ``oncall``: neither; it goes to whoever is on call now.
    """

    kind: AlertKind
    text: AlertText
    target_professional_id: Uuid | None = None
    team: bool = False


class ServiceRaiseAlert(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """From a service client (its structure is the key's). The target is named by RPPS."""

    kind: AlertKind
    text: AlertText
    target_rpps: Rpps | None = None
    team: bool = False


class PersonRef(msgspec.Struct, rename="camel"):
    id: str
    name: str


class AlertStepView(msgspec.Struct, rename="camel"):
    step: int
    #: ``target``, ``team``, ``oncall`` or ``manager``.
    reason: str
    professional: PersonRef
    notified_at: dt.datetime
    acknowledged_at: dt.datetime | None = None


class AlertSummary(msgspec.Struct, rename="camel"):
    id: str
    kind: AlertKind
    status: AlertStatus
    structure_id: str
    created_at: dt.datetime
    #: ``professional`` or ``service``.
    raised_by_kind: str
    raised_by: str
    target: PersonRef | None
    to_team: bool
    step: int
    #: True when the caller was notified and nobody took the alert yet: the phone offers "je prends".
    awaiting_me: bool
    acknowledged_by: PersonRef | None = None
    acknowledged_at: dt.datetime | None = None


class AlertDetail(msgspec.Struct, rename="camel"):
    alert: AlertSummary
    #: Decrypted for the caller only (a recipient or the raiser).
    text: str
    steps: list[AlertStepView]


class AlertList(msgspec.Struct, rename="camel"):
    #: Open and escalated alerts first, then the recent ones; newest first within each.
    alerts: list[AlertSummary]


class ServiceAlertCreated(msgspec.Struct, rename="camel"):
    id: str
    kind: AlertKind
    status: AlertStatus
    created_at: dt.datetime


class ShiftView(msgspec.Struct, rename="camel"):
    id: str
    professional: PersonRef
    starts_at: dt.datetime
    ends_at: dt.datetime
    rank: int


class RotaView(msgspec.Struct, rename="camel"):
    structure_id: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    #: Shifts overlapping the window, by start then rank.
    shifts: list[ShiftView]
    #: Who an on-call alert would reach now, in order.
    on_call_now: list[PersonRef]
    #: Active members of the structure (targets for a visit alert).
    members: list[PersonRef]
