"""The NIR in a patient's Mon Espace Santé address: ``<NIR with key>@patient.mssante.fr`` (H).

We check the shape and the control key only; whether the person exists is Mon Espace Santé's
business. The check exists so that a typo (one digit wrong, two digits swapped) is refused here
instead of sending health data to a stranger's address: the key catches every single-digit error
and most transpositions.

Shape (15 characters): sex 1 | year 2 | month 2 | département 2 | commune 3 | order 3 | key 2.
- Sex digit: 1, 2 (NIR), 3, 4 (older temporary numbers), 7, 8 (NIA, temporary) (M: Mon Espace
  Santé addresses are expected to use the NIR; the others are accepted rather than guessed away).
- Département: two digits, or ``2A`` / ``2B`` for Corsica (lower case accepted).
- Key: ``97 - (N mod 97)`` where N is the 13 first characters read as a number, with ``2A``
  replaced by ``19`` and ``2B`` by ``18`` (the INSEE rule).

Month values (01-12, 20-42, 50-99 for special cases) are not checked: the key already refuses
typos, and being stricter than INSEE would refuse real people.
"""

from __future__ import annotations

import re

_NIR = re.compile(r"[1-478]\d{4}(?:\d{2}|2[AB])\d{6}\d{2}\Z")
_CORSICA = {"2A": "19", "2B": "18"}


def nir_key(first13: str) -> int:
    """The control key of the 13 first characters (``2A``/``2B`` allowed at positions 6-7)."""
    department = first13[5:7].upper()
    digits = first13[:5] + _CORSICA.get(department, department) + first13[7:]
    return 97 - int(digits) % 97


def is_valid_nir(text: str) -> bool:
    """True for a well-formed NIR (15 characters) whose key matches."""
    nir = text.upper()
    if not nir.isascii() or not _NIR.match(nir):
        return False
    return nir_key(nir[:13]) == int(nir[13:])
