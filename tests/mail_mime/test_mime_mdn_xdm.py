"""Read receipts (RFC 8098) built and re-parsed, and the IHE_XDM metadata reader."""

# ruff: noqa: RUF001 - French typography (curly apostrophes, dashes) is what these tests are about

from __future__ import annotations

import email
import email.policy
import io
import zipfile
from datetime import UTC, datetime

import pytest

from backend.mail.mime import Address, build_mdn, parse_message, read_xdm
from contracts.errors import ErrorCode
from core.errors import ConflictError, DomainError
from tests.mail_mime.corpus import corpus_message
from tests.mail_mime.xdm_fixture import LOCAL_PATIENT_OID, make_xdm_zip

ME = Address("Dr Paul Exemple", "paul.exemple@medecin.mssante.fr")


def mdn(**overrides: object) -> bytes:
    arguments: dict[str, object] = {
        "original": parse_message(corpus_message("01-lettre-sortie-pdf.eml")),
        "reporting_ua": "mss-companion.test; MSS Companion 0.1",
        "final_recipient": ME.email,
        "disposition": "displayed",
        "sender": ME,
        "message_id_domain": "mss-companion.test",
        "product_reference": "MSS-COMPANION-TEST",
        "date": datetime(2025, 3, 3, 13, 0, tzinfo=UTC),
    }
    arguments.update(overrides)
    return build_mdn(**arguments)  # type: ignore[arg-type]


def test_mdn_structure() -> None:
    raw = mdn()
    tree = email.message_from_bytes(raw, policy=email.policy.default)
    assert tree.get_content_type() == "multipart/report"
    assert tree.get_param("report-type") == "disposition-notification"
    parts = list(tree.iter_parts())
    assert [p.get_content_type() for p in parts] == [
        "text/plain",
        "message/disposition-notification",
        "text/rfc822-headers",
    ]
    assert str(tree["To"]) == "lea.fictif@ch-exempleville.mssante.fr"
    assert str(tree["In-Reply-To"]) == "<20250303110203.4F2A@ch-exempleville.mssante.fr>"
    assert tree["Auto-Submitted"] is None

    parsed = parse_message(raw)
    assert parsed.headers.subject == "Accusé de lecture : Lettre de liaison à la sortie – Mme EXEMPLE"
    assert parsed.headers.mss_nil == "MSS-COMPANION-TEST"
    assert "Votre message a été affiché par le destinataire." in parsed.text
    assert "3 mars 2025 à 11:02" in parsed.text and "« Lettre de liaison à la sortie – Mme EXEMPLE »" in parsed.text
    assert parsed.mdn is not None
    assert parsed.mdn.original_message_id == "<20250303110203.4F2A@ch-exempleville.mssante.fr>"
    assert parsed.mdn.final_recipient == ME.email
    assert parsed.mdn.disposition == "manual-action/MDN-sent-manually; displayed"
    assert parsed.mdn.disposition_type == "displayed"
    fields = raw.split(b"message/disposition-notification", 1)[1]
    assert b"Reporting-UA: mss-companion.test; MSS Companion 0.1\r\n" in fields
    headers_part = parts[2].get_payload()
    assert "Message-ID: <20250303110203.4F2A@ch-exempleville.mssante.fr>" in headers_part
    assert "Lettre de liaison" in headers_part  # the original's subject, RFC 2047-encoded


def test_mdn_with_the_original_header_block_and_automatic_mode() -> None:
    original_raw = corpus_message("01-lettre-sortie-pdf.eml")
    block = original_raw.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\nbody must not leak"
    raw = mdn(original_header_block=block, automatic=True, disposition="deleted")
    assert b"body must not leak" not in raw
    assert b"Received: from mx.ch-exempleville.mssante.fr" in raw
    parsed = parse_message(raw)
    assert parsed.mdn is not None and parsed.mdn.disposition_type == "deleted"
    assert parsed.mdn.disposition == "automatic-action/MDN-sent-automatically; deleted"
    assert parsed.headers.subject.startswith("Message supprimé sans lecture : ")
    assert b"Auto-Submitted: auto-replied" in raw


def test_mdn_only_when_asked() -> None:
    with pytest.raises(ConflictError) as caught:
        mdn(original=parse_message(corpus_message("02-resultat-biologie.eml")))
    assert caught.value.code is ErrorCode.MDN_NOT_REQUESTED and caught.value.status == 409


@pytest.mark.parametrize(
    "overrides",
    [
        {"final_recipient": "not an address"},
        {"reporting_ua": "ua\r\nX-Evil: 1"},
        {"disposition": "read"},
        {"product_reference": ""},
    ],
)
def test_mdn_bad_input(overrides: dict[str, object]) -> None:
    with pytest.raises(DomainError) as caught:
        mdn(**overrides)
    assert caught.value.code is ErrorCode.VALIDATION_FAILED


def test_xdm_from_metadata_and_from_cda() -> None:
    assert read_xdm(make_xdm_zip()).codes == ["11490-0"]
    assert read_xdm(make_xdm_zip()).ins is True
    cda_only = read_xdm(make_xdm_zip(type_code="11502-2", metadata=False))
    assert (cda_only.codes, cda_only.ins) == (["11502-2"], True)
    local = read_xdm(make_xdm_zip(patient_oid=LOCAL_PATIENT_OID))
    assert (local.codes, local.ins) == (["11490-0"], False)


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not a zip at all",
        make_xdm_zip()[:200],
        _zip({"README.TXT": b"rien"}),
        _zip({"IHE_XDM/SUBSET01/METADATA.XML": b"<not xml"}),
        _zip(
            {
                "IHE_XDM/SUBSET01/METADATA.XML": b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">'
                b'<!ENTITY b "&a;&a;&a;&a;">]><r>&b;</r>'
            }
        ),
    ],
)
def test_xdm_unreadable_archives_say_nothing(data: bytes) -> None:
    info = read_xdm(data)
    assert info.codes == [] and info.ins is None
