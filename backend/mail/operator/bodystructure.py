"""BODYSTRUCTURE (RFC 3501 §7.4.2) as a tree of :class:`MimePart`, with IMAP part numbers.

The mail API lists a message's attachments and streams one by its part number without downloading
the message: both come from this tree. Part numbers follow RFC 3501 §6.4.5: the children of a
multipart are ``1``, ``2``…, nested ones ``2.1``…; a single-part message's body is ``1``; the body
of an attached ``message/rfc822`` at ``3`` is ``3.1`` (or its children ``3.1``, ``3.2`` when it is
multipart). The multipart root has the empty part number.
"""

from __future__ import annotations

import email.errors
import email.header
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from backend.mail.operator.imap_parse import ImapParseError, Value, as_int, as_list, as_text


@dataclass(frozen=True, slots=True)
class MimePart:
    """One node of a message's MIME tree, as the operator describes it (no content)."""

    part_id: str
    #: ``type/subtype``, lower case.
    content_type: str
    params: Mapping[str, str] = field(default_factory=dict)
    content_id: str | None = None
    description: str | None = None
    #: Content-Transfer-Encoding, lower case (``base64``, ``quoted-printable``…).
    encoding: str | None = None
    #: Size of the encoded part in octets (``None`` for multiparts).
    size: int | None = None
    #: ``attachment``, ``inline`` or ``None``.
    disposition: str | None = None
    disposition_params: Mapping[str, str] = field(default_factory=dict)
    children: tuple[MimePart, ...] = ()

    @property
    def is_multipart(self) -> bool:
        return self.content_type.startswith("multipart/")

    @property
    def filename(self) -> str | None:
        """The file name from the disposition, else the ``name`` parameter (RFC 2047/2231 decoded)."""
        raw = self.disposition_params.get("filename") or self.params.get("name")
        return None if raw is None else _decode_words(raw)

    @property
    def is_attachment(self) -> bool:
        """A leaf the user would see as a file: declared attachment, named file, or attached mail."""
        if self.is_multipart:
            return False
        if self.disposition == "attachment" or self.content_type == "message/rfc822":
            return True
        return self.filename is not None and self.disposition != "inline"

    def walk(self) -> Iterator[MimePart]:
        """Every part, depth first, this one included."""
        yield self
        for child in self.children:
            yield from child.walk()

    def find(self, part_id: str) -> MimePart | None:
        return next((p for p in self.walk() if p.part_id == part_id), None)

    @property
    def attachments(self) -> tuple[MimePart, ...]:
        return tuple(p for p in self.walk() if p.is_attachment)

    @property
    def has_attachments(self) -> bool:
        return any(p.is_attachment for p in self.walk())


def parse_body_structure(value: Value) -> MimePart:
    """The tree of a ``BODYSTRUCTURE`` value (as parsed by :mod:`imap_parse`)."""
    try:
        return _parse(as_list(value), "", top=True)
    except (IndexError, TypeError) as exc:
        raise ImapParseError("malformed BODYSTRUCTURE") from exc


def _parse(items: list[Value], part_id: str, *, top: bool) -> MimePart:
    if items and isinstance(items[0], list):
        return _multipart(items, part_id)
    return _single(items, "1" if top else part_id)


def _multipart(items: list[Value], part_id: str) -> MimePart:
    children_values: list[list[Value]] = []
    index = 0
    while index < len(items) and isinstance(items[index], list):
        children_values.append(as_list(items[index]))
        index += 1
    subtype = as_text(items[index]).lower() if index < len(items) else "mixed"
    ext = items[index + 1 :]
    prefix = f"{part_id}." if part_id else ""
    children = tuple(_parse(child, f"{prefix}{n}", top=False) for n, child in enumerate(children_values, 1))
    disposition, disposition_params = _disposition(ext[1] if len(ext) > 1 else None)
    return MimePart(
        part_id=part_id,
        content_type=f"multipart/{subtype}",
        params=_params(ext[0] if ext else None),
        disposition=disposition,
        disposition_params=disposition_params,
        children=children,
    )


def _single(items: list[Value], part_id: str) -> MimePart:
    ctype = f"{_lower(items[0]) or 'text'}/{_lower(items[1]) or 'plain'}"
    size = items[6]
    rest = items[7:]
    children: tuple[MimePart, ...] = ()
    if ctype == "message/rfc822" and len(rest) >= 3 and isinstance(rest[1], list):
        # envelope, body, lines: the encapsulated message's body is numbered under this part
        nested = as_list(rest[1])
        if nested and isinstance(nested[0], list):
            children = (_multipart(nested, part_id),)
        else:
            children = (_single(nested, f"{part_id}.1"),)
        rest = rest[3:]
    elif ctype.startswith("text/") and rest:
        rest = rest[1:]  # line count
    # extension data: md5, disposition, language, location
    disposition, disposition_params = _disposition(rest[1] if len(rest) > 1 else None)
    return MimePart(
        part_id=part_id,
        content_type=ctype,
        params=_params(items[2]),
        content_id=_text_or_none(items[3]),
        description=_text_or_none(items[4]),
        encoding=_lower(items[5]),
        size=None if size is None else as_int(size),
        disposition=disposition,
        disposition_params=disposition_params,
        children=children,
    )


def _params(value: Value) -> dict[str, str]:
    items = as_list(value) if isinstance(value, list) else []
    params: dict[str, str] = {}
    for i in range(0, len(items) - 1, 2):
        key = as_text(items[i]).lower()
        raw = items[i + 1]
        if raw is None:
            continue
        params[key] = as_text(raw)
    # RFC 2231: name*=utf-8''%C3%A9 (Dovecot passes it through undecoded)
    for key in [k for k in params if k.endswith("*")]:
        plain = key[:-1]
        if plain not in params:
            params[plain] = _rfc2231(params[key])
    return params


def _rfc2231(value: str) -> str:
    """``utf-8'fr'r%C3%A9sultat.pdf`` → ``résultat.pdf`` (continuations are joined by the server)."""
    charset, sep, rest = value.partition("'")
    if not sep:
        return urllib.parse.unquote(value)
    _language, sep, text = rest.partition("'")
    if not sep:
        return value
    try:
        return urllib.parse.unquote_to_bytes(text).decode(charset or "us-ascii", "replace")
    except LookupError:
        return urllib.parse.unquote(text, errors="replace")


def _disposition(value: Value) -> tuple[str | None, dict[str, str]]:
    if not isinstance(value, list) or not value:
        return None, {}
    return _lower(value[0]), _params(value[1] if len(value) > 1 else None)


def _lower(value: Value) -> str | None:
    return None if value is None or isinstance(value, list) else as_text(value).lower()


def _text_or_none(value: Value) -> str | None:
    return None if value is None or isinstance(value, list) else as_text(value)


def _decode_words(raw: str) -> str:
    """RFC 2047 encoded words (``=?utf-8?q?r=C3=A9sultat.pdf?=``) → text."""
    if "=?" not in raw:
        return raw
    try:
        return str(email.header.make_header(email.header.decode_header(raw)))
    except (UnicodeDecodeError, LookupError, email.errors.HeaderParseError):
        return raw
