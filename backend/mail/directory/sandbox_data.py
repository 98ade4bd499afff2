"""About thirty fictitious directory entries for the demo and tests.

The PSC sandbox people (``enrolment.psc_sandbox.people``) come first, with the same IdNat,
structures and MSSanté addresses, so a demo login and a directory search agree. The others are
made up: names, RPPS numbers (with a valid Luhn key), FINESS numbers and addresses are fictitious;
domains are those of the sandbox trust space. Some entries are on the liste rouge, or have a
mailbox that is: tests check they never come out.
"""

from __future__ import annotations

from backend.mail.directory.models import MailboxType
from backend.mail.directory.publication import Candidate, Place, RawMailbox
from backend.mail.directory.text import profession_label
from enrolment.psc_sandbox.people import PROFESSIONALS, STRUCTURES, SandboxStructure


def _luhn_complete(digits: str) -> str:
    """``digits`` followed by its Luhn key (RPPS numbers carry one)."""
    total = 0
    for i, char in enumerate(reversed(digits)):
        value = int(char) * (2 if i % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return digits + str((10 - total % 10) % 10)


def _place(structure: SandboxStructure) -> Place:
    street = " ".join(p for p in (structure.street_number, structure.street_type, structure.street) if p)
    return Place(
        structure_name=structure.name,
        lines=(street,) if street else (),
        postal_code=structure.postal_code,
        city=structure.city,
    )


def _from_people() -> list[Candidate]:
    entries = [
        Candidate(
            kind="person",
            idnat=person.idnat,
            name=person.display_name,
            mailboxes=(RawMailbox(person.mailbox, "PER"),),
            places=tuple(_place(activity.structure) for activity in person.activities),
            profession_code=person.profession_code,
            profession_label=profession_label(person.profession_code),
        )
        for person in PROFESSIONALS
    ]
    entries += [
        Candidate(
            kind="structure",
            idnat=structure.idnat,
            name=structure.name,
            mailboxes=(RawMailbox(structure.mailbox, "ORG", "Boîte organisationnelle de l'officine"),),
            places=(_place(structure),),
        )
        for structure in STRUCTURES
        if structure.mailbox
    ]
    return entries


def _person(
    rpps10: str,
    name: str,
    code: str,
    place: Place,
    *mailboxes: tuple[str, MailboxType] | RawMailbox,
    liste_rouge: bool = False,
) -> Candidate:
    raw = tuple(m if isinstance(m, RawMailbox) else RawMailbox(m[0], m[1]) for m in mailboxes)
    return Candidate(
        kind="person",
        idnat="8" + _luhn_complete(rpps10),
        name=name,
        mailboxes=raw,
        places=(place,),
        profession_code=code,
        profession_label=profession_label(code),
        liste_rouge=liste_rouge,
    )


def _structure(
    finess: str,
    name: str,
    line: str,
    postal_code: str,
    city: str,
    *mailboxes: RawMailbox,
    liste_rouge: bool = False,
) -> Candidate:
    return Candidate(
        kind="structure",
        idnat="1" + finess,
        name=name,
        mailboxes=mailboxes,
        places=(Place(structure_name=name, lines=(line,), postal_code=postal_code, city=city),),
        liste_rouge=liste_rouge,
    )


def _at(name: str | None, line: str, postal_code: str, city: str) -> Place:
    return Place(structure_name=name, lines=(line,), postal_code=postal_code, city=city)


_CABINET_NATION = _at("CABINET MEDICAL DE LA NATION", "8 PL DE LA NATION", "75012", "Paris")
_PHARMACIE_MARCHE = _at("PHARMACIE DU MARCHE", "3 PL DU GENERAL DE GAULLE", "59000", "Lille")
_PHARMACIE_GARE = _at("PHARMACIE DE LA GARE", "27 BD DE STALINGRAD", "44000", "Nantes")
_PHARMACIE_SAINT_ELOI = _at("PHARMACIE SAINT-ÉLOI", "41 R SAINT-ÉLOI", "76000", "Rouen")
_CENTRE_LILAS = _at("CENTRE DE SANTE DES LILAS", "15 AV PASTEUR", "93100", "Montreuil")
_CH_EXEMPLE = _at("CENTRE HOSPITALIER EXEMPLE", "40 AV DE VERDUN", "94000", "Créteil")

_MADE_UP: list[Candidate] = [
    # -- persons --------------------------------------------------------------------------------
    _person(
        "1000612345",
        "Sophie Martin",
        "10",
        _CABINET_NATION,
        ("sophie.martin@medecin.mssante.fr", "PER"),
        # A second mailbox on the liste rouge: the entry is shown, this mailbox never.
        RawMailbox("s.martin.prive@medecin.mssante.fr", "PER", liste_rouge=True),
    ),
    _person(
        "1000623456",
        "Élodie Bérard",
        "10",
        _at("CABINET DU DR BERARD", "102 COURS LAFAYETTE", "69003", "Lyon"),
        ("elodie.berard@medecin.mssante.fr", "PER"),
    ),
    _person(
        "1000634567",
        "François Nguyen",
        "10",
        _at("CABINET MEDICAL DU PRADO", "210 AV DU PRADO", "13008", "Marseille"),
        ("francois.nguyen@medecin.mssante.fr", "PER"),
    ),
    _person(
        "1000645678",
        "Zoé Château",
        "10",
        _at("MAISON MEDICALE DES CHARTRONS", "5 QU DES CHARTRONS", "33000", "Bordeaux"),
        ("zoe.chateau@medecin.mssante.fr", "PER"),
    ),
    _person(
        "1000656789",
        "Mathieu Girard",
        "10",
        _CENTRE_LILAS,
        ("mathieu.girard@medecin.mssante.fr", "PER"),
        RawMailbox("cabinet.girard@medecin.mssante.fr", "CAB", "Secrétariat du cabinet"),
    ),
    _person(
        "1000667890",
        "Bernard Lacroix",
        "10",
        _at("CABINET MEDICAL DE LA VISITATION", "9 R DE LA VISITATION", "35000", "Rennes"),
        ("bernard.lacroix@interop-mssante.apicrypt.org", "PER"),
    ),
    _person(
        "1000678901",
        "Karim Benali",
        "21",
        _PHARMACIE_MARCHE,
        ("karim.benali@pharmacien.mssante.fr", "PER"),
    ),
    _person(
        "1000689012",
        "Anne-Sophie Lefort",
        "21",
        _PHARMACIE_GARE,
        ("anne-sophie.lefort@pharmacien.mssante.fr", "PER"),
    ),
    _person(
        "1000690123",
        "Noémie Faure",
        "21",
        _PHARMACIE_SAINT_ELOI,
        ("noemie.faure@pharmacien.mssante.fr", "PER"),
    ),
    _person(
        "1000701234",
        "Léa Dupont",
        "60",
        _at("CABINET INFIRMIER DES PYRENEES", "230 R DES PYRENEES", "75020", "Paris"),
        ("lea.dupont@infirmier.mssante.fr", "PER"),
    ),
    _person(
        "1000712345",
        "Jérôme Besson",
        "60",
        _at("SSIAD DE LA CROIX-ROUSSE", "20 BD DE LA CROIX-ROUSSE", "69004", "Lyon"),
        ("jerome.besson@infirmier.mssante.fr", "PER"),
    ),
    _person(
        "1000723456",
        "Inès Haddad",
        "60",
        _at("CABINET INFIRMIER DU PANIER", "4 R DU PANIER", "13002", "Marseille"),
        ("ines.haddad@infirmier.mssante.fr", "PER"),
    ),
    _person(
        "1000734567",
        "Paul Lemaire",
        "70",
        _at("CABINET DE KINESITHERAPIE DAUMESNIL", "60 AV DAUMESNIL", "75012", "Paris"),
        ("paul.lemaire@masseur-kinesitherapeute.mssante.fr", "PER"),
    ),
    _person(
        "1000745678",
        "Claire Morel",
        "80",
        _at("CABINET DE PODOLOGIE DU CAPITOLE", "11 R DU TAUR", "31000", "Toulouse"),
        ("claire.morel@pro.mssante.fr", "PER"),
    ),
    _person(
        "1000756789",
        "Manon Roux",
        "50",
        _at("CABINET DE SAGES-FEMMES DE L'ILE VERTE", "18 R DE LA GARE", "38000", "Grenoble"),
        ("manon.roux@sage-femme.mssante.fr", "PER"),
    ),
    _person(
        "1000767890",
        "Hugo Petit",
        "40",
        _at("CABINET DENTAIRE DU PORT", "7 QU DES DEUX EMMANUEL", "06300", "Nice"),
        ("hugo.petit@chirurgien-dentiste.mssante.fr", "PER"),
    ),
    # -- persons on the liste rouge: never returned ------------------------------------------------
    _person(
        "1000778901",
        "Céline Vasseur",
        "10",
        _CABINET_NATION,
        ("celine.vasseur@medecin.mssante.fr", "PER"),
        liste_rouge=True,
    ),
    _person(
        "1000789012",
        "Marc Olivier",
        "21",
        _at("PHARMACIE DES TILLEULS", "12 R DES TILLEULS", "75011", "Paris"),
        ("marc.olivier@pharmacien.mssante.fr", "PER"),
        liste_rouge=True,
    ),
    _person(
        "1000790123",
        "Sarah Cohen",
        "60",
        _at("CABINET INFIRMIER DES PENTES", "5 R DES TABLES CLAUDIENNES", "69001", "Lyon"),
        # Every mailbox on the liste rouge: the entry has nothing to show and is not returned.
        RawMailbox("sarah.cohen@infirmier.mssante.fr", "PER", liste_rouge=True),
    ),
    # -- structures -------------------------------------------------------------------------------
    _structure(
        "590000011",
        "PHARMACIE DU MARCHE",
        "3 PL DU GENERAL DE GAULLE",
        "59000",
        "Lille",
        RawMailbox("pharmacie.marche-lille@pharmacie.mssante.fr", "ORG", "Officine, équipe du comptoir"),
    ),
    _structure(
        "440000012",
        "PHARMACIE DE LA GARE",
        "27 BD DE STALINGRAD",
        "44000",
        "Nantes",
        RawMailbox("pharmacie.gare-nantes@pharmacie.mssante.fr", "ORG"),
    ),
    _structure(
        "760000013",
        "PHARMACIE SAINT-ÉLOI",
        "41 R SAINT-ÉLOI",
        "76000",
        "Rouen",
        RawMailbox("pharmacie.saint-eloi@pharmacie.mssante.fr", "ORG"),
    ),
    _structure(
        "940000014",
        "CENTRE HOSPITALIER EXEMPLE - SERVICE DE CARDIOLOGIE",
        "40 AV DE VERDUN",
        "94000",
        "Créteil",
        RawMailbox("cardiologie@ch-exemple.mssante.fr", "ORG", "Secrétariat de cardiologie"),
    ),
    _structure(
        "940000015",
        "CENTRE HOSPITALIER EXEMPLE - URGENCES",
        "40 AV DE VERDUN",
        "94000",
        "Créteil",
        RawMailbox("urgences@ch-exemple.mssante.fr", "ORG", "Accueil des urgences"),
    ),
    _structure(
        "690000016",
        "CHU EXEMPLE - LABORATOIRE DE BIOLOGIE MEDICALE",
        "59 BD PINEL",
        "69500",
        "Bron",
        RawMailbox("resultats.biologie@chu-exemple.mssante.fr", "APP", "Envoi automatique des résultats"),
        RawMailbox("biologie@chu-exemple.mssante.fr", "ORG", "Secrétariat du laboratoire"),
    ),
    _structure(
        "930000017",
        "CENTRE DE SANTE DES LILAS",
        "15 AV PASTEUR",
        "93100",
        "Montreuil",
        RawMailbox("accueil.centre-lilas@pro.mssante.fr", "ORG"),
    ),
    # -- structures on the liste rouge: never returned ---------------------------------------------
    _structure(
        "750000018",
        "CENTRE MEDICO-PSYCHOLOGIQUE EXEMPLE",
        "30 R DE CHARENTON",
        "75012",
        "Paris",
        RawMailbox("cmp@ch-exemple.mssante.fr", "ORG"),
        liste_rouge=True,
    ),
    _structure(
        "750000019",
        "MAISON DE SANTE DE BERCY",
        "90 R DE BERCY",
        "75012",
        "Paris",
        RawMailbox("msp.bercy@pro.mssante.fr", "ORG", liste_rouge=True),
    ),
]

#: Every record, liste rouge included (the directory filters; tests read this to know what to hide).
SANDBOX_RECORDS: tuple[Candidate, ...] = (*_from_people(), *_MADE_UP)

#: Addresses that must never leave a directory: liste rouge entries' and liste rouge mailboxes.
HIDDEN_ADDRESSES: frozenset[str] = frozenset(
    mailbox.address
    for record in SANDBOX_RECORDS
    for mailbox in record.mailboxes
    if record.liste_rouge or mailbox.liste_rouge
)
