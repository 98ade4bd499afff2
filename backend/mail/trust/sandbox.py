"""The built-in trust space for dev, the demo and tests (used when no source is configured).

Real MSSanté domains in shape (the national operator's domains and one third-party operator's), so
the demo behaves like production: these are accepted, ``gmail.com`` is not. Production refuses to
start without a real source (``Settings.checked``), and ``TrustSpace`` refuses this list when
``sandbox_allowed`` is false.
"""

from __future__ import annotations

from backend.mail.trust.liste_blanche import DomainList

SANDBOX_DOMAINS: tuple[str, ...] = (
    "mssante.fr",
    "pharmacien.mssante.fr",
    "pharmacie.mssante.fr",
    "infirmier.mssante.fr",
    "medecin.mssante.fr",
    "masseur-kinesitherapeute.mssante.fr",
    "sage-femme.mssante.fr",
    "chirurgien-dentiste.mssante.fr",
    "pro.mssante.fr",
    "ch-exemple.mssante.fr",
    "chu-exemple.mssante.fr",
    "ssiad-exemple.mssante.fr",
    "interop-mssante.apicrypt.org",
)


def sandbox_domain_list() -> DomainList:
    return DomainList.from_names(SANDBOX_DOMAINS)
