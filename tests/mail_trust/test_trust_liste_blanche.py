"""The liste blanche parser: tolerant where documents vary, strict where trust is decided."""

from __future__ import annotations

import pytest
from trust_samples import OPERATOR_DOMAINS, liste_blanche

from backend.mail.trust import DomainList, TrustListError, parse_liste_blanche


@pytest.mark.parametrize("namespace", ["https://listeblanche.mssante.fr/schema", None, "urn:other"])
def test_reads_every_nom_with_or_without_namespace(namespace: str | None) -> None:
    domains = parse_liste_blanche(liste_blanche(*OPERATOR_DOMAINS, namespace=namespace))
    assert domains.exact == frozenset(OPERATOR_DOMAINS)
    assert len(domains) == len(OPERATOR_DOMAINS)


def test_prefixed_namespace_case_and_whitespace() -> None:
    document = b"""<?xml version="1.0"?>
<lb:listeBlanche xmlns:lb="https://listeblanche.mssante.fr/schema">
  <lb:DOMAINE><lb:nom>
      Pharmacien.MSSante.FR
  </lb:nom></lb:DOMAINE>
  <lb:domaine><lb:Nom>h\xc3\xb4pital-exemple.fr</lb:Nom></lb:domaine>
  <!-- a comment between entries -->
  <lb:Domaine><lb:Description>no name here</lb:Description></lb:Domaine>
</lb:listeBlanche>"""
    domains = parse_liste_blanche(document)
    assert domains.exact == {"pharmacien.mssante.fr", "xn--hpital-exemple-0ob.fr"}


def test_invalid_names_are_skipped_and_counted() -> None:
    domains = parse_liste_blanche(liste_blanche("medecin.mssante.fr", "not a domain", "", "192.168.0.1", "a..b.fr"))
    assert domains.exact == {"medecin.mssante.fr"}
    assert domains.skipped == 4


@pytest.mark.parametrize(
    "document",
    [
        liste_blanche(),
        liste_blanche("not a domain", "also bad"),
        b"<ListeBlanche><Autre><Nom>medecin.mssante.fr</Nom></Autre></ListeBlanche>",
        b"<html><body>Service Unavailable</body></html>",
    ],
)
def test_a_list_without_any_domain_is_refused(document: bytes) -> None:
    with pytest.raises(TrustListError):
        parse_liste_blanche(document)


@pytest.mark.parametrize(
    "document",
    [
        b"",
        b"<ListeBlanche><Domaine><Nom>medecin.mssante.fr</Nom></Domaine>",
        b"not xml at all",
    ],
)
def test_malformed_documents_are_refused(document: bytes) -> None:
    with pytest.raises(TrustListError):
        parse_liste_blanche(document)


def test_dtd_and_entities_are_refused_before_parsing() -> None:
    bomb = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<ListeBlanche><Domaine><Nom>&lol2;.mssante.fr</Nom></Domaine></ListeBlanche>"""
    with pytest.raises(TrustListError, match="DTD"):
        parse_liste_blanche(bomb)
    external = b"""<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY ext SYSTEM "file:///etc/passwd">]>
<ListeBlanche><Domaine><Nom>&ext;</Nom></Domaine></ListeBlanche>"""
    with pytest.raises(TrustListError):
        parse_liste_blanche(external)


def test_matching_is_exact_not_subdomains() -> None:
    domains = DomainList.from_names(["pharmacien.mssante.fr", "mssante.fr"])
    assert domains.contains("pharmacien.mssante.fr")
    assert domains.contains("mssante.fr")
    assert not domains.contains("evil.pharmacien.mssante.fr")
    assert not domains.contains("chu-inconnu.mssante.fr")
    assert not domains.contains("pharmacien.mssante.fr.evil.com")


def test_explicit_wildcard_matches_strict_subdomains_only() -> None:
    domains = parse_liste_blanche(liste_blanche("*.ght-exemple.fr", "medecin.mssante.fr"))
    assert domains.wildcard_parents == {"ght-exemple.fr"}
    assert domains.contains("chu.ght-exemple.fr")
    assert domains.contains("labo.chu.ght-exemple.fr")
    assert not domains.contains("ght-exemple.fr")
    assert not domains.contains("evilght-exemple.fr")
    assert not domains.contains("ght-exemple.fr.evil.com")
