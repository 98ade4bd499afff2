"""The push payload allow-list: everything a push may say, and nothing more.

Apple and Google carry our pushes, so a push is outside the trust space. It says only that there is
something for the phone: which class of thing, an opaque event id, the opaque mailbox or alert it is
about, a badge count and a localisation key for a generic text that the app holds. The phone fetches
the rest through the authenticated API.

:class:`PushPayload` is the allow-list. Its strings can only be

* an opaque id: a UUID, as 32 hex digits or in its canonical 8-4-4-4-12 form. Sixteen symbols and
  a fixed length cannot spell a subject, a sender, a file name or a patient's name;
* one of the enumerations below (:class:`AlertClass`, :class:`LocKey`).

:func:`validate_push_payload` is the one way to build one from loose fields: any other key, any
string that is not an opaque id or a known key, any badge out of range, any class/field mismatch is
refused with :class:`PushPayloadRefusedError`, whose message names the field and never echoes the value.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, Final, TypeVar

import msgspec

T = TypeVar("T")

#: Apple's limit for an alert or background push body, and FCM's for a message.
MAX_PUSH_BYTES: Final = 4096

#: A UUID as 32 lowercase hex digits (event ids) or in canonical form (database ids).
OPAQUE_ID_PATTERN: Final = r"^(?:[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$"
OpaqueId = Annotated[str, msgspec.Meta(pattern=OPAQUE_ID_PATTERN)]
#: Badges above this show as this (iOS shows four digits at most anyway).
MAX_BADGE: Final = 9999
Badge = Annotated[int, msgspec.Meta(ge=0, le=MAX_BADGE)]


class AlertClass(StrEnum):
    """Why the phone is woken. The class picks urgency, expiry and the generic text."""

    MAIL = "mail"
    VISIT_ALERT = "visit_alert"
    ONCALL_ALERT = "oncall_alert"
    #: The device was revoked: wipe local data. Silent (background / data-only).
    WIPE = "wipe"


class LocKey(StrEnum):
    """Keys of the generic texts the app ships (``Localizable.strings``, Android string resources)."""

    NEW_MESSAGE = "MSSC_NEW_MESSAGE"
    VISIT_ALERT = "MSSC_VISIT_ALERT"
    ONCALL_ALERT = "MSSC_ONCALL_ALERT"


#: The French texts behind each key: what the phone shows, and all it shows.
GENERIC_TEXT_FR: Final[Mapping[LocKey, str]] = {
    LocKey.NEW_MESSAGE: "Nouveau message sécurisé",
    LocKey.VISIT_ALERT: "Alerte de visite",
    LocKey.ONCALL_ALERT: "Alerte de garde",
}

#: The generic text of each class (the wipe is silent).
LOC_KEY_FOR_CLASS: Final[Mapping[AlertClass, LocKey | None]] = {
    AlertClass.MAIL: LocKey.NEW_MESSAGE,
    AlertClass.VISIT_ALERT: LocKey.VISIT_ALERT,
    AlertClass.ONCALL_ALERT: LocKey.ONCALL_ALERT,
    AlertClass.WIPE: None,
}


class PushPayloadRefusedError(ValueError):
    """A candidate payload is not on the allow-list. The message names the field, never the value."""

    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(f"push payload refused: {reason}" + (f" (at {field})" if field else ""))
        self.reason = reason
        self.field = field


class PushPayload(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True, kw_only=True):
    """What a push carries, on the wire as a JSON object with camelCase keys (and nothing else)."""

    alert_class: AlertClass
    #: The event that caused the push; phones de-duplicate by it (delivery is at least once).
    event_id: OpaqueId
    #: ``mail``: the mailbox with something new.
    mailbox_id: OpaqueId | None = None
    #: ``visit_alert``, ``oncall_alert``: the alert to fetch and acknowledge.
    alert_id: OpaqueId | None = None
    badge: Badge | None = None
    loc_key: LocKey | None = None

    def __post_init__(self) -> None:
        # Each class carries exactly the reference it needs and its own generic text.
        expected_loc = LOC_KEY_FOR_CLASS[self.alert_class]
        if self.loc_key is not expected_loc:
            raise ValueError("locKey does not belong to this alertClass")
        if (self.mailbox_id is not None) != (self.alert_class is AlertClass.MAIL):
            raise ValueError("mailboxId is required for mail and refused otherwise")
        needs_alert = self.alert_class in (AlertClass.VISIT_ALERT, AlertClass.ONCALL_ALERT)
        if (self.alert_id is not None) != needs_alert:
            raise ValueError("alertId is required for alerts and refused otherwise")
        if self.badge is not None and self.alert_class is AlertClass.WIPE:
            raise ValueError("a wipe carries no badge")

    def to_wire(self) -> dict[str, Any]:
        """The JSON object, with ``None`` fields left out."""
        return {key: value for key, value in msgspec.to_builtins(self).items() if value is not None}


#: Every key a payload may have on the wire.
PUSH_PAYLOAD_KEYS: Final = frozenset(PushPayload.__struct_encode_fields__)


def validate_push_payload(fields: Mapping[str, Any], *, strings_only: bool = False) -> PushPayload:
    """Check loose wire fields against the allow-list and return the payload, or refuse them.

    ``strings_only`` accepts the FCM ``data`` form, where every value is a string (``"3"`` for a
    badge); without it, types must match exactly.
    """
    unknown = set(fields) - PUSH_PAYLOAD_KEYS
    if unknown:
        # Key names come from code, not from mail; still, say only how many there are.
        raise PushPayloadRefusedError(f"{len(unknown)} key(s) outside the allow-list")
    if strings_only and not all(isinstance(value, str) for value in fields.values()):
        raise PushPayloadRefusedError("data values must be strings")
    return check_against(dict(fields), PushPayload, strict=not strings_only)


def check_against(value: Any, schema: type[T], *, strict: bool = True) -> T:
    """Convert ``value`` to ``schema`` (a msgspec type with ``forbid_unknown_fields``) or refuse it.

    Providers use it on the exact JSON they are about to send, with a schema of their envelope whose
    strings are enumerations, opaque ids or :class:`PushPayload` itself.
    """
    try:
        return msgspec.convert(value, schema, strict=strict)
    except msgspec.ValidationError as exc:
        raise PushPayloadRefusedError(*_describe(str(exc))) from None


#: Rules whose wording never contains the refused value (msgspec's ``Invalid enum value 'x'`` does).
_SAFE_RULES = (
    "Expected `",
    "Object missing required field",
    "Object contains unknown field",
    "a wipe",
    "locKey",
    "mailboxId",
    "alertId",
)


def _describe(text: str) -> tuple[str, str | None]:
    rule, _, path = text.partition(" - at ")
    if rule.startswith("Expected `str` matching regex"):
        rule = "not an opaque id"
    elif rule.startswith("Invalid enum value"):
        rule = "not a known value"
    elif rule.startswith("Object contains unknown field"):
        rule = "a key outside the allow-list"
    elif not rule.startswith(_SAFE_RULES):
        rule = "invalid value"
    return rule, path or None
