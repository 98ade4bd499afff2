"""Canaries: mail and alerts full of subjects, senders, bodies, file names and patient names go out as
pushes to both peers; every byte the peers received (raw and decoded), every sink record, every log
line and every report is searched, and no canary, in any spelling, may be found."""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import re
import unicodedata
import urllib.parse
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from contracts.events import Event, EventType
from contracts.push import PUSH_PAYLOAD_KEYS, AlertClass, PushPayloadRefusedError
from core.db.models import Device
from core.settings import PushSettings
from push.payload import PushTarget, alert_payload, build_notification, compose, payload_for_event
from push.providers.base import PushNotification, SendReport
from push.providers.factory import build_providers
from push.settings_check import check_push_settings
from tests.peers.apns import ApnsPeer
from tests.peers.fcm import FcmPeer
from tests.push.conftest import apns_token, fcm_token

SUBJECT = "CANARY-SUBJ Ordonnance Lefèvre kinésithérapie"
SENDER = "dr.canarysender@clinique-canari.mssante.fr"
BODY = "CANARY-BODY hémoglobine glyquée 7,2 % à contrôler"
FILENAME = "CANARY-compte-rendu-echographie.pdf"
PATIENT = "Élodie Canarypatient"
NIR = "2 84 05 75 123 456 78"
ALERT_NOTE = "CANARY-NOTE chute escalier domicile"
ADDRESS = "12 rue du Canarinoir, 75011 Paris"
DEVICE_NAME = "iPhone de Dr Canaryowner"
CANARIES = (SUBJECT, SENDER, BODY, FILENAME, PATIENT, NIR, ALERT_NOTE, ADDRESS, DEVICE_NAME)


@dataclass(frozen=True)
class ArrivedMail:
    """What the watcher knows of a new message: ids, and content the push must never carry."""

    event_id: str
    mailbox_id: str
    unread: int
    subject: str = SUBJECT
    sender: str = SENDER
    body: str = BODY
    attachment: str = FILENAME
    patient: str = PATIENT


@dataclass(frozen=True)
class RaisedAlert:
    event_id: str
    alert_id: str
    alert_class: AlertClass
    patient: str = PATIENT
    nir: str = NIR
    note: str = ALERT_NOTE
    address: str = ADDRESS


def _ascii(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def spellings(canary: str) -> set[bytes]:
    """The canary and its distinctive words, in the encodings a leak could take on the wire."""
    texts = {canary, *re.findall(r"\w{6,}", canary)}
    found: set[bytes] = set()
    for text in texts:
        for variant in {text, text.lower(), text.upper(), _ascii(text), _ascii(text).lower()}:
            found |= {
                variant.encode(),
                variant.encode("utf-16-le"),
                json.dumps(variant).strip('"').encode(),
                urllib.parse.quote(variant).encode(),
                urllib.parse.quote_plus(variant).encode(),
                base64.b64encode(variant.encode()).rstrip(b"="),
                base64.urlsafe_b64encode(variant.encode()).rstrip(b"="),
            }
    return {s for s in found if len(s) >= 5}


def _device(provider: str, token: str) -> Device:
    return Device(id=uuid.uuid4(), name=DEVICE_NAME, push_provider=provider, push_token=token, push_token_dead_at=None)


def test_every_canary_is_refused_in_every_allow_listed_field() -> None:
    base = {
        "alertClass": "mail",
        "eventId": uuid.uuid4().hex,
        "mailboxId": str(uuid.uuid4()),
        "locKey": "MSSC_NEW_MESSAGE",
    }
    for canary in CANARIES:
        for key in (*PUSH_PAYLOAD_KEYS, "subject", "sender", "body", "filename", "patient", "title", "aps"):
            with pytest.raises(PushPayloadRefusedError) as refused:
                compose(base | {key: canary})
            assert not any(s in str(refused.value).encode() for s in spellings(canary))
        with pytest.raises(PushPayloadRefusedError):
            alert_payload(AlertClass.ONCALL_ALERT, event_id=uuid.uuid4().hex, alert_id=canary)
        with pytest.raises(PushPayloadRefusedError):
            payload_for_event(Event(id=canary, type=EventType.MAIL_ARRIVED, at=0.0, mailbox_id=str(uuid.uuid4())))


async def test_no_canary_reaches_apns_fcm_the_sink_or_a_log(
    push_settings: PushSettings,
    apns_peer: ApnsPeer,
    fcm_peer: FcmPeer,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    devices = [_device("apns", apns_token()), _device("fcm", fcm_token()), _device("none", "demo-phone")]
    mails = [ArrivedMail(uuid.uuid4().hex, str(uuid.uuid4()), unread=n) for n in (1, 7)]
    alerts = [
        RaisedAlert(uuid.uuid4().hex, str(uuid.uuid4()), AlertClass.VISIT_ALERT),
        RaisedAlert(uuid.uuid4().hex, str(uuid.uuid4()), AlertClass.ONCALL_ALERT),
    ]
    # The events the watcher and the alert service emit; free-text fields stuffed with canaries.
    payloads = [
        payload_for_event(
            Event(
                id=mail.event_id,
                type=EventType.MAIL_ARRIVED,
                at=0.0,
                mailbox_id=mail.mailbox_id,
                reason=mail.subject,
                professional_id=mail.sender,
                structure_id=mail.patient,
            ),
            badge=mail.unread,
        )
        for mail in mails
    ]
    payloads += [alert_payload(a.alert_class, event_id=a.event_id, alert_id=a.alert_id) for a in alerts]
    payloads.append(
        payload_for_event(
            Event(id=uuid.uuid4().hex, type=EventType.DEVICE_REVOKED, at=0.0, device_id=str(devices[0].id), reason=NIR)
        )
    )

    with_sink = dataclasses.replace(push_settings, providers=("apns", "fcm", "sink"))
    providers = build_providers(check_push_settings(with_sink, production=False))
    reports: list[SendReport] = []
    try:
        by_provider: dict[str, list[PushNotification]] = {}
        for device in devices:
            target = PushTarget.of(device)
            assert target is not None
            provider = providers.for_target(target)
            assert provider is not None
            by_provider.setdefault(provider.name, []).extend(build_notification(target, p) for p in payloads)
        for name, pushes in by_provider.items():
            reports.append(await providers[name].send(pushes))
        sink = providers.sink
        assert sink is not None
        sink_records = sink.records()
    finally:
        await providers.aclose()

    # Not vacuous: everything was delivered, to every peer.
    assert all(not r.retry and not r.dead_tokens and not r.failed_permanently for r in reports)
    assert len(apns_peer.records) == len(fcm_peer.records) == len(sink_records) == len(payloads)
    assert {r.json["mssc"]["eventId"] for r in apns_peer.records} == {p.event_id for p in payloads}

    output = capsys.readouterr()
    haystacks: dict[str, bytes] = {
        "apns raw": apns_peer.raw_received,
        "apns decoded": _dump([(r.headers, r.body.decode()) for r in apns_peer.records]),
        "fcm raw": fcm_peer.raw_received,
        "fcm decoded": _dump([(r.path, r.headers, r.body.decode()) for r in fcm_peer.records]),
        "sink": _dump([repr(r) for r in sink_records]),
        "reports": _dump([repr(r) for r in reports]),
        "logs": (output.out + output.err + caplog.text).encode(),
    }
    assert len(haystacks["apns raw"]) > 1000 and len(haystacks["fcm raw"]) > 1000
    for canary in CANARIES:
        for spelling in spellings(canary):
            for where, haystack in haystacks.items():
                assert spelling not in haystack, f"a canary ({canary[:12]}…) leaked into {where}"


def _dump(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()
