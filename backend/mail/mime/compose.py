"""Outgoing MSSanté messages: RFC 5322 bytes ready for SMTP submission and for the Sent folder.

Layout: ``text/plain`` alone; ``multipart/alternative`` (text, HTML) when there is HTML; wrapped in
``multipart/mixed`` when there are attachments. Bodies are UTF-8 quoted-printable, attachments
base64 with RFC 2231 names, headers RFC 2047 — a 7-bit message any operator relays unchanged.

MSSanté headers (Référentiel socle #2):

- ``X-MSS-NIL`` (product reference) on every message;
- ``X-MSS-CODECDA`` and ``X-MSS-INS`` (``O``/``N``) exactly when an ``IHE_XDM.zip`` is attached:
  taken from the caller, else read from the archive (``xdm.read_xdm``); still unknown →
  ``xdm_metadata_required``. Given without such an archive → ``validation_failed`` (the
  référentiel forbids them there). Several document codes are written comma-separated;
- ending a patient conversation: ``end_patient_conversation`` sets ``X-MSS-MES: FIN`` (the patient
  can no longer reply); the subject becomes ``[FIN]`` only if the caller writes it so. Both are
  kept separate because the subject is the user's text, and the header is the machine signal;
- ``X-MSSC-Acting-IdNat`` (ours, see ``headers.ACTING_HEADER``): the IdNat of the member who sent
  from an organisational mailbox, which the operator must be able to trace.

Forwarding attaches the original as ``message/rfc822``, byte for byte (headers, attachments and
any signature intact, ``IHE_XDM.zip`` included) rather than inlining its text.
"""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import NamedTuple

from backend.mail.mime.attachments import is_ihe_xdm, safe_filename
from backend.mail.mime.headers import ACTING_HEADER
from backend.mail.mime.model import Address, MessageHeaders, MessageSummary, OutgoingAttachment, ParsedMessage
from backend.mail.mime.outgoing import (
    MSGID,
    POLICY,
    drop_part_mime_versions,
    headers_of,
    invalid,
    mailbox,
    new_message_id,
    one_line,
    token,
    valid_message_ids,
)
from backend.mail.mime.plaintext import html_to_text, normalise_newlines
from backend.mail.mime.sanitize import sanitize_html
from backend.mail.mime.xdm import read_xdm
from contracts.errors import ErrorCode
from core.errors import DomainError

_IDNAT = re.compile(r"[0-9A-Za-z]{1,32}")
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
_REPLY_PREFIX = re.compile(r"^(?:\s*(?:re|ré|rép|réf|ref|aw|sv|antw)\s*(?:\[\d+\]|\(\d+\))?\s*:)+\s*", re.IGNORECASE)
_FORWARD_PREFIX = re.compile(r"^(?:\s*(?:tr|trans|fw|fwd|wg|rv)\s*(?:\[\d+\]|\(\d+\))?\s*:)+\s*", re.IGNORECASE)


class ReplyHeaders(NamedTuple):
    in_reply_to: str | None
    references: list[str]
    subject: str


def reply_subject(subject: str) -> str:
    """``Re: …`` once, however many ``Re:``, ``RE :``, ``Réf.``-like prefixes the original carries."""
    return f"Re: {_REPLY_PREFIX.sub('', subject).strip()}".rstrip()


def forward_subject(subject: str) -> str:
    """``Tr: …`` (the French ``transféré``), not stacked."""
    return f"Tr: {_FORWARD_PREFIX.sub('', subject).strip()}".rstrip()


def reply_headers(original: ParsedMessage | MessageSummary | MessageHeaders) -> ReplyHeaders:
    """``In-Reply-To``, ``References`` (RFC 5322 3.6.4) and subject of a reply to ``original``."""
    headers = headers_of(original)
    references = list(headers.references) or ([headers.in_reply_to] if headers.in_reply_to else [])
    if headers.message_id and headers.message_id not in references:
        references.append(headers.message_id)
    return ReplyHeaders(headers.message_id, valid_message_ids(references), reply_subject(headers.subject))


def reply_recipients(
    original: ParsedMessage | MessageSummary | MessageHeaders, *, own: set[str], reply_all: bool
) -> tuple[list[Address], list[Address]]:
    """(to, cc) of a reply: ``Reply-To`` or ``From``; with ``reply_all`` the others, minus ourselves."""
    headers = headers_of(original)
    own_lower = {a.lower() for a in own}
    seen: set[str] = set(own_lower)

    def keep(addresses: list[Address]) -> list[Address]:
        kept = []
        for address in addresses:
            key = address.email.lower()
            if key not in seen:
                seen.add(key)
                kept.append(address)
        return kept

    to = keep(headers.reply_to or headers.from_)
    if not to and not reply_all:
        return [], []
    if not reply_all:
        return to, []
    return to + keep(headers.to), keep(headers.cc)


def forward_attachment(raw: bytes, subject: str = "") -> OutgoingAttachment:
    """The original message, as an attachment of the forward (``<subject>.eml``)."""
    name = safe_filename(
        f"{one_line(subject, 150)}.eml" if subject.strip() else "", part_id="1", content_type="message/rfc822"
    )
    return OutgoingAttachment(
        filename=name if name != ".eml" else "message.eml", content_type="message/rfc822", data=raw
    )


def _xdm_headers(
    attachments: list[OutgoingAttachment], codecda: str | None, ins: bool | None
) -> tuple[str | None, bool | None]:
    packages = [a for a in attachments if is_ihe_xdm(a.filename)]
    if not packages:
        if codecda is not None or ins is not None:
            raise invalid("X-MSS-CODECDA and X-MSS-INS go only with an IHE_XDM.zip attachment")
        return None, None
    if codecda is None or ins is None:
        infos = [read_xdm(package.data) for package in packages]
        if codecda is None:
            codes = list(dict.fromkeys(code for info in infos for code in info.codes))
            codecda = ", ".join(codes) or None
        if ins is None:
            found = [info.ins for info in infos if info.ins is not None]
            ins = any(found) if found else None
    if codecda is None or ins is None:
        raise DomainError(ErrorCode.XDM_METADATA_REQUIRED, "give the CDA document code and whether it carries the INS")
    return token(codecda, "document code"), ins


def _attachment_part(attachment: OutgoingAttachment, index: int) -> EmailMessage:
    content_type = attachment.content_type.strip().lower()
    if not _MEDIA_TYPE.fullmatch(content_type) or content_type.startswith("multipart/"):
        content_type = "application/octet-stream"
    name = safe_filename(attachment.filename, part_id=str(index), content_type=content_type)
    part = EmailMessage(policy=POLICY)
    if content_type == "message/rfc822":
        part["Content-Type"] = "message/rfc822"
        part.add_header("Content-Disposition", "attachment", filename=name)
        part["Content-Transfer-Encoding"] = "7bit" if attachment.data.isascii() else "8bit"
        part.set_payload([email.message_from_bytes(attachment.data, policy=email.policy.compat32)])
        return part
    if content_type.startswith("message/"):
        content_type = "application/octet-stream"
    maintype, subtype = content_type.split("/", 1)
    part.set_content(attachment.data, maintype, subtype, disposition="attachment", filename=name, params={"name": name})
    return part


def _html_document(html: str) -> str:
    safe, _ = sanitize_html(html)
    return f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head><body>\n{safe}\n</body></html>\n'


def _envelope(
    *,
    sender: Address,
    to: list[Address],
    cc: list[Address],
    subject: str,
    date: datetime | None,
    message_id: str,
    in_reply_to: str | None,
    references: list[str],
) -> EmailMessage:
    """A message with its RFC 5322 headers: addresses, subject, date, ids and thread."""
    if not MSGID.fullmatch(message_id):
        raise invalid("invalid message id")
    when = date or datetime.now(UTC)
    message = EmailMessage(policy=POLICY)
    message["From"] = mailbox(sender)
    if to:
        message["To"] = tuple(mailbox(a) for a in to)
    if cc:
        message["Cc"] = tuple(mailbox(a) for a in cc)
    message["Subject"] = one_line(subject, 900)
    message["Date"] = email.utils.format_datetime(when if when.tzinfo else when.replace(tzinfo=UTC))
    message["Message-ID"] = message_id
    parent = valid_message_ids([in_reply_to]) if in_reply_to else []
    if parent:
        message["In-Reply-To"] = parent[0]
    thread = valid_message_ids(references)
    if thread:
        message["References"] = " ".join(thread)
    return message


def compose(
    *,
    sender: Address,
    to: list[Address],
    cc: list[Address],
    subject: str,
    text: str,
    html: str | None,
    attachments: list[OutgoingAttachment],
    in_reply_to: str | None,
    references: list[str],
    request_read_receipt: bool,
    product_reference: str,
    mss_codecda: str | None,
    mss_ins: bool | None,
    end_patient_conversation: bool,
    message_id_domain: str,
    acting_professional: str | None,
    date: datetime | None = None,
    message_id: str | None = None,
) -> bytes:
    """The message to submit, as bytes. ``message_id`` lets the caller know it beforehand (``new_message_id``).

    Raises ``validation_failed`` for unusable input (bad address, no recipient, header injection)
    and ``xdm_metadata_required`` (see the module notes).
    """
    if not to and not cc:
        raise invalid("no recipient")
    codecda, ins = _xdm_headers(attachments, mss_codecda, mss_ins)
    if acting_professional is not None and not _IDNAT.fullmatch(acting_professional):
        raise invalid("invalid acting professional")
    message = _envelope(
        sender=sender,
        to=to,
        cc=cc,
        subject=subject,
        date=date,
        message_id=message_id or new_message_id(message_id_domain),
        in_reply_to=in_reply_to,
        references=references,
    )
    if request_read_receipt:
        message["Disposition-Notification-To"] = mailbox(sender).addr_spec  # bare: unstructured to the package
    message["X-MSS-NIL"] = token(product_reference, "product reference")
    if codecda is not None:
        message["X-MSS-CODECDA"] = codecda
        message["X-MSS-INS"] = "O" if ins else "N"
    if end_patient_conversation:
        message["X-MSS-MES"] = "FIN"
    if acting_professional is not None:
        message[ACTING_HEADER] = acting_professional

    body = normalise_newlines(text)
    if not body.strip() and html:
        body = html_to_text(html)
    message.set_content(body, subtype="plain", charset="utf-8", cte="quoted-printable")
    if html:
        message.add_alternative(_html_document(html), subtype="html", charset="utf-8", cte="quoted-printable")
    if attachments:
        message.make_mixed()
        for index, attachment in enumerate(attachments, start=2):
            message.attach(_attachment_part(attachment, index))
    drop_part_mime_versions(message)
    return message.as_bytes(policy=POLICY)
