"""Checks and helpers shared by everything that writes mail (``compose``, ``mdn``).

Everything that reaches a header passes through here: addresses are validated (ASCII, as MSSanté
addresses are), free text loses line breaks and controls (no header injection), tokens and message
ids must have their exact shape. Bad input is a ``validation_failed`` domain error.
"""

from __future__ import annotations

import email.policy
import re
import unicodedata
import uuid
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage

from backend.mail.mime.model import Address, MessageHeaders, MessageSummary, ParsedMessage
from contracts.errors import ErrorCode
from core.errors import DomainError

#: SMTP line endings; header lines of a forwarded message are written back as they came.
POLICY = email.policy.SMTP.clone(refold_source="none")

_EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9-]{2,63}"
)
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"(?:{_LABEL}\.)*{_LABEL}")
MSGID = re.compile(r"<[!-;=?-~]{1,250}>")
_TOKEN = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]{0,198}[\x21-\x7e])?")
_CONTROLS = re.compile(r"[\x00-\x1f\x7f]+")
_MAX_REFERENCES = 20


def invalid(detail: str) -> DomainError:
    """``validation_failed``; ``detail`` names the field, never echoes the value."""
    return DomainError(ErrorCode.VALIDATION_FAILED, detail)


def one_line(text: str, limit: int) -> str:
    """User text for a header: no line breaks or controls (no header injection), NFC, bounded."""
    return unicodedata.normalize("NFC", _CONTROLS.sub(" ", text)).strip()[:limit]


def mailbox(address: Address) -> HeaderAddress:
    """A validated address for the ``email`` package (display name made one line)."""
    addr = address.email.strip()
    if len(addr) > 254 or not _EMAIL.fullmatch(addr):
        raise invalid("invalid address")
    local, domain = addr.rsplit("@", 1)
    try:
        return HeaderAddress(display_name=one_line(address.name, 200), username=local, domain=domain)
    except (ValueError, TypeError) as exc:
        raise invalid("invalid address") from exc


def token(value: str, what: str) -> str:
    """A printable ASCII header value (product reference, document code…)."""
    value = value.strip()
    if not _TOKEN.fullmatch(value):
        raise invalid(f"invalid {what}")
    return value


def new_message_id(domain: str) -> str:
    """A fresh ``<random@domain>``: nothing about the host, the user or the time leaks from it."""
    if not _DOMAIN.fullmatch(domain) or len(domain) > 253:
        raise invalid("invalid message id domain")
    return f"<{uuid.uuid4().hex}@{domain.lower()}>"


def valid_message_ids(values: list[str]) -> list[str]:
    """Valid ``<id>`` values only (they may come from a stranger's headers), bounded in number."""
    found = [v.strip() for v in values if MSGID.fullmatch(v.strip())]
    if len(found) > _MAX_REFERENCES:
        found = found[:1] + found[-(_MAX_REFERENCES - 1) :]  # keep the thread's root and the latest
    return found


def headers_of(original: ParsedMessage | MessageSummary | MessageHeaders) -> MessageHeaders:
    """Callers may hand a whole parsed message, a summary or just its headers."""
    return original if isinstance(original, MessageHeaders) else original.headers


def drop_part_mime_versions(message: EmailMessage) -> None:
    """The email package repeats ``MIME-Version`` on parts it builds; forwarded messages keep theirs."""
    stack = list(message.iter_parts())
    while stack:
        part = stack.pop()
        del part["MIME-Version"]
        if part.get_content_maintype() == "multipart":
            stack.extend(part.iter_parts())
