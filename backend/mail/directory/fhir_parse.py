"""Read Annuaire Santé FHIR R4 Bundles into ``Candidate`` entries. Pure functions, tolerant input.

What we rely on, and how sure we are (sources: the ANS FHIR implementation guide
``ansforge/IG-fhir-annuaire``, its examples and capability statements; DOMAIN.md):

- Mailboxes are ``telecom`` entries (``system = email``) of Practitioner, PractitionerRole and
  Organization, marked MSSanté by the FR Core email-type extension with code ``MSSANTE`` and/or
  carrying the ANS mailbox metadata extension (H). A plain e-mail without either is *not* an
  MSSanté mailbox and is ignored (a personal ``@orange.fr`` address sits next to them).
- The metadata extension has sub-extensions ``type`` (CodeableConcept, TRE_R257-TypeBAL:
  PER/CAB/ORG/APP), ``description`` (string) and ``listeRouge`` (boolean, true = liste rouge) (H
  for the current guide). An older draft called the flag ``publication``, with a comment that true
  means liste rouge (M); its meaning is ambiguous enough that a mailbox carrying it at all is
  treated as on the liste rouge: we never risk publishing one.
- Extension URLs are matched by their last path segment, so a move of the guide's base URL does
  not silently drop every mailbox (M: the base changed before, ``annuaire.sante.fr`` →
  ``interop.esante.gouv.fr``).
- A mailbox without a type gets the usual one of its carrier: PER on a person, ORG on a structure.
- A resource-level extension whose URL names the liste rouge (``liste-rouge``, ``listeRouge``)
  with a true value removes the whole entry (L: not in the guide; a guard, not a known field).
- Identifiers: IdNat PS system ``urn:oid:1.2.250.1.71.4.2.1``, RPPS ``https://rpps.esante.gouv.fr``
  (IdNat = ``8`` + RPPS); structures ``urn:oid:1.2.250.1.71.4.2.2``, FINESS
  ``https://finess.esante.gouv.fr`` (IdNat = ``1`` + FINESS) (H). Profession: coding of the
  TRE_G15-ProfessionSante system in ``Practitioner.qualification`` or ``PractitionerRole.code`` (H).
- Inactive resources (``active: false``) are skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from backend.mail.directory.models import MAILBOX_TYPES, MailboxType
from backend.mail.directory.publication import Candidate, Place, RawMailbox
from backend.mail.directory.text import fold, profession_label

EMAIL_TYPE_EXTENSION = "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-contact-point-email-type"
MAILBOX_METADATA_EXTENSION = (
    "https://interop.esante.gouv.fr/ig/fhir/annuaire/StructureDefinition/as-ext-mailbox-mss-metadata"
)
MSSANTE_MESSAGING_CODE = "MSSANTE"
#: Last URL segments accepted for the metadata extension: current name, then older drafts' (M).
_METADATA_NAMES = frozenset({"as-ext-mailbox-mss-metadata", "as-mailbox-mss-metadata", "as-ext-mailbox-mss"})
_EMAIL_TYPE_NAME = "fr-core-contact-point-email-type"

IDNAT_PS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"
RPPS_SYSTEM = "https://rpps.esante.gouv.fr"
IDNAT_STRUCTURE_SYSTEM = "urn:oid:1.2.250.1.71.4.2.2"
FINESS_SYSTEM = "https://finess.esante.gouv.fr"
PROFESSION_SYSTEM = "https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante"

Json = Mapping[str, Any]


class FhirFormatError(ValueError):
    """The answer is not a FHIR searchset Bundle we can read."""


@dataclass(frozen=True, slots=True)
class Bundle:
    matches: list[Json]
    included: dict[str, Json]
    next_url: str | None


# -- small tolerant accessors ---------------------------------------------------------------------


def _dicts(value: Any) -> list[Json]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def _str(obj: Json, key: str) -> str | None:
    value = obj.get(key)
    return (value.strip() or None) if isinstance(value, str) else None


def _url_name(url: Any) -> str:
    return url.rstrip("/").rpartition("/")[2] if isinstance(url, str) else ""


def _codings(concept: Any) -> list[Json]:
    return _dicts(concept.get("coding")) if isinstance(concept, Mapping) else []


def _truthy(extension: Json) -> bool:
    value = extension.get("valueBoolean")
    if isinstance(value, bool):
        return value
    for key in ("valueString", "valueCode"):
        text = extension.get(key)
        if isinstance(text, str) and text.strip().casefold() in {"true", "o", "oui", "1", "y", "yes"}:
            return True
    return False


def reference_key(reference: Any) -> str | None:
    """``"Organization/123"`` from a relative or absolute reference (``_history`` dropped)."""
    if not isinstance(reference, Mapping) or not isinstance(reference.get("reference"), str):
        return None
    parts = [p for p in reference["reference"].split("/") if p]
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    return "/".join(parts[-2:]) if len(parts) >= 2 else None


def _key(resource: Json) -> str | None:
    kind, ident = resource.get("resourceType"), resource.get("id")
    return f"{kind}/{ident}" if isinstance(kind, str) and isinstance(ident, str) else None


# -- bundle ---------------------------------------------------------------------------------------


def read_bundle(data: Any, *, primary: str) -> Bundle:
    """Split a searchset into matched ``primary`` resources and included ones (by ``Type/id``)."""
    if not isinstance(data, Mapping) or data.get("resourceType") != "Bundle":
        raise FhirFormatError("not a Bundle")
    matches: list[Json] = []
    included: dict[str, Json] = {}
    for entry in _dicts(data.get("entry")):
        resource = entry.get("resource")
        if not isinstance(resource, Mapping):
            continue
        search = entry.get("search")
        mode = search.get("mode") if isinstance(search, Mapping) else None
        if resource.get("resourceType") == primary and mode in (None, "match"):
            matches.append(resource)
        elif (key := _key(resource)) is not None:
            included[key] = resource
    next_url = next(
        (_str(link, "url") for link in _dicts(data.get("link")) if link.get("relation") == "next"),
        None,
    )
    return Bundle(matches=matches, included=included, next_url=next_url)


# -- mailboxes ------------------------------------------------------------------------------------


def _is_liste_rouge_url(url: Any) -> bool:
    return "listerouge" in fold(_url_name(url)).replace(" ", "")


def _mailbox(telecom: Json, default_type: MailboxType) -> RawMailbox | None:
    system = telecom.get("system")
    address = _str(telecom, "value")
    if system not in (None, "email") or address is None:
        return None
    is_mss = False
    mailbox_type: MailboxType = default_type
    description: str | None = None
    liste_rouge = False
    for extension in _dicts(telecom.get("extension")):
        name = _url_name(extension.get("url"))
        if name == _EMAIL_TYPE_NAME:
            coding = extension.get("valueCoding")
            codes = [coding] if isinstance(coding, Mapping) else _codings(extension.get("valueCodeableConcept"))
            is_mss = is_mss or any(c.get("code") == MSSANTE_MESSAGING_CODE for c in codes)
        elif name in _METADATA_NAMES:
            is_mss = True
            for sub in _dicts(extension.get("extension")):
                sub_name = str(sub.get("url", "")).casefold()
                if sub_name == "type":
                    code = next((c.get("code") for c in _codings(sub.get("valueCodeableConcept"))), None)
                    if isinstance(code, str) and code.upper() in MAILBOX_TYPES:
                        mailbox_type = code.upper()  # type: ignore[assignment]  # checked against MAILBOX_TYPES
                elif sub_name == "description":
                    description = _str(sub, "valueString")
                elif sub_name in ("listerouge", "liste-rouge"):
                    liste_rouge = liste_rouge or _truthy(sub)
                elif sub_name == "publication":
                    liste_rouge = True  # ambiguous older flag: never publish (see module docstring)
        elif _is_liste_rouge_url(extension.get("url")):
            liste_rouge = liste_rouge or _truthy(extension)
    if not is_mss:
        return None
    return RawMailbox(address=address, type=mailbox_type, description=description, liste_rouge=liste_rouge)


def mailboxes_of(resource: Json, default_type: MailboxType) -> list[RawMailbox]:
    return [m for t in _dicts(resource.get("telecom")) if (m := _mailbox(t, default_type)) is not None]


def _resource_liste_rouge(resource: Json) -> bool:
    return any(_is_liste_rouge_url(ext.get("url")) and _truthy(ext) for ext in _dicts(resource.get("extension")))


def _active(resource: Json) -> bool:
    return resource.get("active") is not False


# -- identities, places ---------------------------------------------------------------------------


def _identifier(resource: Json, systems: list[tuple[str, str]]) -> str | None:
    """The first identifier found, in order of ``systems`` (system, prefix to make an IdNat)."""
    identifiers = _dicts(resource.get("identifier"))
    for system, prefix in systems:
        for identifier in identifiers:
            value = _str(identifier, "value")
            if identifier.get("system") == system and value:
                return prefix + value
    return None


def _person_name(resource: Json) -> str | None:
    names = _dicts(resource.get("name"))
    names.sort(key=lambda n: 0 if n.get("use") == "usual" else 1)
    for name in names:
        given = [g.strip() for g in name.get("given", []) if isinstance(g, str) and g.strip()]
        family = _str(name, "family")
        text = " ".join([*given, family] if family else given) or _str(name, "text")
        if text:
            return text
    return None


def _profession(resources: list[Json]) -> str | None:
    for resource in resources:
        concepts = [q.get("code") for q in _dicts(resource.get("qualification"))] + list(_dicts(resource.get("code")))
        for concept in concepts:
            for coding in _codings(concept):
                system = coding.get("system")
                code = coding.get("code")
                if isinstance(system, str) and system.endswith("TRE-G15-ProfessionSante") and isinstance(code, str):
                    return code
    return None


def _place(address: Json | None, structure_name: str | None) -> Place:
    if address is None:
        return Place(structure_name=structure_name)
    lines = tuple(line.strip() for line in address.get("line", []) if isinstance(line, str) and line.strip())
    return Place(
        structure_name=structure_name,
        lines=lines,
        postal_code=_str(address, "postalCode"),
        city=_str(address, "city"),
    )


def _first_address(resource: Json) -> Json | None:
    addresses = _dicts(resource.get("address"))
    return addresses[0] if addresses else None


# -- candidates -----------------------------------------------------------------------------------


def organization_refs(bundle: Bundle) -> set[str]:
    """``Organization/<id>`` keys the bundle's PractitionerRoles point to but does not include."""
    refs: set[str] = set()
    for resource in bundle.included.values():
        if resource.get("resourceType") == "PractitionerRole":
            key = reference_key(resource.get("organization"))
            if key and key.startswith("Organization/") and key not in bundle.included:
                refs.add(key)
    return refs


def person_candidates(bundle: Bundle, organizations: Mapping[str, Json]) -> list[Candidate]:
    """One candidate per matched Practitioner, with the mailboxes and places of its roles."""
    roles_by_practitioner: dict[str, list[Json]] = {}
    for resource in bundle.included.values():
        if resource.get("resourceType") == "PractitionerRole" and _active(resource):
            key = reference_key(resource.get("practitioner"))
            if key:
                roles_by_practitioner.setdefault(key, []).append(resource)
    candidates: list[Candidate] = []
    for practitioner in bundle.matches:
        idnat = _identifier(practitioner, [(IDNAT_PS_SYSTEM, ""), (RPPS_SYSTEM, "8")])
        name = _person_name(practitioner)
        if not _active(practitioner) or idnat is None or name is None:
            continue
        roles = roles_by_practitioner.get(_key(practitioner) or "", [])
        mailboxes = mailboxes_of(practitioner, "PER")
        places: list[Place] = []
        for role in roles:
            mailboxes.extend(mailboxes_of(role, "PER"))
            org_key = reference_key(role.get("organization"))
            organization = bundle.included.get(org_key or "") or organizations.get(org_key or "")
            if organization is not None:
                places.append(_place(_first_address(organization), _str(organization, "name")))
        if (own := _first_address(practitioner)) is not None:
            places.append(_place(own, None))
        code = _profession([practitioner, *roles])
        candidates.append(
            Candidate(
                kind="person",
                idnat=idnat,
                name=name,
                mailboxes=tuple(mailboxes),
                places=tuple(places),
                profession_code=code,
                profession_label=profession_label(code),
                liste_rouge=_resource_liste_rouge(practitioner),
            )
        )
    return candidates


def structure_candidates(bundle: Bundle) -> list[Candidate]:
    """One candidate per matched Organization."""
    candidates: list[Candidate] = []
    for organization in bundle.matches:
        idnat = _identifier(organization, [(IDNAT_STRUCTURE_SYSTEM, ""), (FINESS_SYSTEM, "1")])
        name = _str(organization, "name")
        if not _active(organization) or idnat is None or name is None:
            continue
        candidates.append(
            Candidate(
                kind="structure",
                idnat=idnat,
                name=name,
                mailboxes=tuple(mailboxes_of(organization, "ORG")),
                places=(_place(_first_address(organization), name),),
                liste_rouge=_resource_liste_rouge(organization),
            )
        )
    return candidates
