"""IMAP BODYSTRUCTURE → attachments, agreeing with parse_message on part ids and names."""

# ruff: noqa: RUF001 - French typography (curly apostrophes, dashes) is what these tests are about

from __future__ import annotations

import pytest

from backend.mail.mime import bodystructure_attachments, bodystructure_has_attachments, bodystructure_parts

# Shaped as Dovecot answers for tests/mail_mime/corpus/01-lettre-sortie-pdf.eml.
LETTER = (
    b'* 1 FETCH (UID 12 BODYSTRUCTURE ((("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable" 700 14 NIL NIL'
    b' NIL NIL)("text" "html" ("charset" "utf-8") NIL NIL "quoted-printable" 900 9 NIL NIL NIL NIL) "alternative"'
    b' ("boundary" "----=_Part_1_1741") NIL NIL NIL)("application" "pdf" ("name" "Lettre de liaison.pdf") NIL NIL'
    b' "base64" 3420 NIL ("attachment" ("filename*" "utf-8\'\'Lettre%20de%20liaison%20%E2%80%93%20Mme%20EXEMPLE.pdf"))'
    b' NIL NIL) "mixed" ("boundary" "----=_Part_0_1741") NIL NIL NIL))'
)

RELATED = (
    b'(("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 10 1 NIL NIL NIL NIL)(("text" "html" ("charset" "utf-8")'
    b' NIL NIL "7bit" 300 10 NIL NIL NIL NIL)("image" "png" NIL "<logo@x>" NIL "base64" 780 NIL NIL NIL NIL)'
    b' "related" ("boundary" "r") NIL NIL NIL) "alternative" ("boundary" "a") NIL NIL NIL)'
)

FORWARD_AND_LITERAL = (
    b'(("text" "plain" ("charset" "utf-8") NIL NIL "8bit" 40 1 NIL NIL NIL NIL)'
    b'("message" "rfc822" NIL NIL NIL "7bit" 683 ("Tue, 4 Mar 2025 07:45:00 +0100" "x" NIL NIL NIL NIL NIL NIL NIL'
    b' "<lab.inner@labo-exemple.mssante.fr>") ("text" "plain" ("charset" "utf-8") NIL NIL "8bit" 30 1 NIL NIL NIL'
    b' NIL) 20 NIL ("attachment" NIL) NIL NIL)'
    b'("application" "pdf" NIL NIL NIL "base64" 100 NIL ("attachment" ("filename" {17}\r\nR\xc3\xa9sultat "1".pdf))'
    b' NIL NIL) "mixed" ("boundary" "f") NIL NIL NIL)'
)


def test_letter() -> None:
    attachments = bodystructure_attachments(LETTER)
    assert attachments is not None
    assert [(a.part_id, a.filename, a.content_type, a.transfer_encoding) for a in attachments] == [
        ("2", "Lettre de liaison – Mme EXEMPLE.pdf", "application/pdf", "base64")
    ]
    assert 2400 <= attachments[0].size <= 2600
    assert [p.part_id for p in bodystructure_parts(LETTER)] == ["1.1", "1.2", "2"]
    assert bodystructure_has_attachments(LETTER) is True


def test_related_image_is_no_paperclip() -> None:
    attachments = bodystructure_attachments(RELATED)
    assert attachments is not None
    assert [(a.part_id, a.related, a.content_id, a.disposition) for a in attachments] == [
        ("2.2", True, "logo@x", "inline")
    ]
    assert bodystructure_has_attachments(RELATED) is False


def test_forward_and_literal() -> None:
    attachments = bodystructure_attachments(FORWARD_AND_LITERAL)
    assert attachments is not None
    assert [(a.part_id, a.content_type, a.filename) for a in attachments] == [
        ("2", "message/rfc822", "x.eml"),
        ("3", "application/pdf", 'Résultat "1".pdf'),
    ]


def test_single_part() -> None:
    single = b'("application" "zip" ("name" "IHE_XDM.zip") NIL NIL "base64" 2000 NIL NIL NIL NIL)'
    attachments = bodystructure_attachments(single)
    assert attachments is not None and attachments[0].part_id == "1" and attachments[0].is_ihe_xdm
    assert bodystructure_has_attachments(b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 5 1)') is False


@pytest.mark.parametrize("garbage", [b"", b"((((", b")", b'("a" {99}\r\nxx)', b"* 1 FETCH (UID 3)", '("é"', b"(" * 500])
def test_unreadable_is_none(garbage: bytes | str) -> None:
    assert bodystructure_attachments(garbage) is None
    assert bodystructure_has_attachments(garbage) is None
