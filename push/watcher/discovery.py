"""Which mailboxes to watch: those with at least one device that can be pushed to.

A device counts when it is active (not revoked), has a push token and the provider has not declared
that token dead. It makes its professional's mailboxes watched along the same rules as the token
scopes (``core.grants``): the professional's own nominative mailboxes, and the organisational (or
applicative) mailboxes of the structure the device acts for, where the professional has a read
grant and an active membership.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, exists, select, union
from sqlalchemy.sql.elements import ColumnElement

from core.db.engine import Database
from core.db.models import Device, Mailbox, MailboxGrant, MailboxKind, Membership, MembershipStatus


@dataclass(frozen=True, slots=True)
class WatchedMailbox:
    """A mailbox to watch: its id (events, leases, state) and its address (the IMAP login)."""

    id: str
    address: str

    def __repr__(self) -> str:
        # repr lands in logs and tracebacks: keep the address out of them
        return f"WatchedMailbox(id={self.id!r})"


def _pushable() -> ColumnElement[bool]:
    return and_(
        Device.revoked_at.is_(None),
        Device.push_token.is_not(None),
        Device.push_token != "",
        Device.push_token_dead_at.is_(None),
    )


async def push_enabled_mailboxes(db: Database) -> list[WatchedMailbox]:
    """Every mailbox with at least one pushable device, ordered by id."""
    nominative = select(Mailbox.id, Mailbox.address).where(
        Mailbox.kind == MailboxKind.NOMINATIVE,
        exists().where(Device.professional_id == Mailbox.professional_id, _pushable()),
    )
    granted = select(Mailbox.id, Mailbox.address).where(
        Mailbox.kind != MailboxKind.NOMINATIVE,
        exists()
        .where(
            MailboxGrant.mailbox_id == Mailbox.id,
            MailboxGrant.can_read.is_(True),
            Membership.structure_id == Mailbox.structure_id,
            Membership.professional_id == MailboxGrant.professional_id,
            Membership.status == MembershipStatus.ACTIVE,
            Device.professional_id == MailboxGrant.professional_id,
            Device.structure_id == Mailbox.structure_id,
            _pushable(),
        )
        .correlate(Mailbox),
    )
    query = union(nominative, granted).order_by("id")
    async with db.read() as session:
        rows = (await session.execute(query)).all()
    return [WatchedMailbox(str(row[0]), str(row[1]).lower()) for row in rows]
