"""Pro Santé Connect userinfo claims → a typed identity with its activities.

PSC does not choose a practice for the professional: it returns every exercice and activity, and
the enrolment service picks among them. Parsing is therefore tolerant: any optional claim may be
missing, empty or of an unexpected type and is then simply ``None``. Only what identifies the
person (``sub`` and the IdNat) is required; without it the claims are rejected as
``PSC_INVALID_TOKEN``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from contracts.errors import ErrorCode
from core.errors import DomainError

PROFESSION_MEDECIN = "10"
PROFESSION_PHARMACIEN = "21"
PROFESSION_INFIRMIER = "60"

#: Section A of the Ordre des pharmaciens: titulaires d'officine.
SECTION_TITULAIRE = "A"

_POSTCODE_PREFIX = re.compile(r"^\d{5}\s+")
_SECTION_NOISE = re.compile(r"^(?:PHARMACIEN|SECTION|TABLEAU)[\s_\-:]*")


@dataclass(frozen=True, slots=True)
class PscActivity:
    """One place where the professional practises (an ``activities[]`` entry of an exercice)."""

    #: Key of the structure, see :func:`structure_idnat`. ``None`` when PSC gives nothing usable.
    structure_idnat: str | None
    #: ``identifiantTechniqueDeLaStructure`` as sent (``F`` + FINESS, ``R…`` for cabinets).
    structure_technical_id: str | None
    finess: str | None
    siret: str | None
    raison_sociale: str | None
    #: ``L`` libéral, ``S`` salarié, ``B`` bénévole.
    mode_exercice: str | None
    #: Normalised to one letter (``A`` titulaire d'officine, ``D`` adjoint…), see :func:`normalise_section`.
    section_pharmacien: str | None
    role: str | None
    secteur_activite: str | None
    postal_code: str | None
    city: str | None
    #: Profession of the exercice this activity belongs to (``10``, ``21``, ``60``…).
    profession_code: str | None

    @property
    def is_titulaire(self) -> bool:
        """A pharmacist in section A: the holder of the pharmacy, who may manage its team."""
        return self.profession_code == PROFESSION_PHARMACIEN and self.section_pharmacien == SECTION_TITULAIRE


@dataclass(frozen=True, slots=True)
class PscIdentity:
    """Who logged in, as PSC describes them."""

    sub: str
    #: National identifier of the professional (``8`` + RPPS, or ``0`` + ADELI).
    idnat: str
    rpps: str | None
    given_name: str | None
    family_name: str | None
    #: Profession of the first exercice.
    profession_code: str | None
    activities: tuple[PscActivity, ...]

    @property
    def is_titulaire(self) -> bool:
        return any(activity.is_titulaire for activity in self.activities)


def parse_identity(userinfo: Mapping[str, Any]) -> PscIdentity:
    """Map PSC userinfo claims to a :class:`PscIdentity`; raise ``PSC_INVALID_TOKEN`` if unusable."""
    if not isinstance(userinfo, Mapping):
        raise DomainError(ErrorCode.PSC_INVALID_TOKEN, "userinfo is not a JSON object")
    # Identifiers must be strings: a number would have lost an ADELI IdNat's leading zero.
    sub = _string(userinfo.get("sub"))
    if sub is None:
        raise DomainError(ErrorCode.PSC_INVALID_TOKEN, "userinfo has no sub")
    idnat = _string(userinfo.get("SubjectNameID")) or _string(userinfo.get("preferred_username"))
    if idnat is None:
        raise DomainError(ErrorCode.PSC_INVALID_TOKEN, "userinfo has no SubjectNameID")

    exercices = [e for e in _list(_mapping(userinfo.get("SubjectRefPro")).get("exercices")) if isinstance(e, Mapping)]
    first = exercices[0] if exercices else {}
    activities = tuple(
        _activity(activity, _text(exercice.get("codeProfession")))
        for exercice in exercices
        for activity in _list(exercice.get("activities"))
        if isinstance(activity, Mapping)
    )
    return PscIdentity(
        sub=sub,
        idnat=idnat,
        rpps=_rpps(userinfo.get("otherIds"), idnat),
        given_name=_text(userinfo.get("given_name")) or _text(first.get("prenomDexercice")),
        family_name=_text(userinfo.get("family_name")) or _text(first.get("nomDexercice")),
        profession_code=_text(first.get("codeProfession")) or _subject_role(userinfo.get("SubjectRole")),
        activities=activities,
    )


def structure_idnat(
    *, technical_id: str | None, finess: str | None, siret: str | None, former_id: str | None
) -> str | None:
    """The structure's national identifier (``1`` + FINESS, ``3`` + SIRET, ``4`` + RPPS-rang).

    Real PSC payloads carry ``identifiantTechniqueDeLaStructure`` as ``F`` + FINESS for
    establishments and an opaque ``R…`` number for cabinets, and the IdNat form in
    ``ancienIdentifiantDeLaStructure``. Order: technical id when it is (or maps to) an IdNat,
    FINESS, SIRET, the former id when it looks like an IdNat, then the opaque technical id so that
    every structure still has a stable key.
    """
    if technical_id:
        if technical_id[0].isdigit():
            return technical_id
        if technical_id[0] == "F" and len(technical_id) > 1:
            return "1" + technical_id[1:]
    if finess:
        return "1" + finess
    if siret:
        return "3" + siret
    if former_id and former_id[0] in "134":
        return former_id
    return technical_id


def normalise_section(raw: str | None) -> str | None:
    """One upper-case letter for the pharmacists' section of the Ordre.

    How PSC spells ``codeSectionPharmacien`` is not documented: accept ``A``, ``a``, ``SA``,
    ``Section A``, ``PHARMACIEN_A`` alike. Anything else is kept upper-cased so it never
    matches a section by accident.
    """
    if raw is None:
        return None
    value = _SECTION_NOISE.sub("", raw.strip().upper()).strip(" _-:")
    if len(value) == 2 and value[0] == "S" and value[1].isalpha():
        value = value[1]
    return value or None


def _activity(raw: Mapping[str, Any], profession_code: str | None) -> PscActivity:
    technical_id = _text(raw.get("identifiantTechniqueDeLaStructure"))
    finess = _text(raw.get("numeroFinessSite"))
    siret = _text(raw.get("numeroSiretSite"))
    return PscActivity(
        structure_idnat=structure_idnat(
            technical_id=technical_id,
            finess=finess,
            siret=siret,
            former_id=_text(raw.get("ancienIdentifiantDeLaStructure")),
        ),
        structure_technical_id=technical_id,
        finess=finess,
        siret=siret,
        raison_sociale=_text(raw.get("raisonSocialeSite")) or _text(raw.get("enseigneCommercialeSite")),
        mode_exercice=_text(raw.get("codeModeExercice")),
        section_pharmacien=normalise_section(_text(raw.get("codeSectionPharmacien"))),
        role=_text(raw.get("codeRole")),
        secteur_activite=_text(raw.get("codeSecteurDactivite")),
        postal_code=_text(raw.get("codePostal")),
        city=_text(raw.get("libelleCommune")) or _city(_text(raw.get("bureauCedex"))),
        profession_code=profession_code,
    )


def _rpps(other_ids: Any, idnat: str) -> str | None:
    """RPPS from ``otherIds`` (PSC sends it either bare or as the ``8``-prefixed IdNat), else the IdNat."""
    for entry in _list(other_ids):
        if isinstance(entry, Mapping) and _text(entry.get("origine")) == "RPPS":
            value = _text(entry.get("identifiant"))
            if value and len(value) == 12 and value.startswith("8"):
                return value[1:]
            if value:
                return value
    if len(idnat) == 12 and idnat.startswith("8"):
        return idnat[1:]
    return None


def _subject_role(raw: Any) -> str | None:
    """``SubjectRole`` is ``["21^1.2.250.1.213.1.1.5.5"]``: profession code, then its OID."""
    for entry in _list(raw):
        text = _text(entry)
        if text:
            return text.split("^", 1)[0] or None
    return None


def _city(bureau: str | None) -> str | None:
    """``bureauCedex`` reads ``75009 PARIS`` or just ``PARIS``."""
    if bureau is None:
        return None
    return _POSTCODE_PREFIX.sub("", bureau).strip() or None


def _string(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _text(value: Any) -> str | None:
    """A non-empty string; numbers are accepted as their text (PSC codes are digits)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value.strip() or None
    return None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
