"""Test professionals of the PSC sandbox, shaped like real PSC userinfo.

The payloads copy PSC's layout key for key, empty strings included (PSC sends ``""`` rather than
omitting a field). RPPS numbers are fictitious but carry a valid Luhn key; FINESS numbers are
fictitious. Sector codes (``codeSecteurDactivite``) are plausible, not checked against the
nomenclature. The MSSanté addresses are demo data for seeding mailboxes: PSC does not send them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Keycloak federates PSC users as ``f:<provider id>:<IdNat>``; this provider id is made up.
SUB_PREFIX = "f:5f0c3a9e-4b1d-4c8e-9a51-2d7e6b3c8f10:"


@dataclass(frozen=True, slots=True)
class SandboxStructure:
    """A place of practice: a pharmacy, a cabinet, a SSIAD."""

    name: str
    #: ``identifiantTechniqueDeLaStructure``: ``F`` + FINESS, or an opaque ``R…`` for a cabinet.
    technical_id: str
    postal_code: str
    city: str
    street_number: str = ""
    street_type: str = ""
    street: str = ""
    finess: str = ""
    siret: str = ""
    #: ``ancienIdentifiantDeLaStructure``: the IdNat form (``4`` + RPPS + rang for a cabinet).
    former_id: str = ""
    sector: str = ""
    #: Organisational MSSanté address of the structure, if it has one (demo seeding only).
    mailbox: str | None = None

    @property
    def idnat(self) -> str:
        """The structure's national identifier, as :func:`enrolment.psc.claims.structure_idnat` derives it."""
        if self.finess:
            return "1" + self.finess
        if self.siret:
            return "3" + self.siret
        return self.former_id or self.technical_id

    def activity_claims(self) -> dict[str, str]:
        return {
            "numeroSiretSite": self.siret,
            "numeroSirenSite": self.siret[:9],
            "numeroFinessSite": self.finess,
            "numeroFinessetablissementJuridique": "",
            "identifiantTechniqueDeLaStructure": self.technical_id,
            "raisonSocialeSite": self.name,
            "enseigneCommercialeSite": "",
            "complementDestinataire": "",
            "complementPointGeographique": "",
            "numeroVoie": self.street_number,
            "indiceRepetitionVoie": "",
            "codeTypeDeVoie": self.street_type,
            "libelleVoie": self.street,
            "mentionDistribution": "",
            "bureauCedex": f"{self.postal_code} {self.city.upper()}",
            "codePostal": self.postal_code,
            "codeCommune": "",
            "codePays": "99000",
            "telephone": "",
            "telephone2": "",
            "telecopie": "",
            "adresseEMail": "",
            "codeDepartement": self.postal_code[:2],
            "ancienIdentifiantDeLaStructure": self.former_id,
            "autoriteDenregistrement": "",
        }


@dataclass(frozen=True, slots=True)
class SandboxActivity:
    structure: SandboxStructure
    #: ``L`` libéral, ``S`` salarié.
    mode_exercice: str
    #: Pharmacists only: ``A`` titulaire d'officine, ``D`` adjoint.
    section_pharmacien: str = ""
    role: str = ""


@dataclass(frozen=True, slots=True)
class SandboxProfessional:
    """A person one can log in as in the sandbox."""

    rpps: str
    #: ``M`` or ``MME``.
    civilite: str
    #: Title used in practice: ``DR``, ``M``, ``MME``.
    civilite_exercice: str
    given_name: str
    family_name: str
    #: 10 médecin, 21 pharmacien, 60 infirmier.
    profession_code: str
    activities: tuple[SandboxActivity, ...]
    #: Personal MSSanté address (demo seeding only, not sent by PSC).
    mailbox: str
    #: Short French description shown on the sandbox login page.
    label: str
    savoir_faire: str = ""
    #: Answer userinfo as a signed ``application/jwt`` (PSC may do so) instead of JSON.
    userinfo_jwt: bool = False

    @property
    def idnat(self) -> str:
        return "8" + self.rpps

    @property
    def sub(self) -> str:
        return SUB_PREFIX + self.idnat

    @property
    def display_name(self) -> str:
        return f"{self.given_name} {self.family_name}"

    def userinfo(self) -> dict[str, Any]:
        """The PSC userinfo claims of this person."""
        first = self.activities[0].structure if self.activities else None
        return {
            "Secteur_Activite": f"{first.sector}^1.2.250.1.71.4.2.4" if first and first.sector else "",
            "sub": self.sub,
            "email_verified": False,
            "SubjectOrganization": first.name if first else "",
            "Mode_Acces_Raison": "",
            "preferred_username": self.idnat,
            "given_name": self.given_name.upper(),
            "Acces_Regulation_Medicale": "FAUX",
            "UITVersion": "1.0",
            "SubjectRefPro": {
                "codeCivilite": self.civilite,
                "exercices": [
                    {
                        "codeProfession": self.profession_code,
                        "codeCategorieProfessionnelle": "C",
                        "codeCiviliteDexercice": self.civilite_exercice,
                        "nomDexercice": self.family_name.upper(),
                        "prenomDexercice": self.given_name.upper(),
                        "codeTypeSavoirFaire": "S" if self.savoir_faire else "",
                        "codeSavoirFaire": self.savoir_faire,
                        "activities": [
                            {
                                "codeModeExercice": activity.mode_exercice,
                                "codeSecteurDactivite": activity.structure.sector,
                                "codeSectionPharmacien": activity.section_pharmacien,
                                "codeRole": activity.role,
                                **activity.structure.activity_claims(),
                            }
                            for activity in self.activities
                        ],
                    }
                ],
            },
            "SubjectOrganizationID": first.technical_id if first else "",
            "SubjectRole": [f"{self.profession_code}^1.2.250.1.213.1.1.5.5"],
            "PSI_Locale": "1.2.250.1.213.1.3.1.1",
            "otherIds": [{"identifiant": self.idnat, "origine": "RPPS", "qualite": 1}],
            "SubjectNameID": self.idnat,
            "family_name": self.family_name.upper(),
        }


PHARMACIE_DES_TILLEULS = SandboxStructure(
    name="PHARMACIE DES TILLEULS",
    technical_id="F750000001",
    finess="750000001",
    former_id="1750000001",
    street_number="12",
    street_type="R",
    street="DES TILLEULS",
    postal_code="75011",
    city="Paris",
    sector="SA33",
    mailbox="pharmacie.tilleuls@pharmacie.mssante.fr",
)

CABINET_ROUSSEAU = SandboxStructure(
    name="CABINET INFIRMIER ROUSSEAU",
    technical_id="R104528",
    former_id="410003456786001",
    street_number="47",
    street_type="BD",
    street="VOLTAIRE",
    postal_code="75011",
    city="Paris",
    sector="SA07",
)

CABINET_DES_PENTES = SandboxStructure(
    name="CABINET INFIRMIER DES PENTES",
    technical_id="R208713",
    former_id="410004567896001",
    street_number="5",
    street_type="R",
    street="DES TABLES CLAUDIENNES",
    postal_code="69001",
    city="Lyon",
    sector="SA08",
)

SSIAD_CROIX_ROUSSE = SandboxStructure(
    name="SSIAD DE LA CROIX-ROUSSE",
    technical_id="F690000002",
    finess="690000002",
    former_id="1690000002",
    street_number="20",
    street_type="BD",
    street="DE LA CROIX-ROUSSE",
    postal_code="69004",
    city="Lyon",
    sector="SA52",
)

CABINET_DUBOIS = SandboxStructure(
    name="CABINET DU DR DUBOIS",
    technical_id="R311094",
    former_id="410005678908001",
    street_number="3",
    street_type="PL",
    street="DE LA NATION",
    postal_code="75012",
    city="Paris",
    sector="SA07",
)

HELENE_GARNIER = SandboxProfessional(
    rpps="10001234565",
    civilite="MME",
    civilite_exercice="MME",
    given_name="Hélène",
    family_name="Garnier",
    profession_code="21",
    activities=(SandboxActivity(PHARMACIE_DES_TILLEULS, "L", section_pharmacien="A"),),
    mailbox="helene.garnier@pharmacien.mssante.fr",
    label="Pharmacienne titulaire, Pharmacie des Tilleuls (Paris)",
)

JULIEN_LEFEVRE = SandboxProfessional(
    rpps="10002345675",
    civilite="M",
    civilite_exercice="M",
    given_name="Julien",
    family_name="Lefèvre",
    profession_code="21",
    activities=(SandboxActivity(PHARMACIE_DES_TILLEULS, "S", section_pharmacien="D"),),
    mailbox="julien.lefevre@pharmacien.mssante.fr",
    label="Pharmacien adjoint, Pharmacie des Tilleuls (Paris)",
)

CAMILLE_ROUSSEAU = SandboxProfessional(
    rpps="10003456786",
    civilite="MME",
    civilite_exercice="MME",
    given_name="Camille",
    family_name="Rousseau",
    profession_code="60",
    activities=(SandboxActivity(CABINET_ROUSSEAU, "L"),),
    mailbox="camille.rousseau@infirmier.mssante.fr",
    label="Infirmière libérale, cabinet (Paris)",
)

THOMAS_LAMBERT = SandboxProfessional(
    rpps="10004567896",
    civilite="M",
    civilite_exercice="M",
    given_name="Thomas",
    family_name="Lambert",
    profession_code="60",
    activities=(SandboxActivity(CABINET_DES_PENTES, "L"), SandboxActivity(SSIAD_CROIX_ROUSSE, "S")),
    mailbox="thomas.lambert@infirmier.mssante.fr",
    label="Infirmier, cabinet libéral et SSIAD (Lyon) : deux structures",
)

ANTOINE_DUBOIS = SandboxProfessional(
    rpps="10005678908",
    civilite="M",
    civilite_exercice="DR",
    given_name="Antoine",
    family_name="Dubois",
    profession_code="10",
    savoir_faire="SM54",
    activities=(SandboxActivity(CABINET_DUBOIS, "L"),),
    mailbox="antoine.dubois@medecin.mssante.fr",
    label="Médecin généraliste, cabinet (Paris), userinfo signé (JWT)",
    userinfo_jwt=True,
)

#: Everyone one can log in as, in the order of the login page. The demo seeds mailboxes from it.
PROFESSIONALS: tuple[SandboxProfessional, ...] = (
    HELENE_GARNIER,
    JULIEN_LEFEVRE,
    CAMILLE_ROUSSEAU,
    THOMAS_LAMBERT,
    ANTOINE_DUBOIS,
)

#: Every structure of the sandbox; ``mailbox`` is set where it has an organisational address.
STRUCTURES: tuple[SandboxStructure, ...] = (
    PHARMACIE_DES_TILLEULS,
    CABINET_ROUSSEAU,
    CABINET_DES_PENTES,
    SSIAD_CROIX_ROUSSE,
    CABINET_DUBOIS,
)


def find_professional(idnat: str) -> SandboxProfessional | None:
    return next((p for p in PROFESSIONALS if p.idnat == idnat), None)
