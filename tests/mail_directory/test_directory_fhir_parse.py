"""Reading Annuaire Santé resources shaped like the ANS implementation guide's examples."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from backend.mail.directory.fhir_parse import (
    FhirFormatError,
    organization_refs,
    person_candidates,
    read_bundle,
    reference_key,
    structure_candidates,
)
from backend.mail.directory.publication import PublicationStats, publish
from backend.mail.directory.query import SearchQuery

EMAIL_TYPE = "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-contact-point-email-type"
METADATA = "https://interop.esante.gouv.fr/ig/fhir/annuaire/StructureDefinition/as-ext-mailbox-mss-metadata"
TYPE_BAL = "https://mos.esante.gouv.fr/NOS/TRE_R257-TypeBAL/FHIR/TRE-R257-TypeBAL"
MESSAGERIE = "https://mos.esante.gouv.fr/NOS/TRE_R256-TypeMessagerie/FHIR/TRE-R256-TypeMessagerie"


def mss(address: str, bal: str | None = "PER", *, liste_rouge: bool | None = False, **more: Any) -> dict[str, Any]:
    metadata: list[dict[str, Any]] = []
    if bal:
        metadata.append({"url": "type", "valueCodeableConcept": {"coding": [{"system": TYPE_BAL, "code": bal}]}})
    if liste_rouge is not None:
        metadata.append({"url": "listeRouge", "valueBoolean": liste_rouge})
    metadata += [{"url": k, "valueString": v} for k, v in more.items()]
    return {
        "extension": [
            {"url": EMAIL_TYPE, "valueCoding": {"system": MESSAGERIE, "code": "MSSANTE"}},
            {"extension": metadata, "url": METADATA},
        ],
        "system": "email",
        "value": address,
    }


#: The guide's "pp16dr-practitioner" example, trimmed: a PER mailbox next to a personal e-mail.
CHATELIER: dict[str, Any] = {
    "resourceType": "Practitioner",
    "id": "3719500",
    "identifier": [
        {"use": "official", "system": "urn:oid:1.2.250.1.71.4.2.1", "value": "810102727017"},
        {"use": "official", "system": "https://rpps.esante.gouv.fr", "value": "10102727017"},
    ],
    "active": True,
    "name": [{"use": "usual", "family": "CHATELIER", "given": ["David"], "prefix": ["M"]}],
    "telecom": [
        {
            "extension": [
                {"url": EMAIL_TYPE, "valueCoding": {"system": MESSAGERIE, "code": "MSSANTE"}},
                {
                    "extension": [
                        {"url": "type", "valueCodeableConcept": {"coding": [{"system": TYPE_BAL, "code": "PER"}]}}
                    ],
                    "url": METADATA,
                },
            ],
            "system": "email",
            "value": "davidchatelier@pro.mssante.fr",
            "rank": 1,
        },
        {"system": "email", "value": "davidchatelier@orange.fr"},
        {"system": "phone", "value": "0386000000"},
    ],
    "address": [{"line": ["10 PL DES PECHEURS"], "city": "58400 LA-CHARITE-SUR-LOIRE", "postalCode": "58400"}],
    "qualification": [
        {
            "code": {
                "coding": [
                    {
                        "system": "https://mos.esante.gouv.fr/NOS/TRE_R48-DiplomeEtatFrancais/FHIR/TRE-R48-DiplomeEtatFrancais",
                        "code": "DE01",
                    }
                ]
            }
        },
        {
            "code": {
                "coding": [
                    {
                        "system": "https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante",
                        "code": "21",
                    },
                    {
                        "system": "https://mos.esante.gouv.fr/NOS/TRE_R09-CategorieProfessionnelle/FHIR/TRE-R09-CategorieProfessionnelle",
                        "code": "C",
                    },
                ]
            }
        },
    ],
}

ROLE: dict[str, Any] = {
    "resourceType": "PractitionerRole",
    "id": "5015602DP",
    "active": True,
    "practitioner": {"reference": "https://gateway.api.esante.gouv.fr/fhir/v2/Practitioner/3719500/_history/1"},
    "organization": {"reference": "Organization/481677"},
    "telecom": [mss("d.chatelier@pharmacie-centrale.mssante.fr", description="Officine")],
}

ORGANIZATION: dict[str, Any] = {
    "resourceType": "Organization",
    "id": "481677",
    "active": True,
    "identifier": [
        {"use": "official", "system": "urn:oid:1.2.250.1.71.4.2.2", "value": "1580000001"},
        {"system": "https://finess.esante.gouv.fr", "value": "580000001"},
    ],
    "name": "PHARMACIE CENTRALE",
    "telecom": [mss("contact@pharmacie-centrale.mssante.fr", None), {"system": "email", "value": "pharma@orange.fr"}],
    "address": [{"line": ["R DU PONT"], "city": "LA CHARITE SUR LOIRE", "postalCode": "58400"}],
}


def bundle(primary: list[dict[str, Any]], included: list[dict[str, Any]] = (), **extra: Any) -> dict[str, Any]:  # type: ignore[assignment]
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": [{"relation": "self", "url": "x"}, {"relation": "next", "url": "https://h/fhir/v2?_getpages=a"}],
        "entry": [{"resource": r, "search": {"mode": "match"}} for r in primary]
        + [{"resource": r, "search": {"mode": "include"}} for r in included],
        **extra,
    }


QUERY = SearchQuery.build(
    name="chatelier", profession=None, city=None, postal_code=None, address=None, kind="any", limit=20
)


def publish_all(candidates: list[Any], query: SearchQuery = QUERY) -> list[Any]:
    stats = PublicationStats()
    return [e for c in candidates if (e := publish(c, query, stats, check_place=True)) is not None]


def test_the_guide_example_practitioner() -> None:
    parsed = read_bundle(bundle([CHATELIER], [ROLE]), primary="Practitioner")
    assert parsed.next_url == "https://h/fhir/v2?_getpages=a"
    assert organization_refs(parsed) == {"Organization/481677"}
    [candidate] = person_candidates(parsed, {"Organization/481677": ORGANIZATION})
    [entry] = publish_all([candidate])
    assert entry.idnat == "810102727017"
    assert entry.name == "David CHATELIER"
    assert (entry.profession_code, entry.profession_label) == ("21", "Pharmacien")
    assert (entry.structure_name, entry.city, entry.postal_code) == (
        "PHARMACIE CENTRALE",
        "LA CHARITE SUR LOIRE",
        "58400",
    )
    assert [(m.address, m.type, m.description) for m in entry.mailboxes] == [
        ("davidchatelier@pro.mssante.fr", "PER", None),
        ("d.chatelier@pharmacie-centrale.mssante.fr", "PER", "Officine"),
    ]  # the orange.fr address is not an MSSanté mailbox


def test_structures_and_default_mailbox_type() -> None:
    [candidate] = structure_candidates(read_bundle(bundle([ORGANIZATION]), primary="Organization"))
    [entry] = publish_all(
        [candidate],
        SearchQuery.build(
            name="centrale",
            profession=None,
            city="la charité",
            postal_code="58",
            address=None,
            kind="structure",
            limit=5,
        ),
    )
    assert entry.idnat == "1580000001"
    assert [(m.address, m.type) for m in entry.mailboxes] == [("contact@pharmacie-centrale.mssante.fr", "ORG")]


def test_liste_rouge_mailbox_is_dropped_and_entry_kept_if_another_is_public() -> None:
    practitioner = copy.deepcopy(CHATELIER)
    practitioner["telecom"].append(mss("secret@pro.mssante.fr", liste_rouge=True))
    [entry] = publish_all(person_candidates(read_bundle(bundle([practitioner]), primary="Practitioner"), {}))
    assert "secret@pro.mssante.fr" not in [m.address for m in entry.mailboxes]


def test_entry_whose_every_mailbox_is_on_the_liste_rouge_is_dropped() -> None:
    practitioner = copy.deepcopy(CHATELIER)
    practitioner["telecom"] = [mss("secret@pro.mssante.fr", liste_rouge=True), {"system": "email", "value": "a@b.fr"}]
    assert publish_all(person_candidates(read_bundle(bundle([practitioner]), primary="Practitioner"), {})) == []


@pytest.mark.parametrize(
    "flag",
    [
        {"url": "listeRouge", "valueBoolean": True},
        {"url": "listeRouge", "valueString": "O"},
        {"url": "liste-rouge", "valueCode": "true"},
        {"url": "publication", "valueBoolean": False},  # the ambiguous older flag: never published
        {"url": "publication", "valueBoolean": True},
    ],
)
def test_liste_rouge_flag_shapes(flag: dict[str, Any]) -> None:
    organization = copy.deepcopy(ORGANIZATION)
    organization["telecom"] = [mss("contact@pharmacie-centrale.mssante.fr", "ORG", liste_rouge=None)]
    organization["telecom"][0]["extension"][1]["extension"].append(flag)
    assert publish_all(structure_candidates(read_bundle(bundle([organization]), primary="Organization"))) == []


def test_resource_level_liste_rouge_extension_drops_the_entry() -> None:
    practitioner = copy.deepcopy(CHATELIER)
    practitioner["extension"] = [
        {"url": "https://example.test/StructureDefinition/as-ext-liste-rouge", "valueBoolean": True}
    ]
    assert publish_all(person_candidates(read_bundle(bundle([practitioner]), primary="Practitioner"), {})) == []


def test_extension_urls_are_matched_by_their_last_segment() -> None:
    organization = copy.deepcopy(ORGANIZATION)
    telecom = mss("contact@pharmacie-centrale.mssante.fr", "APP")
    telecom["extension"] = [telecom["extension"][1]]  # metadata only, no email-type extension
    telecom["extension"][0]["url"] = "https://annuaire.sante.fr/fhir/StructureDefinition/as-mailbox-mss-metadata"
    organization["telecom"] = [telecom]
    [entry] = publish_all(structure_candidates(read_bundle(bundle([organization]), primary="Organization")))
    assert [(m.address, m.type) for m in entry.mailboxes] == [("contact@pharmacie-centrale.mssante.fr", "APP")]


def test_inactive_unidentified_and_malformed_entries_are_skipped() -> None:
    inactive = copy.deepcopy(CHATELIER) | {"active": False}
    anonymous = copy.deepcopy(CHATELIER) | {"identifier": []}
    nameless = copy.deepcopy(CHATELIER) | {"name": []}
    broken_mailbox = copy.deepcopy(CHATELIER)
    broken_mailbox["telecom"] = [mss('"Dr" <x@pro.mssante.fr>')]
    parsed = read_bundle(
        bundle([inactive, anonymous, nameless, broken_mailbox, {"resourceType": "Practitioner"}]),
        primary="Practitioner",
    )
    assert publish_all(person_candidates(parsed, {})) == []


def test_rpps_only_practitioner_gets_an_idnat() -> None:
    practitioner = copy.deepcopy(CHATELIER)
    practitioner["identifier"] = [{"system": "https://rpps.esante.gouv.fr", "value": "10102727017"}]
    [candidate] = person_candidates(read_bundle(bundle([practitioner]), primary="Practitioner"), {})
    assert candidate.idnat == "810102727017"


@pytest.mark.parametrize("data", [None, [], {"resourceType": "OperationOutcome"}, "Bundle"])
def test_not_a_bundle(data: Any) -> None:
    with pytest.raises(FhirFormatError):
        read_bundle(data, primary="Practitioner")


def test_tolerates_odd_shapes() -> None:
    odd = {
        "resourceType": "Bundle",
        "entry": [
            None,
            {"resource": "x"},
            {"resource": {"resourceType": "Practitioner", "name": "nope", "telecom": "x"}},
        ],
        "link": "nope",
    }
    parsed = read_bundle(odd, primary="Practitioner")
    assert parsed.next_url is None
    assert person_candidates(parsed, {}) == []


@pytest.mark.parametrize(
    ("reference", "key"),
    [
        ({"reference": "Organization/1"}, "Organization/1"),
        ({"reference": "https://x/fhir/v2/Organization/1/_history/3"}, "Organization/1"),
        ({"reference": "1"}, None),
        ({"display": "no reference"}, None),
        (None, None),
    ],
)
def test_reference_keys(reference: Any, key: str | None) -> None:
    assert reference_key(reference) == key
