"""MIME structures beyond the corpus: part numbering, repairs inside nested parts, odd top levels."""

from __future__ import annotations

import base64

from backend.mail.mime import iter_attachment, parse_message

PDF = b"%PDF-1.4 fictif\n"


def lf(text: str) -> bytes:
    return text.encode()


def test_nested_multipart_without_boundary_is_repaired() -> None:
    raw = lf(
        "Subject: imbrique\n"
        'Content-Type: multipart/mixed; boundary="outer"\n\n'
        "--outer\n"
        "Content-Type: multipart/alternative\n\n"
        "--inner\nContent-Type: text/plain; charset=utf-8\n\nTexte brut é\n"
        "--inner\nContent-Type: text/html; charset=utf-8\n\n<p>Texte <b>riche</b> é</p>\n"
        "--inner--\n"
        "--outer\n"
        f"Content-Type: application/pdf\nContent-Transfer-Encoding: base64\n\n{base64.b64encode(PDF).decode()}\n"
        "--outer--\n"
    )
    message = parse_message(raw)
    assert message.text == "Texte brut é"
    assert message.html == "<p>Texte <b>riche</b> é</p>"
    assert [(a.part_id, a.filename) for a in message.attachments] == [("2", "piece-jointe-2.pdf")]
    assert "missing_boundary" in message.problems and not message.partial
    assert b"".join(iter_attachment(raw, "2")) == PDF


def test_declared_boundary_not_the_one_used() -> None:
    raw = lf(
        'Content-Type: multipart/mixed; boundary="declared"\n\n'
        "--used\nContent-Type: text/plain\n\nbonjour\n--used\nContent-Type: image/png\n\nxx\n--used--\n"
    )
    message = parse_message(raw)
    assert message.text == "bonjour"
    assert [a.part_id for a in message.attachments] == ["2"]


def test_unsplittable_multipart_shows_its_raw_text() -> None:
    message = parse_message(b"Content-Type: multipart/mixed\r\n\r\njuste du texte\r\n")
    assert message.text == "juste du texte"
    assert message.partial and "missing_boundary" in message.problems


def test_single_part_attachment_is_part_1() -> None:
    raw = (
        b"Subject: scan\r\nContent-Type: application/pdf; name=scan.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.b64encode(PDF)
    )
    message = parse_message(raw)
    assert message.text == "" and message.html is None
    assert [(a.part_id, a.filename) for a in message.attachments] == [("1", "scan.pdf")]
    assert b"".join(iter_attachment(raw, "1")) == PDF


def test_attached_text_and_signed_message() -> None:
    raw = lf(
        'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; boundary=s\n\n'
        "--s\nContent-Type: multipart/mixed; boundary=m\n\n"
        "--m\nContent-Type: text/plain; charset=utf-8\n\ncorps\n"
        "--m\nContent-Type: text/plain; charset=utf-8\nContent-Disposition: attachment; filename=notes.txt\n\nnotes\n"
        "--m\nContent-Type: text/html\nContent-Disposition: attachment\n\n<p>page</p>\n"
        "--m--\n"
        "--s\nContent-Type: application/pkcs7-signature; name=smime.p7s\nContent-Transfer-Encoding: base64\n\nMIIB\n"
        "--s--\n"
    )
    message = parse_message(raw)
    assert message.text == "corps"
    assert [(a.part_id, a.filename, a.content_type) for a in message.attachments] == [
        ("1.2", "notes.txt", "text/plain"),
        ("1.3", "piece-jointe-1.3.html", "text/html"),
        ("2", "smime.p7s", "application/pkcs7-signature"),
    ]
    assert b"".join(iter_attachment(raw, "1.2")) == b"notes"


def test_related_root_given_by_start() -> None:
    raw = lf(
        'Content-Type: multipart/related; boundary=r; start="<root@x>"\n\n'
        "--r\nContent-Type: image/gif\nContent-ID: <img@x>\n\nGIF89a\n"
        '--r\nContent-Type: text/html\nContent-ID: <root@x>\n\n<img src="cid:img@x">racine\n'
        "--r--\n"
    )
    message = parse_message(raw)
    assert message.html == '<img src="cid:img@x">racine'
    assert [(a.part_id, a.related, a.content_id) for a in message.attachments] == [("1", True, "img@x")]
    assert not message.has_attachments


def test_html_charset_from_meta_and_uppercase_encoding() -> None:
    html = '<html><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1252"></head>'
    html += "<body>Ré\u2019sumé</body></html>"
    raw = b"Content-Type: text/html\r\nContent-Transfer-Encoding: BASE64\r\n\r\n" + base64.encodebytes(
        html.encode("cp1252")
    )
    message = parse_message(raw)
    assert message.html == message.text == "Ré\u2019sumé"


def test_no_headers_at_all() -> None:
    message = parse_message(b"\r\n\r\njuste un corps")
    assert message.text == "juste un corps"
    assert message.headers.subject == "" and message.headers.date is None


def test_headers_only() -> None:
    message = parse_message(b"Subject: sans corps\r\nFrom: a@b.fr")
    assert message.headers.subject == "sans corps" and message.text == ""
