"""Read receipts: RFC 8098 Message Disposition Notifications, in French for the human part.

MSSanté asks for them only when the original carries ``Disposition-Notification-To``; otherwise we
refuse (``mdn_not_requested``) rather than reveal to a sender that did not ask when a message was
read. Layout (RFC 6522 ``multipart/report; report-type=disposition-notification``):

1. ``text/plain``: what happened, for people;
2. ``message/disposition-notification``: ``Reporting-UA``, ``Final-Recipient``,
   ``Original-Message-ID``, ``Disposition``;
3. ``text/rfc822-headers``: the original's header block (given by the caller, who fetched
   ``BODY.PEEK[HEADER]``, else rebuilt from the parsed headers) — never its body.

After sending, the caller sets ``$MDNSent`` on the original (RFC 3503) so no second one goes out.
"""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Literal

from backend.mail.mime.model import Address, MessageHeaders, MessageSummary, ParsedMessage
from backend.mail.mime.outgoing import (
    POLICY,
    drop_part_mime_versions,
    headers_of,
    invalid,
    mailbox,
    new_message_id,
    one_line,
    token,
)
from contracts.errors import ErrorCode
from core.errors import ConflictError, DomainError

Disposition = Literal["displayed", "deleted", "dispatched", "processed"]

_SUBJECTS: dict[str, str] = {
    "displayed": "Accusé de lecture",
    "deleted": "Message supprimé sans lecture",
    "dispatched": "Message transmis sans lecture",
    "processed": "Message traité sans lecture",
}
_SENTENCES: dict[str, str] = {
    "displayed": "Votre message a été affiché par le destinataire.",
    "deleted": "Votre message a été supprimé par le destinataire sans avoir été affiché.",
    "dispatched": "Votre message a été transmis (imprimé, transféré…) sans avoir été affiché.",
    "processed": "Votre message a été traité sans avoir été affiché.",
}
_MONTHS = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
]


def _french_date(when: datetime) -> str:
    return f"{when.day} {_MONTHS[when.month - 1]} {when.year} à {when:%H:%M}"


def _human_text(headers: MessageHeaders, final_recipient: str, disposition: str) -> str:
    sent = f" du {_french_date(headers.date)}" if headers.date else ""
    subject = f", objet « {one_line(headers.subject, 300)} »" if headers.subject else ""
    return (
        f"Accusé pour votre message{sent} adressé à {final_recipient}{subject}.\n\n"
        f"{_SENTENCES[disposition]}\n\n"
        "Cet accusé indique seulement ce qu'il est advenu du message sur la messagerie "
        "du destinataire ; il ne garantit pas que son contenu a été lu ou compris.\n"
    )


def _rebuilt_header_block(headers: MessageHeaders) -> bytes:
    """The original's main headers, when the caller has not kept its header block."""
    block = EmailMessage(policy=POLICY)
    if headers.message_id:
        block["Message-ID"] = headers.message_id
    if headers.date:
        block["Date"] = email.utils.format_datetime(headers.date)
    for name, addresses in (("From", headers.from_), ("To", headers.to)):
        try:
            if addresses:
                block[name] = tuple(mailbox(a) for a in addresses)
        except DomainError:  # an address we cannot write back: leave the header out
            del block[name]
    block["Subject"] = one_line(headers.subject, 900)
    return block.as_bytes(policy=POLICY).rstrip(b"\r\n") + b"\r\n"


def build_mdn(
    *,
    original: ParsedMessage | MessageSummary | MessageHeaders,
    reporting_ua: str,
    final_recipient: str,
    disposition: Disposition,
    sender: Address,
    message_id_domain: str,
    product_reference: str,
    original_header_block: bytes | None = None,
    automatic: bool = False,
    date: datetime | None = None,
) -> bytes:
    """The read receipt for ``original``, addressed to its ``Disposition-Notification-To``.

    ``automatic`` is for receipts sent without asking the user (``automatic-action``, and
    ``Auto-Submitted: auto-replied`` per RFC 3834). Raises ``mdn_not_requested`` (409) if the
    original asked for none, ``validation_failed`` for unusable input.
    """
    headers = headers_of(original)
    if not headers.disposition_notification_to:
        raise ConflictError(ErrorCode.MDN_NOT_REQUESTED, "the original message asks for no read receipt")
    if disposition not in _SENTENCES:
        raise invalid("invalid disposition")
    recipient = mailbox(Address("", final_recipient)).addr_spec
    when = date or datetime.now(UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)

    message = EmailMessage(policy=POLICY)
    message["From"] = mailbox(sender)
    message["To"] = tuple(mailbox(a) for a in headers.disposition_notification_to[:10])
    subject = f"{_SUBJECTS[disposition]} : {headers.subject}" if headers.subject else _SUBJECTS[disposition]
    message["Subject"] = one_line(subject, 900)
    message["Date"] = email.utils.format_datetime(when)
    message["Message-ID"] = new_message_id(message_id_domain)
    if headers.message_id:
        message["In-Reply-To"] = headers.message_id
        message["References"] = headers.message_id
    message["X-MSS-NIL"] = token(product_reference, "product reference")
    if automatic:
        message["Auto-Submitted"] = "auto-replied"
    message["MIME-Version"] = "1.0"
    message["Content-Type"] = "multipart/report; report-type=disposition-notification"

    human = EmailMessage(policy=POLICY)
    human.set_content(_human_text(headers, recipient, disposition), charset="utf-8", cte="quoted-printable")

    mode = "automatic-action/MDN-sent-automatically" if automatic else "manual-action/MDN-sent-manually"
    fields = [
        f"Reporting-UA: {token(reporting_ua, 'reporting UA')}",
        f"Final-Recipient: rfc822; {recipient}",
        *([f"Original-Message-ID: {headers.message_id}"] if headers.message_id else []),
        f"Disposition: {mode}; {disposition}",
    ]
    report = EmailMessage(policy=POLICY)
    report["Content-Type"] = "message/disposition-notification"
    report["Content-Transfer-Encoding"] = "7bit"
    report.set_payload("\r\n".join(fields) + "\r\n")

    block = original_header_block if original_header_block is not None else _rebuilt_header_block(headers)
    block = block.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0].replace(b"\n", b"\r\n") + b"\r\n"
    original_headers = EmailMessage(policy=POLICY)
    original_headers["Content-Type"] = "text/rfc822-headers"
    original_headers["Content-Transfer-Encoding"] = "7bit" if block.isascii() else "8bit"
    original_headers.set_payload(block.decode("ascii", "surrogateescape"))

    for part in (human, report, original_headers):
        message.attach(part)
    drop_part_mime_versions(message)
    return message.as_bytes(policy=POLICY)
