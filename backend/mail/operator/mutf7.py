"""IMAP mailbox names: modified UTF-7 (RFC 3501 §5.1.3) and safe quoting.

IMAP4rev1 servers (Dovecot 2.3 included) name folders in modified UTF-7, so a French folder such
as « Éléments envoyés » travels as ``&AMk-l&AOk-ments envoy&AOk-s``. The API speaks Unicode; this
module is the only place that converts.
"""

from __future__ import annotations

import base64

from contracts.errors import ErrorCode
from core.errors import DomainError

_MAX_NAME = 1000


def encode_mailbox(name: str) -> str:
    """Unicode folder name → modified UTF-7."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            raw = "".join(pending).encode("utf-16-be")
            out.append("&" + base64.b64encode(raw).decode("ascii").rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return "".join(out)


def decode_mailbox(name: str) -> str:
    """Modified UTF-7 → Unicode; a malformed name is returned as received rather than lost."""
    out: list[str] = []
    i = 0
    while i < len(name):
        char = name[i]
        if char != "&":
            out.append(char)
            i += 1
            continue
        end = name.find("-", i + 1)
        if end < 0:
            return name
        chunk = name[i + 1 : end]
        if not chunk:
            out.append("&")
        else:
            b64 = chunk.replace(",", "/")
            b64 += "=" * (-len(b64) % 4)
            try:
                out.append(base64.b64decode(b64, validate=True).decode("utf-16-be"))
            except (ValueError, UnicodeDecodeError):
                return name
        i = end + 1
    return "".join(out)


def quote(value: str) -> str:
    """An IMAP quoted string. CR, LF and NUL cannot be quoted: they would end the command line."""
    if any(c in value for c in "\r\n\0"):
        raise DomainError(ErrorCode.VALIDATION_FAILED, "control characters are not allowed")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_mailbox(name: str) -> str:
    """A folder name ready for a command: modified UTF-7, then quoted."""
    if not name or len(name) > _MAX_NAME:
        raise DomainError(ErrorCode.VALIDATION_FAILED, "bad folder name")
    return quote(encode_mailbox(name))
