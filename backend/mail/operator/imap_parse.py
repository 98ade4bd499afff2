"""Parsing IMAP responses as aioimaplib hands them over: raw lines and literal blobs.

aioimaplib gives a command's response as a list: text lines (``bytes``) and literal contents
(``bytearray``), each literal followed by the rest of its line. :func:`group_responses` rebuilds the
untagged responses from that list; :func:`parse_values` turns one into Python values:

* atoms → ``str`` (numbers too: callers convert), ``NIL`` → ``None``;
* quoted strings and literals → ``bytes`` (a header block or a body chunk stays bytes);
* parenthesised lists → ``list``.

An atom such as ``BODY[HEADER.FIELDS (FROM TO)]<0>`` is read whole, brackets and all, as servers
echo the section they were asked for. Nothing here raises on odd input from the server beyond
:class:`ImapParseError`, which the session turns into ``operator_error``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from typing import TypeAlias

Value: TypeAlias = str | bytes | list["Value"] | None

_LITERAL_AT_END = re.compile(rb"~?\{(\d+)\+?\}$")
_RESPONSE_CODE = re.compile(rb"\[([A-Za-z0-9._-]+)(?: ([^\]]*))?\]")
_MAX_UID_SET = 1_000_000


class ImapParseError(ValueError):
    """The server's response does not follow the grammar we rely on."""


def group_responses(lines: Sequence[bytes | bytearray]) -> list[list[bytes]]:
    """Split a command's untagged lines into responses: ``[text, literal, text, literal, text, …]``.

    The session's protocol records, after every literal, the rest of that line (possibly empty), so
    a text item right after a literal always continues the same response.
    """
    groups: list[list[bytes]] = []
    continuation = False
    for item in lines:
        if isinstance(item, bytearray):
            if not groups:
                raise ImapParseError("literal outside a response")
            groups[-1].append(bytes(item))
            continuation = True
        elif continuation:
            groups[-1].append(item)
            continuation = False
        else:
            text = item[2:] if item.startswith(b"* ") else item
            if text:
                groups.append([text])
    return groups


class _Reader:
    """Reads values across text segments and the literals between them, byte by byte.

    The exact reference: :func:`parse_values` falls back to it for anything unusual, errors included.
    """

    def __init__(self, segments: list[bytes]) -> None:
        self._segments = segments
        self._index = 0
        self._pos = 0

    @property
    def _text(self) -> bytes:
        return self._segments[self._index]

    def at_end(self) -> bool:
        self._skip_spaces()
        return self._index >= len(self._segments) or (
            self._pos >= len(self._text) and self._index + 1 >= len(self._segments)
        )

    def _skip_spaces(self) -> None:
        while self._index < len(self._segments):
            text = self._text
            while self._pos < len(text) and text[self._pos] == 0x20:
                self._pos += 1
            if self._pos < len(text) or self._index + 1 >= len(self._segments):
                return
            # end of a text segment: only a literal marker ends a segment mid-response
            raise ImapParseError("text segment ended without a literal marker")

    def value(self) -> Value:
        self._skip_spaces()
        text = self._text
        if self._pos >= len(text):
            raise ImapParseError("unexpected end of response")
        char = text[self._pos]
        if char == ord("("):
            self._pos += 1
            items: list[Value] = []
            while True:
                self._skip_spaces()
                if self._pos >= len(self._text):
                    raise ImapParseError("unterminated list")
                if self._text[self._pos] == ord(")"):
                    self._pos += 1
                    return items
                items.append(self.value())
        if char == ord('"'):
            return self._quoted()
        if char == ord("{") or (char == ord("~") and text[self._pos + 1 : self._pos + 2] == b"{"):
            return self._literal()
        return self._atom()

    def _quoted(self) -> bytes:
        text = self._text
        out = bytearray()
        i = self._pos + 1
        while i < len(text):
            c = text[i]
            if c == 0x5C and i + 1 < len(text):  # backslash escape
                out.append(text[i + 1])
                i += 2
                continue
            if c == 0x22:
                self._pos = i + 1
                return bytes(out)
            out.append(c)
            i += 1
        raise ImapParseError("unterminated quoted string")

    def _literal(self) -> bytes:
        match = _LITERAL_AT_END.search(self._text, self._pos)
        if match is None or match.start() != self._pos:
            raise ImapParseError("literal marker not at end of line")
        if self._index + 1 >= len(self._segments):
            raise ImapParseError("literal announced but missing")
        data = self._segments[self._index + 1]
        if len(data) != int(match.group(1)):
            raise ImapParseError("literal size mismatch")
        self._index += 2
        self._pos = 0
        if self._index >= len(self._segments):
            self._segments.append(b"")
        return data

    def _atom(self) -> str | None:
        text = self._text
        start = i = self._pos
        depth = 0
        while i < len(text):
            c = text[i]
            if c == ord("["):
                depth += 1
            elif c == ord("]"):
                depth = max(0, depth - 1)
            elif depth == 0 and c in b" ()":
                break
            i += 1
        if i == start:
            raise ImapParseError("empty atom")
        self._pos = i
        atom = text[start:i].decode("utf-8", "replace")
        return None if atom.upper() == "NIL" else atom

    def values(self) -> list[Value]:
        """Every top-level value, to the end of the response."""
        values: list[Value] = []
        while not self.at_end():
            values.append(self.value())
        return values


class _FallbackError(Exception):
    """The fast tokenizer met something it leaves to :class:`_Reader` (odd or malformed input)."""


# One regex match per token, with the per-token work in one loop: ~20 us per message summary where
# the byte-by-byte reader took ~70 us (the largest CPU cost of a list page). Groups: 1 an atom, 2 a "[" right after it
# (brackets the pattern cannot close: nested or unclosed), 3 a quoted string, quotes included, 4 "(",
# 5 ")", 6 the size of a literal whose marker ends the segment, 7 anything else (an unterminated
# string, a misplaced literal marker, trailing spaces). An atom runs to a space or a parenthesis,
# except inside one level of brackets (``BODY[HEADER.FIELDS (FROM TO)]``). Every position matches
# some alternative, so ``findall`` never skips a byte.
_TOKEN = re.compile(
    rb" *(?:"
    rb'((?:[^ ()\["{~]|~(?!\{)|\[[^\[\]]*\])(?:[^ ()\[]|\[[^\[\]]*\])*)(\[?)'
    rb'|("[^"\\]*(?:\\.[^"\\]*)*")'
    rb"|(\()|(\))"
    rb"|~?\{(\d+)\+?\}\n?\Z"
    rb"|(.))",
    re.DOTALL,
)
_ESCAPED = re.compile(rb"\\(.)", re.DOTALL)


def parse_values(response: list[bytes]) -> list[Value]:
    """All top-level values of one untagged response (see :func:`group_responses`)."""
    try:
        return _tokenize(response)
    except (_FallbackError, IndexError):
        return _Reader(list(response)).values()


def _tokenize(response: list[bytes]) -> list[Value]:
    """:func:`parse_values` for well-formed responses; raises :class:`_FallbackError` (or
    ``IndexError``, for a ``)`` closing nothing) on anything else."""
    top: list[Value] = []
    current = top
    stack: list[list[Value]] = []
    count = len(response)
    index = 0
    findall = _TOKEN.findall
    while index < count:
        step = 1  # 2 after a literal: its content is the next segment
        for atom, bracket, quoted, opened, closed, size, other in findall(response[index]):
            if atom:
                if bracket:
                    raise _FallbackError
                text = atom.decode("utf-8", "replace")
                # str.upper never shortens a string: only three characters or fewer can read NIL
                current.append(None if len(text) <= 3 and text.upper() == "NIL" else text)
            elif quoted:
                content = quoted[1:-1]
                current.append(_ESCAPED.sub(rb"\1", content) if b"\\" in content else content)
            elif opened:
                items: list[Value] = []
                current.append(items)
                stack.append(current)
                current = items
            elif closed:
                current = stack.pop()
            elif other != b" ":  # trailing spaces are fine; anything else but a literal is not
                current.append(_literal(response, index, size))
                step = 2
        if step == 1 and index + 1 < count:
            raise _FallbackError  # a text segment ends without announcing the literal that follows
        index += step
    if stack:
        raise _FallbackError
    return top


def _literal(response: list[bytes], index: int, size: bytes) -> bytes:
    """The literal announced at the end of segment ``index``, if it is there with that size."""
    if not size or index + 1 >= len(response) or len(response[index + 1]) != int(size):
        raise _FallbackError
    return response[index + 1]


# --- small typed helpers ------------------------------------------------------------------------


def as_text(value: Value) -> str:
    """An atom or string as text (strings from the server are UTF-8 at best)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, str):
        return value
    raise ImapParseError("expected a string")


def as_int(value: Value) -> int:
    try:
        return int(as_text(value))
    except ValueError:
        raise ImapParseError("expected a number") from None


def as_list(value: Value) -> list[Value]:
    if isinstance(value, list):
        return value
    if value is None:
        return []
    raise ImapParseError("expected a list")


def pairs(values: list[Value]) -> dict[str, Value]:
    """``(KEY value KEY value …)`` as a dict with upper-case keys (FETCH items, STATUS items)."""
    if len(values) % 2:
        raise ImapParseError("odd number of items")
    return {as_text(values[i]).upper(): values[i + 1] for i in range(0, len(values), 2)}


def response_code(text: bytes) -> tuple[str, str] | None:
    """The bracketed response code of a status text: ``[UIDVALIDITY 3857529045]`` → (name, args)."""
    match = _RESPONSE_CODE.search(text)
    if match is None:
        return None
    return match.group(1).decode("ascii").upper(), (match.group(2) or b"").decode("utf-8", "replace")


def capabilities_from(text: str) -> frozenset[str]:
    """Upper-cased capability names from a ``CAPABILITY …`` line or response code argument."""
    return frozenset(token.upper() for token in text.split() if token.upper() != "CAPABILITY")


def parse_uid_set(text: str) -> list[int]:
    """``1:3,7`` → ``[1, 2, 3, 7]`` (bounded: a hostile range cannot exhaust memory)."""
    uids: list[int] = []
    for part in text.split(","):
        if not part:
            continue
        low, _, high = part.partition(":")
        try:
            a = int(low)
            b = int(high) if high else a
        except ValueError:
            raise ImapParseError("bad uid set") from None
        if a > b:
            a, b = b, a
        if len(uids) + (b - a + 1) > _MAX_UID_SET:
            raise ImapParseError("uid set too large")
        uids.extend(range(a, b + 1))
    return uids


def format_uid_set(uids: Iterable[int]) -> str:
    """``[1, 2, 3, 7]`` → ``1:3,7``; the set must not be empty."""
    ordered = sorted({int(u) for u in uids})
    if not ordered:
        raise ValueError("empty uid set")
    if ordered[0] < 1:
        raise ValueError("uids start at 1")
    runs: list[str] = []
    start = prev = ordered[0]
    for uid in ordered[1:]:
        if uid == prev + 1:
            prev = uid
            continue
        runs.append(f"{start}:{prev}" if prev != start else str(start))
        start = prev = uid
    runs.append(f"{start}:{prev}" if prev != start else str(start))
    return ",".join(runs)


#: The one shape servers send (``"17-Jul-1996 02:44:25 -0700"``), read without ``strptime`` (~7 us
#: a call, a third of a summary's parsing); anything else goes to ``strptime``, which decides.
_INTERNAL_DATE = re.compile(r"(\d\d?)-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)([0-5]\d)", re.ASCII)
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}


def parse_internal_date(value: Value) -> dt.datetime | None:
    """``"17-Jul-1996 02:44:25 -0700"`` → aware datetime (``None`` when unreadable)."""
    if value is None:
        return None
    text = as_text(value).strip()
    try:
        match = _INTERNAL_DATE.fullmatch(text)
        month = _MONTHS.get(match.group(2).lower()) if match is not None else None
        if match is None or month is None:
            return dt.datetime.strptime(text, "%d-%b-%Y %H:%M:%S %z")
        day, _, year, hour, minute, second, sign, tz_hours, tz_minutes = match.groups()
        offset = dt.timedelta(hours=int(tz_hours), minutes=int(tz_minutes))
        zone = dt.timezone(-offset if sign == "-" else offset)
        return dt.datetime(int(year), month, int(day), int(hour), int(minute), int(second), tzinfo=zone)
    except ValueError:
        return None
