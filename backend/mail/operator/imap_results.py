"""Turning the operator's untagged responses into the typed records of :mod:`models`.

Pure functions over aioimaplib's response lines (see :mod:`imap_parse`); the session calls them
after each command. Kept apart from the session so the parsing can be read, and tested, alone.
"""

from __future__ import annotations

import re
from typing import Any

import structlog

from backend.mail.operator.bodystructure import parse_body_structure
from backend.mail.operator.errors import OperatorProtocolError
from backend.mail.operator.imap_parse import (
    ImapParseError,
    Value,
    as_int,
    as_list,
    as_text,
    group_responses,
    pairs,
    parse_internal_date,
    parse_uid_set,
    parse_values,
    response_code,
)
from backend.mail.operator.models import (
    SPECIAL_USES,
    CopiedUids,
    FlagState,
    Folder,
    MessageSummary,
    SelectedMailbox,
)
from backend.mail.operator.mutf7 import decode_mailbox

log = structlog.get_logger(__name__)

#: Response codes meaning "no such folder" (RFC 5530); Dovecot also answers a bare NO to SELECT.
NOT_FOUND_CODES = frozenset({"NONEXISTENT", "TRYCREATE"})
#: Response codes of a temporary refusal: retry later, the request was fine.
TRANSIENT_CODES = frozenset({"UNAVAILABLE", "INUSE", "SERVERBUG", "LIMIT"})

_EXISTS = re.compile(rb"^(\d+) EXISTS", re.IGNORECASE)
_SPECIAL_BY_UPPER = {use.upper(): use for use in SPECIAL_USES}


def is_fetch(values: list[Value]) -> bool:
    """``<seq> FETCH (…)``."""
    return len(values) >= 3 and isinstance(values[1], str) and values[1].upper() == "FETCH"


def tagged_text(response: Any) -> bytes:
    last = response.lines[-1] if response.lines else b""
    return bytes(last)


def flag_set(value: Value) -> frozenset[str]:
    return frozenset(as_text(v) for v in as_list(value) if v is not None)


def modseq_of(fetched: dict[str, Value]) -> int | None:
    raw = fetched.get("MODSEQ")
    items = as_list(raw) if raw is not None else []
    return as_int(items[0]) if items else None


def flag_state(uid: int, fetched: dict[str, Value]) -> FlagState:
    return FlagState(uid=uid, flags=flag_set(fetched.get("FLAGS")), modseq=modseq_of(fetched))


def section(fetched: dict[str, Value], prefix: str) -> bytes | None:
    for key, value in fetched.items():
        if key.startswith(prefix):
            if isinstance(value, bytes):
                return value
            return None
    return None


def summary_from(uid: int, fetched: dict[str, Value]) -> MessageSummary:
    structure = None
    if fetched.get("BODYSTRUCTURE") is not None:
        try:
            structure = parse_body_structure(fetched["BODYSTRUCTURE"])
        except ImapParseError:
            log.warning("operator.bodystructure_unreadable", uid=uid)
    size = fetched.get("RFC822.SIZE")
    return MessageSummary(
        uid=uid,
        flags=flag_set(fetched.get("FLAGS")),
        internal_date=parse_internal_date(fetched.get("INTERNALDATE")),
        size=None if size is None else as_int(size),
        headers=section(fetched, "BODY[HEADER.FIELDS") or b"",
        body_structure=structure,
        modseq=modseq_of(fetched),
    )


def selected_from(mailbox: str, response: Any, *, readonly: bool) -> SelectedMailbox:
    exists = 0
    uidvalidity: int | None = None
    uidnext: int | None = None
    highestmodseq: int | None = None
    flags: frozenset[str] = frozenset()
    permanent: frozenset[str] = frozenset()
    for group in group_responses(response.lines[:-1]):
        text = group[0]
        match = _EXISTS.match(text)
        if match:
            exists = int(match.group(1))
            continue
        upper = text[:6].upper()
        if upper.startswith(b"FLAGS"):
            values = parse_values(group)
            flags = flag_set(values[1]) if len(values) > 1 else frozenset()
            continue
        if not upper.startswith(b"OK"):
            continue
        code = response_code(text)
        if code is None:
            continue
        name, args = code
        if name == "UIDVALIDITY":
            uidvalidity = as_int(args)
        elif name == "UIDNEXT":
            uidnext = as_int(args)
        elif name == "HIGHESTMODSEQ":
            highestmodseq = as_int(args)
        elif name == "PERMANENTFLAGS":
            permanent = frozenset(args.strip("()").split())
    tagged = response_code(tagged_text(response))
    if tagged is not None and tagged[0] == "READ-ONLY":
        readonly = True
    if uidvalidity is None:
        raise OperatorProtocolError("SELECT without UIDVALIDITY")
    return SelectedMailbox(
        name=mailbox,
        uidvalidity=uidvalidity,
        uidnext=uidnext,
        exists=exists,
        highestmodseq=highestmodseq,
        readonly=readonly,
        flags=flags,
        permanent_flags=permanent,
    )


def mailbox_name(value: Value) -> str:
    name = decode_mailbox(as_text(value))
    return "INBOX" if name.upper() == "INBOX" else name


def folder_from_list(values: list[Value]) -> Folder:
    attributes = frozenset(as_text(a) for a in as_list(values[1]) if a is not None)
    delimiter = None if values[2] is None else as_text(values[2])
    special = next((_SPECIAL_BY_UPPER[a.upper()] for a in attributes if a.upper() in _SPECIAL_BY_UPPER), None)
    return Folder(name=mailbox_name(values[3]), delimiter=delimiter, attributes=attributes, special_use=special)


def status_from(values: list[Value]) -> tuple[str, int | None, int | None]:
    items = pairs(as_list(values[2]))
    messages = items.get("MESSAGES")
    unseen = items.get("UNSEEN")
    return (
        mailbox_name(values[1]),
        None if messages is None else as_int(messages),
        None if unseen is None else as_int(unseen),
    )


def copied_from(response: Any) -> CopiedUids:
    for item in response.lines:
        if not isinstance(item, bytes):
            continue
        code = response_code(item)
        if code is not None and code[0] == "COPYUID":
            parts = code[1].split()
            if len(parts) == 3:
                source, dest = parse_uid_set(parts[1]), parse_uid_set(parts[2])
                if len(source) == len(dest):
                    return CopiedUids(int(parts[0]), dict(zip(source, dest, strict=True)))
    return CopiedUids(None, {})
