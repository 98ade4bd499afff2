"""The allow-list and the composer: a push says only "something for you", anything else is refused."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.events import Event, EventType
from contracts.push import (
    GENERIC_TEXT_FR,
    OPAQUE_ID_PATTERN,
    PUSH_PAYLOAD_KEYS,
    AlertClass,
    LocKey,
    PushPayload,
    PushPayloadRefusedError,
    validate_push_payload,
)
from core.db.models import Device
from push.payload import (
    CLASS_POLICY,
    PushTarget,
    alert_payload,
    build_notification,
    compose,
    mail_payload,
    payload_for_event,
    wipe_payload,
)
from push.providers.base import NotificationInvalidError, PushKind, PushNotification, PushPriority

EVENT = uuid.uuid4().hex
MAILBOX = str(uuid.uuid4())
ALERT = str(uuid.uuid4())
CANARY = "Mme Élodie Canary, IRM genou"


def valid_mail() -> dict[str, Any]:
    return {"alertClass": "mail", "eventId": EVENT, "mailboxId": MAILBOX, "badge": 2, "locKey": "MSSC_NEW_MESSAGE"}


def test_the_allow_list_is_exactly_class_ids_badge_and_loc_key() -> None:
    assert {"alertClass", "eventId", "mailboxId", "alertId", "badge", "locKey"} == PUSH_PAYLOAD_KEYS
    assert {c.value for c in AlertClass} == {"mail", "visit_alert", "oncall_alert", "wipe"}
    assert set(GENERIC_TEXT_FR.values()) == {"Nouveau message sécurisé", "Alerte de visite", "Alerte de garde"}


def test_each_class_is_composed_with_its_reference_and_generic_text() -> None:
    assert mail_payload(event_id=EVENT, mailbox_id=MAILBOX, badge=5).to_wire() == {
        "alertClass": "mail",
        "eventId": EVENT,
        "mailboxId": MAILBOX,
        "badge": 5,
        "locKey": "MSSC_NEW_MESSAGE",
    }
    assert alert_payload(AlertClass.VISIT_ALERT, event_id=EVENT, alert_id=uuid.UUID(ALERT)).to_wire() == {
        "alertClass": "visit_alert",
        "eventId": EVENT,
        "alertId": ALERT,
        "locKey": "MSSC_VISIT_ALERT",
    }
    oncall = alert_payload(AlertClass.ONCALL_ALERT, event_id=EVENT, alert_id=ALERT)
    assert oncall.loc_key is LocKey.ONCALL_ALERT
    assert wipe_payload(event_id=EVENT).to_wire() == {"alertClass": "wipe", "eventId": EVENT}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"subject": CANARY}, "outside the allow-list"),
        ({"sender": "dr.canary@hopital.mssante.fr"}, "outside the allow-list"),
        ({"eventId": CANARY}, "not an opaque id"),
        ({"eventId": "dr.canary@hopital.mssante.fr"}, "not an opaque id"),
        ({"eventId": "JeanPierreDupontMartinCanary0001"}, "not an opaque id"),  # 32 characters, not hex
        ({"eventId": EVENT.upper()}, "not an opaque id"),
        ({"mailboxId": CANARY}, "not an opaque id"),
        ({"locKey": CANARY}, "not a known value"),
        ({"locKey": "MSSC_VISIT_ALERT"}, "locKey does not belong"),
        ({"alertClass": CANARY}, "not a known value"),
        ({"badge": CANARY}, "Expected `int"),
        ({"badge": True}, "Expected `int"),
        ({"badge": 10_000}, "Expected `int"),
        ({"badge": -1}, "Expected `int"),
        ({"alertId": ALERT}, "alertId is required for alerts and refused otherwise"),
        ({"mailboxId": None}, "mailboxId is required for mail"),
    ],
)
def test_anything_off_the_allow_list_is_refused_without_echoing_it(change: dict[str, Any], reason: str) -> None:
    fields = valid_mail() | change
    with pytest.raises(PushPayloadRefusedError) as refused:
        compose(fields)
    assert reason in str(refused.value)
    for value in change.values():
        if isinstance(value, str):
            assert value not in str(refused.value)
            assert "Canary" not in str(refused.value) and "canary" not in str(refused.value)


@pytest.mark.parametrize(
    "fields",
    [
        {"alertClass": "wipe", "eventId": EVENT, "badge": 1},
        {"alertClass": "wipe", "eventId": EVENT, "locKey": "MSSC_NEW_MESSAGE"},
        {"alertClass": "visit_alert", "eventId": EVENT, "locKey": "MSSC_VISIT_ALERT"},
        {
            "alertClass": "visit_alert",
            "eventId": EVENT,
            "alertId": ALERT,
            "mailboxId": MAILBOX,
            "locKey": "MSSC_VISIT_ALERT",
        },
        {"alertClass": "mail", "eventId": EVENT, "locKey": "MSSC_NEW_MESSAGE"},
        {"eventId": EVENT},
    ],
)
def test_each_class_takes_exactly_its_own_fields(fields: dict[str, Any]) -> None:
    with pytest.raises(PushPayloadRefusedError):
        compose(fields)


def test_a_huge_unread_count_is_capped_not_refused() -> None:
    assert mail_payload(event_id=EVENT, mailbox_id=MAILBOX, badge=123_456).badge == 9999
    with pytest.raises(PushPayloadRefusedError):
        mail_payload(event_id=EVENT, mailbox_id=MAILBOX, badge=-1)


def test_alert_payload_takes_only_alert_classes() -> None:
    with pytest.raises(PushPayloadRefusedError):
        alert_payload(AlertClass.MAIL, event_id=EVENT, alert_id=ALERT)


def test_the_fcm_string_form_goes_through_the_same_allow_list() -> None:
    wire = {key: str(value) for key, value in valid_mail().items()}
    assert validate_push_payload(wire, strings_only=True).badge == 2
    with pytest.raises(PushPayloadRefusedError):
        validate_push_payload(wire | {"badge": "many"}, strings_only=True)
    with pytest.raises(PushPayloadRefusedError):
        validate_push_payload(wire | {"badge": 2}, strings_only=True)


_FIELDS = st.sampled_from([*sorted(PUSH_PAYLOAD_KEYS), "subject", "from", "body", "patient", "aps"])


_VALUES = st.one_of(
    st.text(max_size=80),
    st.text(max_size=40).map(lambda text: "§" + text),  # marked: must never be echoed
    st.from_regex(OPAQUE_ID_PATTERN, fullmatch=True),
    st.sampled_from([*AlertClass, *LocKey]).map(str),
    st.integers(),
    st.none(),
    st.booleans(),
)


@settings(max_examples=300, deadline=None)
@given(key=_FIELDS, value=_VALUES)
def test_whatever_is_accepted_is_an_opaque_id_a_known_key_or_a_small_count(key: str, value: object) -> None:
    try:
        payload = compose(valid_mail() | {key: value})
    except PushPayloadRefusedError as refused:
        assert "§" not in str(refused)
        return
    for field_value in payload.to_wire().values():
        if isinstance(field_value, str):
            assert re.fullmatch(OPAQUE_ID_PATTERN, field_value) or field_value in {
                *AlertClass.__members__.values(),
                *LocKey.__members__.values(),
            }
        else:
            assert isinstance(field_value, int) and 0 <= field_value <= 9999


def test_payload_for_event_reads_only_the_event_id_and_mailbox() -> None:
    event = Event(
        id=EVENT,
        type=EventType.MAIL_ARRIVED,
        at=0.0,
        mailbox_id=MAILBOX,
        professional_id=CANARY,
        structure_id=CANARY,
        device_id=CANARY,
        reason=CANARY,
    )
    assert payload_for_event(event, badge=1) == mail_payload(event_id=EVENT, mailbox_id=MAILBOX, badge=1)
    revoked = Event(id=EVENT, type=EventType.DEVICE_REVOKED, at=0.0, device_id=str(uuid.uuid4()), reason=CANARY)
    assert payload_for_event(revoked) == wipe_payload(event_id=EVENT)
    with pytest.raises(PushPayloadRefusedError):
        payload_for_event(Event(id=EVENT, type=EventType.MAIL_ARRIVED, at=0.0))
    with pytest.raises(PushPayloadRefusedError):
        payload_for_event(Event(id=EVENT, type=EventType.ALERT_RAISED, at=0.0))
    with pytest.raises(PushPayloadRefusedError):
        payload_for_event(Event(id=CANARY, type=EventType.MAIL_ARRIVED, at=0.0, mailbox_id=MAILBOX))


def _device(**fields: Any) -> Device:
    base: dict[str, Any] = {
        "id": uuid.uuid4(),
        "name": CANARY,
        "push_provider": "apns",
        "push_token": "ab" * 32,
        "push_token_dead_at": None,
    }
    return Device(**(base | fields))


def test_a_push_target_is_the_provider_and_token_only() -> None:
    device = _device()
    assert PushTarget.of(device) == PushTarget(str(device.id), "apns", "ab" * 32)
    assert PushTarget.of(_device(push_token=None)) is None
    assert PushTarget.of(_device(push_token_dead_at=dt.datetime.now(dt.UTC))) is None
    no_provider = _device(push_provider=None)
    assert PushTarget.of(no_provider) == PushTarget(str(no_provider.id), "none", "ab" * 32)


@pytest.mark.parametrize("alert_class", list(AlertClass))
def test_the_class_policy_shapes_each_notification(alert_class: AlertClass) -> None:
    payload = (
        mail_payload(event_id=EVENT, mailbox_id=MAILBOX)
        if alert_class is AlertClass.MAIL
        else wipe_payload(event_id=EVENT)
        if alert_class is AlertClass.WIPE
        else alert_payload(alert_class, event_id=EVENT, alert_id=ALERT)
    )
    target = PushTarget("d-1", "fcm", "tok")
    push = build_notification(target, payload, now=1000.0)
    policy = CLASS_POLICY[alert_class]
    assert (push.kind, push.priority, push.expires_at) == (policy.kind, policy.priority, 1000.0 + policy.ttl_s)
    assert push.collapse_id == {AlertClass.MAIL: MAILBOX, AlertClass.WIPE: None}.get(alert_class, ALERT)
    # Processing the same event again yields the same push id (and so the same apns-id).
    assert build_notification(target, payload).push_id == push.push_id
    assert build_notification(PushTarget("d-2", "fcm", "tok"), payload).push_id != push.push_id


def test_urgency_by_class() -> None:
    assert CLASS_POLICY[AlertClass.ONCALL_ALERT].interruption_level == "time-sensitive"
    assert CLASS_POLICY[AlertClass.WIPE].kind is PushKind.BACKGROUND
    assert CLASS_POLICY[AlertClass.ONCALL_ALERT].ttl_s < CLASS_POLICY[AlertClass.VISIT_ALERT].ttl_s
    assert CLASS_POLICY[AlertClass.VISIT_ALERT].ttl_s < CLASS_POLICY[AlertClass.MAIL].ttl_s


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"push_id": "not-a-uuid"}, "UUID"),
        ({"push_id": str(uuid.uuid4()).upper()}, "canonical"),
        ({"collapse_id": CANARY}, "collapse_id"),
        ({"token": ""}, "token"),
        ({"kind": PushKind.BACKGROUND}, "background"),
    ],
)
def test_a_notification_checks_its_own_fields(change: dict[str, Any], message: str) -> None:
    fields: dict[str, Any] = {
        "push_id": str(uuid.uuid4()),
        "device_id": "d",
        "token": "t",
        "payload": mail_payload(event_id=EVENT, mailbox_id=MAILBOX),
        "kind": PushKind.ALERT,
        "priority": PushPriority.HIGH,
        "expires_at": 1.0,
    }
    with pytest.raises(NotificationInvalidError, match=message):
        PushNotification(**(fields | change))


def test_a_wipe_cannot_be_an_alert_push() -> None:
    with pytest.raises(NotificationInvalidError):
        PushNotification(
            push_id=str(uuid.uuid4()),
            device_id="d",
            token="t",
            payload=PushPayload(alert_class=AlertClass.WIPE, event_id=EVENT),
            kind=PushKind.ALERT,
            priority=PushPriority.HIGH,
            expires_at=1.0,
        )
