"""Strict recipient parsing: one bare ``local@domain``, nothing that can hide another address."""

from __future__ import annotations

import pytest

from backend.mail.trust import AddressError, normalize_domain, parse_address


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("helene.garnier@pharmacien.mssante.fr", "helene.garnier@pharmacien.mssante.fr"),
        ("  helene.garnier@pharmacien.mssante.fr\t", "helene.garnier@pharmacien.mssante.fr"),
        ("Helene.Garnier@PHARMACIEN.MSSante.FR", "Helene.Garnier@pharmacien.mssante.fr"),
        ("anne-sophie.lefort+ordo@pharmacien.mssante.fr", "anne-sophie.lefort+ordo@pharmacien.mssante.fr"),
        ("secretariat@Hôpital-Exemple.fr", "secretariat@xn--hpital-exemple-0ob.fr"),
        ("secretariat@HÔPITAL-EXEMPLE.FR", "secretariat@xn--hpital-exemple-0ob.fr"),
        ("x@interop-mssante.apicrypt.org", "x@interop-mssante.apicrypt.org"),
    ],
)
def test_valid_addresses_are_normalised(text: str, expected: str) -> None:
    assert parse_address(text).address == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "no-at-sign.mssante.fr",
        '"Dr X" <evil@example.com>',
        "Dr X <dr.x@medecin.mssante.fr>",
        "<dr.x@medecin.mssante.fr>",
        "dr.x@medecin.mssante.fr, evil@example.com",
        "dr.x@medecin.mssante.fr;evil@example.com",
        "dr.x@medecin.mssante.fr evil@example.com",
        "dr.x@medecin.mssante.fr (Dr X)",
        "dr.x(comment)@medecin.mssante.fr",
        '"dr x"@medecin.mssante.fr',
        "dr.x@evil.com@medecin.mssante.fr",
        "@evil.com:dr.x@medecin.mssante.fr",
        "evil%medecin.mssante.fr@relay.example",
        "host!dr.x@medecin.mssante.fr",
        "dr..x@medecin.mssante.fr",
        ".dr.x@medecin.mssante.fr",
        "dr.x.@medecin.mssante.fr",
        "dr.x@[192.168.1.10]",
        "dr.x@192.168.1.10",
        "dr.x@localhost",
        "dr.x@medecin.mssante.fr.",
        "dr.x@medecin..mssante.fr",
        "dr.x@-medecin.mssante.fr",
        "dr.x@medecin_x.mssante.fr",
        "drx\uff20medecin.mssante.fr",  # full-width at sign
        "héloïse@medecin.mssante.fr",  # no SMTPUTF8 local parts
        "dr.x@medecin.mssante.fr\r\nBcc: evil@example.com",
        "dr.x\n@medecin.mssante.fr",
        "a" * 65 + "@medecin.mssante.fr",
        "x@" + ".".join(["a" * 60] * 5) + ".fr",
    ],
)
def test_tricks_and_malformed_addresses_are_refused(text: str) -> None:
    with pytest.raises(AddressError) as raised:
        parse_address(text)
    assert text.strip() not in str(raised.value) or not text.strip()


def test_domains_compare_in_a_label_form() -> None:
    assert normalize_domain("Hôpital-Exemple.FR") == normalize_domain("xn--hpital-exemple-0ob.fr")
    with pytest.raises(AddressError):
        normalize_domain(" mssante.fr")
