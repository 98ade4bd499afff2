"""MIME for MSSanté mail: read what arrives, write what leaves. Pure: no network, no storage.

Reading never raises (``parse_message``, ``parse_summary``): broken mail is shown as well as it
can be, with ``problems`` saying what was worked around. Writing (``compose``, ``build_mdn``)
validates its input and raises domain errors.
"""

from backend.mail.mime.attachments import content_disposition_header, is_ihe_xdm, iter_attachment, safe_filename
from backend.mail.mime.bodystructure import (
    BodystructureError,
    StructurePart,
    bodystructure_attachments,
    bodystructure_has_attachments,
    bodystructure_parts,
)
from backend.mail.mime.compose import (
    ReplyHeaders,
    compose,
    forward_attachment,
    forward_subject,
    reply_headers,
    reply_recipients,
    reply_subject,
)
from backend.mail.mime.headers import ACTING_HEADER
from backend.mail.mime.mdn import Disposition, build_mdn
from backend.mail.mime.model import (
    Address,
    AttachmentInfo,
    DispositionReport,
    Flags,
    MessageHeaders,
    MessageSummary,
    OutgoingAttachment,
    ParsedMessage,
    ParseProblem,
)
from backend.mail.mime.outgoing import new_message_id
from backend.mail.mime.parse import parse_message, parse_summary
from backend.mail.mime.plaintext import html_to_text
from backend.mail.mime.sanitize import sanitize_html
from backend.mail.mime.transfer import CHUNK_SIZE, adecode_part_stream, decode_part_stream
from backend.mail.mime.xdm import XdmInfo, read_xdm

__all__ = [
    "ACTING_HEADER",
    "CHUNK_SIZE",
    "Address",
    "AttachmentInfo",
    "BodystructureError",
    "Disposition",
    "DispositionReport",
    "Flags",
    "MessageHeaders",
    "MessageSummary",
    "OutgoingAttachment",
    "ParseProblem",
    "ParsedMessage",
    "ReplyHeaders",
    "StructurePart",
    "XdmInfo",
    "adecode_part_stream",
    "bodystructure_attachments",
    "bodystructure_has_attachments",
    "bodystructure_parts",
    "build_mdn",
    "compose",
    "content_disposition_header",
    "decode_part_stream",
    "forward_attachment",
    "forward_subject",
    "html_to_text",
    "is_ihe_xdm",
    "iter_attachment",
    "new_message_id",
    "parse_message",
    "parse_summary",
    "read_xdm",
    "reply_headers",
    "reply_recipients",
    "reply_subject",
    "safe_filename",
    "sanitize_html",
]
