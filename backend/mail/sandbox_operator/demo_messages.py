"""The demo's mail: realistic French MSSanté messages (fake people only), in ``messages/*.eml``.

Each file is a whole message as a sender's software writes it (LF line ends on disk). Before
delivery it is addressed to the mailbox it goes to (``To:``) and dated from the seeding time (the
newest a few minutes ago, the others keeping their spacing), so a fresh demo reads like this week's
mail. Everything else, bytes included (a Windows-1252 body stays Windows-1252), is left alone.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import re
from dataclasses import dataclass
from email.header import Header
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MESSAGES_DIR = Path(__file__).resolve().parent / "messages"
#: How long before the seeding the newest demo message arrived.
NEWEST_AGE = dt.timedelta(minutes=25)

_HEADER_NAME = re.compile(rb"^([!-9;-~]+):")


@dataclass(frozen=True, slots=True)
class DemoMessage:
    name: str
    #: The message as stored (LF line ends).
    raw: bytes
    date: dt.datetime
    #: The envelope sender (the ``From`` address).
    sender: str


def load_demo_messages(directory: Path = MESSAGES_DIR) -> list[DemoMessage]:
    """Every ``*.eml`` of ``directory``, oldest first."""
    messages: list[DemoMessage] = []
    for path in sorted(directory.glob("*.eml")):
        raw = path.read_bytes().replace(b"\r\n", b"\n")
        headers = _headers(raw)
        date_value = headers.get("date")
        sender = email.utils.parseaddr(headers.get("from", ""))[1]
        if date_value is None:
            raise ValueError(f"{path.name} has no Date header")
        messages.append(DemoMessage(path.name, raw, email.utils.parsedate_to_datetime(date_value), sender))
    return sorted(messages, key=lambda m: m.date)


def delivery_dates(messages: list[DemoMessage], now: dt.datetime) -> list[dt.datetime]:
    """The dates to give ``messages`` (oldest first) so that the newest is :data:`NEWEST_AGE` old."""
    if not messages:
        return []
    shift = (now - NEWEST_AGE) - messages[-1].date
    zone = _paris()
    return [(m.date + shift).astimezone(zone) for m in messages]


def addressed(message: DemoMessage, *, to_address: str, to_name: str, date: dt.datetime) -> bytes:
    """The message for one mailbox: its ``To`` and ``Date`` replaced, CRLF line ends."""
    to_value = email.utils.formataddr((_encoded_name(to_name), to_address))
    raw = _replace_header(message.raw, b"To", to_value.encode("ascii"))
    raw = _replace_header(raw, b"Date", email.utils.format_datetime(date).encode("ascii"))
    return raw.replace(b"\n", b"\r\n")


def _encoded_name(name: str) -> str:
    return name if name.isascii() else Header(name, "utf-8").encode()


def _paris() -> dt.tzinfo:
    try:
        return ZoneInfo("Europe/Paris")
    except ZoneInfoNotFoundError:
        return dt.timezone(dt.timedelta(hours=1))


def _split(raw: bytes) -> tuple[list[bytes], bytes]:
    head, sep, body = raw.partition(b"\n\n")
    return head.split(b"\n"), sep + body


def _fields(lines: list[bytes]) -> list[list[bytes]]:
    """Header lines grouped per field (a field and its folded continuation lines)."""
    fields: list[list[bytes]] = []
    for line in lines:
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1].append(line)
        else:
            fields.append([line])
    return fields


def _headers(raw: bytes) -> dict[str, str]:
    """First occurrence of each field, unfolded and decoded as Latin-1 (addresses and dates are ASCII)."""
    found: dict[str, str] = {}
    for field in _fields(_split(raw)[0]):
        match = _HEADER_NAME.match(field[0])
        if match is None:
            continue
        name = match.group(1).decode("ascii").lower()
        value = b" ".join(part.strip() for part in [field[0][match.end() :], *field[1:]])
        found.setdefault(name, value.decode("latin-1"))
    return found


def _replace_header(raw: bytes, name: bytes, value: bytes) -> bytes:
    """Replace every ``name`` field by one ``name: value`` at the place of the first (added if absent)."""
    lines, rest = _split(raw)
    out: list[bytes] = []
    placed = False
    for field in _fields(lines):
        match = _HEADER_NAME.match(field[0])
        if match is not None and match.group(1).lower() == name.lower():
            if not placed:
                out.append(name + b": " + value)
                placed = True
            continue
        out.extend(field)
    if not placed:
        out.append(name + b": " + value)
    return b"\n".join(out) + rest
