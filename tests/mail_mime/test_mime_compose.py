"""Composing: RFC 5322 output that re-parses to what was asked, MSSanté headers, replies, forwards."""

# ruff: noqa: RUF001 - French typography (curly apostrophes, dashes) is what these tests are about

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from backend.mail.mime import (
    ACTING_HEADER,
    Address,
    OutgoingAttachment,
    compose,
    forward_attachment,
    forward_subject,
    iter_attachment,
    new_message_id,
    parse_message,
    reply_headers,
    reply_recipients,
    reply_subject,
)
from contracts.errors import ErrorCode
from core.errors import DomainError
from tests.mail_mime.corpus import corpus_message
from tests.mail_mime.xdm_fixture import LOCAL_PATIENT_OID, make_xdm_zip

SENDER = Address("Dr Élise Martin-Léger", "elise.martin@medecin.mssante.fr")
PHARMACY = Address("Pharmacie du Théâtre", "pharmacie.theatre@pharmacie.mssante.fr")
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40


def make(**overrides: Any) -> bytes:
    arguments: dict[str, Any] = {
        "sender": SENDER,
        "to": [PHARMACY],
        "cc": [],
        "subject": "Ordonnance — renouvellement « urgent » de Mme Exemple",
        "text": "Bonjour,\nVoici l’ordonnance renouvelée. Coût : 12 € ; œdème résolu.\n",
        "html": None,
        "attachments": [],
        "in_reply_to": None,
        "references": [],
        "request_read_receipt": False,
        "product_reference": "MSS-COMPANION-TEST",
        "mss_codecda": None,
        "mss_ins": None,
        "end_patient_conversation": False,
        "message_id_domain": "mss-companion.test",
        "acting_professional": None,
        "date": datetime(2025, 3, 3, 10, 0, tzinfo=timezone(timedelta(hours=1))),
    }
    arguments.update(overrides)
    return compose(**arguments)


def test_plain_message_round_trips() -> None:
    raw = make()
    assert raw.isascii()
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    parsed = parse_message(raw)
    assert parsed.problems == []
    headers = parsed.headers
    assert headers.subject == "Ordonnance — renouvellement « urgent » de Mme Exemple"
    assert headers.from_ == [SENDER] and headers.to == [PHARMACY]
    assert headers.mss_nil == "MSS-COMPANION-TEST"
    assert headers.date == datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
    assert headers.message_id is not None and headers.message_id.endswith("@mss-companion.test>")
    assert parsed.text == "Bonjour,\nVoici l’ordonnance renouvelée. Coût : 12 € ; œdème résolu."
    assert parsed.html is None and parsed.attachments == []
    assert not headers.read_receipt_requested and not headers.mss_mes_fin and headers.mss_codecda is None


def test_html_and_attachments_round_trip() -> None:
    names = ["Compte rendu opératoire très détaillé — version définitive du 3 mars 2025 (copie).pdf", "résumé.txt"]
    raw = make(
        html='<p>Bonjour <b>Docteur</b>,</p><img src="https://tracker.example/p.gif"><script>x()</script>',
        attachments=[
            OutgoingAttachment(names[0], "application/pdf", PDF),
            OutgoingAttachment(names[1], "text/plain", "Résumé : stable.\n".encode()),
            OutgoingAttachment("../../secret.bin", "not a type", b"\x00\x01"),
        ],
    )
    tree = email.message_from_bytes(raw, policy=email.policy.default)
    assert tree.get_content_type() == "multipart/mixed"
    assert [p.get_content_type() for p in tree.iter_parts()] == [
        "multipart/alternative",
        "application/pdf",
        "text/plain",
        "application/octet-stream",
    ]
    assert raw.count(b"MIME-Version") == 1
    parsed = parse_message(raw)
    assert [(a.part_id, a.filename) for a in parsed.attachments] == [
        ("2", names[0]),
        ("3", names[1]),
        ("4", "secret.bin"),
    ]
    assert b"".join(iter_attachment(raw, "2")) == PDF
    assert b"".join(iter_attachment(raw, "3")) == "Résumé : stable.\n".encode()
    assert parsed.html is not None and "<b>Docteur</b>" in parsed.html
    assert "script" not in parsed.html and "tracker" not in parsed.html  # outgoing HTML is sanitised too
    assert parsed.text.startswith("Bonjour,")


def test_reply_threading_and_receipt() -> None:
    original = parse_message(corpus_message("03-message-patient.eml"))
    in_reply_to, references, subject = reply_headers(original)
    raw = make(
        to=original.headers.from_,
        subject=subject,
        in_reply_to=in_reply_to,
        references=references,
        request_read_receipt=True,
    )
    headers = parse_message(raw).headers
    assert headers.subject == "Re: Votre traitement"
    assert headers.in_reply_to == "<mes.5f1e@patient.mssante.fr>"
    assert headers.references == [
        "<mssc.a0@medecin.mssante.fr>",
        "<mssc.a1@medecin.mssante.fr>",
        "<mes.5f1e@patient.mssante.fr>",
    ]
    assert headers.read_receipt_requested
    assert headers.disposition_notification_to == [Address("", SENDER.email)]


def test_end_of_patient_conversation_and_acting_member() -> None:
    patient = Address("", "299990000000042@patient.mssante.fr")
    raw = make(to=[patient], subject="[FIN]", end_patient_conversation=True, acting_professional="810001234567")
    headers = parse_message(raw).headers
    assert headers.mss_mes_fin and headers.is_patient_conversation_end
    assert headers.acting_professional == "810001234567"
    assert f"{ACTING_HEADER}: 810001234567".encode() in raw
    only_header = parse_message(make(to=[patient], subject="Dernier message", end_patient_conversation=True))
    assert only_header.headers.mss_mes_fin and not only_header.headers.is_patient_conversation_end


def test_xdm_headers_given_or_read_from_the_archive() -> None:
    xdm = OutgoingAttachment("IHE_XDM.zip", "application/zip", make_xdm_zip())
    given = parse_message(make(attachments=[xdm], mss_codecda="11502-2", mss_ins=False)).headers
    assert (given.mss_codecda, given.mss_ins) == ("11502-2", False)
    read = parse_message(make(attachments=[xdm])).headers
    assert (read.mss_codecda, read.mss_ins) == ("11490-0", True)
    local = OutgoingAttachment("ihe_xdm.ZIP", "application/zip", make_xdm_zip(patient_oid=LOCAL_PATIENT_OID))
    assert parse_message(make(attachments=[local])).headers.mss_ins is False


def test_xdm_without_readable_metadata_is_refused() -> None:
    broken = OutgoingAttachment("IHE_XDM.zip", "application/zip", b"not a zip")
    with pytest.raises(DomainError) as caught:
        make(attachments=[broken])
    assert caught.value.code is ErrorCode.XDM_METADATA_REQUIRED
    assert caught.value.status == 400
    assert make(attachments=[broken], mss_codecda="11490-0", mss_ins=True)


def test_xdm_headers_without_xdm_are_refused() -> None:
    with pytest.raises(DomainError) as caught:
        make(mss_codecda="11490-0", mss_ins=True)
    assert caught.value.code is ErrorCode.VALIDATION_FAILED


@pytest.mark.parametrize(
    "overrides",
    [
        {"to": [], "cc": []},
        {"to": [Address("x", "not-an-address")]},
        {"to": [Address("x", "a@b.fr\r\nBcc: victim@evil.example")]},
        {"to": [Address("x", "é@exemple.fr")]},
        {"sender": Address("x", "a@b")},
        {"product_reference": "MSSC\r\nX-Evil: 1"},
        {"product_reference": ""},
        {"acting_professional": "81000 1234"},
        {"message_id_domain": "bad domain"},
        {"message_id": "no-brackets"},
    ],
)
def test_bad_input_is_a_validation_error(overrides: dict[str, Any]) -> None:
    with pytest.raises(DomainError) as caught:
        make(**overrides)
    assert caught.value.code is ErrorCode.VALIDATION_FAILED
    assert "@" not in (caught.value.detail or "")  # never echoes an address


def test_header_injection_through_free_text_is_flattened() -> None:
    raw = make(
        subject="Objet\r\nBcc: victim@evil.example",
        to=[Address('Nom"\r\nBcc: x@evil.example', "a@b.fr")],
        in_reply_to="<ok@x>\r\nBcc: y@evil.example",
        references=["<r@x>", "garbage", "<a b@x>"],
    )
    tree = email.message_from_bytes(raw, policy=email.policy.default)
    assert tree["Bcc"] is None
    assert tree["In-Reply-To"] is None
    assert str(tree["References"]) == "<r@x>"
    assert str(tree["Subject"]) == "Objet Bcc: victim@evil.example"


def test_caller_chosen_message_id() -> None:
    message_id = new_message_id("mss-companion.test")
    assert parse_message(make(message_id=message_id)).headers.message_id == message_id
    assert new_message_id("mss-companion.test") != message_id


@pytest.mark.parametrize(
    ("subject", "reply", "forward"),
    [
        ("Résultat", "Re: Résultat", "Tr: Résultat"),
        ("Re: Résultat", "Re: Résultat", "Tr: Re: Résultat"),
        ("RE : Re: re:Résultat", "Re: Résultat", "Tr: RE : Re: re:Résultat"),
        ("Réf. : x", "Re: Réf. : x", "Tr: Réf. : x"),
        ("Re[2]: Résultat", "Re: Résultat", "Tr: Re[2]: Résultat"),
        ("TR: Fwd: Résultat", "Re: TR: Fwd: Résultat", "Tr: Résultat"),
        ("AW: Sv: x", "Re: x", "Tr: AW: Sv: x"),
        ("", "Re:", "Tr:"),
        ("Rendez-vous", "Re: Rendez-vous", "Tr: Rendez-vous"),
    ],
)
def test_subject_prefixes(subject: str, reply: str, forward: str) -> None:
    assert reply_subject(subject) == reply
    assert forward_subject(subject) == forward


def test_reply_references_are_bounded_and_keep_the_root() -> None:
    raw = make(references=[f"<r{i}@x>" for i in range(40)], in_reply_to="<r39@x>")
    original = parse_message(raw)
    _, references, _ = reply_headers(original)
    assert len(references) == 20
    assert references[0] == "<r0@x>" and references[-1] == original.headers.message_id


def test_reply_recipients() -> None:
    letter = parse_message(corpus_message("01-lettre-sortie-pdf.eml"))
    me = "paul.exemple@medecin.mssante.fr"
    to, cc = reply_recipients(letter, own={me}, reply_all=False)
    assert [a.email for a in to] == ["lea.fictif@ch-exempleville.mssante.fr"] and cc == []
    to, cc = reply_recipients(letter, own={me.upper()}, reply_all=True)
    assert [a.email for a in to] == ["lea.fictif@ch-exempleville.mssante.fr"]
    assert [a.email for a in cc] == ["secretariat.cardio@ch-exempleville.mssante.fr"]


def test_forward_attaches_the_original_intact() -> None:
    original_raw = corpus_message("01-lettre-sortie-pdf.eml")
    original = parse_message(original_raw)
    attachment = forward_attachment(original_raw, original.headers.subject)
    assert attachment.filename == "Lettre de liaison à la sortie – Mme EXEMPLE.eml"
    raw = make(subject=forward_subject(original.headers.subject), text="Pour avis.", attachments=[attachment])
    parsed = parse_message(raw)
    assert parsed.headers.subject == "Tr: Lettre de liaison à la sortie – Mme EXEMPLE"
    assert [(a.part_id, a.content_type, a.filename) for a in parsed.attachments] == [
        ("2", "message/rfc822", attachment.filename)
    ]
    inner = b"".join(iter_attachment(raw, "2"))
    assert inner.replace(b"\r\n", b"\n") == original_raw.replace(b"\r\n", b"\n")  # byte for byte
    assert parse_message(inner) == original
    assert b"".join(iter_attachment(raw, "2.2")).startswith(b"%PDF")


def test_forward_of_8bit_legacy_message_keeps_its_bytes() -> None:
    original_raw = corpus_message("05-windows-1252.eml")
    raw = make(attachments=[forward_attachment(original_raw, "Demande d’avis")])
    inner = b"".join(iter_attachment(raw, "2"))
    assert inner.replace(b"\r\n", b"\n") == original_raw.replace(b"\r\n", b"\n")
    assert parse_message(inner).headers.subject == "Demande d’avis – M. Test"
