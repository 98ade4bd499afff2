"""Accent- and case-insensitive matching, and profession codes, shared by both directories.

People type "helene garnier", "Hélène", "GARNIER", "st-etienne": folding removes accents
(NFKD, combining marks dropped, ``œ`` → ``oe``), case (casefold) and punctuation (hyphens,
apostrophes become spaces), so the sandbox and the FHIR post-filters agree with what a FHIR server
does for string search (accent- and case-insensitive by the FHIR specification).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

_NON_ALNUM = re.compile(r"[^0-9a-z]+")
_LIGATURES = str.maketrans({"œ": "oe", "Œ": "oe", "æ": "ae", "Æ": "ae"})


def fold(text: str) -> str:
    """Lower-case ASCII words separated by single spaces: ``"Lefèvre-Œuvre"`` → ``"lefevre oeuvre"``."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_LIGATURES))
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return _NON_ALNUM.sub(" ", stripped).strip()


def words(text: str) -> list[str]:
    return fold(text).split()


#: Street types as the Annuaire writes them (``R``, ``BD``…): both sides of an address match are
#: reduced to these, so "12 rue des Tilleuls" finds "12 R DES TILLEULS".
_STREET_TYPES: dict[str, str] = {
    "rue": "r",
    "boulevard": "bd",
    "bld": "bd",
    "avenue": "av",
    "ave": "av",
    "place": "pl",
    "chemin": "che",
    "route": "rte",
    "allee": "all",
    "impasse": "imp",
    "quai": "qu",
    "cours": "crs",
    "square": "sq",
    "faubourg": "fg",
    "fbg": "fg",
}


def address_words(text: str) -> list[str]:
    """Folded words with street types abbreviated the Annuaire's way."""
    return [_STREET_TYPES.get(word, word) for word in words(text)]


def contains_words(haystacks: Iterable[str | None], needle_words: list[str]) -> bool:
    """Every query word starts a word of the haystacks (after :func:`address_words`): "tilleul" finds "TILLEULS"."""
    hay = [w for h in haystacks if h for w in address_words(h)]
    return all(any(h.startswith(word) for h in hay) for word in needle_words)


def contains_all(haystacks: Iterable[str | None], needle_words: list[str]) -> bool:
    """Every word of the query occurs (as a substring) in the folded haystacks."""
    folded = " ".join(fold(h) for h in haystacks if h)
    return all(word in folded for word in needle_words)


#: TRE_G15-ProfessionSante codes and labels. 10, 21, 60, 70, 80 are H (DOMAIN.md); 40 and 50 are
#: from the same nomenclature (M).
PROFESSIONS: dict[str, str] = {
    "10": "Médecin",
    "21": "Pharmacien",
    "40": "Chirurgien-dentiste",
    "50": "Sage-femme",
    "60": "Infirmier",
    "70": "Masseur-kinésithérapeute",
    "80": "Pédicure-podologue",
}

#: Folded words people type for a profession (a prefix of the word is enough: "pharma", "infirmiere").
_PROFESSION_ALIASES: dict[str, str] = {
    "medecin": "10",
    "docteur": "10",
    "generaliste": "10",
    "pharmacien": "21",
    "pharmacienne": "21",
    "dentiste": "40",
    "chirurgien dentiste": "40",
    "sage femme": "50",
    "maieuticien": "50",
    "infirmier": "60",
    "infirmiere": "60",
    "ide": "60",
    "masseur kinesitherapeute": "70",
    "kinesitherapeute": "70",
    "kine": "70",
    "pedicure podologue": "80",
    "podologue": "80",
}


def profession_code(text: str) -> str | None:
    """The code for ``"21"``, ``"Pharmacienne"``, ``"kiné"``…; ``None`` when not recognised."""
    value = text.strip()
    if value.isdigit():
        return value if value in PROFESSIONS else None
    folded = fold(value)
    if len(folded) < 3:
        return None
    if folded in _PROFESSION_ALIASES:
        return _PROFESSION_ALIASES[folded]
    codes = {code for alias, code in _PROFESSION_ALIASES.items() if alias.startswith(folded)}
    return codes.pop() if len(codes) == 1 else None


def profession_label(code: str | None) -> str | None:
    return PROFESSIONS.get(code) if code else None
