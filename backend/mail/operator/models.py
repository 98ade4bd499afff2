"""Typed results of the IMAP session: what the mail API builds its JSON from.

Plain frozen dataclasses, no IMAP syntax left in them: flags are the server's atoms (``\\Seen``,
``$Forwarded``), folder names are Unicode, dates are aware datetimes.
"""

from __future__ import annotations

import datetime as dt
import email.message
import email.parser
import email.policy
from dataclasses import dataclass, field

from backend.mail.operator.bodystructure import MimePart

#: The headers fetched for a message list: enough to show, thread, reply and acknowledge
#: (``Disposition-Notification-To``) a message, and the MSSanté ones (DOMAIN.md "Headers").
SUMMARY_HEADERS: tuple[str, ...] = (
    "FROM",
    "TO",
    "CC",
    "SUBJECT",
    "DATE",
    "MESSAGE-ID",
    "IN-REPLY-TO",
    "REFERENCES",
    "CONTENT-TYPE",
    "X-MSS-NIL",
    "X-MSS-CODECDA",
    "X-MSS-INS",
    "X-MSS-MES",
    "DISPOSITION-NOTIFICATION-TO",
)

#: The special-use attributes (RFC 6154) the companion cares about.
SPECIAL_USES = frozenset({"\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash"})


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What the server announced (upper case), and what this session enabled."""

    announced: frozenset[str]
    enabled: frozenset[str] = frozenset()

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.upper() in self.announced

    @property
    def condstore(self) -> bool:
        return "CONDSTORE" in self.enabled or "QRESYNC" in self.enabled

    @property
    def qresync(self) -> bool:
        return "QRESYNC" in self.enabled

    @property
    def idle(self) -> bool:
        return "IDLE" in self

    @property
    def move(self) -> bool:
        return "MOVE" in self

    @property
    def uidplus(self) -> bool:
        return "UIDPLUS" in self

    def auth_mechanisms(self) -> frozenset[str]:
        return frozenset(c.split("=", 1)[1] for c in self.announced if c.startswith("AUTH="))


@dataclass(frozen=True, slots=True)
class SelectedMailbox:
    """The state of a folder when it was selected: the basis of delta sync."""

    name: str
    uidvalidity: int
    uidnext: int | None
    exists: int
    #: ``None`` when the server keeps no modification sequences for this folder (no CONDSTORE).
    highestmodseq: int | None
    readonly: bool
    flags: frozenset[str] = frozenset()
    permanent_flags: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Folder:
    """A folder as listed, with its special use and counts (``None`` when not asked or not selectable)."""

    name: str
    delimiter: str | None
    attributes: frozenset[str]
    special_use: str | None
    messages: int | None = None
    unseen: int | None = None

    @property
    def selectable(self) -> bool:
        return not ({"\\NOSELECT", "\\NONEXISTENT"} & {a.upper() for a in self.attributes})


@dataclass(frozen=True, slots=True)
class MessageSummary:
    """What a message list needs, without the body."""

    uid: int
    flags: frozenset[str]
    internal_date: dt.datetime | None
    size: int | None
    #: The raw header block of :data:`SUMMARY_HEADERS` (RFC 5322, may hold RFC 2047 words).
    headers: bytes
    body_structure: MimePart | None
    #: Present when CONDSTORE is enabled.
    modseq: int | None = None

    @property
    def has_attachments(self) -> bool:
        return self.body_structure is not None and self.body_structure.has_attachments

    def parsed_headers(self) -> email.message.EmailMessage:
        """The header block parsed with the modern policy (decoded words, address objects)."""
        parser = email.parser.BytesHeaderParser(policy=email.policy.default)
        return parser.parsebytes(self.headers)


@dataclass(frozen=True, slots=True)
class FlagState:
    """A message's flags (and modification sequence) after a change or at a sync."""

    uid: int
    flags: frozenset[str]
    modseq: int | None = None


@dataclass(frozen=True, slots=True)
class MailboxChanges:
    """What changed in the selected folder since a modification sequence.

    * ``changed``: messages whose flags changed (or that arrived) since then;
    * ``vanished``: UIDs expunged since then, when the server can tell (QRESYNC), else ``None``;
    * ``uids``: every UID now in the folder, when ``vanished`` is unknown: the caller diffs it
      against the UIDs it knows (the fallback without QRESYNC);
    * ``highestmodseq``: the folder's modification sequence when it was selected: the next
      ``changedsince``. Changes made after the select may be reported twice, never lost.
    * ``full``: the server has no CONDSTORE: ``changed`` holds every message.
    """

    highestmodseq: int | None
    changed: tuple[FlagState, ...]
    vanished: tuple[int, ...] | None
    uids: tuple[int, ...] | None
    full: bool = False


@dataclass(frozen=True, slots=True)
class CopiedUids:
    """Where MOVE / COPY put the messages (``COPYUID``, RFC 4315): source UID → destination UID."""

    uidvalidity: int | None
    mapping: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AppendedMessage:
    """The UID given to an appended message (``APPENDUID``), when the server says (UIDPLUS)."""

    uidvalidity: int | None
    uid: int | None
