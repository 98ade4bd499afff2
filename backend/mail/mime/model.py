"""Values the MIME layer hands to the rest of the backend.

They live only in memory for one request: the companion relays messages and never stores their
content, so nothing here is persisted. Plain msgspec Structs so the API layer can map them to its
own wire types without copying field by field.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import msgspec


class ParseProblem(StrEnum):
    """What a parser had to work around. Stable codes: phones may show a hint, logs may count them."""

    #: The ``email`` package raised; a simpler reading was used.
    PARSER_FALLBACK = "parser_fallback"
    #: A multipart without a ``boundary`` parameter (or whose boundary never appears); we guessed it.
    MISSING_BOUNDARY = "missing_boundary"
    #: A multipart whose closing boundary is missing: the message was probably cut.
    MISSING_CLOSE_BOUNDARY = "missing_close_boundary"
    #: Encoded data ends mid-way (incomplete base64 group).
    TRUNCATED = "truncated"
    #: A header line could not be read as ``Name: value``.
    BAD_HEADER = "bad_header"
    BAD_ADDRESS = "bad_address"
    BAD_DATE = "bad_date"
    #: 8-bit text without a charset: UTF-8 was tried, then the likeliest legacy charset.
    UNDECLARED_CHARSET = "undeclared_charset"
    #: A charset name nobody knows (``x-user-defined``, typos): decoded as if undeclared.
    UNKNOWN_CHARSET = "unknown_charset"
    #: The declared charset does not fit the bytes (UTF-8 declared, Windows-1252 sent, or the reverse).
    WRONG_CHARSET = "wrong_charset"
    #: Text had been decoded with the wrong charset somewhere upstream (``Ã©``); it was repaired.
    MOJIBAKE_REPAIRED = "mojibake_repaired"
    #: An RFC 2047 encoded word that could not be decoded; it is shown as written.
    BAD_ENCODED_WORD = "bad_encoded_word"
    #: Base64 with characters outside the alphabet (skipped).
    BAD_BASE64 = "bad_base64"
    #: More nesting or more parts than we read; the rest is ignored.
    TOO_DEEP = "too_deep"
    TOO_MANY_PARTS = "too_many_parts"


class Address(msgspec.Struct, frozen=True):
    """A mailbox: display name (decoded, may be empty) and address."""

    name: str
    email: str


class Flags(msgspec.Struct, frozen=True, kw_only=True):
    """IMAP flags, the system ones as booleans and the rest as keywords."""

    seen: bool = False
    answered: bool = False
    flagged: bool = False
    deleted: bool = False
    draft: bool = False
    #: ``$Forwarded`` (RFC 5550).
    forwarded: bool = False
    #: ``$MDNSent`` (RFC 3503): a read receipt was already sent or declined for this message.
    mdn_sent: bool = False
    keywords: list[str] = msgspec.field(default_factory=list)


class MessageHeaders(msgspec.Struct, frozen=True, kw_only=True):
    """What the headers say, decoded, with the MSSanté markers read out."""

    from_: list[Address] = msgspec.field(default_factory=list, name="from")
    to: list[Address] = msgspec.field(default_factory=list)
    cc: list[Address] = msgspec.field(default_factory=list)
    reply_to: list[Address] = msgspec.field(default_factory=list)
    subject: str = ""
    #: ``Date`` when readable, else the IMAP INTERNALDATE, else None. Always timezone-aware.
    date: datetime | None = None
    #: Message ids keep their angle brackets, as they are written in headers.
    message_id: str | None = None
    in_reply_to: str | None = None
    references: list[str] = msgspec.field(default_factory=list)
    #: ``X-MSS-NIL``: the sending software's product reference.
    mss_nil: str | None = None
    #: ``X-MSS-CODECDA``: type of the CDA document in the attached ``IHE_XDM.zip``.
    mss_codecda: str | None = None
    #: ``X-MSS-INS``: ``O`` (the document carries the patient's INS) → True, ``N`` → False.
    mss_ins: bool | None = None
    #: ``X-MSS-MES: FIN``: the patient may not reply to this message.
    mss_mes_fin: bool = False
    #: Subject exactly ``[FIN]`` (surrounding blanks aside): the patient conversation is over.
    is_patient_conversation_end: bool = False
    #: ``Disposition-Notification-To``: where a read receipt (RFC 8098 MDN) goes, if one is asked.
    disposition_notification_to: list[Address] = msgspec.field(default_factory=list)
    read_receipt_requested: bool = False
    #: ``X-MSSC-Acting-IdNat``: who really sent a message from an organisational mailbox.
    acting_professional: str | None = None


class MessageSummary(msgspec.Struct, frozen=True, kw_only=True):
    """One line of a message list, from the headers and the IMAP fetch attributes."""

    uid: int
    size: int
    flags: Flags
    has_attachments: bool
    headers: MessageHeaders
    problems: list[str] = msgspec.field(default_factory=list)


class AttachmentInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A part the phone can download by ``part_id`` (the IMAP section number, e.g. ``2`` or ``1.2``)."""

    part_id: str
    #: Decoded (RFC 2231 / RFC 2047), without path components, never empty.
    filename: str
    content_type: str
    #: Decoded size, estimated from the encoded size.
    size: int
    #: Without angle brackets, as ``cid:`` URLs in the HTML refer to it.
    content_id: str | None = None
    #: ``attachment`` or ``inline``.
    disposition: str = "attachment"
    #: ``base64``, ``quoted-printable``, ``7bit``…: what ``decode_part_stream`` needs for ``BODY[part]``.
    transfer_encoding: str = "7bit"
    #: A resource of the HTML body (``multipart/related``), not something the sender attached.
    related: bool = False
    #: The structured MSSanté package (``IHE_XDM.zip``).
    is_ihe_xdm: bool = False


class DispositionReport(msgspec.Struct, frozen=True, kw_only=True):
    """The machine-readable part of a received read receipt (RFC 8098)."""

    original_message_id: str | None
    final_recipient: str | None
    #: The whole field, e.g. ``manual-action/MDN-sent-manually; displayed``.
    disposition: str
    #: Just the type: ``displayed``, ``deleted``, ``dispatched``, ``processed``.
    disposition_type: str | None


class ParsedMessage(msgspec.Struct, frozen=True, kw_only=True):
    """A whole message made safe to show. Parsing always gives one, whatever the bytes."""

    headers: MessageHeaders
    #: Best plain text: the text/plain body, else text drawn from the HTML.
    text: str
    #: Sanitised HTML fragment (no scripts, handlers or remote content), or None if there was no HTML.
    html: str | None
    attachments: list[AttachmentInfo]
    #: Set when the message is a read receipt.
    mdn: DispositionReport | None = None
    #: Remote images, style sheets and CSS ``url()`` removed from the HTML.
    remote_content_blocked: int = 0
    #: Some content could not be read (cut message, parser fallback, too deep).
    partial: bool = False
    #: ``ParseProblem`` values, each once, in the order met.
    problems: list[str] = msgspec.field(default_factory=list)
    #: Any attachment other than HTML resources (the paperclip), as ``MessageSummary.has_attachments``.
    has_attachments: bool = False


class OutgoingAttachment(msgspec.Struct, frozen=True):
    """A file to send. ``message/rfc822`` data is attached as-is (used for forwarding)."""

    filename: str
    content_type: str
    data: bytes
