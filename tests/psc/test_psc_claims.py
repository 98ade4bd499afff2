"""Mapping PSC userinfo claims to ``PscIdentity`` / ``PscActivity``: tolerant, never a KeyError."""

from __future__ import annotations

from typing import Any

import pytest

from contracts.errors import ErrorCode
from core.errors import DomainError
from enrolment.psc import parse_identity
from enrolment.psc.claims import normalise_section, structure_idnat
from enrolment.psc_sandbox import PROFESSIONALS

#: Shaped like a real PSC (BAS) payload: a doctor with a cabinet (opaque ``R…`` technical id, IdNat
#: in the former id) and a hospital (``F`` + FINESS), PSC's empty strings and ``otherIds`` holding
#: the IdNat rather than the bare RPPS. Values are made up.
DOCTOR: dict[str, Any] = {
    "Secteur_Activite": "SA07^1.2.250.1.71.4.2.4",
    "sub": "f:550dc1c8-0000-4b1e-ac8c-000000000000:899700000017",
    "email_verified": False,
    "SubjectOrganization": "CABINET M TESTEUR",
    "preferred_username": "899700000017",
    "given_name": "ROBERT",
    "SubjectRefPro": {
        "codeCivilite": "M",
        "exercices": [
            {
                "codeProfession": "10",
                "codeCategorieProfessionnelle": "C",
                "nomDexercice": "TESTEUR",
                "prenomDexercice": "ROBERT",
                "codeSavoirFaire": "SM26",
                "activities": [
                    {
                        "codeModeExercice": "L",
                        "codeSecteurDactivite": "SA07",
                        "codeSectionPharmacien": "",
                        "codeRole": "",
                        "numeroSiretSite": "",
                        "numeroFinessSite": "",
                        "identifiantTechniqueDeLaStructure": "R95141",
                        "raisonSocialeSite": "CABINET M TESTEUR",
                        "bureauCedex": "75009 PARIS",
                        "codePostal": "75009",
                        "ancienIdentifiantDeLaStructure": "499700000017001",
                    },
                    {
                        "codeModeExercice": "S",
                        "codeSecteurDactivite": "SA01",
                        "codeSectionPharmacien": "",
                        "codeRole": "",
                        "numeroSiretSite": "",
                        "numeroFinessSite": "0B0172805",
                        "identifiantTechniqueDeLaStructure": "F0B0172805",
                        "raisonSocialeSite": "HOPITAL GENERIQUE",
                        "bureauCedex": "PARIS",
                        "codePostal": "75009",
                        "ancienIdentifiantDeLaStructure": "10B0172805",
                    },
                ],
            }
        ],
    },
    "SubjectOrganizationID": "R95141",
    "SubjectRole": ["10^1.2.250.1.213.1.1.5.5"],
    "otherIds": [{"identifiant": "899700000017", "origine": "RPPS", "qualite": 1}],
    "SubjectNameID": "899700000017",
    "family_name": "TESTEUR",
}


def test_real_shaped_payload() -> None:
    identity = parse_identity(DOCTOR)
    assert identity.sub == DOCTOR["sub"]
    assert (identity.idnat, identity.rpps) == ("899700000017", "99700000017")
    assert (identity.given_name, identity.family_name, identity.profession_code) == (
        "ROBERT",
        "TESTEUR",
        "10",
    )
    cabinet, hospital = identity.activities
    assert cabinet.structure_idnat == "499700000017001"
    assert cabinet.structure_technical_id == "R95141"
    assert (cabinet.finess, cabinet.siret, cabinet.section_pharmacien, cabinet.role) == (
        None,
        None,
        None,
        None,
    )
    assert (cabinet.city, cabinet.postal_code, cabinet.mode_exercice) == ("PARIS", "75009", "L")
    assert hospital.structure_idnat == "10B0172805"
    assert hospital.finess == "0B0172805"
    assert hospital.city == "PARIS"
    assert hospital.profession_code == "10"
    assert not identity.is_titulaire


def test_activities_of_every_exercice_are_kept() -> None:
    payload = {
        **DOCTOR,
        "SubjectRefPro": {
            "exercices": [
                {"codeProfession": "10", "activities": [{"numeroFinessSite": "750000001"}]},
                {
                    "codeProfession": "21",
                    "activities": [{"numeroFinessSite": "750000002", "codeSectionPharmacien": "A"}],
                },
            ]
        },
    }
    identity = parse_identity(payload)
    assert [(a.profession_code, a.is_titulaire) for a in identity.activities] == [("10", False), ("21", True)]
    assert identity.profession_code == "10"
    assert identity.is_titulaire


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("A", "A"),
        ("a", "A"),
        (" SA ", "A"),
        ("Section A", "A"),
        ("PHARMACIEN_A", "A"),
        ("section_a", "A"),
        ("D", "D"),
        ("SD", "D"),
        ("", None),
        (None, None),
        ("AB", "AB"),
    ],
)
def test_section_normalisation(raw: str | None, expected: str | None) -> None:
    assert normalise_section(raw) == expected


@pytest.mark.parametrize(
    ("profession", "section", "titulaire"),
    [
        ("21", "A", True),
        ("21", "SA", True),
        ("21", "D", False),
        ("10", "A", False),
        (None, "A", False),
    ],
)
def test_titulaire_needs_pharmacist_and_section_a(profession: str | None, section: str, titulaire: bool) -> None:
    exercice: dict[str, Any] = {"activities": [{"codeSectionPharmacien": section}]}
    if profession:
        exercice["codeProfession"] = profession
    identity = parse_identity({"sub": "s", "SubjectNameID": "810001234565", "SubjectRefPro": {"exercices": [exercice]}})
    assert identity.activities[0].is_titulaire is titulaire


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"technical_id": "F750000001", "finess": "750000001"}, "1750000001"),
        ({"technical_id": None, "finess": "750000001"}, "1750000001"),
        ({"technical_id": "1750000001"}, "1750000001"),
        ({"technical_id": "R95141", "siret": "12345678900012"}, "312345678900012"),
        ({"technical_id": "R95141", "former_id": "499700000017001"}, "499700000017001"),
        ({"technical_id": "R95141", "former_id": "XYZ"}, "R95141"),
        ({}, None),
    ],
)
def test_structure_idnat(kwargs: dict[str, str | None], expected: str | None) -> None:
    args: dict[str, str | None] = {"technical_id": None, "finess": None, "siret": None, "former_id": None}
    assert structure_idnat(**(args | kwargs)) == expected


def test_minimal_payload_has_no_activity() -> None:
    identity = parse_identity({"sub": "s", "SubjectNameID": "810001234565"})
    assert identity.activities == ()
    assert identity.rpps == "10001234565"
    assert (identity.given_name, identity.profession_code) == (None, None)


def test_fallbacks() -> None:
    identity = parse_identity(
        {
            "sub": "s",
            "preferred_username": "012345678901",
            "SubjectRole": ["60^1.2.250.1.213.1.1.5.5"],
            "otherIds": [{"identifiant": "ADELI123", "origine": "ADELI"}],
            "SubjectRefPro": {"exercices": [{"prenomDexercice": "ANNE", "nomDexercice": "PETIT"}]},
        }
    )
    assert identity.idnat == "012345678901"
    assert identity.rpps is None
    assert identity.profession_code == "60"
    assert (identity.given_name, identity.family_name) == ("ANNE", "PETIT")


def test_bare_rpps_in_other_ids() -> None:
    identity = parse_identity(
        {
            "sub": "s",
            "SubjectNameID": "810001234565",
            "otherIds": [{"identifiant": "10001234565", "origine": "RPPS"}],
        }
    )
    assert identity.rpps == "10001234565"


@pytest.mark.parametrize(
    "junk",
    [
        {"SubjectRefPro": "oops"},
        {"SubjectRefPro": {"exercices": "oops"}},
        {"SubjectRefPro": {"exercices": [None, 3, {"activities": [None, "x", {"codeModeExercice": 7}]}]}},
        {"otherIds": {"identifiant": "x"}},
        {"otherIds": [None, {"origine": "RPPS"}]},
        {"SubjectRole": "10"},
        {"given_name": 12, "family_name": ["x"]},
        {"SubjectRefPro": {"exercices": [{"codeProfession": 21, "activities": [{"codeSectionPharmacien": True}]}]}},
    ],
)
def test_wrong_types_are_ignored(junk: dict[str, Any]) -> None:
    identity = parse_identity({"sub": "s", "SubjectNameID": "810001234565", **junk})
    assert identity.idnat == "810001234565"


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"SubjectNameID": "810001234565"},
        {"sub": "", "SubjectNameID": "810001234565"},
        {"sub": 42, "SubjectNameID": "810001234565"},
        {"sub": "s"},
        {"sub": "s", "SubjectNameID": ""},
        [],
    ],
)
def test_unusable_claims_are_invalid(payload: Any) -> None:
    with pytest.raises(DomainError) as caught:
        parse_identity(payload)
    assert caught.value.code is ErrorCode.PSC_INVALID_TOKEN


def test_sandbox_payloads_round_trip() -> None:
    for person in PROFESSIONALS:
        identity = parse_identity(person.userinfo())
        assert identity.idnat == person.idnat
        assert identity.rpps == person.rpps
        assert [a.structure_idnat for a in identity.activities] == [a.structure.idnat for a in person.activities]
        assert identity.is_titulaire is any(a.section_pharmacien == "A" for a in person.activities)
