"""Access token scope vocabulary.

* ``device`` — the base scope every enrolled device holds (its own profile, push token, alerts);
* ``mbx:<mailbox uuid>:read`` — list and fetch mail of one mailbox;
* ``mbx:<mailbox uuid>:send`` — send from one mailbox.

Mailbox ids are canonical lowercase hyphenated UUIDs, so one right has exactly one spelling.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from typing import Literal

DEVICE = "device"

MailboxRight = Literal["read", "send"]

_MAILBOX = re.compile(r"mbx:([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}):(read|send)")


def mailbox_scope(mailbox_id: uuid.UUID | str, right: MailboxRight) -> str:
    """``mbx:<uuid>:<right>`` with the UUID in canonical form."""
    if right not in ("read", "send"):
        raise ValueError(f"unknown mailbox right {right!r}")
    return f"mbx:{uuid.UUID(str(mailbox_id))}:{right}"


def is_valid_scope(scope: str) -> bool:
    return scope == DEVICE or _MAILBOX.fullmatch(scope) is not None


def format_scopes(scopes: Iterable[str]) -> str:
    """Space-separated, de-duplicated, order kept; raises ``ValueError`` on a scope outside the vocabulary."""
    seen: dict[str, None] = {}
    for scope in scopes:
        if not is_valid_scope(scope):
            raise ValueError(f"unknown scope {scope!r}")
        seen[scope] = None
    return " ".join(seen)


def parse_scopes(scope: str) -> frozenset[str]:
    """The set named by a ``scope`` claim (RFC 6749 §3.3 syntax: space-separated)."""
    return frozenset(scope.split())


def mailbox_rights(scopes: Iterable[str]) -> dict[uuid.UUID, frozenset[str]]:
    """Mailbox id → rights, for listing what a token may touch."""
    rights: dict[uuid.UUID, set[str]] = {}
    for scope in scopes:
        match = _MAILBOX.fullmatch(scope)
        if match is not None:
            rights.setdefault(uuid.UUID(match.group(1)), set()).add(match.group(2))
    return {mailbox: frozenset(r) for mailbox, r in rights.items()}


__all__ = [
    "DEVICE",
    "MailboxRight",
    "format_scopes",
    "is_valid_scope",
    "mailbox_rights",
    "mailbox_scope",
    "parse_scopes",
]
