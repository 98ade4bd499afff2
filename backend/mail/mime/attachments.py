"""Attachments: safe names, the download header, and decoding one part of a message in chunks.

Filenames come from strangers and end up on phones' file systems and in HTTP headers, so they are
reduced to a base name (no ``/``, ``\\``, ``..``, control characters), NFC, at most 200 characters
with the extension kept, and never empty.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from urllib.parse import quote

from backend.mail.mime.transfer import CHUNK_SIZE, decode_part_stream
from backend.mail.mime.tree import body_bytes, find_part, load_message, raw_header
from contracts.errors import ErrorCode
from core.errors import NotFoundError

_MAX_NAME = 200
_UNSAFE = re.compile(r"[\x00-\x1f\x7f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_EXTENSIONS = {
    "application/pdf": ".pdf",
    "application/zip": ".zip",
    "application/xml": ".xml",
    "text/xml": ".xml",
    "application/pkcs7-signature": ".p7s",
    "application/x-pkcs7-signature": ".p7s",
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "text/plain": ".txt",
    "text/html": ".html",
    "text/calendar": ".ics",
    "text/rfc822-headers": ".txt",
    "message/rfc822": ".eml",
    "message/global": ".eml",
    "message/delivery-status": ".txt",
}
IHE_XDM_NAME = "ihe_xdm.zip"


def is_ihe_xdm(filename: str) -> bool:
    """The MSSanté structured package is recognised by its name, whatever its declared type."""
    return filename.strip().casefold() == IHE_XDM_NAME


def safe_filename(name: str | None, *, part_id: str, content_type: str) -> str:
    """A name fit to save: base name only, no controls or bidi overrides, bounded, never empty."""
    cleaned = unicodedata.normalize("NFC", name or "")
    cleaned = _UNSAFE.sub("", cleaned).replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = cleaned.strip().strip(". ").strip()
    if len(cleaned) > _MAX_NAME:
        stem, dot, extension = cleaned.rpartition(".")
        if dot and 0 < len(extension) <= 10:
            cleaned = f"{stem[: _MAX_NAME - len(extension) - 1]}.{extension}"
        else:
            cleaned = cleaned[:_MAX_NAME]
    if not cleaned:
        cleaned = f"piece-jointe-{part_id}{_EXTENSIONS.get(content_type, '.bin')}"
    return cleaned


def content_disposition_header(filename: str, *, disposition: str = "attachment") -> str:
    """``Content-Disposition`` for a download (RFC 6266): ASCII ``filename`` plus UTF-8 ``filename*``.

    Old clients read the ASCII fallback (accents folded, quotes replaced); current ones read
    ``filename*`` (RFC 8187 encoding). Nothing from the name can break out of the header.
    """
    name = safe_filename(filename, part_id="1", content_type="application/octet-stream")
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    fallback = re.sub(r'["\\%]', "_", folded).strip() or "piece-jointe"
    kind = "inline" if disposition == "inline" else "attachment"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def iter_attachment(raw: bytes, part_id: str, *, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Decoded bytes of part ``part_id`` of a whole raw message, in chunks.

    For big attachments prefer fetching ``BODY.PEEK[<part_id>]`` alone and ``decode_part_stream``:
    this one needs the whole message in memory. Raises ``NotFoundError`` for a part that is not there.
    """
    loaded = load_message(raw)
    part = find_part(loaded.root, part_id)
    if part is None:
        raise NotFoundError(ErrorCode.NOT_FOUND, "no such part in this message")
    encoded = body_bytes(part)
    encoding = raw_header(part, "content-transfer-encoding")
    pieces = (encoded[i : i + chunk_size] for i in range(0, len(encoded), chunk_size))
    return decode_part_stream(pieces, encoding, chunk_size=chunk_size)
