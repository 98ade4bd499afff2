"""What a directory search returns. msgspec Structs, so the API layer can serve them as they are.

Only publishable data is in here: an entry on the liste rouge, or a mailbox flagged so, never
becomes one of these (each implementation filters before building them).
"""

from __future__ import annotations

from typing import Literal

import msgspec

#: ``person`` (a professional, Practitioner) or ``structure`` (Organization).
EntryKind = Literal["person", "structure"]
#: What to search: one kind, or both.
SearchKind = Literal["person", "structure", "any"]
#: typeBAL (JDV_J139-TypeBAL-RASS, H): personal, cabinet, organisational, applicative.
MailboxType = Literal["PER", "CAB", "ORG", "APP"]

MAILBOX_TYPES: frozenset[str] = frozenset({"PER", "CAB", "ORG", "APP"})


class MailboxEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One MSSanté mailbox of an entry."""

    address: str
    type: MailboxType
    #: Free text from the directory ("Secrétariat de cardiologie"); may be absent.
    description: str | None = None


class DirectoryEntry(msgspec.Struct, frozen=True, kw_only=True):
    """A professional or a structure, with its publishable MSSanté mailboxes (at least one)."""

    kind: EntryKind
    #: IdNat: ``8`` + RPPS for a professional, ``1`` + FINESS (or ``3`` + SIRET) for a structure.
    idnat: str
    #: "Hélène Garnier" for a person, the raison sociale for a structure.
    name: str
    #: TRE_G15 profession code (``21`` pharmacien…) of a person.
    profession_code: str | None = None
    profession_label: str | None = None
    #: For a person, the structure of the place of practice shown.
    structure_name: str | None = None
    city: str | None = None
    postal_code: str | None = None
    mailboxes: list[MailboxEntry]


class DirectoryPage(msgspec.Struct, frozen=True, kw_only=True):
    """One page of results. ``next_page_token`` is opaque; ``None`` means the last page.

    A page may hold fewer entries than asked (even none) while a next page exists: entries without
    a publishable mailbox, or outside a location filter the server could not apply, are removed
    after the page is fetched.
    """

    entries: list[DirectoryEntry]
    next_page_token: str | None = None
