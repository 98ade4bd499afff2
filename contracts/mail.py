"""Wire types of the mail API. Message content travels phone ⇄ operator through here; it is never stored."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import msgspec

Limit = Annotated[int, msgspec.Meta(ge=1, le=200)]


class FolderRole(StrEnum):
    INBOX = "inbox"
    SENT = "sent"
    TRASH = "trash"
    DRAFTS = "drafts"
    JUNK = "junk"
    ARCHIVE = "archive"
    OTHER = "other"


class AddressView(msgspec.Struct, rename="camel"):
    email: str
    name: str | None = None


class MailboxView(msgspec.Struct, rename="camel"):
    id: str
    address: str
    kind: str
    can_read: bool
    can_send: bool


class FolderView(msgspec.Struct, rename="camel"):
    name: str
    role: FolderRole
    total: int
    unseen: int


class MssMarkers(msgspec.Struct, rename="camel", omit_defaults=True):
    """MSSanté headers, as the phone needs them to render and to answer correctly."""

    nil: str | None = None
    code_cda: str | None = None
    ins: bool | None = None
    #: ``X-MSS-MES: FIN``: the patient may not answer.
    conversation_closed: bool = False
    #: Subject exactly ``[FIN]``.
    end_of_conversation: bool = False
    read_receipt_requested: bool = False


class MessageSummary(msgspec.Struct, rename="camel"):
    id: str
    uid: int
    folder: str
    from_: list[AddressView] = msgspec.field(name="from")
    to: list[AddressView]
    cc: list[AddressView]
    subject: str
    date: str | None
    flags: list[str]
    seen: bool
    flagged: bool
    answered: bool
    has_attachments: bool
    size: int
    mss: MssMarkers


class MessagePage(msgspec.Struct, rename="camel"):
    items: list[MessageSummary]
    #: Opaque; pass it back to get the next (older) page. ``None`` at the end.
    next_cursor: str | None
    #: Opaque state of the folder now; ``GET …/changes?since=<state>`` returns what changed after it.
    state: str


class FlagUpdate(msgspec.Struct, rename="camel"):
    id: str
    flags: list[str]
    seen: bool
    flagged: bool
    answered: bool


class Changes(msgspec.Struct, rename="camel"):
    created: list[MessageSummary]
    updated: list[FlagUpdate]
    #: Messages deleted or moved away since the given state: drop them, they never come back.
    destroyed: list[str]
    state: str
    #: More changes remain: call again with ``state``.
    has_more: bool = False


class AttachmentView(msgspec.Struct, rename="camel"):
    part: str
    filename: str
    content_type: str
    size: int
    content_id: str | None = None
    inline: bool = False
    #: An ``IHE_XDM.zip`` package (structured CDA documents).
    ihe_xdm: bool = False


class MessageDetail(msgspec.Struct, rename="camel"):
    summary: MessageSummary
    message_id: str | None
    in_reply_to: str | None
    references: list[str]
    text: str
    #: Sanitised: no scripts, no remote content.
    html: str | None
    attachments: list[AttachmentView]
    #: Parts that could not be read fully (broken MIME); the rest is still shown.
    partial: bool = False
    problems: list[str] = msgspec.field(default_factory=list)


class ReplyMode(StrEnum):
    REPLY = "reply"
    REPLY_ALL = "reply_all"
    FORWARD = "forward"


class OutgoingMessage(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    to: Annotated[list[str], msgspec.Meta(max_length=100)]
    subject: Annotated[str, msgspec.Meta(max_length=998)]
    text: Annotated[str, msgspec.Meta(max_length=1_000_000)]
    cc: Annotated[list[str], msgspec.Meta(max_length=100)] = msgspec.field(default_factory=list)
    html: Annotated[str, msgspec.Meta(max_length=2_000_000)] | None = None
    request_read_receipt: bool = False
    #: Messages to a patient: forbid the patient's answer (``X-MSS-MES: FIN``).
    end_patient_conversation: bool = False
    #: Answer or forward an existing message (its id from this API).
    in_reply_to: str | None = None
    mode: ReplyMode | None = None
    #: For an IHE_XDM.zip attachment, when the package itself does not say.
    code_cda: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    ins: bool | None = None


class SentMessage(msgspec.Struct, rename="camel"):
    message_id: str
    recipients: int
    #: Where the copy was filed (``Sent``), when the operator does not do it itself.
    sent_copy: str | None


class FlagsChange(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    seen: bool | None = None
    flagged: bool | None = None


class MoveRequest(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    folder: Annotated[str, msgspec.Meta(min_length=1, max_length=255)]


class ReceiptRequest(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    #: ``displayed`` (read) or ``deleted`` (discarded unread), RFC 8098.
    disposition: str = "displayed"
