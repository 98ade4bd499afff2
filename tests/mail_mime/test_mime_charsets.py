"""Charsets, encoded words and parameters: the small pieces behind "signes cabalistiques" never again."""

# ruff: noqa: RUF001 - French typography (curly apostrophes, dashes) is what these tests are about

from __future__ import annotations

import pytest

from backend.mail.mime.charsets import decode_bytes, lookup_charset, repair_mojibake
from backend.mail.mime.encoded_words import decode_words
from backend.mail.mime.headers import parse_addresses, read_flags, read_headers
from backend.mail.mime.model import ParseProblem
from backend.mail.mime.params import header_params

FRENCH = "Chère consœur, l’échographie « de contrôle » coûte 45 € ; à bientôt, ça ira. Très bien, évolution à l’été."


def _for(codec: str) -> str:
    """ISO-8859-15 has no curly apostrophe."""
    return FRENCH.replace("’", "'") if "8859" in codec else FRENCH


@pytest.mark.parametrize(
    ("label", "codec"),
    [
        ("utf-8", "utf-8"),
        ('"UTF8"', "utf-8"),
        ("unicode-1-1-utf-8", "utf-8"),
        ("latin1", "iso8859-1"),
        ("ISO-8859-1", "iso8859-1"),
        ("cp1252", "cp1252"),
        ("Windows-1252", "cp1252"),
        ("x-mac-roman", "mac-roman"),
        ("macintosh", "mac-roman"),
        ("ISO-8859-15", "iso8859-15"),
        ("utf-8*fr", "utf-8"),
        ("x-user-defined", None),
        ("unknown-8bit", None),
        ("zlib", None),
        ("unicode_escape", None),
        ("no-such-charset", None),
        ("", None),
        (None, None),
    ],
)
def test_lookup_charset(label: str | None, codec: str | None) -> None:
    assert lookup_charset(label) == codec


@pytest.mark.parametrize("charset", ["utf-8", "cp1252", "iso-8859-15", "x-mac-roman", "macintosh"])
def test_declared_charsets_decode(charset: str) -> None:
    codec = {"x-mac-roman": "mac_roman", "macintosh": "mac_roman"}.get(charset, charset)
    french = _for(codec)
    text, problems = decode_bytes(french.encode(codec), charset)
    assert text == french and problems == []


def test_latin1_label_reads_windows_1252_characters() -> None:
    assert decode_bytes("L’euro : 5 €, œuvre".encode("cp1252"), "iso-8859-1")[0] == "L’euro : 5 €, œuvre"


def test_latin9_label_with_windows_1252_dash() -> None:
    assert decode_bytes(b"a \x96 b \xa4", "iso-8859-15")[0] == "a – b €"


@pytest.mark.parametrize("codec", ["cp1252", "mac_roman", "iso8859_15"])
def test_undeclared_legacy_text_is_recognised(codec: str) -> None:
    french = _for(codec)
    text, problems = decode_bytes(french.encode(codec), None)
    assert text == french
    assert [str(p) for p in problems] == ["undeclared_charset"]


def test_undeclared_utf8_is_utf8() -> None:
    text, problems = decode_bytes(FRENCH.encode(), None)
    assert text == FRENCH and [str(p) for p in problems] == ["undeclared_charset"]


@pytest.mark.parametrize("codec", ["cp1252", "mac_roman"])
def test_utf8_label_on_legacy_bytes_falls_back(codec: str) -> None:
    text, problems = decode_bytes(FRENCH.encode(codec), "utf-8")
    assert text == FRENCH and [str(p) for p in problems] == ["wrong_charset"]


@pytest.mark.parametrize("label", ["iso-8859-1", "windows-1252", "x-mac-roman", "us-ascii"])
def test_legacy_label_on_utf8_bytes_is_utf8(label: str) -> None:
    text, problems = decode_bytes(FRENCH.encode(), label)
    assert text == FRENCH and [str(p) for p in problems] == ["wrong_charset"]


def test_mostly_utf8_with_a_stray_windows_1252_byte() -> None:
    data = "Réponse à l’équipe".encode().replace("’".encode(), b"\x92")
    assert decode_bytes(data, "utf-8")[0] == "Réponse à l’équipe"


@pytest.mark.parametrize("label", ["x-user-defined", "bogus", "unknown-8bit"])
def test_unknown_label_is_guessed(label: str) -> None:
    text, problems = decode_bytes(FRENCH.encode("cp1252"), label)
    assert text == FRENCH and [str(p) for p in problems] == ["unknown_charset"]


def test_other_declared_charsets_still_work() -> None:
    assert decode_bytes("Привет".encode("koi8-r"), "koi8-r")[0] == "Привет"
    assert decode_bytes("日本語".encode("shift_jis"), "x-sjis")[0] == "日本語"
    assert decode_bytes("é".encode("utf-16"), "utf-16")[0] == "é"


def test_mojibake_repair() -> None:
    assert repair_mojibake("Le rÃ©sultat est arrivÃ© â€” merci") == ("Le résultat est arrivé — merci", True)
    assert repair_mojibake(FRENCH.encode().decode("cp1252")) == (FRENCH, True)
    assert repair_mojibake(FRENCH) == (FRENCH, False)
    # Real text that merely contains "Ã" next to a real accent is left alone.
    assert repair_mojibake("Ã© et é") == ("Ã© et é", False)


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        ("=?utf-8?q?Compte_rendu_=C3=A9?=", "Compte rendu é"),
        ("=?UTF-8?Q?Compte_rendu_=c3=a9?=", "Compte rendu é"),
        ("=?utf-8?b?w6l0w6k=?=", "été"),
        ("=?utf-8?B?w6l0w6k?=", "été"),  # padding missing
        ("=?iso-8859-1?q?caf=E9?= =?iso-8859-1?q?_cr=E8me?=", "café crème"),  # adjacent: blank dropped
        ("=?utf-8?q?a?= b =?utf-8?q?c?=", "a b c"),
        ("Re: =?utf-8?q?R=C3=A9sultat?=", "Re: Résultat"),
        ("=?utf-8?q?Compte rendu?=", "Compte rendu"),  # spaces in a Q word (broken mailers)
        ("=?x-mac-roman?q?R=8Esultat?=", "Résultat"),
        ("=?utf-8*fr?q?Bonjour?=", "Bonjour"),
        ("plain text", "plain text"),
        ("=?utf-8?q?=E2=82?= =?utf-8?q?=AC?=", "€"),  # a character split across two words
    ],
)
def test_encoded_words(raw: str, decoded: str) -> None:
    assert decode_words(raw)[0] == decoded


def test_split_base64_words_join_as_bytes() -> None:
    data = "cœur".encode()
    import base64

    raw = f"=?utf-8?B?{base64.b64encode(data[:2]).decode()}?= =?utf-8?B?{base64.b64encode(data[2:]).decode()}?="
    assert decode_words(raw) == ("cœur", [])


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        ("=?utf-8?B?###?=", "=?utf-8?B?###?="),
        ("=?utf-8?q?sans_fin", "sans fin"),
        ("=?x-inconnu?q?H=E9l=E8ne?=", "Hélène"),
    ],
)
def test_broken_encoded_words(raw: str, decoded: str) -> None:
    text, problems = decode_words(raw)
    assert text == decoded
    assert problems


def test_addresses() -> None:
    problems: list[ParseProblem] = []
    found = parse_addresses(
        '=?utf-8?q?Dupont=2C_Jean?= <j.dupont@medecin.mssante.fr>, "Secr\\"étariat" <s@x.fr>, '
        "undisclosed-recipients:;, Équipe: a@b.fr, c@d.fr;",
        problems,
    )
    assert [(a.name, a.email) for a in found] == [
        ("Dupont, Jean", "j.dupont@medecin.mssante.fr"),
        ('Secr"étariat', "s@x.fr"),
        ("", "a@b.fr"),
        ("", "c@d.fr"),
    ]


def test_headers_with_raw_8bit_and_fallback_date() -> None:
    from datetime import UTC, datetime

    internal = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
    items = [
        ("Subject", "R\udce9sultat \udc96 urgent"),  # Windows-1252 bytes as the email package keeps them
        ("Date", "not a date"),
        ("X-MSS-INS", " n "),
        ("X-MSS-MES", "fin"),
        ("Message-ID", "no-brackets@x"),
        ("References", "<a@x>\r\n <b@x> junk <c@x>"),
    ]
    headers, problems = read_headers(items, internal_date=internal)
    assert headers.subject == "Résultat – urgent"
    assert headers.date == internal
    assert headers.mss_ins is False and headers.mss_mes_fin
    assert headers.message_id == "<no-brackets@x>"
    assert headers.references == ["<a@x>", "<b@x>", "<c@x>"]
    assert {str(p) for p in problems} >= {"bad_date", "undeclared_charset"}


def test_subject_fin_must_be_exact() -> None:
    assert read_headers([("Subject", " [FIN] ")])[0].is_patient_conversation_end
    assert not read_headers([("Subject", "Re: [FIN]")])[0].is_patient_conversation_end
    assert not read_headers([("Subject", "[fin]")])[0].is_patient_conversation_end


def test_flags() -> None:
    flags = read_flags({"\\SEEN", "\\Answered", "$Forwarded", "$label1", "\\Recent"})
    assert flags.seen and flags.answered and flags.forwarded and not flags.flagged
    assert flags.keywords == ["$label1"]


@pytest.mark.parametrize(
    ("value", "filename"),
    [
        ("attachment; filename*=utf-8''Compte%20rendu%20%C3%A9.pdf", "Compte rendu é.pdf"),
        ("attachment; filename*=UTF-8'fr'%E2%82%AC.pdf; filename=\"euro.pdf\"", "€.pdf"),
        ("attachment; filename*0*=iso-8859-1''op%E9ra; filename*1=\"toire.pdf\"", "opératoire.pdf"),
        ("attachment; filename*1*=%E9.pdf; filename*0*=iso-8859-1''r%E9sum", "résumé.pdf"),  # out of order
        ('attachment; filename="=?utf-8?B?UsOpc3VtZS5wZGY=?="', "Résume.pdf"),
        ('attachment; filename="a;b.pdf"', "a;b.pdf"),
        ('attachment; filename="unterminated.pdf', "unterminated.pdf"),
        ("attachment; filename=r\udce9sum\udce9.pdf", "résumé.pdf"),
        ('attachment; FILENAME="upper.pdf"', "upper.pdf"),
    ],
)
def test_filename_parameters(value: str, filename: str) -> None:
    disposition, params, _ = header_params(value)
    assert disposition == "attachment"
    assert params["filename"] == filename
