"""The publication rules, applied by every backend before an entry leaves it.

A backend turns its records into ``Candidate`` values (everything it knows, liste rouge flags
included), and ``publish`` decides what may be shown:

- an entry on the liste rouge is never returned;
- a mailbox on the liste rouge is never returned, and neither is a malformed address;
- an entry left without a mailbox is not returned: this directory exists to find someone to
  write to (and an entry whose every mailbox is on the liste rouge is, in effect, on it);
- with a place filter, a person is returned only if one of its places matches, and that place is
  the one shown.
"""

from __future__ import annotations

from dataclasses import dataclass

from backend.mail.directory.models import DirectoryEntry, EntryKind, MailboxEntry, MailboxType
from backend.mail.directory.query import SearchQuery
from backend.mail.directory.text import address_words, contains_all, contains_words, fold, words
from backend.mail.trust.addresses import AddressError, parse_address


@dataclass(frozen=True, slots=True)
class Place:
    """Where an entry is: a structure and its address (a person may have several)."""

    structure_name: str | None = None
    lines: tuple[str, ...] = ()
    postal_code: str | None = None
    city: str | None = None


@dataclass(frozen=True, slots=True)
class RawMailbox:
    address: str
    type: MailboxType
    description: str | None = None
    liste_rouge: bool = False


@dataclass(frozen=True, slots=True)
class Candidate:
    """An entry as a backend knows it, before the publication rules."""

    kind: EntryKind
    idnat: str
    name: str
    mailboxes: tuple[RawMailbox, ...]
    places: tuple[Place, ...] = ()
    profession_code: str | None = None
    profession_label: str | None = None
    liste_rouge: bool = False


@dataclass(slots=True)
class PublicationStats:
    """Counts for the logs: how much the rules removed."""

    liste_rouge_entries: int = 0
    liste_rouge_mailboxes: int = 0
    without_mailbox: int = 0
    outside_place: int = 0
    malformed_mailboxes: int = 0


def place_matches(place: Place, query: SearchQuery) -> bool:
    if query.postal_code and not (place.postal_code or "").upper().startswith(query.postal_code):
        return False
    if query.city and not contains_all([place.city], words(query.city)):
        return False
    if query.address:
        return contains_words([*place.lines, place.postal_code, place.city], address_words(query.address))
    return True


def _public_mailboxes(candidate: Candidate, stats: PublicationStats) -> list[MailboxEntry]:
    mailboxes: list[MailboxEntry] = []
    seen: set[str] = set()
    for raw in candidate.mailboxes:
        if raw.liste_rouge:
            stats.liste_rouge_mailboxes += 1
            continue
        try:
            address = parse_address(raw.address).address
        except AddressError:
            stats.malformed_mailboxes += 1
            continue
        if address.lower() in seen:
            continue
        seen.add(address.lower())
        description = raw.description.strip() if raw.description and raw.description.strip() else None
        mailboxes.append(MailboxEntry(address=address, type=raw.type, description=description))
    return mailboxes


def publish(
    candidate: Candidate, query: SearchQuery, stats: PublicationStats, *, check_place: bool
) -> DirectoryEntry | None:
    """The entry to return for ``candidate``, or ``None`` when the rules above remove it."""
    if candidate.liste_rouge:
        stats.liste_rouge_entries += 1
        return None
    mailboxes = _public_mailboxes(candidate, stats)
    if not mailboxes:
        stats.without_mailbox += 1
        return None
    place = candidate.places[0] if candidate.places else Place()
    if check_place and query.has_place:
        matching = [p for p in candidate.places if place_matches(p, query)]
        if not matching:
            stats.outside_place += 1
            return None
        place = matching[0]
    return DirectoryEntry(
        kind=candidate.kind,
        idnat=candidate.idnat,
        name=candidate.name,
        profession_code=candidate.profession_code,
        profession_label=candidate.profession_label,
        structure_name=place.structure_name if candidate.kind == "person" else None,
        city=place.city,
        postal_code=place.postal_code,
        mailboxes=mailboxes,
    )


def name_matches(candidate: Candidate, query: SearchQuery, extra: tuple[str, ...] = ()) -> bool:
    """Every word of the name criterion is in the entry's name (accent- and case-insensitive)."""
    return not query.name or contains_all([candidate.name, *extra], query.name_words)


def sort_key(candidate: Candidate) -> tuple[str, str]:
    return (fold(candidate.name), candidate.idnat)
