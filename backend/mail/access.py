"""Which mailbox a device call may touch, and how: the token's scopes, checked against the registry.

Scopes were computed from the grants when the token was issued; a grant change makes the token
stale at once (``token_stale``), so checking the scope here is checking the current grant.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select

from backend.device_auth import AuthenticatedDevice
from contracts.errors import ErrorCode
from core.db.engine import Database
from core.db.models import Mailbox, MailboxKind
from core.errors import ForbiddenError, NotFoundError

Need = Literal["read", "send"]
_CACHE_S = 60.0


@dataclass(frozen=True, slots=True)
class MailboxAccess:
    id: uuid.UUID
    address: str
    kind: str
    display_name: str
    structure_id: uuid.UUID | None
    can_read: bool
    can_send: bool

    @property
    def organisational(self) -> bool:
        return self.kind == MailboxKind.ORGANISATIONAL

    @property
    def audit_chain(self) -> uuid.UUID | None:
        """Organisational mailboxes are audited in their structure's chain (the titulaire sees it)."""
        return self.structure_id


class MailboxDirectory:
    """Mailbox rows by id, cached briefly (they change only when the titulaire declares one)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._cache: dict[uuid.UUID, tuple[float, Mailbox]] = {}

    async def get(self, mailbox_id: uuid.UUID) -> Mailbox | None:
        hit = self._cache.get(mailbox_id)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        async with self._db.read() as session:
            mailbox = await session.scalar(select(Mailbox).where(Mailbox.id == mailbox_id))
        if mailbox is not None:
            self._cache[mailbox_id] = (time.monotonic() + _CACHE_S, mailbox)
        return mailbox

    async def access(self, device: AuthenticatedDevice, mailbox_id: str, need: Need) -> MailboxAccess:
        try:
            key = uuid.UUID(mailbox_id)
        except ValueError:
            raise NotFoundError(ErrorCode.MAILBOX_NOT_FOUND, "unknown mailbox") from None
        can_read = f"mbx:{key}:read" in device.scopes
        can_send = f"mbx:{key}:send" in device.scopes
        if not (can_read or can_send):
            # Same answer whether the mailbox exists or not: its existence is not the caller's business.
            raise NotFoundError(ErrorCode.MAILBOX_NOT_FOUND, "unknown mailbox")
        if (need == "read" and not can_read) or (need == "send" and not can_send):
            raise ForbiddenError(ErrorCode.MAILBOX_FORBIDDEN, f"this device may not {need} with this mailbox")
        mailbox = await self.get(key)
        if mailbox is None:
            raise NotFoundError(ErrorCode.MAILBOX_NOT_FOUND, "unknown mailbox")
        return MailboxAccess(
            id=mailbox.id,
            address=mailbox.address,
            kind=mailbox.kind,
            display_name=mailbox.display_name,
            structure_id=mailbox.structure_id,
            can_read=can_read,
            can_send=can_send,
        )
