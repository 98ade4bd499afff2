"""Header values to ``MessageHeaders``: decoded text, addresses, ids, dates and the MSSanté markers.

We read the raw values (``Message.raw_items()``), not the ``email`` package's header objects:
those have already replaced undeclared 8-bit bytes by U+FFFD, which is exactly the text we want
to recover (Windows-1252 or Mac Roman subjects from old mailers).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from email.utils import getaddresses, parsedate_to_datetime

from backend.mail.mime.charsets import decode_header_bytes, finish_text
from backend.mail.mime.encoded_words import decode_words
from backend.mail.mime.model import Address, Flags, MessageHeaders, ParseProblem
from backend.mail.mime.params import to_bytes

#: The header an organisational mailbox's message carries to say which member really sent it.
#: Ours (``X-MSSC-``), not the ANS's ``X-MSS-`` namespace, which we must not extend.
ACTING_HEADER = "X-MSSC-Acting-IdNat"

_FOLD = re.compile(r"\r?\n(?=[ \t])")
_CONTROLS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_MSGID = re.compile(r"<[^<>\s]{1,998}>")
_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+")
_MAX_ADDRESSES = 500

# The two shapes nearly every address takes, ``addr@domain`` and ``Name <addr@domain>`` (a name of
# atoms, encoded words and quoted strings without escapes), each followed by a comma or the end:
# read by one regex (~2 us an address list) instead of ``email._parseaddr``'s character loop (~14 us).
# Anything else (comments, groups, escapes, routes, odd spacing, controls) goes to ``getaddresses``.
# Character classes follow ``_parseaddr``: an atom ends at its specials and whitespace; a name's atoms
# may hold dots. Possessive quantifiers: no backtracking blow-up on hostile input.
_ATOM = r"[^\x00-\x20()<>@,:;.\"\[\]\\\x7f]++"
_NAME_ATOM = r"[^\x00-\x20()<>@,:;\"\[\]\\\x7f]++"
_NAME_QUOTED = r'"[^"\\\r\n]*+"'
_ADDR_SPEC = rf"{_ATOM}(?:\.{_ATOM})*+@{_ATOM}(?:\.{_ATOM})*+"
_FAST_ADDRESS = re.compile(
    rf"[ \t]*+(?:({_ADDR_SPEC})|((?:[ \t]*+(?:{_NAME_ATOM}|{_NAME_QUOTED}))*+)[ \t]*+<({_ADDR_SPEC})>)[ \t]*+(?:,|\Z)"
)
_NAME_WORD = re.compile(rf'({_NAME_ATOM})|"([^"\\\r\n]*+)"')
_MAX_REFERENCES = 100
_MAX_VALUE = 65_536

_SYSTEM_FLAGS = {
    "\\seen": "seen",
    "\\answered": "answered",
    "\\flagged": "flagged",
    "\\deleted": "deleted",
    "\\draft": "draft",
    "$forwarded": "forwarded",
    "$mdnsent": "mdn_sent",
}


#: A field name as ``email.feedparser`` accepts it (printable ASCII but the colon), then its colon.
_FIELD_NAME = re.compile(r"[\041-\071\073-\176]+:")


def split_header_block(block: bytes) -> list[tuple[str, str]] | None:
    """``(name, raw value)`` pairs exactly as ``compat32``'s ``raw_items()`` gives them; ``None`` if unusual.

    A summary needs a dozen headers, not a ``Message``: ~5 us a block where the stdlib parser takes
    ~18. Only the regular shape is read here (CRLF line ends, ``Name: value`` lines and their
    continuation lines, then an empty line or the end); anything else (bare CR or LF, a line that is
    no header, an mbox ``From`` line, a leading continuation) is left to the stdlib parser.
    """
    text = block.decode("ascii", "surrogateescape")
    crlf = text.count("\r\n")
    if text.count("\r") != crlf or text.count("\n") != crlf:
        return None
    lines = text.split("\r\n")
    if text.endswith("\r\n"):
        lines.pop()  # what follows the last line end is not a line
    items: list[tuple[str, str]] = []
    name: str | None = None
    value: list[str] = []
    for line in lines:
        if line[:1] in (" ", "\t"):
            if name is None:
                return None
            value.append(line)
            continue
        if name is not None:
            items.append((name, "\r\n".join(value)))
            name = None
        if not line:
            break  # the empty line ending the header block
        found = _FIELD_NAME.match(line)  # an mbox "From " line never matches
        if found is None:
            return None
        name = line[: found.end() - 1]
        value = [line[found.end() :].lstrip(" \t")]
    if name is not None:
        items.append((name, "\r\n".join(value)))
    return items


def unfold(value: str) -> str:
    value = value[:_MAX_VALUE]
    return _FOLD.sub("", value) if "\n" in value else value


def _text8(value: str, problems: list[ParseProblem]) -> str:
    """Raw 8-bit bytes in a header (not allowed, common) decoded as undeclared text."""
    if value.isascii():  # O(1) on a str; its bytes are then ASCII too
        return value
    text, found = decode_header_bytes(to_bytes(value))
    problems.extend(found)
    return text


def header_text(raw: str, problems: list[ParseProblem]) -> str:
    """An unstructured value (``Subject``) as one clean line of text."""
    value, found = decode_words(_text8(unfold(raw), problems))
    problems.extend(found)
    value = finish_text(value, problems).replace("\t", " ")
    return _CONTROLS.sub(" ", value).strip()


def parse_addresses(raw: str, problems: list[ParseProblem]) -> list[Address]:
    """Address list → ``Address`` values; display names decoded after splitting (so ``=2C`` is no comma)."""
    value = _text8(unfold(raw), problems)
    pairs = simple_address_pairs(value)
    if pairs is None:
        try:
            pairs = getaddresses([value])
        except Exception:  # noqa: BLE001 - getaddresses has raised on odd input in some Python versions
            pairs = []
    result: list[Address] = []
    for name, raw_email in pairs[:_MAX_ADDRESSES]:
        email = _CONTROLS.sub("", raw_email).strip()
        if "@" not in email:
            if email or name:
                problems.append(ParseProblem.BAD_ADDRESS)
            continue
        result.append(Address(header_text(name, problems).strip("\"' "), email))
    if not result and "@" in value:
        problems.append(ParseProblem.BAD_ADDRESS)
        result = [Address("", found) for found in _EMAIL.findall(value)[:_MAX_ADDRESSES]]
    return result


def simple_address_pairs(value: str) -> list[tuple[str, str]] | None:
    """``getaddresses([value])`` for lists of simple addresses; ``None`` for anything else.

    Names come out as ``getaddresses`` gives them: words joined by one space, quotes removed.
    """
    pairs: list[tuple[str, str]] = []
    pos, end = 0, len(value)
    while pos < end:
        match = _FAST_ADDRESS.match(value, pos)
        if match is None:
            return None
        bare, name, routed = match.groups()
        if bare is not None:
            pairs.append(("", bare))
        else:
            pairs.append((" ".join(atom or quoted for atom, quoted in _NAME_WORD.findall(name)), routed))
        pos = match.end()
    return pairs or None


def message_ids(raw: str) -> list[str]:
    value = unfold(raw)
    found = _MSGID.findall(value)
    if not found and value.strip() and not any(c.isspace() for c in value.strip()):
        found = [f"<{value.strip().strip('<>')}>"]
    return [_CONTROLS.sub("", m) for m in found]


def parse_date(raw: str, problems: list[ParseProblem]) -> datetime | None:
    try:
        parsed = parsedate_to_datetime(_CONTROLS.sub(" ", unfold(raw)).strip())
    except Exception:  # noqa: BLE001 - TypeError, ValueError, IndexError, OverflowError on garbage
        problems.append(ParseProblem.BAD_DATE)
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _yes_no(raw: str) -> bool | None:
    value = raw.strip().upper()[:1]
    if value in {"O", "Y"}:
        return True
    if value == "N":
        return False
    return None


def read_headers(
    items: Iterable[tuple[str, str]], *, internal_date: datetime | None = None
) -> tuple[MessageHeaders, list[ParseProblem]]:
    """Decode the headers that matter; duplicates of single headers are ignored, address lists merged."""
    problems: list[ParseProblem] = []
    values: dict[str, list[str]] = {}
    for name, value in items:
        values.setdefault(str(name).strip().lower(), []).append(str(value))

    def one(name: str) -> str | None:
        found = values.get(name)
        return found[0] if found else None

    def addresses(name: str) -> list[Address]:
        return [a for raw in values.get(name, []) for a in parse_addresses(raw, problems)][:_MAX_ADDRESSES]

    subject = header_text(one("subject") or "", problems)
    date_raw = one("date")
    date = parse_date(date_raw, problems) if date_raw is not None else None
    if date is None and internal_date is not None:
        date = internal_date if internal_date.tzinfo is not None else internal_date.replace(tzinfo=UTC)
    message_id = next(iter(message_ids(one("message-id") or "")), None)
    in_reply_to = next(iter(message_ids(one("in-reply-to") or "")), None)
    references = message_ids(one("references") or "")[-_MAX_REFERENCES:]
    dnt = addresses("disposition-notification-to")

    def token(name: str) -> str | None:
        raw = one(name)
        value = header_text(raw, problems) if raw is not None else ""
        return value or None

    headers = MessageHeaders(
        from_=addresses("from"),
        to=addresses("to"),
        cc=addresses("cc"),
        reply_to=addresses("reply-to"),
        subject=subject,
        date=date,
        message_id=message_id,
        in_reply_to=in_reply_to,
        references=references,
        mss_nil=token("x-mss-nil"),
        mss_codecda=token("x-mss-codecda"),
        mss_ins=_yes_no(one("x-mss-ins") or ""),
        mss_mes_fin=(one("x-mss-mes") or "").strip().upper() == "FIN",
        is_patient_conversation_end=subject == "[FIN]",
        disposition_notification_to=dnt,
        read_receipt_requested=bool(dnt),
        acting_professional=token(ACTING_HEADER.lower()),
    )
    return headers, problems


def read_flags(flags: Iterable[str]) -> Flags:
    """IMAP flags (``\\Seen``, ``$MDNSent``, keywords) → ``Flags``; system flags are case-insensitive."""
    system: dict[str, bool] = {}
    keywords: set[str] = set()
    for flag in flags:
        field = _SYSTEM_FLAGS.get(flag.lower())
        if field is not None:
            system[field] = True
        elif flag and not flag.startswith("\\"):
            keywords.add(flag)
    return Flags(
        seen=system.get("seen", False),
        answered=system.get("answered", False),
        flagged=system.get("flagged", False),
        deleted=system.get("deleted", False),
        draft=system.get("draft", False),
        forwarded=system.get("forwarded", False),
        mdn_sent=system.get("mdn_sent", False),
        keywords=sorted(keywords),
    )
