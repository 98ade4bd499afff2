"""IMAP ``BODYSTRUCTURE`` (RFC 3501 7.4.2) to attachment entries, without fetching the message.

With this the API lists attachments (and the paperclip in message lists) from one FETCH, then
streams one part with ``BODY.PEEK[<part_id>]`` and ``decode_part_stream``: the whole message is
never loaded. The same rules as ``parse_message`` decide what an attachment is, so both agree.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from backend.mail.mime.attachments import is_ihe_xdm, safe_filename
from backend.mail.mime.encoded_words import decode_words
from backend.mail.mime.model import AttachmentInfo
from backend.mail.mime.params import combine_params
from backend.mail.mime.transfer import estimate_from_encoded_length
from backend.mail.mime.tree import MAX_DEPTH, MAX_PARTS, child_id

Item = bytes | int | None | list["Item"]

_ATOM = re.compile(rb"[^\s()\"{}\[\]]+")
_LITERAL = re.compile(rb"\{(\d{1,9})\+?\}\r?\n")
_START = re.compile(rb"BODYSTRUCTURE\s*\(", re.IGNORECASE)


class BodystructureError(ValueError):
    """Not a BODYSTRUCTURE we can read (the callers then fall back to guessing)."""


def _quoted(data: bytes, pos: int) -> tuple[bytes, int]:
    """A quoted string starting after its opening quote; backslash escapes ``"`` and ``\\``."""
    out = bytearray()
    while pos < len(data) and data[pos : pos + 1] != b'"':
        if data[pos : pos + 1] == b"\\":
            pos += 1
        out += data[pos : pos + 1]
        pos += 1
    return bytes(out), pos + 1


def _scalar(data: bytes, pos: int) -> tuple[Item, int]:
    """One string, literal, number or atom (``NIL`` → None) at ``pos``."""
    ch = data[pos : pos + 1]
    if ch == b'"':
        return _quoted(data, pos + 1)
    if ch == b"{":
        literal = _LITERAL.match(data, pos)
        if literal is None:
            raise BodystructureError("bad literal")
        end = literal.end() + int(literal.group(1))
        return data[literal.end() : end], end
    atom = _ATOM.match(data, pos)
    if atom is None:
        raise BodystructureError("unexpected character")
    token = atom.group(0)
    if token.upper() == b"NIL":
        return None, atom.end()
    return (int(token) if token.isdigit() else token), atom.end()


def _parse(data: bytes) -> Item:
    """One parenthesised list (quoted strings, literals, atoms, NIL, numbers) to nested Python values."""
    pos = 0
    stack: list[list[Item]] = []
    while pos < len(data):
        ch = data[pos : pos + 1]
        if ch in b" \t\r\n":
            pos += 1
        elif ch == b"(":
            if len(stack) > MAX_DEPTH * 3:
                raise BodystructureError("too deep")
            stack.append([])
            pos += 1
        elif ch == b")":
            if not stack:
                raise BodystructureError("unbalanced")
            done = stack.pop()
            pos += 1
            if not stack:
                return done
            stack[-1].append(done)
        elif not stack:
            raise BodystructureError("not a list")
        else:
            value, pos = _scalar(data, pos)
            stack[-1].append(value)
    raise BodystructureError("unterminated")


def _text(item: Item) -> str:
    if isinstance(item, bytes):
        return item.decode("utf-8", "surrogateescape")
    if isinstance(item, int):
        return str(item)
    return ""


def _params(item: Item) -> dict[str, str]:
    if not isinstance(item, list):
        return {}
    pairs = [(_text(item[i]).lower(), _text(item[i + 1])) for i in range(0, len(item) - 1, 2)]
    params, _ = combine_params(pairs)
    return params


@dataclass(frozen=True, slots=True)
class StructurePart:
    """One leaf of a BODYSTRUCTURE."""

    part_id: str
    content_type: str
    params: dict[str, str]
    content_id: str | None
    transfer_encoding: str
    size: int
    disposition: str
    disposition_params: dict[str, str]
    #: A non-root part of ``multipart/related``.
    related: bool
    #: For ``message/rfc822``: the embedded message's subject.
    subject: str = ""


def _leaf(item: list[Item], part_id: str, *, related: bool) -> StructurePart:
    ctype = f"{_text(item[0])}/{_text(item[1])}".lower() if len(item) > 1 else "application/octet-stream"
    extension = 7
    if ctype.startswith("text/"):
        extension = 8
    elif ctype in {"message/rfc822", "message/global"}:
        extension = 10
    disposition: Item = item[extension + 1] if len(item) > extension + 1 else None
    kind, disposition_params = "", {}
    if isinstance(disposition, list) and disposition:
        kind = _text(disposition[0]).lower()
        disposition_params = _params(disposition[1] if len(disposition) > 1 else None)
    size = item[6] if len(item) > 6 and isinstance(item[6], int) else 0
    subject = ""
    if extension == 10 and isinstance(item[7], list) and len(item[7]) > 1:
        subject = _text(item[7][1])  # the envelope's subject names a forwarded message, as parse_message does
    encoding = _text(item[5]).lower() if len(item) > 5 else "7bit"
    return StructurePart(
        part_id=part_id,
        content_type=ctype,
        params=_params(item[2] if len(item) > 2 else None),
        content_id=(_text(item[3]).strip().strip("<>") or None) if len(item) > 3 else None,
        transfer_encoding=encoding or "7bit",
        size=size,
        disposition=kind,
        disposition_params=disposition_params,
        related=related,
        subject=decode_words(subject)[0] if subject else "",
    )


def _walk(item: Item, part_id: str, out: list[StructurePart], depth: int, *, related: bool) -> None:
    if not isinstance(item, list) or not item or depth > MAX_DEPTH or len(out) >= MAX_PARTS:
        return
    if isinstance(item[0], list):
        parts = list(itertools.takewhile(lambda child: isinstance(child, list), item))
        subtype = _text(item[len(parts)]).lower() if len(item) > len(parts) else "mixed"
        start = _params(item[len(parts) + 1]).get("start", "").strip("<>") if len(item) > len(parts) + 1 else ""
        root = 0
        if subtype == "related" and start:
            ids = [_text(p[3]).strip().strip("<>") if isinstance(p, list) and len(p) > 3 else "" for p in parts]
            root = ids.index(start) if start in ids else 0
        for index, child in enumerate(parts):
            is_resource = related or (subtype == "related" and index != root)
            _walk(child, child_id(part_id, index + 1), out, depth + 1, related=is_resource)
        return
    out.append(_leaf(item, part_id or "1", related=related))


def bodystructure_parts(data: bytes | str) -> list[StructurePart]:
    """The leaves of a BODYSTRUCTURE (alone, or inside a whole FETCH response line)."""
    raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
    start = _START.search(raw)
    begin = start.end() - 1 if start else len(raw) - len(raw.lstrip())
    if not raw[begin:].startswith(b"("):
        raise BodystructureError("no list")
    parts: list[StructurePart] = []
    _walk(_parse(raw[begin:]), "", parts, 0, related=False)
    return parts


def _is_attachment(part: StructurePart) -> bool:
    if part.content_type in {"message/rfc822", "message/global"}:
        return True
    if part.content_type == "message/disposition-notification":
        return False
    named = "filename" in part.disposition_params or "name" in part.params
    if part.content_type in {"text/plain", "text/html"} and not part.related:
        return part.disposition == "attachment" or named
    return True


def bodystructure_attachments(data: bytes | str) -> list[AttachmentInfo] | None:
    """Attachment entries as ``parse_message`` would list them (sizes estimated), or None if unreadable."""
    try:
        parts = bodystructure_parts(data)
    except (BodystructureError, IndexError, ValueError, RecursionError):
        return None
    result: list[AttachmentInfo] = []
    for part in parts:
        if not _is_attachment(part):
            continue
        name = part.disposition_params.get("filename") or part.params.get("name")
        if not name and part.subject:
            name = f"{part.subject[:150]}.eml"
        filename = safe_filename(name, part_id=part.part_id, content_type=part.content_type)
        result.append(
            AttachmentInfo(
                part_id=part.part_id,
                filename=filename,
                content_type=part.content_type,
                size=estimate_from_encoded_length(part.size, part.transfer_encoding),
                content_id=part.content_id,
                disposition="inline"
                if part.disposition == "inline" or (part.related and not part.disposition)
                else "attachment",
                transfer_encoding=part.transfer_encoding,
                related=part.related,
                is_ihe_xdm=is_ihe_xdm(filename),
            )
        )
    return result


def bodystructure_has_attachments(data: bytes | str) -> bool | None:
    """For ``parse_summary``'s hint: True if any attachment other than HTML resources; None if unreadable."""
    attachments = bodystructure_attachments(data)
    if attachments is None:
        return None
    return any(not a.related for a in attachments)
