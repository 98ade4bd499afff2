"""Liste blanche documents shaped like the published one (namespaced, signed, one Domaine each)."""

from __future__ import annotations

NAMESPACE = "https://listeblanche.mssante.fr/schema"


def domaine(name: str, description: str = "Opérateur de test") -> str:
    return f"""
  <Domaine>
    <Nom>{name}</Nom>
    <Description>{description}</Description>
    <DNCertificatOperateur>CN={name.strip()},O=OPERATEUR TEST,ST=Paris (75),C=FR</DNCertificatOperateur>
    <ResponsableContact>responsable@operateur.example</ResponsableContact>
    <SupportContact>support@operateur.example</SupportContact>
    <DateMAJ>2025-03-14</DateMAJ>
  </Domaine>"""


def liste_blanche(*names: str, namespace: str | None = NAMESPACE) -> bytes:
    xmlns = f' xmlns="{namespace}"' if namespace else ""
    body = "".join(domaine(n) for n in names)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<ListeBlanche{xmlns}>
  <DateDeGeneration>2025-11-20T03:00:00</DateDeGeneration>{body}
  <ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#">
    <ds:SignedInfo><ds:Reference URI=""><ds:DigestValue>AAAA</ds:DigestValue></ds:Reference></ds:SignedInfo>
    <ds:SignatureValue>BBBB</ds:SignatureValue>
  </ds:Signature>
</ListeBlanche>
""".encode()


OPERATOR_DOMAINS = (
    "mssante.fr",
    "pharmacien.mssante.fr",
    "pharmacie.mssante.fr",
    "infirmier.mssante.fr",
    "medecin.mssante.fr",
    "ch-exemple.mssante.fr",
    "interop-mssante.apicrypt.org",
)
