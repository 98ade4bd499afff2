"""Which mailboxes a professional may use from a device, and how: the source of token scopes.

A professional reads and sends from their own nominative mailboxes. On an organisational mailbox
they have what the titulaire granted, and only while their membership of that structure is active
and the device acts for that structure.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import Mailbox, MailboxGrant, MailboxKind, Membership, MembershipStatus


@dataclass(frozen=True, slots=True)
class MailboxRight:
    mailbox_id: uuid.UUID
    address: str
    kind: str
    can_read: bool
    can_send: bool

    def scopes(self) -> list[str]:
        out = []
        if self.can_read:
            out.append(f"mbx:{self.mailbox_id}:read")
        if self.can_send:
            out.append(f"mbx:{self.mailbox_id}:send")
        return out


async def mailbox_rights(
    session: AsyncSession, *, professional_id: uuid.UUID, structure_id: uuid.UUID | None
) -> list[MailboxRight]:
    rights = [
        MailboxRight(m.id, m.address, m.kind, True, True)
        for m in (
            await session.scalars(
                select(Mailbox)
                .where(Mailbox.professional_id == professional_id, Mailbox.kind == MailboxKind.NOMINATIVE)
                .order_by(Mailbox.address)
            )
        ).all()
    ]
    if structure_id is None:
        return rights
    rows = (
        await session.execute(
            select(Mailbox, MailboxGrant)
            .join(MailboxGrant, MailboxGrant.mailbox_id == Mailbox.id)
            .join(
                Membership,
                (Membership.structure_id == Mailbox.structure_id)
                & (Membership.professional_id == MailboxGrant.professional_id),
            )
            .where(
                MailboxGrant.professional_id == professional_id,
                Mailbox.structure_id == structure_id,
                Membership.status == MembershipStatus.ACTIVE,
            )
            .order_by(Mailbox.address)
        )
    ).all()
    rights += [
        MailboxRight(m.id, m.address, m.kind, g.can_read, g.can_send) for m, g in rows if g.can_read or g.can_send
    ]
    return rights


def scope_string(rights: list[MailboxRight]) -> list[str]:
    return ["device", *(s for r in rights for s in r.scopes())]
