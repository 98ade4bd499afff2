"""Every corpus message parses, reads right in French, lists its attachments and decodes them."""

# ruff: noqa: RUF001 - French typography (curly apostrophes, dashes) is what these tests are about

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from io import BytesIO

import pytest

from backend.mail.mime import (
    iter_attachment,
    parse_message,
    parse_summary,
    read_xdm,
)
from tests.mail_mime.corpus import corpus_message, corpus_messages

MOJIBAKE = ("Ã©", "Ã¨", "Ã ", "â€™", "â€", "Ã§", "Å“", "\ufffd", "Â«")
FRENCH = "éèàçœ€«"


@dataclass(frozen=True)
class Expected:
    subject: str
    text: tuple[str, ...] = ()
    #: (part id, file name, content type)
    attachments: tuple[tuple[str, str, str], ...] = ()
    problems: frozenset[str] = frozenset()
    partial: bool = False
    html: bool = False
    extra: dict[str, object] = field(default_factory=dict)


EXPECTED: dict[str, Expected] = {
    "01-lettre-sortie-pdf.eml": Expected(
        "Lettre de liaison à la sortie – Mme EXEMPLE",
        ("Chère Consœur", "« fraction d’éjection préservée »", "Dr Léa Fictif — Centre hospitalier d’Exempleville"),
        (("2", "Lettre de liaison – Mme EXEMPLE.pdf", "application/pdf"),),
        html=True,
    ),
    "02-resultat-biologie.eml": Expected(
        "Résultats d'analyses – M. TEST",
        ("Hémoglobine", "Œdème", "Le cœur du bilan", "23,50 €", "µmol/l"),
        (("2", "Résultats biologie.pdf", "application/pdf"),),
    ),
    "03-message-patient.eml": Expected(
        "Re: Votre traitement",
        ("commencé le nouveau médicament, j'ai des vertiges", "arrêter ?\n\nMerci beaucoup,\nCamille Exemple"),
    ),
    "04-fin-conversation-patient.eml": Expected("[FIN]", ("Arrêtez le médicament",)),
    "05-windows-1252.eml": Expected(
        "Demande d’avis – M. Test",
        ("Suite à notre échange d’hier", "« urgent »", "50 € — pris en charge", "Œsophagite et cœur"),
        problems=frozenset({"undeclared_charset"}),
    ),
    "06-mac-roman.eml": Expected(
        "Résultats échographie",
        (
            "Chère consœur",
            "l’échographie",
            "« Contrôle » à prévoir dans 3 mois…",
            "45 €",
            "À bientôt",
            "Dr Noël Façade",
        ),
        (("2", "Échographie résumé.pdf", "application/pdf"),),
    ),
    "07-non-declare-cp1252.eml": Expected(
        "Rendez-vous décalé à jeudi",
        ("décalé à jeudi", "prévenir l’équipe — « si possible »"),
        problems=frozenset({"undeclared_charset"}),
    ),
    "08-non-declare-mac.eml": Expected(
        "Compte rendu",
        ("a été vu en consultation. Très bonne évolution, à revoir après l’été", "kinésithérapie ; reçu"),
        problems=frozenset({"undeclared_charset"}),
    ),
    "09-utf8-etiquete-latin1.eml": Expected(
        "Passage à domicile",
        ("Passage à domicile effectué", "après-demain"),
        problems=frozenset({"wrong_charset"}),
    ),
    "10-cp1252-etiquete-utf8.eml": Expected(
        "Ordonnance à renouveler",
        (
            "L’ordonnance de Mme Exemple arrive à échéance",
            "Merci — la pharmacie",
            "Pharmacie du Théâtre, 1 place de l’Exemple",
        ),
        problems=frozenset({"wrong_charset"}),
    ),
    "11-multipart-sans-fermeture.eml": Expected(
        "Pièces demandées",
        ("Voici les pièces demandées",),
        (("2", "pieces.pdf", "application/pdf"),),
        problems=frozenset({"missing_close_boundary", "truncated"}),
        partial=True,
    ),
    "12-multipart-sans-boundary.eml": Expected(
        "Courrier de consultation",
        ("Courrier de consultation joint.",),
        (("2", "courrier.pdf", "application/pdf"),),
        problems=frozenset({"missing_boundary"}),
    ),
    "13-mots-encodes-casses.eml": Expected(
        "Réunion de concertation — cœur « RCP »",
        ("réunion de concertation pluridisciplinaire",),
        problems=frozenset({"unknown_charset", "bad_encoded_word"}),
    ),
    "14-nom-fichier-rfc2231.eml": Expected(
        "Documents",
        ("Documents joints.",),
        (
            ("2", "Compte rendu opératoire détaillé à conserver.pdf", "application/pdf"),
            ("3", "radio genou.jpg", "image/jpeg"),
            ("4", "passwd", "application/octet-stream"),
            ("5", "piece-jointe-5.pdf", "application/pdf"),
        ),
    ),
    "15-html-related-cid.eml": Expected(
        "Protocole de soins validé",
        ("Le protocole de soins de Mme Exemple est validé", "merci « beaucoup »"),
        (("2", "piece-jointe-2.png", "image/png"),),
        html=True,
    ),
    "16-accuse-lecture-mdn.eml": Expected(
        "Accusé de lecture : Lettre de liaison",
        ("Votre message a été affiché",),
        (("3", "piece-jointe-3.txt", "text/rfc822-headers"),),
    ),
    "17-ihe-xdm.eml": Expected(
        "Lettre de liaison (document structuré)",
        ("Lettre de liaison structurée",),
        (("2", "IHE_XDM.zip", "application/zip"),),
    ),
    "18-transfert-rfc822.eml": Expected(
        "Tr: Résultat HbA1c",
        ("voir le message transféré",),
        (("2", "Résultat HbA1c.eml", "message/rfc822"),),
    ),
    "19-quoted-printable.eml": Expected(
        "Transmission d’un dossier",
        ("hypertension artérielle\nbien contrôlée.", "contrôle à prévoir à 6 mois", "Taux = 5 %", "=ZZ reste tel quel"),
    ),
    "20-base64-parasite.eml": Expected(
        "Compte rendu",
        ("Compte rendu : état stable, poursuite du traitement. Réévaluation à 1 mois.",),
        (("2", "cr.pdf", "application/pdf"),),
        problems=frozenset({"bad_base64", "truncated"}),
        partial=True,
    ),
    "21-mojibake.eml": Expected(
        "Résultat arrivé",
        ("Le résultat est arrivé : hémoglobine à 12 g/dl, l’équipe vous rappelle.",),
        problems=frozenset({"mojibake_repaired"}),
    ),
    "22-apple-mail-flowed-nfd.eml": Expected(
        "Photo de la plaie – évolution",
        ("l’évolution est favorable. Pansement à refaire après-demain.\n\nCordialement,\nCéline",),
        (("2.2", "plaie_évolution.png", "image/png"),),
        html=True,
    ),
}

CORPUS = corpus_messages()
NAMES = [name for name, _ in CORPUS]


def test_every_corpus_file_has_expectations() -> None:
    assert sorted(EXPECTED) == NAMES


@pytest.mark.parametrize(("name", "raw"), CORPUS, ids=NAMES)
def test_corpus_message_reads_right(name: str, raw: bytes) -> None:
    expected = EXPECTED[name]
    message = parse_message(raw)
    assert message.headers.subject == expected.subject
    for fragment in expected.text:
        assert fragment in message.text, (fragment, message.text)
    assert [(a.part_id, a.filename, a.content_type) for a in message.attachments] == list(expected.attachments)
    assert expected.problems <= set(message.problems), message.problems
    assert message.partial is expected.partial
    assert (message.html is not None) is expected.html


@pytest.mark.parametrize(("name", "raw"), CORPUS, ids=NAMES)
def test_no_mojibake_anywhere(name: str, raw: bytes) -> None:
    message = parse_message(raw)
    shown = [
        message.text,
        message.html or "",
        message.headers.subject,
        *(a.filename for a in message.attachments),
        *(addr.name for addr in message.headers.from_ + message.headers.to),
    ]
    for value in shown:
        for bad in MOJIBAKE:
            assert bad not in value, (name, bad, value)
        assert not re.search("[\x80-\x9f]", value), (name, value)


def test_french_characters_survive_across_charsets() -> None:
    seen = "".join(parse_message(raw).text + parse_message(raw).headers.subject for _, raw in CORPUS)
    for char in FRENCH:
        assert char in seen


@pytest.mark.parametrize(("name", "raw"), CORPUS, ids=NAMES)
def test_sanitised_html_is_inert(name: str, raw: bytes) -> None:
    html = parse_message(raw).html
    if html is None:
        return
    lowered = html.lower()
    assert "<script" not in lowered
    assert "<iframe" not in lowered and "<svg" not in lowered and "<form" not in lowered
    assert not re.search(r"\son\w+\s*=", lowered)
    assert not re.search(r"src\s*=\s*[\"']?\s*(https?:|//)", lowered)
    assert "javascript:" not in lowered and "url(" not in lowered


def test_hostile_html_keeps_content_and_local_images() -> None:
    message = parse_message(corpus_message("15-html-related-cid.eml"))
    assert message.html is not None
    assert '<img src="cid:logo.ch@exempleville" alt="Logo" width="120">' in message.html
    assert (
        'href="https://www.exemple-hopital.fr/infos" target="_blank" rel="noopener noreferrer nofollow"' in message.html
    )
    assert "tracker.example.com" not in message.html
    assert message.remote_content_blocked == 5
    logo = message.attachments[0]
    assert logo.related and logo.content_id == "logo.ch@exempleville" and logo.disposition == "inline"
    assert not message.has_attachments  # an HTML resource is no paperclip


def test_mss_markers() -> None:
    letter = parse_message(corpus_message("01-lettre-sortie-pdf.eml")).headers
    assert letter.mss_nil == "DPI-EXEMPLE-4.2"
    assert letter.read_receipt_requested
    assert [a.email for a in letter.disposition_notification_to] == ["lea.fictif@ch-exempleville.mssante.fr"]
    end = parse_message(corpus_message("04-fin-conversation-patient.eml")).headers
    assert end.mss_mes_fin and end.is_patient_conversation_end
    xdm = parse_message(corpus_message("17-ihe-xdm.eml"))
    assert xdm.headers.mss_codecda == "11490-0" and xdm.headers.mss_ins is True
    assert xdm.attachments[0].is_ihe_xdm
    patient = parse_message(corpus_message("03-message-patient.eml")).headers
    assert not patient.mss_mes_fin and not patient.is_patient_conversation_end and patient.mss_ins is None


def test_addresses_and_threading() -> None:
    headers = parse_message(corpus_message("13-mots-encodes-casses.eml")).headers
    assert headers.from_[0].name == "Exemple, Dr Paul"  # =2C is a comma inside the name, not a separator
    assert [a.name for a in headers.to] == ["Secrétariat", "Hélène"]
    assert headers.cc[1].name == "Dr André sans fin"
    patient = parse_message(corpus_message("03-message-patient.eml")).headers
    assert patient.in_reply_to == "<mssc.a1@medecin.mssante.fr>"
    assert patient.references == ["<mssc.a0@medecin.mssante.fr>", "<mssc.a1@medecin.mssante.fr>"]
    assert patient.date is not None and patient.date.utcoffset() is not None


def test_received_read_receipt_is_understood() -> None:
    mdn = parse_message(corpus_message("16-accuse-lecture-mdn.eml")).mdn
    assert mdn is not None
    assert mdn.original_message_id == "<20250303110203.4F2A@ch-exempleville.mssante.fr>"
    assert mdn.final_recipient == "paul.exemple@medecin.mssante.fr"
    assert mdn.disposition_type == "displayed"


@pytest.mark.parametrize(("name", "raw"), CORPUS, ids=NAMES)
def test_every_attachment_decodes(name: str, raw: bytes) -> None:
    for attachment in parse_message(raw).attachments:
        data = b"".join(iter_attachment(raw, attachment.part_id, chunk_size=64))
        if attachment.content_type == "application/pdf" and not parse_message(raw).partial:
            assert data.startswith(b"%PDF"), (name, attachment.part_id)
        if attachment.content_type == "image/png":
            assert data.startswith(b"\x89PNG\r\n\x1a\n")
        if attachment.content_type == "application/zip":
            assert zipfile.ZipFile(BytesIO(data)).namelist()
        if attachment.size and not parse_message(raw).partial:
            assert abs(len(data) - attachment.size) <= 3, (name, attachment)


def test_xdm_attachment_metadata_matches_headers() -> None:
    raw = corpus_message("17-ihe-xdm.eml")
    data = b"".join(iter_attachment(raw, "2"))
    info = read_xdm(data)
    assert info.codes == ["11490-0"] and info.ins is True


def test_forwarded_message_comes_out_whole() -> None:
    raw = corpus_message("18-transfert-rfc822.eml")
    inner = b"".join(iter_attachment(raw, "2"))
    forwarded = parse_message(inner)
    assert forwarded.headers.subject == "Résultat HbA1c"
    assert "Équilibre correct" in forwarded.text
    assert [a.filename for a in forwarded.attachments] == ["hba1c.pdf"]
    # IMAP numbers the parts inside the forwarded message under its own number.
    assert b"".join(iter_attachment(raw, "2.2")).startswith(b"%PDF")


def test_unknown_part_is_not_found() -> None:
    from core.errors import NotFoundError

    raw = corpus_message("01-lettre-sortie-pdf.eml")
    for part_id in ("9", "1.9", "0", "x", "", "1.1.1.1"):
        with pytest.raises(NotFoundError):
            iter_attachment(raw, part_id)


@pytest.mark.parametrize(("name", "raw"), CORPUS, ids=NAMES)
def test_summary_agrees_with_full_parse(name: str, raw: bytes) -> None:
    header_block = raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0] + b"\n\n"
    summary = parse_summary(
        header_block,
        size=len(raw),
        flags=frozenset({"\\Seen", "$MDNSent", "NonJunk"}),
        uid=7,
        has_attachments_hint=None,
        internal_date=None,
    )
    assert summary.headers == parse_message(raw).headers
    assert summary.flags.seen and summary.flags.mdn_sent and summary.flags.keywords == ["NonJunk"]
    assert summary.uid == 7 and summary.size == len(raw)
