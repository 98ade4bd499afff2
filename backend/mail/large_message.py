"""Reading a big message without loading it: headers and text parts only; attachments stay listed.

A 20 MB discharge file with scans must still open on a phone at once. The operator's BODYSTRUCTURE
says which leaves are the text; only those are fetched (bounded), and each attachment is streamed
later on request.
"""

from __future__ import annotations

from backend.mail.mime import adecode_part_stream, html_to_text, sanitize_html
from backend.mail.mime.charsets import decode_bytes
from backend.mail.operator.bodystructure import MimePart
from backend.mail.operator.imap_session import ImapSession
from contracts.mail import AttachmentView, MessageDetail, MessageSummary

#: A text part bigger than this is not shown inline (it is still listed as an attachment).
TEXT_PART_MAX = 1024 * 1024


async def _part_text(imap: ImapSession, uid: int, part: MimePart) -> str:
    data = b"".join(
        [c async for c in adecode_part_stream(imap.uid_fetch_part_stream(uid, part.part_id), part.encoding)]
    )
    text, _ = decode_bytes(data, part.params.get("charset"))
    return text


async def read_large(imap: ImapSession, uid: int, structure: MimePart, summary: MessageSummary) -> MessageDetail:
    plain: list[str] = []
    html: list[str] = []
    attachments: list[AttachmentView] = []
    for part in structure.walk():
        if part.is_multipart:
            continue
        inline_text = part.content_type in {"text/plain", "text/html"} and not part.is_attachment
        if inline_text and (part.size or 0) <= TEXT_PART_MAX:
            (plain if part.content_type == "text/plain" else html).append(await _part_text(imap, uid, part))
        elif part.is_attachment or not inline_text:
            attachments.append(
                AttachmentView(
                    part=part.part_id,
                    filename=part.filename or f"piece-jointe-{part.part_id}",
                    content_type=part.content_type,
                    size=part.size or 0,
                    content_id=part.content_id,
                    inline=part.disposition == "inline",
                    ihe_xdm=(part.filename or "").lower() == "ihe_xdm.zip",
                )
            )
    safe_html = sanitize_html("\n".join(html))[0] if html else None
    return MessageDetail(
        summary=summary,
        message_id=None,
        in_reply_to=None,
        references=[],
        text="\n\n".join(plain) if plain else html_to_text("\n".join(html)),
        html=safe_html,
        attachments=attachments,
        partial=False,
        problems=["large_message_text_parts_only"],
    )
