"""From parsed IMAP facts to the wire types of ``contracts.mail``."""

from __future__ import annotations

from backend.mail.ids import MessageRef
from backend.mail.mime import AttachmentInfo, MessageHeaders, ParsedMessage
from backend.mail.mime import MessageSummary as ParsedSummary
from backend.mail.mime.model import Address
from contracts.mail import AddressView, AttachmentView, FlagUpdate, MessageDetail, MessageSummary, MssMarkers

_KNOWN = {"\\Seen", "\\Flagged", "\\Answered", "\\Deleted", "\\Draft"}


def addresses(items: list[Address]) -> list[AddressView]:
    return [AddressView(email=a.email, name=a.name or None) for a in items]


def markers(headers: MessageHeaders) -> MssMarkers:
    return MssMarkers(
        nil=headers.mss_nil,
        code_cda=headers.mss_codecda,
        ins=headers.mss_ins,
        conversation_closed=headers.mss_mes_fin,
        end_of_conversation=headers.is_patient_conversation_end,
        read_receipt_requested=headers.read_receipt_requested,
    )


def flag_names(flags: frozenset[str]) -> list[str]:
    return sorted(flags)


def summary_view(ref: MessageRef, parsed: ParsedSummary, flags: frozenset[str]) -> MessageSummary:
    headers = parsed.headers
    return MessageSummary(
        id=ref.encode(),
        uid=ref.uid,
        folder=ref.folder,
        from_=addresses(headers.from_),
        to=addresses(headers.to),
        cc=addresses(headers.cc),
        subject=headers.subject,
        date=headers.date.isoformat() if headers.date else None,
        flags=flag_names(flags),
        seen="\\Seen" in flags,
        flagged="\\Flagged" in flags,
        answered="\\Answered" in flags,
        has_attachments=parsed.has_attachments,
        size=parsed.size,
        mss=markers(headers),
    )


def flag_update(ref: MessageRef, flags: frozenset[str]) -> FlagUpdate:
    return FlagUpdate(
        id=ref.encode(),
        flags=flag_names(flags),
        seen="\\Seen" in flags,
        flagged="\\Flagged" in flags,
        answered="\\Answered" in flags,
    )


def attachment_view(info: AttachmentInfo) -> AttachmentView:
    return AttachmentView(
        part=info.part_id,
        filename=info.filename,
        content_type=info.content_type,
        size=info.size,
        content_id=info.content_id,
        inline=info.disposition == "inline",
        ihe_xdm=info.is_ihe_xdm,
    )


def detail_view(summary: MessageSummary, parsed: ParsedMessage) -> MessageDetail:
    headers = parsed.headers
    return MessageDetail(
        summary=summary,
        message_id=headers.message_id,
        in_reply_to=headers.in_reply_to,
        references=list(headers.references),
        text=parsed.text,
        html=parsed.html,
        attachments=[attachment_view(a) for a in parsed.attachments],
        partial=parsed.partial,
        problems=[str(p) for p in parsed.problems],
    )
