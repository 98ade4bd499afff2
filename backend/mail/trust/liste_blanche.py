"""Parse the MSSanté liste blanche (the operator domains of the trust space) from its XML.

The ANS publishes one XML document (``listeblanchemssante.xml``) with one ``Domaine`` element per
operator domain and its name in ``Nom`` (M: DOMAIN.md; public scripts read ``//Domaine/Nom``, some
with the namespace ``https://listeblanche.mssante.fr/schema``, some without). Other children
(``Description``, ``DNCertificatOperateur``, ``DateMAJ``…) are ignored. The parser is tolerant of
what may vary and strict about what matters:

- namespaces or none, any prefix; element names compared case-insensitively (``Domaine``,
  ``domaine``, ``DOMAINE``); surrounding whitespace in names ignored;
- every name normalised like a recipient's domain (lower-case A-labels); a name that is not a host
  name is skipped and counted, never half-trusted;
- a DTD or entity declaration refuses the document: the list needs none, and refusing them is the
  simplest defence against entity expansion with the standard library parser;
- a document without a single valid domain is refused (``TrustListError``): a broken download
  must not lock every recipient out. The caller keeps its last good list.

Matching (decided here, documented in ``DomainList.contains``): the list names full operator
domains (``pharmacien.mssante.fr``, ``interop-mssante.apicrypt.org``), so a domain matches only
*exactly*. A subdomain of a listed domain is not trusted, because the liste blanche vouches for the
operator's servers for that exact domain, not for whatever a DNS zone delegates below it. If an entry
is written ``*.example.fr`` it is read as an explicit wildcard: strict subdomains of
``example.fr`` match, ``example.fr`` itself does not (as in TLS certificates). We have not seen
wildcards in the published list (L); the form is supported so that one appearing is not silently
ignored. The XML signature (XMLDSig) is not verified: that needs a dependency we do not have; the
document is fetched over verified TLS from a configured source.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from backend.mail.trust.addresses import AddressError, normalize_domain

#: The published list is a few MB (about 9 000 domains in 2025); anything far larger is not it.
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024

_DTD = re.compile(rb"<!\s*(?:DOCTYPE|ENTITY)", re.IGNORECASE)


class TrustListError(ValueError):
    """The document is not a usable liste blanche (malformed, DTD, no domain)."""


@dataclass(frozen=True, slots=True)
class DomainList:
    """Operator domains of the trust space, normalised."""

    exact: frozenset[str]
    #: Parents of explicit ``*.parent`` entries: strict subdomains of these match.
    wildcard_parents: frozenset[str] = frozenset()
    #: Entries that were not valid host names (counted for the logs, never trusted).
    skipped: int = 0

    def __len__(self) -> int:
        return len(self.exact) + len(self.wildcard_parents)

    def contains(self, domain: str) -> bool:
        """``domain`` (already normalised) is listed exactly, or is a strict subdomain of a wildcard."""
        if domain in self.exact:
            return True
        if not self.wildcard_parents:
            return False
        labels = domain.split(".")
        return any(".".join(labels[i:]) in self.wildcard_parents for i in range(1, len(labels) - 1))

    @classmethod
    def from_names(cls, names: list[str] | tuple[str, ...]) -> DomainList:
        """Normalise raw names (``Nom`` texts); raises :class:`TrustListError` when none is valid."""
        exact: set[str] = set()
        wildcard: set[str] = set()
        skipped = 0
        for raw in names:
            name = raw.strip()
            is_wildcard = name.startswith("*.")
            try:
                domain = normalize_domain(name[2:] if is_wildcard else name)
            except AddressError:
                skipped += 1
                continue
            (wildcard if is_wildcard else exact).add(domain)
        if not exact and not wildcard:
            raise TrustListError("the liste blanche holds no valid domain")
        return cls(exact=frozenset(exact), wildcard_parents=frozenset(wildcard), skipped=skipped)


def _local_name(tag: object) -> str:
    if not isinstance(tag, str):  # comments and processing instructions
        return ""
    return tag.rpartition("}")[2].rpartition(":")[2].casefold()


def _refuse_dtd(document: bytes) -> None:
    if _DTD.search(document):
        raise TrustListError("the liste blanche must not declare a DTD or entities")


def parse_liste_blanche(document: bytes) -> DomainList:
    """Domains of a liste blanche XML document (see the module docstring for the rules)."""
    if len(document) > MAX_DOCUMENT_BYTES:
        raise TrustListError("the liste blanche is too large")
    _refuse_dtd(document)
    try:
        root = ET.fromstring(document)  # noqa: S314 - no DTD (checked above), no external entities in ElementTree
    except ET.ParseError:
        raise TrustListError("the liste blanche is not well-formed XML") from None
    names: list[str] = []
    for element in root.iter():
        if _local_name(element.tag) != "domaine":
            continue
        for child in element:
            if _local_name(child.tag) == "nom":
                names.append("".join(child.itertext()))
    return DomainList.from_names(names)
